//go:build unix

package main

import (
	"net/http"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// The first SIGINT (Ctrl-C) or SIGTERM closes gracefully with 1001, even
// while a read of stdin is pending, and exits with 128+signal.
func TestSignalClosesGoingAway(t *testing.T) {
	for _, tc := range []struct {
		sig  os.Signal
		code int
	}{{os.Interrupt, 130}, {syscall.SIGTERM, 143}} {
		url, closes := echoServer(t)
		p := startCLI(t, url) // stdin stays open: a read is pending
		p.stderr.waitFor(t, "ready", 10*time.Second)
		if err := p.cmd.Process.Signal(tc.sig); err != nil {
			t.Fatal(err)
		}
		if code := p.wait(10 * time.Second); code != tc.code {
			t.Fatalf("%v: exit %d, want %d\nstderr:\n%s", tc.sig, code, tc.code, p.stderr)
		}
		expectClose(t, closes, websocket.StatusGoingAway, "")
		p.stderr.waitFor(t, "interrupted: closing", time.Second)
		p.stderr.waitFor(t, `closed 1001`, time.Second)
	}
}

// A second Ctrl-C exits at once, even while the close handshake waits for
// a server that never answers (close timeout one minute).
func TestSecondInterruptExitsAtOnce(t *testing.T) {
	url := wsServer(t, nil, func(_ *websocket.Conn, _ *http.Request, done <-chan struct{}) {
		<-done // never reads: the close is never answered
	})
	p := startCLI(t, "--close-timeout", "1m", url)
	p.stderr.waitFor(t, "ready", 10*time.Second)
	if err := p.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	p.stderr.waitFor(t, "interrupted: closing", 10*time.Second)
	if err := p.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if code := p.wait(10 * time.Second); code != 130 {
		t.Fatalf("exit %d, want 130\nstderr:\n%s", code, p.stderr)
	}
	t.Logf("exited %v after the second Ctrl-C", time.Since(start))
}

// Ctrl-C during a back-off wait of --persist ends the wait at once.
func TestInterruptDuringBackOff(t *testing.T) {
	p := startCLI(t, "--persist", "--backoff-min", "1m", "--backoff-max", "2m", "ws://"+closedPort(t)+"/")
	p.stderr.waitFor(t, "back-off reconnecting in", 10*time.Second)
	if err := p.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	if code := p.wait(10 * time.Second); code != 130 {
		t.Fatalf("exit %d, want 130\nstderr:\n%s", code, p.stderr)
	}
}
