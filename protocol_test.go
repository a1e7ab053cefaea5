package lomond

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lomond-go/lomond/events"
	"github.com/lomond-go/lomond/internal/wstest"
)

// This file tests how a session fails when the server breaks the protocol,
// and the opening handshake's outcomes. Helpers are in session_test.go.

// closeSeen is what a server script saw after provoking the client: the
// client's close frame, or the error that ended the read instead.
type closeSeen struct {
	code   int
	reason string
	err    error
}

// raw101 answers req with a valid 101 response followed by extra bytes, all
// in one write.
func raw101(req *http.Request, extra []byte) []byte {
	resp := "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Accept: " + wstest.AcceptKey(req.Header.Get("Sec-WebSocket-Key")) + "\r\n\r\n"
	return append([]byte(resp), extra...)
}

// TestProtocolViolations: for each way a server can break the protocol, the
// client fails the connection with the right close code: ProtocolError,
// then Disconnected (not graceful), and Run returns a *ProtocolError.
func TestProtocolViolations(t *testing.T) {
	cases := []struct {
		name string
		bad  []byte
		// withHandshake sends bad right after the 101 response, in the same
		// write; otherwise after a normal handshake.
		withHandshake bool
		code          int
	}{
		{name: "masked server frame", code: StatusProtocolError,
			bad: wstest.Frame{Fin: true, Opcode: wstest.OpText, Masked: true, MaskKey: [4]byte{1, 2, 3, 4}, Payload: []byte("hi")}.Encode()},
		{name: "masked frame after a good one", code: StatusProtocolError,
			bad: wstest.EncodeAll(wstest.Text("fine"),
				wstest.Frame{Fin: true, Opcode: wstest.OpBinary, Masked: true, MaskKey: [4]byte{9, 9, 9, 9}, Payload: []byte("masked")})},
		{name: "reserved opcode 3", code: StatusProtocolError,
			bad: wstest.Frame{Fin: true, Opcode: 3, Payload: []byte("x")}.Encode()},
		{name: "RSV2 bit", code: StatusProtocolError,
			bad: wstest.Frame{Fin: true, RSV2: true, Opcode: wstest.OpText, Payload: []byte("x")}.Encode()},
		{name: "fragmented ping", code: StatusProtocolError,
			bad: wstest.Frame{Fin: false, Opcode: wstest.OpPing, Payload: []byte("x")}.Encode()},
		{name: "close code 1005 on the wire", code: StatusProtocolError,
			bad: wstest.Close(1005, "").Encode()},
		{name: "1-byte close payload", code: StatusProtocolError,
			bad: wstest.Frame{Fin: true, Opcode: wstest.OpClose, Payload: []byte{3}}.Encode()},
		{name: "continuation without start", code: StatusProtocolError,
			bad: wstest.Frame{Fin: true, Opcode: wstest.OpContinuation, Payload: []byte("x")}.Encode()},
		{name: "junk right after the 101", code: StatusProtocolError, withHandshake: true,
			bad: []byte("JUNK that is not a frame\r\n")},
		{name: "invalid UTF-8 in a text frame", code: StatusInvalidPayload,
			bad: wstest.Text("ok \xff not ok").Encode()},
		{name: "invalid UTF-8 in a later fragment", code: StatusInvalidPayload,
			// The message never ends: the client must fail at once.
			bad: wstest.EncodeAll(
				wstest.Frame{Fin: false, Opcode: wstest.OpText, Payload: []byte("a valid prefix, ")},
				wstest.Frame{Fin: false, Opcode: wstest.OpContinuation, Payload: []byte("then \xc3\x28 bad")})},
		{name: "invalid byte ending a non-final fragment", code: StatusInvalidPayload,
			// 0xFF can never start a code point: no need to wait for more.
			bad: wstest.Frame{Fin: false, Opcode: wstest.OpText, Payload: []byte("abc\xff")}.Encode()},
		{name: "impossible sequence start ending a non-final fragment", code: StatusInvalidPayload,
			// F4 90 starts no valid code point (F4 allows 80-8F next): fail
			// now, not when the rest of the sequence arrives (Autobahn 6.4.2).
			bad: wstest.Frame{Fin: false, Opcode: wstest.OpText, Payload: []byte("abc\xf4\x90")}.Encode()},
		{name: "invalid UTF-8 in a close reason", code: StatusInvalidPayload,
			bad: wstest.Close(1000, "bad \xff reason").Encode()},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			seen := make(chan closeSeen, 1)
			srv, done := scriptServer(t, func(c *wstest.Conn) {
				if tc.withHandshake {
					req, err := c.ReadRequest()
					if err != nil || c.WriteRaw(raw101(req, tc.bad)) != nil {
						t.Errorf("server: handshake: %v", err)
						return
					}
				} else if !srvHandshake(t, c) || c.WriteRaw(tc.bad) != nil {
					return
				}
				code, reason, err := c.ExpectClose()
				seen <- closeSeen{code, reason, err}
				if err == nil {
					_ = c.WriteFrame(wstest.Close(code, "")) // a polite server answers
					srvDrain(t, c)
				}
			})
			ws := newTestWS(t, srv.URL())
			l := &evLog{}
			// A guard: if the client never reacts, the cancel makes it close
			// with 1001, and the checks below fail instead of hanging.
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			start := time.Now()
			err := ws.Run(ctx, l.handler())
			waitScript(t, done)
			if elapsed := time.Since(start); elapsed > 5*time.Second {
				t.Errorf("Run took %v", elapsed)
			}
			var pe *ProtocolError
			if !errors.As(err, &pe) || pe.Code != tc.code {
				t.Fatalf("Run = %v, want *ProtocolError with code %d", err, tc.code)
			}
			want := opening(srv.URL())
			if strings.HasPrefix(tc.name, "masked frame after") {
				want = append(want, `text "fine"`)
			}
			expectLines(t, l, seq(want, []string{
				"protocol_error " + strconv.Itoa(tc.code), "disconnected graceful=false err=true",
			}))
			if ev := lastEvent[*events.ProtocolError](t, l); ev.Err == nil {
				t.Error("ProtocolError.Err is nil")
			}
			if d := lastEvent[*events.Disconnected](t, l); !errors.As(d.Err, &pe) || pe.Code != tc.code {
				t.Errorf("Disconnected.Err = %v, want the *ProtocolError", d.Err)
			}
			var s closeSeen
			select {
			case s = <-seen:
			default:
				t.Fatal("the server script ended before it read a close frame")
			}
			if s.err != nil || s.code != tc.code {
				t.Errorf("server saw close %d %q (err %v), want close %d", s.code, s.reason, s.err, tc.code)
			} else {
				t.Logf("server saw close %d %q", s.code, s.reason)
			}
		})
	}
}

// TestProtocolUTF8SplitCodePoint: a code point split across fragments is
// valid.
func TestProtocolUTF8SplitCodePoint(t *testing.T) {
	srv, done := scriptServer(t, func(c *wstest.Conn) {
		if !srvHandshake(t, c) {
			return
		}
		frames := []wstest.Frame{
			{Fin: false, Opcode: wstest.OpText, Payload: []byte("caf\xc3")},
			{Fin: true, Opcode: wstest.OpContinuation, Payload: []byte("\xa9!")},
			{Fin: false, Opcode: wstest.OpText, Payload: []byte("\xf0\x9f")},
			{Fin: false, Opcode: wstest.OpContinuation, Payload: []byte("\x98")},
			{Fin: true, Opcode: wstest.OpContinuation, Payload: []byte("\x80")},
		}
		for _, f := range frames { // one write each: one read each
			if !srvWrite(t, c, f) {
				return
			}
		}
		if srvWrite(t, c, wstest.Close(1000, "")) && srvExpectClose(t, c, 1000, "") {
			srvExpectEOF(t, c)
		}
	})
	ws := newTestWS(t, srv.URL())
	l := &evLog{}
	err := ws.Run(context.Background(), l.handler())
	waitScript(t, done)
	if CloseStatus(err) != 1000 {
		t.Fatalf("Run = %v, want *CloseError 1000", err)
	}
	expectLines(t, l, seq(opening(srv.URL()), []string{
		`text "café!"`, `text "😀"`,
		`closing 1000 ""`, `closed 1000 ""`, "disconnected graceful=true err=false",
	}))
}

// TestProtocolReadLimit: a message at the limit is delivered; one byte more
// fails the connection with 1009.
func TestProtocolReadLimit(t *testing.T) {
	const limit = 1024
	seen := make(chan closeSeen, 1)
	srv, done := scriptServer(t, func(c *wstest.Conn) {
		if !srvHandshake(t, c) || !srvWrite(t, c, wstest.Text(strings.Repeat("a", limit))) ||
			!srvWrite(t, c, wstest.Text(strings.Repeat("b", 2*limit))) {
			return
		}
		code, reason, err := c.ExpectClose()
		seen <- closeSeen{code, reason, err}
	})
	ws := newTestWS(t, srv.URL(), WithReadLimit(limit))
	l := &evLog{}
	err := ws.Run(context.Background(), l.handler())
	waitScript(t, done)
	var pe *ProtocolError
	if !errors.As(err, &pe) || pe.Code != StatusMessageTooBig {
		t.Fatalf("Run = %v, want *ProtocolError with code 1009", err)
	}
	expectLines(t, l, seq(opening(srv.URL()), []string{
		"text <1024 bytes>", "protocol_error 1009", "disconnected graceful=false err=true",
	}))
	select {
	case s := <-seen:
		if s.err != nil || s.code != StatusMessageTooBig {
			t.Errorf("server saw close %d %q (err %v), want 1009", s.code, s.reason, s.err)
		}
	default:
		t.Error("the server script ended before it read a close frame")
	}
}

// rejectCase runs a session against a server that answers the upgrade with
// respond and returns the event log, Run's error and the Rejected event.
func rejectCase(t *testing.T, respond func(c *wstest.Conn, req *http.Request), opts ...Option) (*evLog, error, *events.Rejected) {
	t.Helper()
	srv, done := scriptServer(t, func(c *wstest.Conn) {
		req, err := c.ReadRequest()
		if err != nil {
			t.Errorf("server: %v", err)
			return
		}
		respond(c, req)
		srvDrain(t, c)
	})
	ws := newTestWS(t, srv.URL(), opts...)
	l := &evLog{}
	start := time.Now()
	err := ws.Run(context.Background(), l.handler())
	elapsed := time.Since(start)
	waitScript(t, done)
	// The server keeps the connection open: the client must not wait on it.
	if elapsed > 2*time.Second {
		t.Errorf("Run took %v to report the rejection, want it at once", elapsed)
	}
	rej := lastEvent[*events.Rejected](t, l)
	expectLines(t, l, seq(opening(srv.URL())[:2], []string{
		"rejected " + strconv.Itoa(rej.StatusCode), "disconnected graceful=true err=false",
	}))
	var re *RejectedError
	if !errors.As(err, &re) {
		t.Fatalf("Run = %v, want *RejectedError", err)
	}
	if re.StatusCode != rej.StatusCode || re.RetryAfter != rej.RetryAfter || re.HasRetryAfter != rej.HasRetryAfter {
		t.Errorf("RejectedError %+v does not match the Rejected event %+v", re, rej)
	}
	if srv.Conns() != 1 {
		t.Errorf("server saw %d connections, want 1", srv.Conns())
	}
	return l, err, rej
}

// TestHandshakeRejected covers non-101 answers.
func TestHandshakeRejected(t *testing.T) {
	t.Run("403 with Retry-After seconds", func(t *testing.T) {
		_, _, rej := rejectCase(t, func(c *wstest.Conn, _ *http.Request) {
			_ = c.Reject(http.StatusForbidden, http.Header{"Retry-After": {"7"}}, "go away")
		})
		if rej.StatusCode != 403 || rej.Status != "403 Forbidden" {
			t.Errorf("Rejected status = %d %q", rej.StatusCode, rej.Status)
		}
		if !rej.HasRetryAfter || rej.RetryAfter != 7*time.Second {
			t.Errorf("Rejected RetryAfter = %v (has %v), want 7s", rej.RetryAfter, rej.HasRetryAfter)
		}
		if string(rej.Body) != "go away" {
			t.Errorf("Rejected Body = %q, want %q", rej.Body, "go away")
		}
		if rej.Reason == "" || rej.Err == nil {
			t.Errorf("Rejected Reason %q, Err %v: want both", rej.Reason, rej.Err)
		}
	})
	t.Run("503 with Retry-After date", func(t *testing.T) {
		date := time.Now().Add(90 * time.Second).UTC().Format(http.TimeFormat)
		_, _, rej := rejectCase(t, func(c *wstest.Conn, _ *http.Request) {
			_ = c.Reject(http.StatusServiceUnavailable, http.Header{"Retry-After": {date}}, "")
		})
		if rej.StatusCode != 503 {
			t.Errorf("Rejected StatusCode = %d, want 503", rej.StatusCode)
		}
		if !rej.HasRetryAfter || rej.RetryAfter < 80*time.Second || rej.RetryAfter > 91*time.Second {
			t.Errorf("Rejected RetryAfter = %v (has %v), want about 90s", rej.RetryAfter, rej.HasRetryAfter)
		}
	})
	t.Run("302 redirect is not followed", func(t *testing.T) {
		const loc = "ws://127.0.0.1:1/elsewhere"
		_, _, rej := rejectCase(t, func(c *wstest.Conn, _ *http.Request) {
			_ = c.Reject(http.StatusFound, http.Header{"Location": {loc}}, "")
		})
		if rej.StatusCode != 302 || rej.Header.Get("Location") != loc {
			t.Errorf("Rejected = %d Location %q, want 302 %q", rej.StatusCode, rej.Header.Get("Location"), loc)
		}
		if rej.HasRetryAfter {
			t.Error("Rejected HasRetryAfter without a Retry-After header")
		}
	})
}

// TestHandshakeBadUpgrade covers 101 answers the client must refuse.
func TestHandshakeBadUpgrade(t *testing.T) {
	cases := []struct {
		name  string
		extra http.Header
	}{
		{"wrong Sec-WebSocket-Accept", http.Header{"Sec-WebSocket-Accept": {"d3JvbmcgYWNjZXB0IGtleQ=="}}},
		{"missing Sec-WebSocket-Accept", http.Header{"Sec-WebSocket-Accept": nil}},
		{"unrequested subprotocol", http.Header{"Sec-WebSocket-Protocol": {"chat"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, _, rej := rejectCase(t, func(c *wstest.Conn, req *http.Request) {
				_ = c.Accept(req, tc.extra)
			})
			if rej.StatusCode != http.StatusSwitchingProtocols || rej.Reason == "" || rej.Err == nil {
				t.Errorf("Rejected = %d, reason %q, err %v: want 101 with a reason and an error",
					rej.StatusCode, rej.Reason, rej.Err)
			}
			t.Logf("reason: %s", rej.Reason)
		})
	}
}

// TestHandshakeSubprotocol: the server chooses one of the offered
// subprotocols.
func TestHandshakeSubprotocol(t *testing.T) {
	offered := make(chan string, 1)
	srv, done := scriptServer(t, func(c *wstest.Conn) {
		req, err := c.ReadRequest()
		if err != nil {
			t.Errorf("server: %v", err)
			return
		}
		var offers []string
		for _, v := range req.Header.Values("Sec-WebSocket-Protocol") {
			for _, p := range strings.Split(v, ",") {
				offers = append(offers, strings.TrimSpace(p))
			}
		}
		offered <- strings.Join(offers, " ")
		if c.Accept(req, http.Header{"Sec-WebSocket-Protocol": {"v2.beta"}}) == nil &&
			srvExpectClose(t, c, 1000, "") && srvWrite(t, c, wstest.Close(1000, "")) {
			srvExpectEOF(t, c)
		}
	})
	ws := newTestWS(t, srv.URL(), WithProtocols("v1.alpha", "v2.beta"))
	l := &evLog{hook: func(ws *WebSocket, ev events.Event) {
		if _, ok := ev.(*events.Ready); ok {
			if p := ws.Subprotocol(); p != "v2.beta" {
				t.Errorf("Subprotocol() = %q, want v2.beta", p)
			}
			if err := ws.Close(1000, ""); err != nil {
				t.Errorf("Close: %v", err)
			}
		}
	}}
	err := ws.Run(context.Background(), l.handler())
	waitScript(t, done)
	if err != nil {
		t.Fatalf("Run = %v, want nil", err)
	}
	url := srv.URL()
	expectLines(t, l, []string{
		"connecting " + url, "connected " + url + ` proxy=""`,
		`ready 101 protocol="v2.beta" extensions=[]`, "poll",
		`closed 1000 ""`, "disconnected graceful=true err=false",
	})
	select {
	case got := <-offered:
		if got != "v1.alpha v2.beta" {
			t.Errorf("server got the offers %q, want v1.alpha then v2.beta", got)
		}
	default:
		t.Error("the server script ended before it read the request")
	}
}

// TestHandshakeTimeout: a server that never answers the upgrade request.
func TestHandshakeTimeout(t *testing.T) {
	const timeout = 300 * time.Millisecond
	srv, done := scriptServer(t, func(c *wstest.Conn) {
		if _, err := c.ReadRequest(); err != nil {
			t.Errorf("server: %v", err)
			return
		}
		srvDrain(t, c) // never answer
	})
	ws := newTestWS(t, srv.URL(), WithHandshakeTimeout(timeout))
	l := &evLog{}
	start := time.Now()
	err := ws.Run(context.Background(), l.handler())
	elapsed := time.Since(start)
	waitScript(t, done)
	if !errors.Is(err, ErrHandshakeTimeout) {
		t.Fatalf("Run = %v, want an error wrapping ErrHandshakeTimeout", err)
	}
	if elapsed < timeout || elapsed > timeout+5*time.Second {
		t.Errorf("Run took %v, want about %v", elapsed, timeout)
	}
	expectLines(t, l, seq(opening(srv.URL())[:2], []string{"disconnected graceful=false err=true"}))
	if d := lastEvent[*events.Disconnected](t, l); !errors.Is(d.Err, ErrHandshakeTimeout) {
		t.Errorf("Disconnected.Err = %v, want it to wrap ErrHandshakeTimeout", d.Err)
	}
}

// TestHandshakeFramesWithResponse: frames that arrive in the same segment
// as the 101 response are not lost.
func TestHandshakeFramesWithResponse(t *testing.T) {
	srv, done := scriptServer(t, func(c *wstest.Conn) {
		req, err := c.ReadRequest()
		if err != nil {
			t.Errorf("server: %v", err)
			return
		}
		frames := wstest.EncodeAll(wstest.Text("early"), wstest.Binary([]byte("bird")), wstest.Close(1000, "so long"))
		if c.WriteRaw(raw101(req, frames)) == nil && srvExpectClose(t, c, 1000, "so long") {
			srvExpectEOF(t, c)
		}
	})
	ws := newTestWS(t, srv.URL())
	l := &evLog{}
	err := ws.Run(context.Background(), l.handler())
	waitScript(t, done)
	if CloseStatus(err) != 1000 {
		t.Fatalf("Run = %v, want *CloseError 1000", err)
	}
	expectLines(t, l, seq(opening(srv.URL()), []string{
		`text "early"`, `binary "bird"`,
		`closing 1000 "so long"`, `closed 1000 "so long"`, "disconnected graceful=true err=false",
	}))
}
