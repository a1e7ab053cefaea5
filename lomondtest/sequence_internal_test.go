package lomondtest

import (
	"strings"
	"testing"
)

func TestMatchPattern(t *testing.T) {
	tests := []struct {
		pattern, names string
		ok             bool
		at             int
		wanted         string
	}{
		{"connecting connected ready", "connecting connected ready", true, 0, ""},
		{"connecting connected ready", "connecting connected rejected", false, 2, "ready"},
		{"connecting connected ready", "connecting connected", false, 2, "ready"},
		{"connecting connected", "connecting connected ready", false, 2, ""},
		{"ready text* closed", "ready closed", true, 0, ""},
		{"ready text* closed", "ready text text text closed", true, 0, ""},
		{"ready text+ closed", "ready closed", false, 1, "text"},
		{"ready poll? text", "ready text", true, 0, ""},
		{"ready poll? text", "ready poll poll text", false, 2, "text"},
		{"ready (text|binary)* closed", "ready binary text binary closed", true, 0, ""},
		{"ready (text|binary)* closed", "ready binary ping", false, 2, "binary closed text"},
		{"(connecting connect_fail back_off)+ connecting connected",
			"connecting connect_fail back_off connecting connect_fail back_off connecting connected", true, 0, ""},
		{"(connecting connect_fail back_off)+ connecting connected",
			"connecting connected", false, 1, "connect_fail"},
		{"ready | rejected", "rejected", true, 0, ""},
		{"(ready text?)* closed", "ready ready text closed", true, 0, ""},
		{"(text?)* closed", "closed", true, 0, ""}, // an empty repetition does not loop
		{"", "", true, 0, ""},
		{"ready text{3} closed", "ready text text text closed", true, 0, ""},
		{"ready text{3} closed", "ready text text closed", false, 3, "text"},
		{"ready text{3} closed", "ready text text text text closed", false, 4, "closed"},
		{"ready text{2,} closed", "ready text text text text closed", true, 0, ""},
		{"ready text{2,} closed", "ready text closed", false, 2, "text"},
		{"ready text{1,2} closed", "ready text text closed", true, 0, ""},
		{"ready text{1,2} closed", "ready text text text", false, 3, "closed"},
		{"ready text{0} closed", "ready closed", true, 0, ""},
		{"ready (text binary){2} closed", "ready text binary text binary closed", true, 0, ""},
		{"ready (text binary){2} closed", "ready text binary text closed", false, 4, "binary"},
		{"ready (text|binary){0,2} closed", "ready binary text closed", true, 0, ""},
		{"(text?){3,} closed", "closed", true, 0, ""},
		{"", "ready", false, 0, ""},
	}
	for _, tt := range tests {
		prog := mustCompile(t, tt.pattern)
		ok, at, wanted, _ := matchPattern(prog, strings.Fields(tt.names))
		if ok != tt.ok || (!ok && (at != tt.at || strings.Join(wanted, " ") != tt.wanted)) {
			t.Errorf("%q on %q: ok=%v at=%d wanted=%q, want ok=%v at=%d wanted=%q",
				tt.pattern, tt.names, ok, at, wanted, tt.ok, tt.at, tt.wanted)
		}
	}
}

func TestParsePatternErrors(t *testing.T) {
	for pattern, want := range map[string]string{
		"ready txt":          `unknown event name "txt"`,
		"ready (text":        "not closed",
		"ready text)":        `unmatched ')'`,
		"ready ()":           "empty alternative",
		"ready (text|)":      "empty alternative",
		"Ready":              `unexpected 'R'`,
		"connecting ready !": `unexpected '!'`,
		"text{3":             "not closed",
		"text{}":             "want {n}, {n,} or {n,m}",
		"text{3,2}":          "want {n}, {n,} or {n,m}",
		"text{-1}":           "want {n}, {n,} or {n,m}",
		"text{1001}":         "want {n}, {n,} or {n,m}",
		"text{ 3}":           "want {n}, {n,} or {n,m}",
		"text{3}{2}":         `unexpected '{'`,
	} {
		if _, err := parsePattern(pattern); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("parsePattern(%q) = %v, want an error with %q", pattern, err, want)
		}
	}
}

func mustCompile(t *testing.T, pattern string) *program {
	t.Helper()
	nodes, err := parsePattern(pattern)
	if err != nil {
		t.Fatalf("parsePattern(%q): %v", pattern, err)
	}
	prog, err := compilePattern(nodes)
	if err != nil {
		t.Fatalf("compilePattern(%q): %v", pattern, err)
	}
	return prog
}

// A pattern whose repetitions expand too far is an error, not a program of
// millions of instructions.
func TestCompilePatternBoundsItsSize(t *testing.T) {
	nodes, err := parsePattern("(text{1000}){1000}")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := compilePattern(nodes); err == nil || !strings.Contains(err.Error(), "too large") {
		t.Fatalf("compilePattern = %v, want a too-large error", err)
	}
}

// Ambiguous alternatives under a repetition take a backtracking matcher
// exponential time: "(text|text text)*" splits 40 texts in fib(40), about
// 10^8 ways, each tried before the binary that never comes is given up on;
// nesting ("((text)*)*") is worse. The NFA looks at each event once
// against each instruction, so the steps stay within
// (len(events)+1) * len(insts).
func TestMatchPatternTakesLinearSteps(t *testing.T) {
	for _, pattern := range []string{
		"ready (text|text text)* binary",
		"ready ((text)*)* binary",
		"ready (text|text|text text|text text text)* (text)* binary",
		"ready (text? text?){1,40} binary",
	} {
		prog := mustCompile(t, pattern)
		names := []string{"ready"}
		for range 40 {
			names = append(names, "text")
		}
		names = append(names, "closed")
		ok, at, wanted, steps := matchPattern(prog, names)
		if ok || at != 41 || strings.Join(wanted, " ") != "binary text" {
			t.Errorf("%q: ok=%v at=%d wanted=%q, want a mismatch at event 41 wanting binary or text", pattern, ok, at, wanted)
		}
		if bound := (len(names) + 1) * len(prog.insts); steps > bound {
			t.Errorf("%q: %d steps, more than (events+1) * instructions = %d", pattern, steps, bound)
		}
	}
}

// BenchmarkMatchPattern compares an ambiguous pattern with a plain one
// over the same 1000 texts: with the NFA, the ambiguous one costs a small
// constant factor more (its program is larger), not exponentially more.
func BenchmarkMatchPattern(b *testing.B) {
	names := []string{"ready"}
	for range 1000 {
		names = append(names, "text")
	}
	names = append(names, "closed")
	for _, bc := range []struct{ name, pattern string }{
		{"plain", "ready text* binary"},
		{"ambiguous", "ready (text|text text)* binary"},
		{"nested", "ready ((text)*)* binary"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			nodes, _ := parsePattern(bc.pattern)
			prog, _ := compilePattern(nodes)
			for range b.N {
				matchPattern(prog, names)
			}
		})
	}
}
