package main

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/lomond-go/lomond/internal/wstest"
)

// closeReplyServer reads what the client sends until its close frame and
// answers the close with code and reason: a server that refuses a
// subscription when the client ends the session.
func closeReplyServer(t *testing.T, code int, reason string) *wstest.Server {
	t.Helper()
	return wstest.NewServer(t, func(c *wstest.Conn) {
		if _, err := c.Handshake(); err != nil {
			return
		}
		if _, _, err := c.ExpectClose(); err == nil {
			c.WriteFrame(wstest.Close(code, reason))
		}
	})
}

// The client started the close (--send, or the end of input) and the server
// answered with 4003: exit 7, and the final line says so even with -q.
func TestExitServerCloseReplyToClientClose(t *testing.T) {
	srv := closeReplyServer(t, 4003, "bad subscription")
	for _, args := range [][]string{
		{"-q", "--send", `{"subscribe":"x"}`, srv.URL()},
		{"-q", srv.URL()}, // the end of standard input closes
		{"--json", "-q", srv.URL()},
	} {
		r := runCLI(t, `{"subscribe":"x"}`+"\n", args...)
		r.expectCode(t, exitServerClose)
		if want := `lomond: closed by the server: 4003 "bad subscription"` + "\n"; r.stderr != want {
			t.Fatalf("%v: stderr %q, want only %q", args, r.stderr, want)
		}
	}
	// A close reply with 1000, or with no code (0: an empty close frame,
	// 1005 to lomond), is a normal end.
	for _, code := range []int{1000, 0} {
		srv := closeReplyServer(t, code, "")
		r := runCLI(t, "", "-q", "--send", "x", srv.URL())
		r.expectCode(t, exitOK)
		if r.stderr != "" {
			t.Fatalf("close reply %d: stderr %q", code, r.stderr)
		}
	}
}

// A line that cannot be sent is reported once, with its line number, and
// without the library's prefix doubled.
func TestNotSentWarningNamesTheLine(t *testing.T) {
	url, _ := echoServer(t)
	r := runCLI(t, "ok\n\xff\xfe\nafter\n", "-q", url)
	r.expectCode(t, exitOK)
	if want := "lomond: line 2 not sent: text is not valid UTF-8\n"; r.stderr != want {
		t.Fatalf("stderr %q, want %q", r.stderr, want)
	}
	r = runCLI(t, "", "-q", "--send", "ok", "--send", "\xff", url)
	r.expectCode(t, exitOK)
	if want := "lomond: --send #2 not sent: text is not valid UTF-8\n"; r.stderr != want {
		t.Fatalf("stderr %q, want %q", r.stderr, want)
	}
	if strings.Contains(r.stdout, "\xff") || r.stdout != "ok\n" {
		t.Fatalf("stdout %q", r.stdout)
	}
}

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

// --slash: /ping, /pong and /close send those frames, //text sends /text,
// an unknown command is reported and skipped. The server (coder/websocket)
// records the control frames it receives.
func TestSlashCommands(t *testing.T) {
	var mu sync.Mutex
	var pings, pongs []string
	closes := make(chan closeStatus, 1)
	url := wsServer(t, &websocket.AcceptOptions{
		OnPingReceived: func(_ context.Context, p []byte) bool {
			mu.Lock()
			defer mu.Unlock()
			pings = append(pings, string(p))
			return true // and answer it
		},
		OnPongReceived: func(_ context.Context, p []byte) {
			mu.Lock()
			defer mu.Unlock()
			pongs = append(pongs, string(p))
		},
	}, func(c *websocket.Conn, _ *http.Request, _ <-chan struct{}) { echoLoop(c, closes) })

	in := "/ping hello\n/pong world\n//slashed\n/bogus\n/close x\n/close 4001 bye now\n"
	r := runCLI(t, in, "--slash", url)
	// The server echoes the close code: not 1000, so exit 7.
	r.expectCode(t, exitServerClose)
	expectClose(t, closes, 4001, "bye now")
	if r.stdout != "/slashed\n" {
		t.Fatalf("stdout %q, want the //slashed line as /slashed only", r.stdout)
	}
	mu.Lock()
	gotPings, gotPongs := strings.Join(pings, ","), strings.Join(pongs, ",")
	mu.Unlock()
	if gotPings != "hello" || gotPongs != "world" {
		t.Fatalf("server got pings %q and pongs %q, want hello and world", gotPings, gotPongs)
	}
	for _, want := range []string{
		`* ping sent "hello"`, `pong "hello"`, `* pong sent "world"`,
		`lomond: line 4 not sent: unknown command "/bogus"`,
		`lomond: line 5 (/close) not sent: "x" is not a close code`,
		`* closing 4001 "bye now"`, `closed 4001 "bye now"`,
		`lomond: closed by the server: 4001 "bye now"`,
	} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr lacks %q", want)
		}
	}
	if t.Failed() {
		t.Fatalf("stderr:\n%s", r.stderr)
	}

	// Without --slash the same lines are text messages, echoed as they are.
	url2, _ := echoServer(t)
	r = runCLI(t, "/ping hello\n/close 4001\n", "-q", url2)
	r.expectCode(t, exitOK)
	if r.stdout != "/ping hello\n/close 4001\n" {
		t.Fatalf("without --slash: stdout %q", r.stdout)
	}
}

func TestSlashUsage(t *testing.T) {
	for _, args := range [][]string{
		{"--slash", "--no-stdin"},
		{"--slash", "--send", "x"},
		{"--slash", "--binary"},
	} {
		r := runCLI(t, "", append(args, "ws://127.0.0.1:1/")...)
		r.expectCode(t, exitUsage)
		if !strings.Contains(r.stderr, "--slash") {
			t.Fatalf("%v: stderr %q", args, r.stderr)
		}
	}
}
