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
// README, docs/testing.md and the package doc show, and every handler
// docs/testing.md shows with them (a block declaring a type), is verbatim
// one that runs here: a reader can paste a test and its handler, and they
// run.
func TestDocumentedTestsAreTheTestedOnes(t *testing.T) {
	var tested strings.Builder
	for _, f := range []string{"readme_test.go", "docs_test.go", "step_test.go"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		tested.Write(b)
	}
	testingMD := goBlocks(t, "../docs/testing.md")
	blocks := append(goBlocks(t, "../README.md"), testingMD...)
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
	found, types := 0, map[string]bool{}
	isHandler := map[string]bool{}
	for _, block := range testingMD {
		isHandler[block] = strings.HasPrefix(firstCodeLine(block), "type ")
	}
	for _, block := range blocks {
		first := firstCodeLine(block)
		switch {
		case strings.HasPrefix(first, "func Test"):
			found++
		case isHandler[block]:
			types[strings.Fields(first)[1]] = true
		default:
			continue
		}
		if !strings.Contains(tested.String(), block) {
			t.Errorf("this documented code is not the code the suite runs:\n%s", block)
		}
	}
	if found < 6 || len(types) < 3 {
		t.Errorf("found %d documented tests and %d handlers, want the README's, the package doc's and docs/testing.md's",
			found, len(types))
	}
	// Every handler a test on docs/testing.md uses is shown there.
	for _, block := range testingMD {
		for _, m := range regexp.MustCompile(`&([a-z]\w*)\{`).FindAllStringSubmatch(block, -1) {
			if strings.HasPrefix(firstCodeLine(block), "func Test") && !types[m[1]] {
				t.Errorf("docs/testing.md uses %s but does not show it", m[1])
			}
		}
	}
}

// firstCodeLine returns the first line of block that is not a comment.
func firstCodeLine(block string) string {
	for _, line := range strings.Split(block, "\n") {
		if !strings.HasPrefix(line, "//") {
			return line
		}
	}
	return ""
}
