package main

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// Each way a session can end has its exit status and a final line that
// says what happened.

func TestExitConnectRefused(t *testing.T) {
	r := runCLI(t, "", "ws://"+closedPort(t)+"/")
	r.expectCode(t, exitConnect)
	if !strings.Contains(r.stderr, "lomond: cannot connect") || !strings.Contains(r.stderr, "connect failed") {
		t.Fatalf("stderr:\n%s", r.stderr)
	}
}

func TestExitRejected403(t *testing.T) {
	url := httpServer(t, func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "no entry for you", http.StatusForbidden)
	})
	r := runCLI(t, "", url)
	r.expectCode(t, exitRejected)
	if !strings.Contains(r.stderr, "lomond: rejected by the server: 403 Forbidden") {
		t.Fatalf("final line lacks the status:\n%s", r.stderr)
	}
	if !strings.Contains(r.stderr, `"no entry for you"`) {
		t.Fatalf("the rejected line lacks the body:\n%s", r.stderr)
	}
}

func TestExitRejected503RetryAfter(t *testing.T) {
	url := httpServer(t, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Retry-After", "7")
		w.WriteHeader(http.StatusServiceUnavailable)
	})
	r := runCLI(t, "", "--json", url)
	r.expectCode(t, exitRejected)
	if !strings.Contains(r.stderr, "503 Service Unavailable, retry after 7s") {
		t.Fatalf("final line:\n%s", r.stderr)
	}
	if !strings.Contains(r.stdout, `"name":"rejected"`) || !strings.Contains(r.stdout, `"status":503`) ||
		!strings.Contains(r.stdout, `"retry_after":7`) {
		t.Fatalf("JSON rejected event:\n%s", r.stdout)
	}
}

// A server that drops the TCP connection during the opening handshake:
// there never was a websocket, so it is a connect failure.
func TestExitDroppedDuringHandshake(t *testing.T) {
	url := httpServer(t, func(w http.ResponseWriter, _ *http.Request) {
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			conn.Close()
		}
	})
	r := runCLI(t, "", url)
	r.expectCode(t, exitConnect)
	if !strings.Contains(r.stderr, "lomond: cannot connect: opening handshake failed") {
		t.Fatalf("stderr:\n%s", r.stderr)
	}
}

// A server that never answers the upgrade: --handshake-timeout.
func TestExitHandshakeTimeout(t *testing.T) {
	url := httpServer(t, func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done() // the client gives up and closes
	})
	r := runCLI(t, "", "--handshake-timeout", "200ms", url)
	r.expectCode(t, exitConnect)
	if !strings.Contains(r.stderr, "timed out") {
		t.Fatalf("stderr:\n%s", r.stderr)
	}
}

// A connection dropped after Ready, without a close frame.
func TestExitConnectionLost(t *testing.T) {
	url := wsServer(t, nil, func(c *websocket.Conn, _ *http.Request, _ <-chan struct{}) {
		if c.Write(context.Background(), websocket.MessageText, []byte("bye")) == nil {
			c.CloseNow()
		}
	})
	r := runCLI(t, "", "--no-stdin", url)
	r.expectCode(t, exitFailure)
	if r.stdout != "bye\n" || !strings.Contains(r.stderr, "lomond: connection lost") {
		t.Fatalf("stdout %q\nstderr:\n%s", r.stdout, r.stderr)
	}
}

// Invalid UTF-8 in a text message: the client fails the connection with
// 1007 and exits with the protocol-error status.
func TestExitProtocolError(t *testing.T) {
	closes := make(chan closeStatus, 1)
	url := wsServer(t, nil, func(c *websocket.Conn, _ *http.Request, _ <-chan struct{}) {
		if c.Write(context.Background(), websocket.MessageText, []byte{'a', 0xff}) == nil {
			echoLoop(c, closes)
		}
	})
	r := runCLI(t, "", "--no-stdin", url)
	r.expectCode(t, exitProtocol)
	if !strings.Contains(r.stderr, "protocol error") || !strings.Contains(r.stderr, "sent close 1007") {
		t.Fatalf("stderr:\n%s", r.stderr)
	}
	expectClose(t, closes, websocket.StatusInvalidFramePayloadData, "")
}

// --read-limit: a larger message is a protocol error (1009).
func TestExitReadLimit(t *testing.T) {
	url := wsServer(t, nil, func(c *websocket.Conn, _ *http.Request, _ <-chan struct{}) {
		if c.Write(context.Background(), websocket.MessageText, []byte(strings.Repeat("x", 2000))) == nil {
			echoLoop(c, make(chan closeStatus, 1))
		}
	})
	r := runCLI(t, "", "--no-stdin", "--read-limit", "1KiB", url)
	r.expectCode(t, exitProtocol)
	if !strings.Contains(r.stderr, "sent close 1009") || r.stdout != "" {
		t.Fatalf("stdout %q\nstderr:\n%s", r.stdout, r.stderr)
	}
}

// A server that stops reading answers no ping: unresponsive.
func TestExitUnresponsive(t *testing.T) {
	url := wsServer(t, nil, func(_ *websocket.Conn, _ *http.Request, done <-chan struct{}) {
		<-done // never read: pings go unanswered
	})
	r := runCLI(t, "", "--no-stdin", "--ping-interval", "50ms", "--ping-timeout", "200ms", "--close-timeout", "200ms", url)
	r.expectCode(t, exitUnresponsive)
	if !strings.Contains(r.stderr, "unresponsive no pong within 200ms") ||
		!strings.Contains(r.stderr, "lomond: server unresponsive") {
		t.Fatalf("stderr:\n%s", r.stderr)
	}
}

// The server closes with 1000: a normal close, exit 0. With another code:
// exit 7 and the code in the final line.
func TestExitServerClose(t *testing.T) {
	for _, tc := range []struct {
		code websocket.StatusCode
		want int
	}{
		{websocket.StatusNormalClosure, exitOK},
		{websocket.StatusGoingAway, exitServerClose},
		{4000, exitServerClose},
	} {
		url := wsServer(t, nil, func(c *websocket.Conn, _ *http.Request, _ <-chan struct{}) {
			c.Close(tc.code, "server says bye")
		})
		r := runCLI(t, "", "--no-stdin", url)
		r.expectCode(t, tc.want)
		if !strings.Contains(r.stderr, `closing `) || !strings.Contains(r.stderr, `"server says bye"`) {
			t.Fatalf("close %d: stderr:\n%s", tc.code, r.stderr)
		}
		if tc.want == exitServerClose && !strings.Contains(r.stderr, "lomond: closed by the server: ") {
			t.Fatalf("close %d: final line:\n%s", tc.code, r.stderr)
		}
	}
}

// The server never answers the client's close: --close-timeout bounds it.
func TestExitCloseTimeout(t *testing.T) {
	url := wsServer(t, nil, func(_ *websocket.Conn, _ *http.Request, done <-chan struct{}) {
		<-done
	})
	start := time.Now()
	r := runCLI(t, "", "--close-timeout", "300ms", url)
	r.expectCode(t, exitFailure)
	if !strings.Contains(r.stderr, "no close reply from the server within 300ms") {
		t.Fatalf("stderr:\n%s", r.stderr)
	}
	if el := time.Since(start); el > 10*time.Second {
		t.Fatalf("took %v", el)
	}
}

// --persist with --max-attempts gives up with the last session's status.
func TestExitPersistMaxAttempts(t *testing.T) {
	r := runCLI(t, "", "--persist", "--max-attempts", "3", "--backoff-min", "1ms", "--backoff-max", "5ms", "--no-stdin",
		"ws://"+closedPort(t)+"/")
	r.expectCode(t, exitConnect)
	if n := strings.Count(r.stderr, "connect failed"); n != 3 {
		t.Fatalf("%d attempts, want 3:\n%s", n, r.stderr)
	}
	if !strings.Contains(r.stderr, "lomond: gave up after 3 attempts: cannot connect: ") {
		t.Fatalf("final line:\n%s", r.stderr)
	}
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
