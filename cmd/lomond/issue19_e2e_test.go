package main

import (
	"strings"
	"testing"

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
