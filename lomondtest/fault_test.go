package lomondtest_test

import (
	"errors"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lomond-go/lomond"
	"github.com/lomond-go/lomond/events"
	"github.com/lomond-go/lomond/lomondtest"
	"github.com/lomond-go/lomond/lomondtest/fault"
)

// lastDisconnected returns the session's Disconnected event.
func lastDisconnected(t *testing.T, rec *lomondtest.Recorder) *events.Disconnected {
	t.Helper()
	evs := rec.Events()
	d, ok := evs[len(evs)-1].(*events.Disconnected)
	if !ok {
		t.Fatalf("the last event is %v, want Disconnected", evs[len(evs)-1])
	}
	return d
}

func TestRejectStatuses(t *testing.T) {
	srv := lomondtest.NewServer(t,
		fault.Reject(http.StatusUnauthorized, "WWW-Authenticate", `Bearer realm="feed"`),
		fault.Reject(http.StatusForbidden),
		fault.Reject(http.StatusServiceUnavailable, "Retry-After", "7"),
	)
	for _, want := range []int{401, 403, 503} {
		ws := srv.Client()
		rec := lomondtest.Run(t, ws, nil)
		rec.AssertSequence(t, "connecting connected rejected disconnected")
		rej := rec.Events()[2].(*events.Rejected)
		if rej.StatusCode != want {
			t.Errorf("status %d, want %d", rej.StatusCode, want)
		}
		var re *lomond.RejectedError
		if !errors.As(ws.Err(), &re) || re.StatusCode != want {
			t.Errorf("ws.Err() = %v, want a RejectedError with %d", ws.Err(), want)
		}
		switch want {
		case 401:
			if got := rej.Header.Get("WWW-Authenticate"); got != `Bearer realm="feed"` {
				t.Errorf("WWW-Authenticate = %q", got)
			}
		case 503:
			if !rej.HasRetryAfter || rej.RetryAfter != 7*time.Second {
				t.Errorf("Retry-After: %v %v, want 7s", rej.HasRetryAfter, rej.RetryAfter)
			}
		}
		if !strings.Contains(string(rej.Body), http.StatusText(want)) {
			t.Errorf("body %q lacks the status text", rej.Body)
		}
	}
}

func TestStallHandshake(t *testing.T) {
	srv := lomondtest.NewServer(t, fault.StallHandshake())
	ws := srv.Client(lomond.WithHandshakeTimeout(100 * time.Millisecond))
	start := time.Now()
	rec := lomondtest.Run(t, ws, nil)
	if d := time.Since(start); d < 90*time.Millisecond {
		t.Errorf("the session ended after %v, before the handshake timeout", d)
	}
	if !errors.Is(ws.Err(), lomond.ErrHandshakeTimeout) {
		t.Errorf("ws.Err() = %v, want ErrHandshakeTimeout; events %v", ws.Err(), rec.Names())
	}
	c := srv.Conn(t, 1)
	c.WaitDone(t) // the server held the connection until the client gave up
	if c.Request().Header.Get("Sec-WebSocket-Key") == "" {
		t.Error("the stalled upgrade request was not recorded")
	}
}

func TestDropBeforeAndAfterTheHandshake(t *testing.T) {
	srv := lomondtest.NewServer(t,
		fault.Drop(),
		lomondtest.Script(lomondtest.SendText("last words"), fault.Drop()),
	)
	ws := srv.Client()
	rec := lomondtest.Run(t, ws, nil)
	rec.AssertSequence(t, "connecting connected disconnected")
	if d := lastDisconnected(t, rec); d.Graceful || ws.Err() == nil {
		t.Errorf("a connection dropped before the handshake: %v, Err() = %v", d, ws.Err())
	}

	rec = lomondtest.Run(t, srv.Client(), nil)
	rec.AssertSequence(t, "connecting connected ready text disconnected")
	if d := lastDisconnected(t, rec); d.Graceful {
		t.Errorf("Disconnected after a drop is graceful: %v", d)
	}
	if _, _, ok := srv.Conn(t, 2).ClientClose(); ok {
		t.Error("the client sent a close frame on a dropped connection")
	}
}

func TestResetSendsRST(t *testing.T) {
	srv := lomondtest.NewServer(t, lomondtest.Script(lomondtest.SendText("then"), fault.Reset()))
	ws := srv.Client()
	rec := lomondtest.Run(t, ws, nil)
	rec.AssertSequence(t, "connecting connected ready text disconnected")
	d := lastDisconnected(t, rec)
	if d.Graceful || !errors.Is(d.Err, syscall.ECONNRESET) {
		t.Errorf("Disconnected = %v (err %v), want a connection reset", d, d.Err)
	}
}

func TestIgnorePingsMakesTheClientUnresponsive(t *testing.T) {
	srv := lomondtest.NewServer(t, lomondtest.Script(fault.IgnorePings()), lomondtest.Script())
	opts := []lomond.Option{lomond.WithPingRate(20 * time.Millisecond), lomond.WithPingTimeout(100 * time.Millisecond)}
	ws := srv.Client(opts...)
	rec := lomondtest.Run(t, ws, nil)
	rec.AssertSequence(t, "connecting connected ready unresponsive disconnected")
	if !errors.Is(ws.Err(), lomond.ErrUnresponsive) {
		t.Errorf("ws.Err() = %v, want ErrUnresponsive", ws.Err())
	}
	if n := len(srv.Conn(t, 1).Pings()); n == 0 {
		t.Error("the server recorded no ping")
	}

	// The same client against a server that answers: pongs come back.
	pongs := 0
	rec = lomondtest.Run(t, srv.Client(opts...), lomond.HandlerFunc(func(ws *lomond.WebSocket, ev events.Event) {
		if ev.Name() == "pong" {
			if pongs++; pongs == 3 {
				_ = ws.Close(1000, "")
			}
		}
	}))
	rec.AssertSequence(t, "connecting connected ready pong pong pong closed disconnected")
	if n := len(srv.Conn(t, 2).Pings()); n < 3 {
		t.Errorf("the server recorded %d pings, want at least 3", n)
	}
}

func TestTrickleDeliversWholeMessages(t *testing.T) {
	const pause = time.Millisecond
	msg := "slowly, byte by byte"
	srv := lomondtest.NewServer(t,
		lomondtest.Script(fault.Trickle(pause), lomondtest.SendText(msg)), // the 101 trickled too
		lomondtest.Script(lomondtest.Accept(), fault.Trickle(pause), lomondtest.SendBinary([]byte(msg))),
	)
	for i := 1; i <= 2; i++ {
		start := time.Now()
		rec := lomondtest.Run(t, srv.Client(), lomond.HandlerFunc(func(ws *lomond.WebSocket, ev events.Event) {
			switch ev := ev.(type) {
			case *events.Text:
				if ev.Text == msg {
					_ = ws.Close(1000, "")
				}
			case *events.Binary:
				if string(ev.Data) == msg {
					_ = ws.Close(1000, "")
				}
			}
		}))
		rec.AssertSequence(t, "connecting connected ready (text|binary) closed disconnected")
		// The frame alone is len(msg)+2 bytes, each after a pause.
		if d := time.Since(start); d < time.Duration(len(msg))*pause {
			t.Errorf("connection %d took %v: the bytes were not trickled", i, d)
		}
	}
}

func TestProtocolViolation(t *testing.T) {
	srv := lomondtest.NewServer(t,
		fault.ProtocolViolation(),
		lomondtest.Script(lomondtest.Accept(), fault.SendRaw([]byte{0x81, 0x02, 0xc3, 0x28})), // text, not UTF-8
	)
	for _, want := range []int{lomond.StatusProtocolError, lomond.StatusInvalidPayload} {
		ws := srv.Client()
		rec := lomondtest.Run(t, ws, nil)
		rec.AssertSequence(t, "connecting connected ready protocol_error disconnected")
		if pe := rec.Events()[3].(*events.ProtocolError); pe.Code != want {
			t.Errorf("ProtocolError code %d, want %d", pe.Code, want)
		}
		c := srv.Conns()[len(srv.Conns())-1]
		if code, _, ok := c.ClientClose(); !ok || code != want {
			t.Errorf("the client closed with %d (%v), want %d", code, ok, want)
		}
	}
}

func TestSendRawBeforeTheHandshake(t *testing.T) {
	srv := lomondtest.NewServer(t, fault.SendRaw([]byte("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")))
	rec := lomondtest.Run(t, srv.Client(), nil)
	rec.AssertSequence(t, "connecting connected rejected disconnected")
	if rej := rec.Events()[2].(*events.Rejected); rej.StatusCode != 200 {
		t.Errorf("Rejected status %d, want 200", rej.StatusCode)
	}
}

func TestFaultArgumentsAreChecked(t *testing.T) {
	ft := newFakeT(t)
	srv := lomondtest.NewServer(ft, fault.Trickle(0))
	lomondtest.Run(t, srv.Client(), nil)
	srv.Close()
	mustContain(t, ft.reported(), "Trickle(0s): the pause must be positive")
}
