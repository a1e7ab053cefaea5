package main

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// delayedEchoServer echoes each message after a pause of gap since the
// previous echo, on a writer of its own, while its reader goes on reading:
// like a server whose replies take time, it answers the client's close at
// once and the echoes still to come are lost. It reports how many echoes it
// wrote.
func delayedEchoServer(t *testing.T, gap time.Duration) (string, <-chan int) {
	t.Helper()
	written := make(chan int, 4)
	url := wsServer(t, nil, func(c *websocket.Conn, _ *http.Request, done <-chan struct{}) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		msgs := make(chan []byte, 1024)
		go func() {
			defer close(msgs)
			for {
				_, data, err := c.Read(ctx)
				if err != nil {
					return
				}
				msgs <- data
			}
		}()
		n := 0
		defer func() { written <- n }()
		for data := range msgs {
			select {
			case <-time.After(gap):
			case <-done:
				return
			}
			if c.Write(ctx, websocket.MessageText, data) != nil {
				return
			}
			n++
		}
	})
	return url, written
}

// Piping a file: with --wait-quiet the client waits at the end of input
// until the server has been quiet that long, so every reply is printed,
// even when the replies take longer in all than the wait (each one starts
// it over).
func TestWaitQuietKeepsRepliesInFlight(t *testing.T) {
	const n = 10
	var in, want strings.Builder
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&in, "line %d\n", i)
	}
	want.WriteString(in.String())

	url, written := delayedEchoServer(t, 100*time.Millisecond)
	r := runCLI(t, in.String(), "--wait-quiet", "700ms", url)
	r.expectCode(t, exitOK)
	if r.stdout != want.String() {
		t.Fatalf("stdout %q, want every echo", r.stdout)
	}
	if r.elapsed < n*100*time.Millisecond {
		t.Fatalf("exited after %v, before the echoes could all come", r.elapsed)
	}
	for _, line := range []string{"end of input: closing once no message comes for 700ms", "no message for 700ms: closing", `closed 1000 "end of input"`} {
		if !strings.Contains(r.stderr, line) {
			t.Fatalf("stderr lacks %q:\n%s", line, r.stderr)
		}
	}
	<-written

	// The same with --send: the replies that come after the sends.
	r = runCLI(t, "", "-q", "--send", "a", "--send", "b", "--wait-quiet", "700ms", url)
	r.expectCode(t, exitOK)
	if r.stdout != "a\nb\n" {
		t.Fatalf("--send: stdout %q", r.stdout)
	}
	<-written

	// Without it, the close goes at the end of input, and the server drops
	// what it had still to send (how much depends on timing: logged only).
	r = runCLI(t, in.String(), "-q", url)
	r.expectCode(t, exitOK)
	t.Logf("without --wait-quiet: %d of %d echoes printed", len(lines(r.stdout)), n)
	<-written

	// --count, when it comes first, still ends the session.
	r = runCLI(t, in.String(), "-q", "--count", "2", "--wait-quiet", "30s", url)
	r.expectCode(t, exitOK)
	if r.stdout != "line 1\nline 2\n" || r.elapsed > 20*time.Second {
		t.Fatalf("--count 2 with --wait-quiet: stdout %q after %v", r.stdout, r.elapsed)
	}
}

func TestWaitQuietUsage(t *testing.T) {
	r := runCLI(t, "", "--no-stdin", "--wait-quiet", "1s", "ws://127.0.0.1:1/")
	r.expectCode(t, exitUsage)
	if !strings.Contains(r.stderr, "--wait-quiet with --no-stdin") {
		t.Fatalf("stderr %q", r.stderr)
	}
}
