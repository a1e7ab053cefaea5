package main

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestCountersMoveAcrossARestart runs the example through one server
// restart and checks, in what it read from its own /metrics endpoint, that
// the client reconnected and the counters moved.
func TestCountersMoveAcrossARestart(t *testing.T) {
	var out, logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	if err := run(context.Background(), 3500*time.Millisecond, logger, &out); err != nil {
		t.Fatalf("run: %v", err)
	}
	// A run that ends as designed (its time is up) logs no error.
	if strings.Contains(logs.String(), "level=ERROR") {
		t.Errorf("the run logged an error:\n%s", logs.String())
	}
	if !strings.Contains(logs.String(), "msg=\"websocket ready\"") {
		t.Errorf("the log lacks the plugin's records:\n%s", logs.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) < 3 || !strings.HasPrefix(lines[0], "metrics at http://127.0.0.1:") {
		t.Fatalf("output:\n%s", out.String())
	}
	var attempts, sessions, reconnects, in, outN, depth, ready int
	last := lines[len(lines)-1]
	if _, err := fmt.Sscanf(last, "attempts=%d sessions=%d reconnects=%d texts_in=%d texts_out=%d queue_depth=%d state_ready=%d",
		&attempts, &sessions, &reconnects, &in, &outN, &depth, &ready); err != nil {
		t.Fatalf("last line %q: %v", last, err)
	}
	if sessions < 2 || reconnects < 1 || attempts < sessions || in == 0 || outN == 0 {
		t.Errorf("counters did not move across the restart: %s", last)
	}
	var first int
	if _, err := fmt.Sscanf(lines[1], "attempts=%d", &first); err != nil || first >= attempts {
		t.Errorf("attempts did not grow between %q and %q", lines[1], last)
	}
}
