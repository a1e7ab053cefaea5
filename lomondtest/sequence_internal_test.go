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
		{"", "ready", false, 0, ""},
	}
	for _, tt := range tests {
		nodes, err := parsePattern(tt.pattern)
		if err != nil {
			t.Fatalf("parsePattern(%q): %v", tt.pattern, err)
		}
		ok, at, wanted := matchPattern(nodes, strings.Fields(tt.names))
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
	} {
		if _, err := parsePattern(pattern); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("parsePattern(%q) = %v, want an error with %q", pattern, err, want)
		}
	}
}
