package lomondtest_test

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// goBlocks returns the ```go blocks of a markdown file.
func goBlocks(t *testing.T, path string) []string {
	t.Helper()
	md, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, m := range regexp.MustCompile("(?s)```go\n(.*?)```").FindAllStringSubmatch(string(md), -1) {
		out = append(out, m[1])
	}
	return out
}

// TestDocumentedTestsAreTheTestedOnes checks that every test function the
// README, docs/testing.md and the package doc show is, verbatim, one that
// runs here.
func TestDocumentedTestsAreTheTestedOnes(t *testing.T) {
	var tested strings.Builder
	for _, f := range []string{"readme_test.go", "docs_test.go", "step_test.go"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		tested.Write(b)
	}
	blocks := append(goBlocks(t, "../README.md"), goBlocks(t, "../docs/testing.md")...)
	doc, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	var fromDoc []string
	for _, line := range strings.Split(string(doc), "\n") {
		if rest, ok := strings.CutPrefix(line, "//\t"); ok {
			fromDoc = append(fromDoc, rest)
		}
	}
	blocks = append(blocks, strings.Join(fromDoc, "\n")+"\n")
	found := 0
	for _, block := range blocks {
		if !strings.HasPrefix(block, "func Test") {
			continue
		}
		found++
		if !strings.Contains(tested.String(), block) {
			t.Errorf("this documented test is not one the suite runs:\n%s", block)
		}
	}
	if found < 6 {
		t.Errorf("found %d documented tests, want the README's, the package doc's and docs/testing.md's", found)
	}
}
