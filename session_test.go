package lomond

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/lomond-go/lomond/events"
	"github.com/lomond-go/lomond/internal/wstest"
	"go.uber.org/goleak"
)

// This file tests the event sequences of a session against real in-process
// servers: scripted raw-bytes servers (internal/wstest) and coder/websocket
// servers. protocol_test.go covers protocol violations and the handshake;
// session_helpers_test.go holds the helpers.

// echoSession is a normal session: the server sends a text and a binary,
// the client echoes them, and the server closes with 4001 "bye".
func echoSession(t *testing.T) func(c *wstest.Conn) {
	return func(c *wstest.Conn) {
		if !srvHandshake(t, c) || !srvWrite(t, c, wstest.Text("hello"), wstest.Binary([]byte{1, 2, 3})) {
			return
		}
		if !srvExpectMessage(t, c, wstest.OpText, "echo:hello") ||
			!srvExpectMessage(t, c, wstest.OpBinary, "\x01\x02\x03") {
			return
		}
		if srvWrite(t, c, wstest.Close(4001, "bye")) && srvExpectClose(t, c, 4001, "bye") {
			srvExpectEOF(t, c)
		}
	}
}

// echoBack is the client side of echoSession.
func echoBack(t *testing.T) func(ws *WebSocket, ev events.Event) {
	return func(ws *WebSocket, ev events.Event) {
		var err error
		switch e := ev.(type) {
		case *events.Text:
			err = ws.SendText("echo:" + e.Text)
		case *events.Binary:
			err = ws.SendBinary(e.Data)
		case *events.Ready:
			if st := ws.State(); st != StateReady {
				t.Errorf("State in OnReady = %v, want ready", st)
			}
		}
		if err != nil {
			t.Errorf("echo %s: %v", ev.Name(), err)
		}
	}
}

func echoSessionLines(url string) []string {
	return seq(opening(url), []string{
		`text "hello"`,
		`binary "\x01\x02\x03"`,
		`closing 4001 "bye"`,
		`closed 4001 "bye"`,
		"disconnected graceful=true err=false",
	})
}

// TestSessionNormal runs a whole session with Run and checks every event.
func TestSessionNormal(t *testing.T) {
	srv, done := scriptServer(t, echoSession(t))
	ws := newTestWS(t, srv.URL())
	l := &evLog{hook: echoBack(t)}
	err := ws.Run(context.Background(), l.handler())
	waitScript(t, done)
	var ce *CloseError
	if !errors.As(err, &ce) || ce.Code != 4001 || ce.Reason != "bye" {
		t.Fatalf("Run = %v, want *CloseError{4001, bye}", err)
	}
	if CloseStatus(err) != 4001 {
		t.Errorf("CloseStatus = %d, want 4001", CloseStatus(err))
	}
	expectLines(t, l, echoSessionLines(srv.URL()))
	ready := lastEvent[*events.Ready](t, l)
	if ready.Response == nil || ready.Response.StatusCode != http.StatusSwitchingProtocols {
		t.Errorf("Ready.Response = %v, want a 101 response", ready.Response)
	}
	if ws.State() != StateIdle {
		t.Errorf("State after Run = %v, want idle", ws.State())
	}
}

// TestSessionRunAndEventsAgree runs the same script with Run and with a
// range loop over Events: both give the same events.
func TestSessionRunAndEventsAgree(t *testing.T) {
	srv, done := scriptServer(t, echoSession(t))
	ws := newTestWS(t, srv.URL())

	byRun := &evLog{hook: echoBack(t)}
	_ = ws.Run(context.Background(), byRun.handler())
	waitScript(t, done)
	byRange := &evLog{hook: echoBack(t)}
	byRange.rangeEvents(context.Background(), ws)
	waitScript(t, done)

	want := echoSessionLines(srv.URL())
	expectLines(t, byRun, want)
	expectLines(t, byRange, want)
	if srv.Conns() != 2 {
		t.Errorf("server saw %d connections, want 2", srv.Conns())
	}
}

// TestSessionServerClose: the server closes with 4001 "bye"; the client
// echoes the close after the Closing handler (which may still send) and Run
// returns a *CloseError.
func TestSessionServerClose(t *testing.T) {
	srv, done := scriptServer(t, func(c *wstest.Conn) {
		if srvHandshake(t, c) && srvWrite(t, c, wstest.Close(4001, "bye")) && srvExpectClose(t, c, 4001, "bye") {
			srvExpectEOF(t, c)
		}
	})
	ws := newTestWS(t, srv.URL())
	l := &evLog{hook: func(ws *WebSocket, ev events.Event) {
		switch ev.(type) {
		case *events.Closing:
			// As in lomond, the Closing handler may still send: the reply
			// goes out when it returns.
			if err := ws.SendText("x"); err != nil {
				t.Errorf("SendText in OnClosing = %v, want nil", err)
			}
		case *events.Closed:
			if st := ws.State(); st != StateClosed {
				t.Errorf("State in OnClosed = %v, want closed", st)
			}
			if err := ws.SendText("x"); !errors.Is(err, ErrClosed) {
				t.Errorf("SendText in OnClosed = %v, want ErrClosed", err)
			}
		}
	}}
	err := ws.Run(context.Background(), l.handler())
	waitScript(t, done)
	var ce *CloseError
	if !errors.As(err, &ce) || *ce != (CloseError{Code: 4001, Reason: "bye"}) {
		t.Fatalf("Run = %v, want *CloseError{4001, bye}", err)
	}
	expectLines(t, l, seq(opening(srv.URL()), []string{
		`closing 4001 "bye"`, `closed 4001 "bye"`, "disconnected graceful=true err=false",
	}))
}

// TestSessionServerCloseNoStatus: a close frame with no payload is code
// 1005, and the echo carries no payload either.
func TestSessionServerCloseNoStatus(t *testing.T) {
	srv, done := scriptServer(t, func(c *wstest.Conn) {
		if srvHandshake(t, c) && srvWrite(t, c, wstest.Close(0, "")) && srvExpectClose(t, c, 0, "") {
			srvExpectEOF(t, c)
		}
	})
	ws := newTestWS(t, srv.URL())
	l := &evLog{}
	err := ws.Run(context.Background(), l.handler())
	waitScript(t, done)
	var ce *CloseError
	if !errors.As(err, &ce) || *ce != (CloseError{Code: StatusNoStatus}) {
		t.Fatalf("Run = %v, want *CloseError{1005}", err)
	}
	expectLines(t, l, seq(opening(srv.URL()), []string{
		`closing 1005 ""`, `closed 1005 ""`, "disconnected graceful=true err=false",
	}))
}

// TestSessionClientCloseLossless: after the client's close frame, every
// message the server sends before its close reply is delivered, and the
// client sends nothing after its close frame.
func TestSessionClientCloseLossless(t *testing.T) {
	srv, done := scriptServer(t, func(c *wstest.Conn) {
		if !srvHandshake(t, c) || !srvExpectClose(t, c, 1000, "client bye") {
			return
		}
		var frames []wstest.Frame
		for i := range 5 {
			frames = append(frames, wstest.Text(fmt.Sprintf("late %d", i)))
		}
		for _, f := range frames {
			if !srvWrite(t, c, f) {
				return
			}
		}
		if srvWrite(t, c, wstest.Close(4002, "ack")) {
			srvExpectEOF(t, c)
		}
	})
	ws := newTestWS(t, srv.URL())
	l := &evLog{hook: func(ws *WebSocket, ev events.Event) {
		if _, ok := ev.(*events.Ready); ok {
			if err := ws.Close(1000, "client bye"); err != nil {
				t.Errorf("Close: %v", err)
			}
		}
	}}
	err := ws.Run(context.Background(), l.handler())
	waitScript(t, done)
	if err != nil {
		t.Fatalf("Run = %v, want nil", err)
	}
	expectLines(t, l, seq(opening(srv.URL()), []string{
		`text "late 0"`, `text "late 1"`, `text "late 2"`, `text "late 3"`, `text "late 4"`,
		`closed 4002 "ack"`, "disconnected graceful=true err=false",
	}))
}

// TestSessionSendErrors checks what sends and Close return in each phase.
func TestSessionSendErrors(t *testing.T) {
	srv, done := scriptServer(t, func(c *wstest.Conn) {
		if srvHandshake(t, c) && srvExpectClose(t, c, 1000, "bye") && srvWrite(t, c, wstest.Close(1000, "bye")) {
			srvExpectEOF(t, c)
		}
	})
	ws := newTestWS(t, srv.URL())
	if err := ws.SendText("x"); !errors.Is(err, ErrNotConnected) {
		t.Errorf("SendText before Run = %v, want ErrNotConnected", err)
	}
	if err := ws.Close(1000, ""); !errors.Is(err, ErrNotConnected) {
		t.Errorf("Close before Run = %v, want ErrNotConnected", err)
	}
	l := &evLog{hook: func(ws *WebSocket, ev events.Event) {
		switch ev.(type) {
		case *events.Ready:
			if err := ws.Close(1000, "bye"); err != nil {
				t.Errorf("Close: %v", err)
			}
			checks := map[string]error{
				"SendText":   ws.SendText("x"),
				"SendBinary": ws.SendBinary([]byte("x")),
				"SendJSON":   ws.SendJSON(1),
				"SendPing":   ws.SendPing(nil),
				"SendPong":   ws.SendPong(nil),
				"Close":      ws.Close(1000, "again"),
			}
			for name, err := range checks {
				if !errors.Is(err, ErrClosing) {
					t.Errorf("%s after Close = %v, want ErrClosing", name, err)
				}
			}
		case *events.Closed:
			if err := ws.SendText("x"); !errors.Is(err, ErrClosed) {
				t.Errorf("SendText in OnClosed = %v, want ErrClosed", err)
			}
			if err := ws.SendPing([]byte("p")); !errors.Is(err, ErrClosed) {
				t.Errorf("SendPing in OnClosed = %v, want ErrClosed", err)
			}
		}
	}}
	err := ws.Run(context.Background(), l.handler())
	waitScript(t, done)
	if err != nil {
		t.Fatalf("Run = %v, want nil", err)
	}
	expectLines(t, l, seq(opening(srv.URL()), []string{`closed 1000 "bye"`, "disconnected graceful=true err=false"}))
	if err := ws.SendText("x"); !errors.Is(err, ErrNotConnected) {
		t.Errorf("SendText after Run = %v, want ErrNotConnected", err)
	}
	if err := ws.SendPing(nil); !errors.Is(err, ErrNotConnected) {
		t.Errorf("SendPing after Run = %v, want ErrNotConnected", err)
	}
	if err := ws.Close(1000, ""); !errors.Is(err, ErrNotConnected) {
		t.Errorf("Close after Run = %v, want ErrNotConnected", err)
	}
}

// TestSessionPingPong covers client pings and pongs, server pings with and
// without auto-pong, and an unsolicited server pong.
func TestSessionPingPong(t *testing.T) {
	t.Run("client ping and pong", func(t *testing.T) {
		srv, done := scriptServer(t, func(c *wstest.Conn) {
			if !srvHandshake(t, c) || !srvExpectMessage(t, c, wstest.OpPing, "are you there") ||
				!srvWrite(t, c, wstest.Pong([]byte("are you there"))) ||
				!srvExpectMessage(t, c, wstest.OpPong, "heartbeat") {
				return
			}
			if srvWrite(t, c, wstest.Close(1000, "")) && srvExpectClose(t, c, 1000, "") {
				srvExpectEOF(t, c)
			}
		})
		ws := newTestWS(t, srv.URL())
		l := &evLog{hook: func(ws *WebSocket, ev events.Event) {
			if _, ok := ev.(*events.Ready); ok {
				if err := ws.SendPing([]byte("are you there")); err != nil {
					t.Errorf("SendPing: %v", err)
				}
				if err := ws.SendPong([]byte("heartbeat")); err != nil {
					t.Errorf("SendPong: %v", err)
				}
				if err := ws.SendPing(make([]byte, 126)); !errors.Is(err, ErrControlTooLarge) {
					t.Errorf("SendPing(126 bytes) = %v, want ErrControlTooLarge", err)
				}
			}
		}}
		err := ws.Run(context.Background(), l.handler())
		waitScript(t, done)
		if CloseStatus(err) != 1000 {
			t.Fatalf("Run = %v, want *CloseError 1000", err)
		}
		expectLines(t, l, seq(opening(srv.URL()), []string{
			`pong "are you there" rtt=0s`,
			`closing 1000 ""`, `closed 1000 ""`, "disconnected graceful=true err=false",
		}))
	})

	// serverPing: the server pings; the client sends a text from OnPing. The
	// next frame the server reads shows whether a pong went out first.
	serverPing := func(t *testing.T, autoPong bool) {
		srv, done := scriptServer(t, func(c *wstest.Conn) {
			if !srvHandshake(t, c) || !srvWrite(t, c, wstest.Ping([]byte("ping-data"))) {
				return
			}
			if autoPong && !srvExpectMessage(t, c, wstest.OpPong, "ping-data") {
				return
			}
			if !srvExpectMessage(t, c, wstest.OpText, "saw ping") {
				return
			}
			if srvWrite(t, c, wstest.Close(1000, "")) && srvExpectClose(t, c, 1000, "") {
				srvExpectEOF(t, c)
			}
		})
		ws := newTestWS(t, srv.URL(), WithAutoPong(autoPong))
		l := &evLog{hook: func(ws *WebSocket, ev events.Event) {
			if _, ok := ev.(*events.Ping); ok {
				if err := ws.SendText("saw ping"); err != nil {
					t.Errorf("SendText: %v", err)
				}
			}
		}}
		err := ws.Run(context.Background(), l.handler())
		waitScript(t, done)
		if CloseStatus(err) != 1000 {
			t.Fatalf("Run = %v, want *CloseError 1000", err)
		}
		expectLines(t, l, seq(opening(srv.URL()), []string{
			`ping "ping-data"`,
			`closing 1000 ""`, `closed 1000 ""`, "disconnected graceful=true err=false",
		}))
	}
	t.Run("server ping auto-pong", func(t *testing.T) { serverPing(t, true) })
	t.Run("server ping no auto-pong", func(t *testing.T) { serverPing(t, false) })

	t.Run("server ping inside a fragmented message", func(t *testing.T) {
		srv, done := scriptServer(t, func(c *wstest.Conn) {
			if !srvHandshake(t, c) || !srvWrite(t, c,
				wstest.Frame{Fin: false, Opcode: wstest.OpText, Payload: []byte("first half, ")},
				wstest.Ping([]byte("mid")),
				wstest.Frame{Fin: true, Opcode: wstest.OpContinuation, Payload: []byte("second half")}) {
				return
			}
			if srvExpectMessage(t, c, wstest.OpPong, "mid") && srvWrite(t, c, wstest.Close(1000, "")) &&
				srvExpectClose(t, c, 1000, "") {
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
			`ping "mid"`, `text "first half, second half"`,
			`closing 1000 ""`, `closed 1000 ""`, "disconnected graceful=true err=false",
		}))
	})

	t.Run("unsolicited server pong", func(t *testing.T) {
		srv, done := scriptServer(t, func(c *wstest.Conn) {
			if srvHandshake(t, c) && srvWrite(t, c, wstest.Pong([]byte("tick")), wstest.Close(1000, "")) &&
				srvExpectClose(t, c, 1000, "") {
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
			`pong "tick" rtt=0s`,
			`closing 1000 ""`, `closed 1000 ""`, "disconnected graceful=true err=false",
		}))
	})
}

// TestSessionCloseTimeout: the server never answers the client's close.
func TestSessionCloseTimeout(t *testing.T) {
	const timeout = 300 * time.Millisecond
	srv, done := scriptServer(t, func(c *wstest.Conn) {
		if srvHandshake(t, c) && srvExpectClose(t, c, 1000, "bye") {
			srvDrain(t, c) // no reply: wait for the client to drop the connection
		}
	})
	ws := newTestWS(t, srv.URL(), WithCloseTimeout(timeout))
	var closedAt time.Time
	l := &evLog{hook: func(ws *WebSocket, ev events.Event) {
		if _, ok := ev.(*events.Ready); ok {
			closedAt = time.Now()
			if err := ws.Close(1000, "bye"); err != nil {
				t.Errorf("Close: %v", err)
			}
		}
	}}
	err := ws.Run(context.Background(), l.handler())
	waitScript(t, done)
	elapsed := time.Since(closedAt)
	if !errors.Is(err, ErrCloseTimeout) {
		t.Fatalf("Run = %v, want ErrCloseTimeout", err)
	}
	if elapsed < timeout-10*time.Millisecond || elapsed > timeout+5*time.Second {
		t.Errorf("Run returned %v after Close, want about %v", elapsed, timeout)
	}
	expectLines(t, l, seq(opening(srv.URL()), []string{"disconnected graceful=false err=true"}))
	if d := lastEvent[*events.Disconnected](t, l); !errors.Is(d.Err, ErrCloseTimeout) {
		t.Errorf("Disconnected.Err = %v, want ErrCloseTimeout", d.Err)
	}
}

// TestSessionTCPDrop: the server drops the connection mid-session, and
// before its handshake response.
func TestSessionTCPDrop(t *testing.T) {
	t.Run("mid-session", func(t *testing.T) {
		srv, done := scriptServer(t, func(c *wstest.Conn) {
			if srvHandshake(t, c) {
				srvWrite(t, c, wstest.Text("last words"))
			}
		}) // the script returns: the connection is closed with no close frame
		ws := newTestWS(t, srv.URL())
		l := &evLog{}
		err := ws.Run(context.Background(), l.handler())
		waitScript(t, done)
		if err == nil || CloseStatus(err) != -1 {
			t.Fatalf("Run = %v, want a transport error", err)
		}
		expectLines(t, l, seq(opening(srv.URL()), []string{`text "last words"`, "disconnected graceful=false err=true"}))
	})
	t.Run("before the response", func(t *testing.T) {
		srv, done := scriptServer(t, func(c *wstest.Conn) {
			if _, err := c.ReadRequest(); err != nil {
				t.Errorf("server: %v", err)
			}
		})
		ws := newTestWS(t, srv.URL())
		l := &evLog{}
		err := ws.Run(context.Background(), l.handler())
		waitScript(t, done)
		var re *RejectedError
		if err == nil || errors.As(err, &re) {
			t.Fatalf("Run = %v, want a transport error", err)
		}
		expectLines(t, l, seq(opening(srv.URL())[:2], []string{"disconnected graceful=false err=true"}))
	})
}

// TestSessionContextCancelled cancels the context while ready, during a
// handshake that never completes, and before Run.
func TestSessionContextCancelled(t *testing.T) {
	t.Run("while ready", func(t *testing.T) {
		srv, done := scriptServer(t, func(c *wstest.Conn) {
			if srvHandshake(t, c) && srvExpectClose(t, c, 1001, "going away") &&
				srvWrite(t, c, wstest.Close(1001, "going away")) {
				srvExpectEOF(t, c)
			}
		})
		ws := newTestWS(t, srv.URL())
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		l := &evLog{hook: func(_ *WebSocket, ev events.Event) {
			if _, ok := ev.(*events.Ready); ok {
				cancel()
			}
		}}
		err := ws.Run(ctx, l.handler())
		waitScript(t, done)
		if err != nil {
			t.Fatalf("Run = %v, want nil", err)
		}
		expectLines(t, l, seq(opening(srv.URL()), []string{`closed 1001 "going away"`, "disconnected graceful=true err=false"}))
	})

	t.Run("during the handshake", func(t *testing.T) {
		gotRequest := make(chan struct{})
		srv, done := scriptServer(t, func(c *wstest.Conn) {
			if _, err := c.ReadRequest(); err != nil {
				t.Errorf("server: %v", err)
				return
			}
			close(gotRequest)
			srvDrain(t, c) // never answer
		})
		ws := newTestWS(t, srv.URL(), WithHandshakeTimeout(time.Minute))
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		cancelled := make(chan time.Time, 1)
		runDone := make(chan struct{})
		go func() {
			select {
			case <-gotRequest:
				cancelled <- time.Now()
				cancel()
			case <-runDone:
			}
		}()
		l := &evLog{}
		err := ws.Run(ctx, l.handler())
		end := time.Now()
		close(runDone)
		waitScript(t, done)
		var elapsed time.Duration
		select {
		case at := <-cancelled:
			elapsed = end.Sub(at)
		default:
			t.Fatalf("Run = %v before the server got the request", err)
		}
		if err == nil || !errors.Is(err, context.Canceled) {
			t.Errorf("Run = %v, want an error wrapping context.Canceled", err)
		}
		if elapsed > 5*time.Second {
			t.Errorf("Run returned %v after the cancel, want promptly", elapsed)
		}
		expectLines(t, l, seq(opening(srv.URL())[:2], []string{"disconnected graceful=false err=true"}))
	})

	t.Run("before Run", func(t *testing.T) {
		srv := wstest.NewServer(t, func(*wstest.Conn) {})
		ws := newTestWS(t, srv.URL())
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		l := &evLog{}
		err := ws.Run(ctx, l.handler())
		var ce *ConnectError
		if !errors.As(err, &ce) || !errors.Is(err, context.Canceled) {
			t.Fatalf("Run = %v, want a *ConnectError wrapping context.Canceled", err)
		}
		expectLines(t, l, []string{"connecting " + srv.URL(), "connect_fail"})
	})
}

// TestSessionRunTwice runs one WebSocket twice in sequence: each run is a
// fresh session with a fresh Sec-WebSocket-Key.
func TestSessionRunTwice(t *testing.T) {
	keys := make(chan string, 2)
	srv, done := scriptServer(t, func(c *wstest.Conn) {
		req, err := c.Handshake()
		if err != nil {
			t.Errorf("server: handshake: %v", err)
			return
		}
		keys <- req.Header.Get("Sec-WebSocket-Key")
		if srvExpectClose(t, c, 1000, "done") && srvWrite(t, c, wstest.Close(1000, "done")) {
			srvExpectEOF(t, c)
		}
	})
	ws := newTestWS(t, srv.URL())
	for i := range 2 {
		l := &evLog{hook: func(ws *WebSocket, ev events.Event) {
			if _, ok := ev.(*events.Ready); ok {
				if err := ws.Close(1000, "done"); err != nil {
					t.Errorf("Close: %v", err)
				}
			}
		}}
		err := ws.Run(context.Background(), l.handler())
		waitScript(t, done)
		if err != nil {
			t.Fatalf("run %d: Run = %v, want nil", i, err)
		}
		expectLines(t, l, seq(opening(srv.URL()), []string{`closed 1000 "done"`, "disconnected graceful=true err=false"}))
	}
	if len(keys) != 2 {
		t.Fatalf("the server saw %d handshakes, want 2", len(keys))
	}
	k1, k2 := <-keys, <-keys
	if k1 == "" || k1 == k2 {
		t.Errorf("Sec-WebSocket-Key of the two runs: %q and %q, want two different keys", k1, k2)
	}
}

// TestSessionAlreadyRunning starts Run and Events while a session runs.
func TestSessionAlreadyRunning(t *testing.T) {
	srv, done := scriptServer(t, func(c *wstest.Conn) {
		if srvHandshake(t, c) && srvExpectClose(t, c, 1000, "") && srvWrite(t, c, wstest.Close(1000, "")) {
			srvExpectEOF(t, c)
		}
	})
	ws := newTestWS(t, srv.URL())
	l := &evLog{hook: func(ws *WebSocket, ev events.Event) {
		if _, ok := ev.(*events.Ready); ok {
			second := &evLog{}
			runErr := make(chan error, 1)
			go func() { runErr <- ws.Run(context.Background(), second.handler()) }()
			if err := <-runErr; !errors.Is(err, ErrAlreadyRunning) {
				t.Errorf("concurrent Run = %v, want ErrAlreadyRunning", err)
			}
			if len(second.evs) != 0 {
				t.Errorf("concurrent Run delivered %q, want nothing", second.lines())
			}
			ranged := make(chan []events.Event, 1)
			go func() {
				var evs []events.Event
				for ev := range ws.Events(context.Background()) {
					evs = append(evs, ev)
				}
				ranged <- evs
			}()
			evs := <-ranged
			if len(evs) != 1 {
				t.Errorf("concurrent Events yielded %d events, want one ConnectFail", len(evs))
			} else if cf, ok := evs[0].(*events.ConnectFail); !ok || !errors.Is(cf.Err, ErrAlreadyRunning) {
				t.Errorf("concurrent Events yielded %v, want ConnectFail with ErrAlreadyRunning", evs[0])
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
	expectLines(t, l, seq(opening(srv.URL()), []string{`closed 1000 ""`, "disconnected graceful=true err=false"}))
}

// panickyHandler records events and panics in OnText.
type panickyHandler struct {
	BaseHandler
	log *evLog
}

func (h *panickyHandler) OnEvent(ws *WebSocket, ev events.Event) { h.log.record(ws, ev) }

func (h *panickyHandler) OnText(_ *WebSocket, ev *events.Text) { panic("boom: " + ev.Text) }

// TestSessionHandlerPanic: a panic in OnText closes with 1011 and Run
// returns a *PanicError; nothing leaks.
func TestSessionHandlerPanic(t *testing.T) {
	srv, done := scriptServer(t, func(c *wstest.Conn) {
		if srvHandshake(t, c) && srvWrite(t, c, wstest.Text("x")) && srvExpectClose(t, c, 1011, "handler panic") &&
			srvWrite(t, c, wstest.Close(1011, "")) {
			srvExpectEOF(t, c)
		}
	})
	ws := newTestWS(t, srv.URL())
	l := &evLog{}
	err := ws.Run(context.Background(), &panickyHandler{log: l})
	waitScript(t, done)
	var pe *PanicError
	if !errors.As(err, &pe) {
		t.Fatalf("Run = %v, want *PanicError", err)
	}
	if pe.Value != "boom: x" {
		t.Errorf("PanicError.Value = %v, want boom: x", pe.Value)
	}
	if !strings.Contains(string(pe.Stack), "panickyHandler).OnText") {
		t.Errorf("PanicError.Stack lacks the handler's method:\n%s", pe.Stack)
	}
	expectLines(t, l, seq(opening(srv.URL()), []string{`text "x"`, "disconnected graceful=false err=true"}))
	srv.Close()
	goleak.VerifyNone(t)
}

// TestSessionEventsBreak: leaving an Events loop closes with 1000 and
// delivers nothing more.
func TestSessionEventsBreak(t *testing.T) {
	srv, done := scriptServer(t, func(c *wstest.Conn) {
		if srvHandshake(t, c) && srvWrite(t, c, wstest.Text("one")) && srvExpectClose(t, c, 1000, "goodbye") &&
			srvWrite(t, c, wstest.Text("after the break"), wstest.Close(1000, "")) {
			srvExpectEOF(t, c)
		}
	})
	ws := newTestWS(t, srv.URL())
	l := &evLog{}
	for ev := range ws.Events(context.Background()) {
		l.record(ws, ev)
		if _, ok := ev.(*events.Text); ok {
			break
		}
	}
	waitScript(t, done)
	expectLines(t, l, seq(opening(srv.URL()), []string{`text "one"`}))
	if ws.State() != StateIdle {
		t.Errorf("State after the loop = %v, want idle", ws.State())
	}
	srv.Close()
	goleak.VerifyNone(t)
}

// TestSessionEventsBreakNoReply: leaving an Events loop is bounded by the
// close timeout when the server never answers the close.
func TestSessionEventsBreakNoReply(t *testing.T) {
	const timeout = 300 * time.Millisecond
	srv, done := scriptServer(t, func(c *wstest.Conn) {
		if srvHandshake(t, c) && srvWrite(t, c, wstest.Text("one")) && srvExpectClose(t, c, 1000, "goodbye") {
			srvDrain(t, c)
		}
	})
	ws := newTestWS(t, srv.URL(), WithCloseTimeout(timeout))
	var left time.Time
	for ev := range ws.Events(context.Background()) {
		if _, ok := ev.(*events.Text); ok {
			left = time.Now()
			break
		}
	}
	elapsed := time.Since(left)
	waitScript(t, done)
	if elapsed < timeout-10*time.Millisecond || elapsed > timeout+5*time.Second {
		t.Errorf("the loop returned %v after the break, want about %v", elapsed, timeout)
	}
}

// TestSessionCloseDuringHandshake: Close from OnConnected is sent once the
// session is ready.
func TestSessionCloseDuringHandshake(t *testing.T) {
	srv, done := scriptServer(t, func(c *wstest.Conn) {
		if srvHandshake(t, c) && srvExpectClose(t, c, 1000, "early") && srvWrite(t, c, wstest.Close(1000, "early ack")) {
			srvExpectEOF(t, c)
		}
	})
	ws := newTestWS(t, srv.URL())
	l := &evLog{hook: func(ws *WebSocket, ev events.Event) {
		if _, ok := ev.(*events.Connected); ok {
			if err := ws.SendText("too soon"); !errors.Is(err, ErrNotConnected) {
				t.Errorf("SendText in OnConnected = %v, want ErrNotConnected", err)
			}
			if err := ws.Close(1000, "early"); err != nil {
				t.Errorf("Close in OnConnected = %v, want nil", err)
			}
			if err := ws.Close(1000, "twice"); !errors.Is(err, ErrClosing) {
				t.Errorf("second Close in OnConnected = %v, want ErrClosing", err)
			}
		}
	}}
	err := ws.Run(context.Background(), l.handler())
	waitScript(t, done)
	if err != nil {
		t.Fatalf("Run = %v, want nil", err)
	}
	expectLines(t, l, seq(opening(srv.URL()), []string{`closed 1000 "early ack"`, "disconnected graceful=true err=false"}))
}

// TestSessionConnectFail: no server, and a host that does not resolve.
func TestSessionConnectFail(t *testing.T) {
	t.Run("connection refused", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		url := "ws://" + ln.Addr().String() + "/"
		ln.Close()
		ws := newTestWS(t, url)
		l := &evLog{}
		err = ws.Run(context.Background(), l.handler())
		var ce *ConnectError
		if !errors.As(err, &ce) || ce.URL != url {
			t.Fatalf("Run = %v, want a *ConnectError for %s", err, url)
		}
		expectLines(t, l, []string{"connecting " + url, "connect_fail"})
		if cf := lastEvent[*events.ConnectFail](t, l); cf.Err == nil || cf.Reason == "" || cf.URL != url {
			t.Errorf("ConnectFail = %+v, want URL, Reason and Err", cf)
		}
	})
	t.Run("DNS failure", func(t *testing.T) {
		const url = "ws://nonexistent.invalid/"
		ws := newTestWS(t, url, WithDialer(nxdomainDialer()), WithDialTimeout(5*time.Second))
		l := &evLog{}
		err := ws.Run(context.Background(), l.handler())
		var ce *ConnectError
		if !errors.As(err, &ce) {
			t.Fatalf("Run = %v, want a *ConnectError", err)
		}
		var de *net.DNSError
		if !errors.As(err, &de) || !de.IsNotFound {
			t.Errorf("Run = %v, want a *net.DNSError (not found)", err)
		}
		expectLines(t, l, []string{"connecting " + url, "connect_fail"})
	})
}

// TestSessionCoderServer runs sessions against a coder/websocket server.
func TestSessionCoderServer(t *testing.T) {
	serverErr := make(chan error, 1)
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			serverErr <- err
			return
		}
		defer c.CloseNow()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for {
			typ, p, err := c.Read(ctx)
			if err != nil {
				serverErr <- err
				return
			}
			if string(p) == "please close" {
				serverErr <- c.Close(4001, "bye")
				return
			}
			if err := c.Write(ctx, typ, p); err != nil {
				serverErr <- err
				return
			}
		}
	}))
	defer hs.Close()
	url := "ws://" + strings.TrimPrefix(hs.URL, "http://") + "/"

	t.Run("client close", func(t *testing.T) {
		ws := newTestWS(t, url)
		l := &evLog{hook: func(ws *WebSocket, ev events.Event) {
			var err error
			switch ev.(type) {
			case *events.Ready:
				err = ws.SendText("hi")
			case *events.Text:
				err = ws.SendBinary([]byte{0, 255})
			case *events.Binary:
				err = ws.Close(1000, "done")
			}
			if err != nil {
				t.Errorf("%s: %v", ev.Name(), err)
			}
		}}
		if err := ws.Run(context.Background(), l.handler()); err != nil {
			t.Fatalf("Run = %v, want nil", err)
		}
		if err := <-serverErr; websocket.CloseStatus(err) != 1000 {
			t.Errorf("server: %v, want close 1000", err)
		}
		expectLines(t, l, seq(opening(url), []string{
			`text "hi"`, `binary "\x00\xff"`, `closed 1000 "done"`, "disconnected graceful=true err=false",
		}))
	})
	t.Run("server close", func(t *testing.T) {
		ws := newTestWS(t, url)
		l := &evLog{hook: func(ws *WebSocket, ev events.Event) {
			if _, ok := ev.(*events.Ready); ok {
				if err := ws.SendText("please close"); err != nil {
					t.Errorf("SendText: %v", err)
				}
			}
		}}
		err := ws.Run(context.Background(), l.handler())
		var ce *CloseError
		if !errors.As(err, &ce) || *ce != (CloseError{Code: 4001, Reason: "bye"}) {
			t.Fatalf("Run = %v, want *CloseError{4001, bye}", err)
		}
		if err := <-serverErr; err != nil {
			t.Errorf("server Close: %v", err)
		}
		expectLines(t, l, seq(opening(url), []string{
			`closing 4001 "bye"`, `closed 4001 "bye"`, "disconnected graceful=true err=false",
		}))
	})
}
