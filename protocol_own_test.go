package lomond

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/lomond-go/lomond/events"
	"github.com/lomond-go/lomond/internal/wstest"
)

// Regression tests for the defects of the engine-based client (issue 7):
// each failed before the dispatcher owned the protocol.

// TestCutOffMessageIsNeverDelivered: a connection that ends inside a frame
// is a lost connection, never a (shortened) message.
func TestCutOffMessageIsNeverDelivered(t *testing.T) {
	hdr100 := []byte{0x81, 100} // text, FIN, 100 bytes announced
	cases := map[string][]byte{
		"16 of 100 payload bytes": append(append([]byte(nil), hdr100...), bytes.Repeat([]byte("a"), 16)...),
		"header only":             hdr100,
		"half a header":           {0x81, 126, 0x01},
	}
	for name, cut := range cases {
		t.Run(name, func(t *testing.T) {
			srv, done := scriptServer(t, func(c *wstest.Conn) {
				if srvHandshake(t, c) && srvWrite(t, c, wstest.Text("whole")) {
					_ = c.WriteRaw(cut)
				}
				// The script returns: the server closes TCP (FIN).
			})
			ws := newTestWS(t, srv.URL())
			l := &evLog{}
			err := ws.Run(context.Background(), l.handler())
			waitScript(t, done)
			if !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Errorf("Run = %v, want an error wrapping io.ErrUnexpectedEOF", err)
			}
			expectLines(t, l, seq(opening(srv.URL()), []string{`text "whole"`, "disconnected graceful=false err=true"}))
			if d := lastEvent[*events.Disconnected](t, l); d.Reason != "connection lost" {
				t.Errorf("Disconnected.Reason = %q, want %q", d.Reason, "connection lost")
			}
		})
	}
}

// rfc7692Hello is the payload of RFC 7692 section 7.2.3.4: "Hello" in a
// DEFLATE block with BFINAL set, then an empty block's header and padding.
var rfc7692Hello = []byte{0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00}

// deflateAccept answers a permessage-deflate offer with params.
func deflateAccept(t *testing.T, c *wstest.Conn, params string) bool {
	req, err := c.ReadRequest()
	if err != nil {
		t.Errorf("server: %v", err)
		return false
	}
	if !strings.Contains(req.Header.Get("Sec-WebSocket-Extensions"), "permessage-deflate") {
		t.Errorf("server: no permessage-deflate offer in %q", req.Header.Get("Sec-WebSocket-Extensions"))
	}
	return c.Accept(req, http.Header{"Sec-WebSocket-Extensions": {"permessage-deflate" + params}}) == nil
}

// TestRFC7692FinalBlockMessages: the RFC's own example payload works sent
// twice, with and without context takeover, and a final block that ends
// before the message's last frame is not the end of the message.
func TestRFC7692FinalBlockMessages(t *testing.T) {
	for _, params := range []string{"", "; server_no_context_takeover"} {
		t.Run("params="+params, func(t *testing.T) {
			srv, done := scriptServer(t, func(c *wstest.Conn) {
				if !deflateAccept(t, c, params) {
					return
				}
				srvWrite(t, c,
					wstest.Frame{Fin: true, RSV1: true, Opcode: wstest.OpText, Payload: rfc7692Hello},
					wstest.Frame{Fin: true, RSV1: true, Opcode: wstest.OpText, Payload: rfc7692Hello},
					// The final block in the first frame, padding in the last.
					wstest.Frame{Fin: false, RSV1: true, Opcode: wstest.OpText, Payload: rfc7692Hello[:7]},
					wstest.Frame{Fin: true, Opcode: wstest.OpContinuation, Payload: rfc7692Hello[7:]},
					wstest.Text("plain"),
					wstest.Close(1000, "done"))
				srvExpectClose(t, c, 1000, "done")
			})
			ws := newTestWS(t, srv.URL(), WithCompression(CompressionContextTakeover))
			l := &evLog{}
			err := ws.Run(context.Background(), l.handler())
			waitScript(t, done)
			if CloseStatus(err) != 1000 {
				t.Errorf("Run = %v, want the server's close 1000", err)
			}
			want := opening(srv.URL())
			want[2] = `ready 101 protocol="" extensions=["permessage-deflate"]`
			expectLines(t, l, seq(want, []string{`text "Hello"`, `text "Hello"`, `text "Hello"`, `text "plain"`,
				`closing 1000 "done"`, `closed 1000 "done"`, "disconnected graceful=true err=false"}))
		})
	}
}

// TestBacklogIsNoFalseUnresponsive: a consumer whose handler takes 1 ms,
// behind a burst of 4000 1 KiB messages, is not declared Unresponsive: the
// server answered every ping at once, and the pong was waiting behind the
// backlog. Handler time does not count against the ping timeout.
func TestBacklogIsNoFalseUnresponsive(t *testing.T) {
	const n = 4000
	msg := bytes.Repeat([]byte("x"), 1024)
	srv, done := scriptServer(t, func(c *wstest.Conn) {
		if !srvHandshake(t, c) {
			return
		}
		// The reader answers pings at once, between the burst's writes.
		pings := make(chan []byte, 64)
		go func() {
			defer close(pings)
			for {
				f, err := c.ReadFrame()
				if err != nil || f.Opcode == wstest.OpClose {
					return
				}
				if f.Opcode == wstest.OpPing {
					pings <- f.Payload
				}
			}
		}()
		frame := wstest.Text(string(msg)).Encode()
		for i := 0; i < n; i++ {
			var p []byte
			if i == n/2 {
				// Half the burst is out (in the kernel's buffers, or read
				// and waiting for the 1 ms handler): the first ping's pong
				// goes behind it, and behind the second half come the
				// pongs of later pings.
				p = <-pings
			} else {
				select {
				case p = <-pings:
				default:
				}
			}
			if p != nil && c.WriteFrame(wstest.Pong(p)) != nil {
				return
			}
			if c.WriteRaw(frame) != nil {
				return
			}
		}
		_ = c.WriteFrame(wstest.Close(1000, "burst done"))
		for range pings {
		}
	})
	ws := newTestWS(t, srv.URL(), WithPingRate(20*time.Millisecond), WithPingTimeout(100*time.Millisecond))
	texts, unresponsive, pongs := 0, 0, 0
	err := ws.Run(context.Background(), HandlerFunc(func(ws *WebSocket, ev events.Event) {
		switch ev.(type) {
		case *events.Text:
			texts++
			time.Sleep(time.Millisecond) // the consumer's work, not synchronisation
		case *events.Unresponsive:
			unresponsive++
		case *events.Pong:
			pongs++
		}
	}))
	waitScript(t, done)
	if unresponsive != 0 || CloseStatus(err) != 1000 {
		t.Errorf("Run = %v after %d Unresponsive events, want the server's close 1000 and none", err, unresponsive)
	}
	if texts != n {
		t.Errorf("%d texts delivered, want %d", texts, n)
	}
	if pongs == 0 {
		t.Error("no pong: the test did not exercise the ping timeout")
	}
	t.Logf("%d texts, %d pongs", texts, pongs)
}

// TestBacklogIsNoFalseCloseTimeout: the client closes while 4000 messages
// wait for a 1 ms handler; the server's reply comes after them. The close
// handshake completes, and every message before the reply is delivered.
func TestBacklogIsNoFalseCloseTimeout(t *testing.T) {
	const n = 4000
	frame := wstest.Text(string(bytes.Repeat([]byte("y"), 1024))).Encode()
	srv, done := scriptServer(t, func(c *wstest.Conn) {
		if !srvHandshake(t, c) {
			return
		}
		for i := 0; i < n; i++ {
			if c.WriteRaw(frame) != nil {
				return
			}
		}
		if srvExpectClose(t, c, 1000, "enough") {
			_ = c.WriteFrame(wstest.Close(1000, "enough"))
		}
	})
	ws := newTestWS(t, srv.URL(), WithCloseTimeout(100*time.Millisecond))
	texts := 0
	err := ws.Run(context.Background(), HandlerFunc(func(ws *WebSocket, ev events.Event) {
		if _, ok := ev.(*events.Text); ok {
			texts++
			if texts == 1 {
				_ = ws.Close(1000, "enough")
			}
			time.Sleep(time.Millisecond) // the consumer's work, not synchronisation
		}
	}))
	waitScript(t, done)
	if err != nil {
		t.Errorf("Run = %v, want nil (a completed client close)", err)
	}
	if texts != n {
		t.Errorf("%d texts delivered, want %d", texts, n)
	}
}

// TestSlowPollHandlerWithAPingInFlight: a handler may take longer than any
// limit of the engine's (5 s for control frames) while a frame is half
// received: nothing times out under it.
func TestSlowPollHandlerWithAPingInFlight(t *testing.T) {
	if testing.Short() {
		t.Skip("takes 5.5 s")
	}
	inPoll := make(chan struct{})
	srv, done := scriptServer(t, func(c *wstest.Conn) {
		if !srvHandshake(t, c) {
			return
		}
		ping := wstest.Ping([]byte("in flight")).Encode()
		_ = c.WriteRaw(ping[:4])
		<-inPoll
		_ = c.WriteRaw(ping[4:])
		srvWrite(t, c, wstest.Text("after"), wstest.Close(1000, ""))
		srvExpectClose(t, c, 1000, "")
	})
	ws := newTestWS(t, srv.URL(), WithPollInterval(50*time.Millisecond))
	polls := 0
	var names []string
	err := ws.Run(context.Background(), HandlerFunc(func(ws *WebSocket, ev events.Event) {
		names = append(names, ev.Name())
		if _, ok := ev.(*events.Poll); ok {
			polls++
			if polls == 2 { // the ping's header has arrived by now
				close(inPoll)
				time.Sleep(5500 * time.Millisecond) // longer than the engine's 5 s
			}
		}
	}))
	waitScript(t, done)
	if CloseStatus(err) != 1000 {
		t.Errorf("Run = %v, want the server's close 1000", err)
	}
	if !strings.Contains(strings.Join(names, " "), "ping") || !strings.Contains(strings.Join(names, " "), "text") {
		t.Errorf("events %v lack the ping or the text", names)
	}
}

// TestPanicInLoopBodyOnTimerEvent: a panic in an Events loop body on a
// timer-fired event propagates as an ordinary panic (it was an unrecoverable
// "unlock of unlocked mutex"), and the session is closed.
func TestPanicInLoopBodyOnTimerEvent(t *testing.T) {
	srv, done := scriptServer(t, func(c *wstest.Conn) {
		if srvHandshake(t, c) {
			srvExpectClose(t, c, 1011, "handler panic")
		}
	})
	ws := newTestWS(t, srv.URL(), WithPollInterval(20*time.Millisecond), WithCloseTimeout(time.Second))
	recovered := func() (v any) {
		defer func() { v = recover() }()
		polls := 0
		for ev := range ws.Events(context.Background()) {
			if _, ok := ev.(*events.Poll); ok {
				if polls++; polls == 2 { // the second Poll is fired by the timer
					panic("boom")
				}
			}
		}
		return nil
	}()
	waitScript(t, done)
	if recovered != "boom" {
		t.Errorf("recovered %v, want the loop body's panic", recovered)
	}
	if ws.State() != StateIdle {
		t.Errorf("state %v after the panic, want idle", ws.State())
	}
}

// TestHandshakeResponsesNetHTTPAccepts: a 100 Continue before the 101, and
// a 101 with bare-LF line endings, are read as net/http reads them; what
// follows is read as frames: unmasked data delivered, a masked frame
// refused.
func TestHandshakeResponsesNetHTTPAccepts(t *testing.T) {
	lf101 := func(req *http.Request) string {
		return "HTTP/1.1 101 Switching Protocols\nUpgrade: websocket\nConnection: Upgrade\n" +
			"Sec-WebSocket-Accept: " + wstest.AcceptKey(req.Header.Get("Sec-WebSocket-Key")) + "\n\n"
	}
	masked := wstest.Frame{Fin: true, Opcode: wstest.OpText, Masked: true, MaskKey: [4]byte{1, 2, 3, 4}, Payload: []byte("secret")}.Encode()
	cases := []struct {
		name     string
		response func(req *http.Request) []byte
		wantText bool
	}{
		{"100 Continue first", func(req *http.Request) []byte {
			return append([]byte("HTTP/1.1 100 Continue\r\n\r\n"), raw101(req, wstest.Text("data").Encode())...)
		}, true},
		{"bare LF", func(req *http.Request) []byte {
			return append([]byte(lf101(req)), wstest.Text("data").Encode()...)
		}, true},
		{"bare LF then a masked frame", func(req *http.Request) []byte {
			return append([]byte(lf101(req)), masked...)
		}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv, done := scriptServer(t, func(c *wstest.Conn) {
				req, err := c.ReadRequest()
				if err != nil || c.WriteRaw(tc.response(req)) != nil {
					return
				}
				code, _, err := c.ExpectClose()
				if err == nil {
					_ = c.WriteFrame(wstest.Close(code, ""))
				}
			})
			ws := newTestWS(t, srv.URL())
			l := &evLog{hook: func(ws *WebSocket, ev events.Event) {
				if _, ok := ev.(*events.Text); ok {
					_ = ws.Close(1000, "")
				}
			}}
			err := ws.Run(context.Background(), l.handler())
			waitScript(t, done)
			if tc.wantText {
				if err != nil {
					t.Errorf("Run = %v, want nil", err)
				}
				expectLines(t, l, seq(opening(srv.URL()), []string{`text "data"`, `closed 1000 ""`, "disconnected graceful=true err=false"}))
				return
			}
			var pe *ProtocolError
			if !errors.As(err, &pe) || pe.Code != 1002 {
				t.Errorf("Run = %v, want a *ProtocolError 1002", err)
			}
			for _, ev := range l.evs {
				if _, ok := ev.(*events.Text); ok {
					t.Errorf("a masked frame was delivered: %v", ev)
				}
			}
		})
	}
}

// TestViolationsReportedTruly: every violation ends as one ProtocolError
// with the code of the close frame sent, a stable reason, and no other
// library's text.
func TestViolationsReportedTruly(t *testing.T) {
	huge := []byte{0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 1} // 2^63+1 bytes
	overLimit := wstest.Binary(make([]byte, 200)).Encode()
	maskedAfter := wstest.Frame{Fin: true, Opcode: wstest.OpText, Masked: true, Payload: []byte("m")}.Encode()
	cases := []struct {
		name       string
		bad        []byte
		clientSide func(ws *WebSocket)
		code       int
		reason     string
	}{
		{name: "frame length over 2^63", bad: huge, code: 1002, reason: "frame length too large"},
		{name: "close code 2999", bad: wstest.Close(2999, "").Encode(), code: 1002, reason: "invalid close code"},
		{name: "over the read limit, then a masked frame", bad: append(overLimit, maskedAfter...), code: 1009,
			reason: "message larger than the read limit (100 bytes)"},
		{name: "masked frame after the client's close", bad: maskedAfter, code: 1002, reason: "masked frame",
			clientSide: func(ws *WebSocket) { _ = ws.Close(1000, "bye") }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ready := make(chan struct{})
			srv, done := scriptServer(t, func(c *wstest.Conn) {
				if !srvHandshake(t, c) {
					return
				}
				if tc.clientSide != nil {
					<-ready
					if !srvExpectClose(t, c, 1000, "bye") {
						return
					}
				}
				_ = c.WriteRaw(tc.bad)
				if tc.clientSide == nil {
					if code, _, err := c.ExpectClose(); err != nil || code != tc.code {
						t.Errorf("server saw close %d (%v), want %d", code, err, tc.code)
					}
				}
				_ = c.WriteFrame(wstest.Close(1000, ""))
			})
			ws := newTestWS(t, srv.URL(), WithReadLimit(100))
			l := &evLog{hook: func(ws *WebSocket, ev events.Event) {
				if _, ok := ev.(*events.Ready); ok && tc.clientSide != nil {
					tc.clientSide(ws)
					close(ready)
				}
			}}
			err := ws.Run(context.Background(), l.handler())
			waitScript(t, done)
			var pe *ProtocolError
			if !errors.As(err, &pe) || pe.Code != tc.code {
				t.Fatalf("Run = %v, want a *ProtocolError %d", err, tc.code)
			}
			n := 0
			for _, ev := range l.evs {
				if e, ok := ev.(*events.ProtocolError); ok {
					n++
					if e.Code != tc.code || e.Err.Error() != tc.reason {
						t.Errorf("ProtocolError %d %q, want %d %q", e.Code, e.Err, tc.code, tc.reason)
					}
				}
			}
			if n != 1 {
				t.Errorf("%d ProtocolError events, want 1", n)
			}
			if d := lastEvent[*events.Disconnected](t, l); d.Reason != "protocol error" {
				t.Errorf("Disconnected.Reason = %q, want %q", d.Reason, "protocol error")
			}
		})
	}
}

// TestStalledWriterIsUnresponsive: a server that floods pings and never
// reads fills the client's send buffer; the write that makes no progress
// for the ping timeout ends the session as Unresponsive instead of freezing
// it, and a send stuck on it fails.
func TestStalledWriterIsUnresponsive(t *testing.T) {
	srv, done := scriptServer(t, func(c *wstest.Conn) {
		if !srvHandshake(t, c) {
			return
		}
		// Whole frames only (a write cut by a deadline would put the
		// stream out of step); the writes block once the client stops
		// reading, and fail when it drops the connection.
		batch := bytes.Repeat(wstest.Ping(bytes.Repeat([]byte("p"), 125)).Encode(), 512)
		for c.WriteRaw(batch) == nil {
		}
	})
	ws := newTestWS(t, srv.URL(), WithPingTimeout(300*time.Millisecond), WithCloseTimeout(300*time.Millisecond))
	sendErr := make(chan error, 1)
	start := time.Now()
	err := ws.Run(context.Background(), HandlerFunc(func(ws *WebSocket, ev events.Event) {
		if _, ok := ev.(*events.Ready); ok {
			go func() { sendErr <- ws.SendBinary(make([]byte, 8<<20)) }()
		}
	}))
	if !errors.Is(err, ErrUnresponsive) {
		t.Errorf("Run = %v, want ErrUnresponsive", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("Run took %v", d)
	}
	if err := <-sendErr; err == nil {
		t.Error("the stalled 8 MiB send reported success")
	}
	srv.Close()
	waitScript(t, done)
}

var _ = binary.BigEndian

// TestClosingHandlerSendsAndChoosesTheReply: as in lomond, the Closing
// handler may still send, and may choose the reply to the server's close.
func TestClosingHandlerSendsAndChoosesTheReply(t *testing.T) {
	srv, done := scriptServer(t, func(c *wstest.Conn) {
		if !srvHandshake(t, c) || !srvWrite(t, c, wstest.Close(1000, "bye")) {
			return
		}
		if srvExpectMessage(t, c, wstest.OpText, "last words") {
			srvExpectClose(t, c, 4001, "client override")
		}
	})
	ws := newTestWS(t, srv.URL())
	var sendErr, closeErr, lateErr error
	l := &evLog{hook: func(ws *WebSocket, ev events.Event) {
		switch ev.(type) {
		case *events.Closing:
			sendErr = ws.SendText("last words")
			closeErr = ws.Close(4001, "client override")
			lateErr = ws.SendText("too late")
		}
	}}
	err := ws.Run(context.Background(), l.handler())
	waitScript(t, done)
	if sendErr != nil || closeErr != nil {
		t.Errorf("in the Closing handler: SendText = %v, Close = %v; want nil, nil", sendErr, closeErr)
	}
	if !errors.Is(lateErr, ErrClosing) {
		t.Errorf("SendText after the reply = %v, want ErrClosing", lateErr)
	}
	if CloseStatus(err) != 1000 {
		t.Errorf("Run = %v, want the server's close 1000", err)
	}
	expectLines(t, l, seq(opening(srv.URL()), []string{`closing 1000 "bye"`, `closed 1000 "bye"`, "disconnected graceful=true err=false"}))
}

// TestCorruptCompressedData: a compressed message that does not inflate
// fails the connection with 1007 and a ProtocolError (it ended as "socket
// fail" with no close frame).
func TestCorruptCompressedData(t *testing.T) {
	srv, done := scriptServer(t, func(c *wstest.Conn) {
		if !deflateAccept(t, c, "") {
			return
		}
		srvWrite(t, c, wstest.Frame{Fin: true, RSV1: true, Opcode: wstest.OpText, Payload: []byte{0xff, 0xff, 0xff, 0xff}})
		if code, _, err := c.ExpectClose(); err != nil || code != 1007 {
			t.Errorf("server saw close %d (%v), want 1007", code, err)
		}
		_ = c.WriteFrame(wstest.Close(1007, ""))
	})
	ws := newTestWS(t, srv.URL(), WithCompression(CompressionContextTakeover))
	l := &evLog{}
	err := ws.Run(context.Background(), l.handler())
	waitScript(t, done)
	var pe *ProtocolError
	if !errors.As(err, &pe) || pe.Code != 1007 {
		t.Fatalf("Run = %v, want a *ProtocolError 1007", err)
	}
	if ev := lastEvent[*events.ProtocolError](t, l); !strings.HasPrefix(ev.Err.Error(), "invalid compressed data") {
		t.Errorf("ProtocolError.Err = %q, want the stable reason", ev.Err)
	}
}

// TestFloodAfterCloseIsCut: a server that answers the client's close with
// an endless stream of messages instead of a close reply is not waited for
// beyond the drain bound after the close timeout.
func TestFloodAfterCloseIsCut(t *testing.T) {
	old := maxJudgeDrain
	maxJudgeDrain = 1 << 20
	defer func() { maxJudgeDrain = old }()
	srv, done := scriptServer(t, func(c *wstest.Conn) {
		if !srvHandshake(t, c) || !srvExpectClose(t, c, 1000, "bye") {
			return
		}
		batch := bytes.Repeat(wstest.Text("flood").Encode(), 1000)
		for c.WriteRaw(batch) == nil {
		}
	})
	ws := newTestWS(t, srv.URL(), WithCloseTimeout(100*time.Millisecond))
	texts := 0
	start := time.Now()
	err := ws.Run(context.Background(), HandlerFunc(func(ws *WebSocket, ev events.Event) {
		switch ev.(type) {
		case *events.Ready:
			_ = ws.Close(1000, "bye")
		case *events.Text:
			texts++
		}
	}))
	waitScript(t, done)
	if !errors.Is(err, ErrCloseTimeout) {
		t.Errorf("Run = %v, want ErrCloseTimeout", err)
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("Run took %v", d)
	}
	t.Logf("%d texts delivered before the cut, in %v", texts, time.Since(start))
}
