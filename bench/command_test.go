package main

import (
	"bytes"
	"math"
	"strings"
	"testing"
)

// The command end to end, as `go run .` runs it but short: the fixture and
// every client run in processes of their own (this test binary, started
// again), and the report has every section, a row per size and client, and
// no failure.
func TestCommand(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := run([]string{"-rounds", "2", "-messages", "200", "-sizes", "16,1KiB", "-conns", "20,30", "-storm", "50"}, &stdout, &stderr)
	out := stdout.String()
	if code != 0 {
		t.Fatalf("exit code %d\nstdout:\n%s\nstderr:\n%s", code, out, stderr.String())
	}
	for _, want := range []string{
		"## Peer benchmark",
		"### Push:", "### Round trip:", "### lomond ÷ peer: msgs/s", "### lomond ÷ peer: messages per second of client CPU time", "### Idle connections", "### Targets (issue 16)",
		"### Send:", "### Reconnect storm: 50 lomond clients", "| send | 16 B | lomond |", "| 30 | gobwas |", "| 20 | floor |",
		"lomond WithBorrowedBinary ≥ 0.8x the framing floor, push 16 B", "storm: all 50 clients Ready again",
		"### Failures\n\nnone\n",
		"| 16 B | gws |", "| 1 KiB | coder |", "| push | 1 KiB | lomond-borrowed |", "| echo | 16 B | lomond |",
		"| gorilla |", "| 16 B | gobwas |", "| 16 B | floor |", "lomond allocations per pushed message ≤ 1",
		"| 1 KiB | floor-owned |", " ÷ owned floor |", "lomond (default options) ≥ 1.0x the owned floor, push 1 KiB",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "n/a") {
		t.Errorf("report has figures missing (n/a):\n%s", out)
	}
	if !strings.Contains(stderr.String(), "round 2/2 done") {
		t.Errorf("no progress on stderr: %q", stderr.String())
	}
}

func TestParseFlags(t *testing.T) {
	c, err := parseFlags([]string{"-sizes", "16,1KiB,2MiB,100B", "-only", "gws,lomond", "-modes", "push"}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if got := c.sizes; len(got) != 4 || got[0] != 16 || got[1] != 1024 || got[2] != 2<<20 || got[3] != 100 {
		t.Errorf("sizes %v", got)
	}
	if strings.Join(c.clients, ",") != "gws,lomond" || strings.Join(c.modes, ",") != "push" {
		t.Errorf("clients %v, modes %v", c.clients, c.modes)
	}
	for _, bad := range [][]string{
		{"-sizes", "0"}, {"-sizes", "16,x"}, {"-sizes", "9MiB"}, {"-only", "nope"}, {"-modes", "pull"},
		{"-rounds", "0"}, {"-duration", "0"}, {"-conns", "0"}, {"-conns", "10,x"}, {"-storm", "0"}, {"-messages", "-1"}, {"extra"},
	} {
		if _, err := parseFlags(bad, &bytes.Buffer{}); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestRotate(t *testing.T) {
	names := []string{"a", "b", "c"}
	for r, want := range []string{"a,b,c", "b,c,a", "c,a,b", "a,b,c"} {
		if got := strings.Join(rotate(names, r), ","); got != want {
			t.Errorf("round %d: %s, want %s", r, got, want)
		}
	}
}

// Ratios are taken within each round, against the best peer of that round,
// and rounds where a client failed are left out.
func TestRatiosWithinRounds(t *testing.T) {
	rate := func(msgs int64) result { return result{Msgs: msgs, Wall: 1e9} }
	rep := &report{cfg: config{clients: []string{"lomond", "gws", "gorilla"}}, runs: map[key][]result{
		{"push", 16, "lomond"}:  {rate(100), rate(300), rate(50)},
		{"push", 16, "gws"}:     {rate(200), rate(100), rate(10)},
		{"push", 16, "gorilla"}: {rate(50), rate(600), {Err: "failed"}},
	}}
	got := rep.ratios("push", 16, "lomond", []string{"gws"}, result.msgsPerSec)
	if !equal(got, []float64{0.5, 3, 5}) {
		t.Errorf("lomond ÷ gws = %v", got)
	}
	got = rep.ratios("push", 16, "lomond", []string{"gws", "gorilla"}, result.msgsPerSec)
	if !equal(got, []float64{0.5, 0.5}) {
		t.Errorf("lomond ÷ best peer = %v", got)
	}
	if s := fmtStats([]float64{0.5, 3, 5}); s != "3.00 (0.50..5.00)" {
		t.Errorf("fmtStats = %q", s)
	}
	if m := rep.median(key{"push", 16, "gorilla"}, result.msgsPerSec); m != 325 {
		t.Errorf("median over successful runs = %v", m)
	}
}

func equal(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Abs(a[i]-b[i]) > 1e-9 {
			return false
		}
	}
	return true
}
