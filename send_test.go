package lomond

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/lomond-go/lomond/events"
	"github.com/lomond-go/lomond/internal/testkit"
	"github.com/lomond-go/lomond/internal/wstest"
)

// Tests of send.go: sends before and outside a session, argument
// validation, and sends bounded by a context.

// TestSendContextWaitingBehindBlockedSend: a SendTextContext that waits
// behind another send blocked on a server that does not read returns ctx's
// error when ctx ends, writes nothing, and leaves the connection up: once
// the server reads again, the other send completes and the session goes on.
func TestSendContextWaitingBehindBlockedSend(t *testing.T) {
	resume := make(chan struct{})
	got := make(chan string, 4)
	srv := wstest.NewServer(t, func(c *wstest.Conn) {
		if !testkit.HandshakeThenAwait(c, resume) {
			return
		}
		testkit.ServeMessages(c, func(op byte, p []byte) {
			switch op {
			case wstest.OpBinary:
				got <- "binary"
			case wstest.OpText:
				got <- string(p)
			}
		})
	})
	ws := mustNew(t, srv.URL(), WithoutProxy(), WithPollInterval(0), WithPingRate(0))
	runDone := make(chan error, 1)
	ready := make(chan struct{})
	go func() {
		runDone <- ws.Run(context.Background(), HandlerFunc(func(_ *WebSocket, ev events.Event) {
			if ev.Name() == events.NameReady {
				close(ready)
			}
		}))
	}()
	testkit.Recv(t, ready, "Ready")
	bigDone := make(chan error, 1)
	go func() { bigDone <- ws.SendBinary(make([]byte, 32<<20)) }()
	testkit.Eventually(t, "the big send holds the send lock", func() bool {
		s := ws.sess.Load()
		return s != nil && s.w.locked()
	})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := ws.SendTextContext(ctx, "small")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("SendTextContext = %v, want context.DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("SendTextContext returned after %v, want about 200ms", d)
	}
	close(resume)
	// 32 MiB through a test server that unmasks in Go: generous under -race
	// on a loaded machine.
	var bigErr error
	select {
	case bigErr = <-bigDone:
	case <-time.After(60 * time.Second):
		t.Fatal("timed out waiting for the big send")
	}
	if err := bigErr; err != nil {
		t.Fatalf("the big send = %v, want it written once the server reads", err)
	}
	if m := testkit.Recv(t, got, "the big message"); m != "binary" {
		t.Fatalf("server got %q first, want the big binary message", m)
	}
	if err := ws.SendText("after"); err != nil {
		t.Fatalf("SendText after = %v, want the session still up", err)
	}
	if m := testkit.Recv(t, got, "the next message"); m != "after" {
		t.Errorf("server got %q, want \"after\" (and never \"small\")", m)
	}
	_ = ws.Close(StatusNormal, "bye")
	if err := testkit.Recv(t, runDone, "Run's return"); err != nil {
		t.Errorf("Run = %v", err)
	}
}

func newIdle(t *testing.T) *WebSocket {
	t.Helper()
	ws, err := New("ws://127.0.0.1:1/")
	if err != nil {
		t.Fatal(err)
	}
	return ws
}

// TestSendBeforeRun checks every send on a WebSocket that never ran.
func TestSendBeforeRun(t *testing.T) {
	ws := newIdle(t)
	sends := []struct {
		name string
		call func() error
	}{
		{"SendText", func() error { return ws.SendText("hello") }},
		{"SendText empty", func() error { return ws.SendText("") }},
		{"SendBinary", func() error { return ws.SendBinary([]byte{1, 2, 3}) }},
		{"SendBinary nil", func() error { return ws.SendBinary(nil) }},
		{"SendJSON", func() error { return ws.SendJSON(map[string]int{"a": 1}) }},
		{"SendPing", func() error { return ws.SendPing([]byte("p")) }},
		{"SendPing nil", func() error { return ws.SendPing(nil) }},
		{"SendPing 125", func() error { return ws.SendPing(make([]byte, 125)) }},
		{"SendPong", func() error { return ws.SendPong([]byte("p")) }},
		{"Close", func() error { return ws.Close(StatusNormal, "goodbye") }},
		{"Close 4999", func() error { return ws.Close(4999, "") }},
		{"Close 123-byte reason", func() error { return ws.Close(StatusNormal, strings.Repeat("r", 123)) }},
	}
	for _, s := range sends {
		if err := s.call(); !errors.Is(err, ErrNotConnected) {
			t.Errorf("%s before Run = %v, want ErrNotConnected", s.name, err)
		}
	}
	if ws.State() != StateIdle {
		t.Errorf("State = %v, want idle", ws.State())
	}
	if ws.Subprotocol() != "" {
		t.Errorf("Subprotocol = %q, want empty", ws.Subprotocol())
	}
}

func TestCloseValidation(t *testing.T) {
	ws := newIdle(t)
	for _, code := range []int{-1, 0, 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000, 65535} {
		if err := ws.Close(code, ""); !errors.Is(err, ErrInvalidCloseCode) {
			t.Errorf("Close(%d) = %v, want ErrInvalidCloseCode", code, err)
		}
	}
	// Valid codes pass validation and fail only for want of a session.
	for _, code := range []int{1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 4000, 4999} {
		if err := ws.Close(code, "bye"); !errors.Is(err, ErrNotConnected) {
			t.Errorf("Close(%d) = %v, want ErrNotConnected", code, err)
		}
	}
	if err := ws.Close(StatusNormal, strings.Repeat("r", 124)); !errors.Is(err, ErrReasonTooLong) {
		t.Errorf("Close with a 124-byte reason = %v, want ErrReasonTooLong", err)
	}
	// 62 two-byte runes: 124 bytes, though only 62 characters.
	if err := ws.Close(StatusNormal, strings.Repeat("é", 62)); !errors.Is(err, ErrReasonTooLong) {
		t.Errorf("Close with a 124-byte UTF-8 reason = %v, want ErrReasonTooLong", err)
	}
	for _, reason := range []string{"\xff", "ok\xc3", "\xed\xa0\x80"} {
		if err := ws.Close(StatusNormal, reason); !errors.Is(err, ErrInvalidUTF8) {
			t.Errorf("Close reason %q = %v, want ErrInvalidUTF8", reason, err)
		}
	}
	// The code is checked first.
	if err := ws.Close(1005, "\xff"); !errors.Is(err, ErrInvalidCloseCode) {
		t.Errorf("Close(1005, invalid) = %v, want ErrInvalidCloseCode", err)
	}
}

func TestSendValidation(t *testing.T) {
	ws := newIdle(t)
	for _, text := range []string{"\xff", "abc\xc3", "\xed\xa0\x80", "\xc0\xaf"} {
		if err := ws.SendText(text); !errors.Is(err, ErrInvalidUTF8) {
			t.Errorf("SendText(%q) = %v, want ErrInvalidUTF8", text, err)
		}
	}
	for _, n := range []int{126, 1000} {
		if err := ws.SendPing(make([]byte, n)); !errors.Is(err, ErrControlTooLarge) {
			t.Errorf("SendPing(%d bytes) = %v, want ErrControlTooLarge", n, err)
		}
		if err := ws.SendPong(make([]byte, n)); !errors.Is(err, ErrControlTooLarge) {
			t.Errorf("SendPong(%d bytes) = %v, want ErrControlTooLarge", n, err)
		}
	}
	for _, v := range []any{make(chan int), func() {}, complex(1, 2)} {
		err := ws.SendJSON(v)
		if err == nil || errors.Is(err, ErrNotConnected) {
			t.Errorf("SendJSON(%T) = %v, want an encoding error", v, err)
		}
	}
	// nil encodes as JSON null: only the missing session is an error.
	if err := ws.SendJSON(nil); !errors.Is(err, ErrNotConnected) {
		t.Errorf("SendJSON(nil) = %v, want ErrNotConnected", err)
	}
}

// TestSendContextArguments: the ctx forms check their arguments and send
// normally with a live context.
func TestSendContextArguments(t *testing.T) {
	testkit.NoLeak(t)
	got := make(chan arrival, 16)
	srv := arrivalServer(t, false, got)
	ws := newQuietWS(t, srv.URL())
	var nilCtx context.Context
	if err := ws.SendTextContext(nilCtx, "x"); !errors.Is(err, ErrInvalidOption) {
		t.Errorf("SendTextContext(nil) = %v, want ErrInvalidOption", err)
	}
	if err := ws.SendBinaryContext(nilCtx, nil); !errors.Is(err, ErrInvalidOption) {
		t.Errorf("SendBinaryContext(nil) = %v, want ErrInvalidOption", err)
	}
	if err := ws.SendTextContext(context.Background(), "\xff"); !errors.Is(err, ErrInvalidUTF8) {
		t.Errorf("SendTextContext(invalid UTF-8) = %v, want ErrInvalidUTF8", err)
	}
	if err := ws.SendTextContext(context.Background(), "x"); !errors.Is(err, ErrNotConnected) {
		t.Errorf("SendTextContext before Run = %v, want ErrNotConnected", err)
	}
	done, ready := startRun(ws)
	testkit.Recv(t, ready, "Ready")
	ended, cancel := context.WithCancel(context.Background())
	cancel()
	if err := ws.SendTextContext(ended, "never"); !errors.Is(err, context.Canceled) {
		t.Errorf("SendTextContext with an ended ctx = %v, want context.Canceled", err)
	}
	live, cancelLive := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancelLive()
	if err := ws.SendTextContext(live, "text"); err != nil {
		t.Errorf("SendTextContext = %v", err)
	}
	if err := ws.SendBinaryContext(live, []byte{1, 2}); err != nil {
		t.Errorf("SendBinaryContext = %v", err)
	}
	if a := testkit.Recv(t, got, "the text"); a.op != wstest.OpText || a.data != "text" {
		t.Errorf("server got %#x %q, want the text (nothing of the ended ctx's send)", a.op, a.data)
	}
	if a := testkit.Recv(t, got, "the binary"); a.op != wstest.OpBinary || a.data != "\x01\x02" {
		t.Errorf("server got %#x %q, want the binary", a.op, a.data)
	}
	_ = ws.Close(StatusNormal, "bye")
	if err := testkit.Recv(t, done, "Run's return"); err != nil {
		t.Errorf("Run = %v", err)
	}
}

// TestSendContextBlockedWrite: a server that stops reading blocks a large
// send. Its context ending does not cut the message (a frame cut short
// could not be taken back): the write goes on until it makes no progress
// for the stall timeout (the ping timeout), and then the session ends as
// Unresponsive and the send fails saying so.
func TestSendContextBlockedWrite(t *testing.T) {
	testkit.NoLeak(t)
	srv := wstest.NewServer(t, func(c *wstest.Conn) {
		if _, err := c.Handshake(); err == nil {
			<-c.Done() // never reads
		}
	})
	ws := newQuietWS(t, srv.URL(), WithPingTimeout(500*time.Millisecond))
	var disc *events.Disconnected
	done := make(chan error, 1)
	ready := make(chan struct{})
	go func() {
		done <- ws.Run(context.Background(), HandlerFunc(func(_ *WebSocket, ev events.Event) {
			switch e := ev.(type) {
			case *events.Ready:
				close(ready)
			case *events.Disconnected:
				disc = e
			}
		}))
	}()
	testkit.Recv(t, ready, "Ready")
	big := make([]byte, 16<<20)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := ws.SendBinaryContext(ctx, big)
	if !errors.Is(err, ErrUnresponsive) {
		t.Errorf("SendBinaryContext blocked = %v, want an error wrapping ErrUnresponsive", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("SendBinaryContext returned after %v, want about the 500ms stall timeout (plus masking 16 MiB)", d)
	}
	if err := testkit.Recv(t, done, "Run's return"); !errors.Is(err, ErrUnresponsive) {
		t.Errorf("Run = %v, want ErrUnresponsive", err)
	}
	if disc == nil || disc.Graceful || disc.Reason != "ping timeout" {
		t.Errorf("Disconnected = %v, want a non-graceful end for the ping timeout", disc)
	}
}
