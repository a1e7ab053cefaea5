package lomond

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// The Markdown tables of README.md and docs/ render as tables (GitHub
// Flavored Markdown): each block of table rows starts with a header and a
// delimiter row, and every row has the header's number of cells. A table
// cut by a blank line renders its second part as a paragraph of pipes.

func TestMarkdownTables(t *testing.T) {
	files, err := filepath.Glob("docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	files = append([]string{"README.md"}, files...)
	tables := 0
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		n, problems := checkMarkdownTables(string(data))
		tables += n
		for _, p := range problems {
			t.Errorf("%s: %s", name, p)
		}
	}
	if tables < 10 {
		t.Errorf("found only %d tables: the check is not reading the files", tables)
	}
}

// TestMarkdownTablesRejects: the check finds the mistakes it is for.
func TestMarkdownTablesRejects(t *testing.T) {
	for name, text := range map[string]string{
		"cut by a blank line": "| a | b |\n|---|---|\n| 1 | 2 |\n\n| 3 | 4 |\n",
		"no delimiter row":    "| a | b |\n| 1 | 2 |\n",
		"a row too long":      "| a | b |\n|---|---|\n| 1 | 2 | 3 |\n",
		"a row too short":     "| a | b |\n| --- | --- |\n| 1 |\n",
		"delimiter mismatch":  "| a | b |\n|---|\n| 1 | 2 |\n",
	} {
		if _, problems := checkMarkdownTables(text); len(problems) == 0 {
			t.Errorf("%s: accepted", name)
		}
	}
	ok := "text\n\n| a | `b` |\n| :-- | --: |\n| x \\| y | 2 |\n\n```\n| not | a table\n```\n\n| c |\n|---|\n| 3 |\n"
	if n, problems := checkMarkdownTables(ok); n != 2 || len(problems) != 0 {
		t.Errorf("valid tables: %d tables, problems %v", n, problems)
	}
}

var delimiterCell = regexp.MustCompile(`^:?-+:?$`)

// checkMarkdownTables returns the number of tables in text and what is
// wrong with them. Lines in fenced code blocks are not tables.
func checkMarkdownTables(text string) (int, []string) {
	var problems []string
	tables := 0
	prevCols, prevEnd := 0, -10 // the last table's columns and last line
	lines := strings.Split(text, "\n")
	fence := ""
	for i := 0; i < len(lines); i++ {
		trimmed := strings.TrimSpace(lines[i])
		if fence != "" {
			if strings.HasPrefix(trimmed, fence) {
				fence = ""
			}
			continue
		}
		if strings.HasPrefix(trimmed, "```") || strings.HasPrefix(trimmed, "~~~") {
			fence = trimmed[:3]
			continue
		}
		if !strings.HasPrefix(trimmed, "|") {
			continue
		}
		start := i
		var block []string
		for ; i < len(lines) && strings.HasPrefix(strings.TrimSpace(lines[i]), "|"); i++ {
			block = append(block, strings.TrimSpace(lines[i]))
		}
		at := func(k int) string { return fmt.Sprintf("line %d", start+k+1) }
		header := markdownCells(block[0])
		if len(block) < 2 || !isDelimiterRow(block[1]) {
			if len(header) == prevCols && blankBetween(lines, prevEnd, start) {
				problems = append(problems, fmt.Sprintf("%s: rows of the table above, cut from it by a blank line: they render as a paragraph", at(0)))
			} else {
				problems = append(problems, fmt.Sprintf("%s: a table without a delimiter row (|---|) under its header renders as a paragraph", at(0)))
			}
			continue
		}
		tables++
		if d := len(markdownCells(block[1])); d != len(header) {
			problems = append(problems, fmt.Sprintf("%s: %d delimiter cells for %d header cells", at(1), d, len(header)))
		}
		for k := 2; k < len(block); k++ {
			if c := len(markdownCells(block[k])); c != len(header) {
				problems = append(problems, fmt.Sprintf("%s: %d cells, the header has %d", at(k), c, len(header)))
			}
		}
		prevCols, prevEnd = len(header), i-1
	}
	return tables, problems
}

// blankBetween reports whether only blank lines separate line a from line b.
func blankBetween(lines []string, a, b int) bool {
	if a < 0 {
		return false
	}
	for k := a + 1; k < b; k++ {
		if strings.TrimSpace(lines[k]) != "" {
			return false
		}
	}
	return true
}

func isDelimiterRow(row string) bool {
	for _, c := range markdownCells(row) {
		if !delimiterCell.MatchString(strings.TrimSpace(c)) {
			return false
		}
	}
	return true
}

// markdownCells splits a table row into its cells. As in GitHub Flavored
// Markdown, every pipe not escaped with a backslash separates cells, in
// code spans too.
func markdownCells(row string) []string {
	row = strings.TrimSpace(row)
	row = strings.TrimPrefix(row, "|")
	if strings.HasSuffix(row, "|") && !strings.HasSuffix(row, `\|`) {
		row = row[:len(row)-1]
	}
	var cells []string
	var cell strings.Builder
	for k := 0; k < len(row); k++ {
		switch {
		case row[k] == '\\' && k+1 < len(row):
			cell.WriteByte(row[k])
			cell.WriteByte(row[k+1])
			k++
		case row[k] == '|':
			cells = append(cells, cell.String())
			cell.Reset()
		default:
			cell.WriteByte(row[k])
		}
	}
	return append(cells, cell.String())
}
