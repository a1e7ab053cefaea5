package lomond

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/cenkalti/backoff/v4"
	"github.com/coder/websocket"
	"github.com/lomond-go/lomond/events"
	"github.com/lomond-go/lomond/internal/testkit"
	"github.com/lomond-go/lomond/internal/wstest"
	"go.uber.org/goleak"
)

// Tests of dispatcher.go: the event sequences of a session (Run and the
// Events range loop) against real in-process servers, scripted raw-bytes
// servers (internal/wstest) and coder/websocket servers, and how a session
// ends: a handler that panics, a range loop left early, a Stop from a
// handler, a server that hangs up during the handshake.

// pluginLog is a plugin (WithPlugins) that records every event it sees.
type pluginLog struct{ testkit.EventRecorder }

func (p *pluginLog) OnEvent(_ *WebSocket, ev events.Event) { p.Add(ev) }

// last returns the name of the last event recorded, or "".
func (p *pluginLog) last() string {
	ns := p.Names()
	if len(ns) == 0 {
		return ""
	}
	return ns[len(ns)-1]
}

// panicIn is a handler that panics in one of its methods, named by method.
type panicIn struct {
	BaseHandler
	method  string
	panics  atomic.Int32
	onPanic func(n int32) // called before each panic with the panic's number
}

func (h *panicIn) hit(method string) {
	if method != h.method {
		return
	}
	n := h.panics.Add(1)
	if h.onPanic != nil {
		h.onPanic(n)
	}
	panic("boom in " + method)
}

func (h *panicIn) OnConnectFail(*WebSocket, *events.ConnectFail)     { h.hit("OnConnectFail") }
func (h *panicIn) OnRejected(*WebSocket, *events.Rejected)           { h.hit("OnRejected") }
func (h *panicIn) OnClosing(*WebSocket, *events.Closing)             { h.hit("OnClosing") }
func (h *panicIn) OnClosed(*WebSocket, *events.Closed)               { h.hit("OnClosed") }
func (h *panicIn) OnProtocolError(*WebSocket, *events.ProtocolError) { h.hit("OnProtocolError") }
func (h *panicIn) OnDisconnected(*WebSocket, *events.Disconnected)   { h.hit("OnDisconnected") }

// endingPanic is a handler method of a session's end, with a server that
// leads the session there.
type endingPanic struct {
	method    string
	connected bool // the session reaches Connected: Disconnected is its last event
	url       func(t *testing.T) string
}

// endingPanics are the handler methods of a session's end.
func endingPanics() []endingPanic {
	// serve starts a server playing script on every connection.
	serve := func(script func(t *testing.T, c *wstest.Conn)) func(t *testing.T) string {
		return func(t *testing.T) string {
			srv := wstest.NewServer(t, func(c *wstest.Conn) { script(t, c) })
			return srv.URL()
		}
	}
	serverCloses := func(t *testing.T, c *wstest.Conn) {
		if !testkit.Handshake(t, c) || !testkit.Write(t, c, wstest.Close(StatusNormal, "bye")) {
			return
		}
		_, _, _ = c.ExpectClose()
	}
	return []endingPanic{
		{"OnConnectFail", false, func(t *testing.T) string {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			addr := ln.Addr().String()
			ln.Close() // nobody listens there now: the dial is refused
			return "ws://" + addr + "/"
		}},
		{"OnRejected", true, serve(func(t *testing.T, c *wstest.Conn) {
			if _, err := c.ReadRequest(); err == nil {
				_ = c.Reject(http.StatusForbidden, nil, "no")
			}
		})},
		{"OnClosing", true, serve(func(t *testing.T, c *wstest.Conn) {
			// The handler panics before the reply: the reply says so.
			if !testkit.Handshake(t, c) || !testkit.Write(t, c, wstest.Close(StatusNormal, "bye")) {
				return
			}
			code, _, err := c.ExpectClose()
			if errors.Is(err, net.ErrClosed) {
				return // the test ended first: Persist had returned
			}
			if err != nil {
				t.Errorf("server: waiting for the close reply: %v", err)
			} else if code != StatusInternalError {
				t.Errorf("server: close reply %d after the handler panicked in OnClosing, want %d", code, StatusInternalError)
			}
		})},
		{"OnClosed", true, serve(serverCloses)},
		{"OnProtocolError", true, serve(func(t *testing.T, c *wstest.Conn) {
			if !testkit.Handshake(t, c) || !testkit.Write(t, c, wstest.Text("bad \xff text")) {
				return
			}
			if code, _, err := c.ExpectClose(); err == nil {
				_ = c.WriteFrame(wstest.Close(code, ""))
			}
		})},
		{"OnDisconnected", true, serve(serverCloses)},
	}
}

func TestHandlerPanicAtTheEnd(t *testing.T) {
	for _, tc := range endingPanics() {
		t.Run("RunReturnsPanicErrorFor"+tc.method, func(t *testing.T) {
			plug := &pluginLog{}
			ws := newTestWS(t, tc.url(t), WithPlugins(plug), WithCloseTimeout(2*time.Second))
			h := &panicIn{method: tc.method}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			err := ws.Run(ctx, h)
			var pe *PanicError
			if !errors.As(err, &pe) {
				t.Errorf("Run = %v after a panic in %s, want a *PanicError", err, tc.method)
			}
			if n := h.panics.Load(); n != 1 {
				t.Errorf("%d panics, want 1", n)
			}
			if !errors.As(ws.Err(), &pe) {
				t.Errorf("Err() = %v, want a *PanicError", ws.Err())
			}
			if !tc.connected {
				if n := plug.Count("disconnected"); n != 0 {
					t.Errorf("a session that never connected ended with %d Disconnected: %q", n, plug.Names())
				}
				return
			}
			if n := plug.Count("disconnected"); n != 1 || plug.last() != "disconnected" {
				t.Errorf("the plugin saw %q: want exactly one Disconnected, last", plug.Names())
			}
		})
	}
	for _, tc := range endingPanics() {
		t.Run("PersistStopsAtTheFirstPanicIn"+tc.method, func(t *testing.T) {
			ws := newTestWS(t, tc.url(t), WithCloseTimeout(2*time.Second))
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			h := &panicIn{method: tc.method, onPanic: func(n int32) {
				if n >= 3 {
					cancel() // Persist went on after a panic: no need for more
				}
			}}
			err := ws.Persist(ctx, h, WithBackOff(func() backoff.BackOff { return &backoff.ConstantBackOff{Interval: time.Millisecond} }))
			var pe *PanicError
			if !errors.As(err, &pe) {
				t.Errorf("Persist = %v after a panic in %s, want a *PanicError", err, tc.method)
			}
			if n := h.panics.Load(); n != 1 {
				t.Errorf("%d panics before Persist returned, want 1 (Persist stops at the first)", n)
			}
		})
	}
}

// echoCloseServer accepts every connection, reads until the client's close
// and echoes it.
func echoCloseServer(t *testing.T) *wstest.Server {
	return wstest.NewServer(t, func(c *wstest.Conn) {
		if !testkit.Handshake(t, c) {
			return
		}
		for {
			f, err := c.ReadFrame()
			if err != nil {
				return
			}
			if f.Opcode == wstest.OpClose {
				_ = c.WriteFrame(wstest.Frame{Fin: true, Opcode: wstest.OpClose, Payload: f.Payload})
				return
			}
		}
	})
}

func TestRangeLoopLeftEarlyEndsThePluginsSession(t *testing.T) {
	check := func(t *testing.T, plug *pluginLog, ws *WebSocket) {
		t.Helper()
		if plug.Count("closed") != 1 || plug.Count("disconnected") != 1 || plug.last() != "disconnected" {
			t.Errorf("the plugin saw %q: want the session's end (closed, then disconnected last)", plug.Names())
		}
		if n := plug.Count("connecting"); n != 1 {
			t.Errorf("%d sessions, want 1 (the loop was left)", n)
		}
		if err := ws.Err(); err != nil {
			t.Errorf("Err() = %v after leaving the loop, want nil", err)
		}
	}
	// breakOnReady ranges over the events of loop (ws.Events or
	// ws.PersistEvents) against an echoCloseServer, leaves the loop at Ready
	// and checks the plugin's view of the session.
	breakOnReady := func(t *testing.T, loop func(ws *WebSocket) iter.Seq[events.Event]) {
		t.Helper()
		plug := &pluginLog{}
		ws := newTestWS(t, echoCloseServer(t).URL(), WithPlugins(plug))
		for ev := range loop(ws) {
			if _, ok := ev.(*events.Ready); ok {
				break
			}
		}
		check(t, plug, ws)
	}
	t.Run("BreakOnReadyInEvents", func(t *testing.T) {
		breakOnReady(t, func(ws *WebSocket) iter.Seq[events.Event] { return ws.Events(context.Background()) })
	})
	t.Run("BreakOnReadyInPersistEvents", func(t *testing.T) {
		breakOnReady(t, func(ws *WebSocket) iter.Seq[events.Event] { return ws.PersistEvents(context.Background()) })
	})
}

// outcomeLog is a send observer that records, per text message, the results
// reported for it in order. On the Queued report of the message named slow
// it waits (at most a second) for that message's Sent report: an observer
// slow to hear of the queueing must still hear of it first.
type outcomeLog struct {
	slow     string
	inSlow   chan struct{} // closed when the slow Queued report began
	slowSent chan struct{} // closed when the slow message is reported Sent
	mu       sync.Mutex
	results  map[string][]events.OutboundResult
}

func newOutcomeLog(slow string) *outcomeLog {
	return &outcomeLog{slow: slow, inSlow: make(chan struct{}), slowSent: make(chan struct{}),
		results: map[string][]events.OutboundResult{}}
}

func (o *outcomeLog) OnSend(_ *WebSocket, ev *events.Outbound) {
	if ev.Kind != events.KindText {
		return
	}
	msg := string(ev.Data)
	if msg == o.slow && ev.Result == events.Queued {
		close(o.inSlow)
		select {
		case <-o.slowSent:
		case <-time.After(time.Second):
		}
	}
	o.mu.Lock()
	o.results[msg] = append(o.results[msg], ev.Result)
	o.mu.Unlock()
	if msg == o.slow && ev.Result == events.Sent {
		close(o.slowSent)
	}
}

// sent reports how many messages were reported Sent.
func (o *outcomeLog) sent() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	n := 0
	for _, rs := range o.results {
		for _, r := range rs {
			if r == events.Sent {
				n++
			}
		}
	}
	return n
}

func TestSessionEndEdges(t *testing.T) {
	t.Run("StopInOnClosingRepliesWithStopsCode", func(t *testing.T) {
		srv, done := testkit.ScriptServer(t, func(c *wstest.Conn) {
			if testkit.Handshake(t, c) && testkit.Write(t, c, wstest.Close(StatusNormal, "bye")) {
				testkit.ExpectClose(t, c, 4000, "stopping")
			}
		})
		ws := newTestWS(t, srv.URL())
		h := HandlerFunc(func(ws *WebSocket, ev events.Event) {
			if _, ok := ev.(*events.Closing); ok {
				if err := ws.Stop(4000, "stopping"); err != nil {
					t.Errorf("Stop in OnClosing = %v", err)
				}
			}
		})
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := ws.Persist(ctx, h); err != nil {
			t.Errorf("Persist = %v after Stop, want nil", err)
		}
		testkit.WaitScript(t, done)
		if n := srv.Conns(); n != 1 {
			t.Errorf("%d connections, want 1 (Stop ends Persist)", n)
		}
	})

	t.Run("LeavingALoopOnClosingIsACleanEnd", func(t *testing.T) {
		srv, done := testkit.ScriptServer(t, func(c *wstest.Conn) {
			if testkit.Handshake(t, c) && testkit.Write(t, c, wstest.Close(StatusNormal, "bye")) {
				_, _, _ = c.ExpectClose()
			}
		})
		ws := newTestWS(t, srv.URL())
		left := false
		for ev := range ws.Events(context.Background()) {
			if _, ok := ev.(*events.Closing); ok {
				left = true
				break
			}
		}
		testkit.WaitScript(t, done)
		if !left {
			t.Fatal("no Closing event")
		}
		if err := ws.Err(); err != nil {
			t.Errorf("Err() = %v after leaving the loop on Closing, want nil (the caller chose the end)", err)
		}
	})

	t.Run("EventsWithANilContextYieldsConnectFail", func(t *testing.T) {
		ws, err := New("ws://127.0.0.1:1/", WithoutProxy())
		if err != nil {
			t.Fatal(err)
		}
		var nilCtx context.Context
		var evs []events.Event
		for ev := range ws.Events(nilCtx) {
			evs = append(evs, ev)
		}
		if len(evs) != 1 {
			t.Fatalf("Events(nil) yielded %d events, want one ConnectFail", len(evs))
		}
		cf, ok := evs[0].(*events.ConnectFail)
		if !ok {
			t.Fatalf("Events(nil) yielded %s, want ConnectFail", evs[0].Name())
		}
		if !errors.Is(cf.Err, ErrInvalidOption) || !strings.Contains(cf.Err.Error(), "nil context") {
			t.Errorf("ConnectFail.Err = %v, want an ErrInvalidOption saying \"nil context\"", cf.Err)
		}
		if got := ws.Err(); got == nil || !errors.Is(got, ErrInvalidOption) {
			t.Errorf("Err() = %v, want the nil context error", got)
		}
	})

	t.Run("QueuedIsReportedBeforeSentForEveryMessage", func(t *testing.T) {
		srv := echoCloseServer(t)
		const slow = "slow observer's message"
		outs := newOutcomeLog(slow)
		ws := newTestWS(t, srv.URL(), WithSendQueue(10000, RejectNewest), WithPlugins(outs))

		// The slow message is queued before any session; its Queued report
		// is in progress while the session becomes ready.
		slowDone := make(chan error, 1)
		go func() { slowDone <- ws.SendText(slow) }()
		<-outs.inSlow

		// More senders race the session becoming ready.
		const senders, each = 4, 50
		var wg sync.WaitGroup
		start := make(chan struct{})
		for g := range senders {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				for i := range each {
					if err := ws.SendText(fmt.Sprintf("sender %d message %d", g, i)); err != nil {
						t.Errorf("SendText: %v", err)
						return
					}
				}
			}()
		}
		runDone := make(chan error, 1)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		go func() {
			runDone <- ws.Run(ctx, HandlerFunc(func(*WebSocket, events.Event) {}))
		}()
		close(start)
		wg.Wait()
		if err := <-slowDone; err != nil {
			t.Errorf("SendText(slow) = %v", err)
		}
		testkit.Eventually(t, "every message is reported Sent", func() bool { return outs.sent() >= senders*each+1 })
		if err := ws.Close(StatusNormal, "done"); err != nil {
			t.Errorf("Close = %v", err)
		}
		if err := <-runDone; err != nil {
			t.Errorf("Run = %v", err)
		}
		outs.mu.Lock()
		defer outs.mu.Unlock()
		if len(outs.results) != senders*each+1 {
			t.Errorf("reports for %d messages, want %d", len(outs.results), senders*each+1)
		}
		bad := 0
		for msg, rs := range outs.results {
			queuedAt := slices.Index(rs, events.Queued)
			if queuedAt > 0 {
				if bad++; bad <= 3 {
					t.Errorf("message %q: reports %v: Queued after %v", msg, rs, rs[0])
				}
			}
			if rs[len(rs)-1] != events.Sent {
				t.Errorf("message %q: reports %v, want Sent last", msg, rs)
			}
		}
		if bad > 3 {
			t.Errorf("... and %d more messages reported Queued late", bad-3)
		}
	})

	t.Run("ServerHangsUpAfterReadingTheUpgradeRequest", func(t *testing.T) {
		srv, done := testkit.ScriptServer(t, func(c *wstest.Conn) {
			if _, err := c.ReadRequest(); err != nil {
				t.Errorf("server: reading the upgrade request: %v", err)
			}
			// Return: the connection closes with no response.
		})
		ws := newTestWS(t, srv.URL())
		log := new(testkit.EventRecorder)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		err := ws.Run(ctx, recording(log, nil))
		testkit.WaitScript(t, done)
		if !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("Run = %v, want an error wrapping io.ErrUnexpectedEOF", err)
		}
		if err == nil || !strings.Contains(err.Error(), "before the upgrade response") {
			t.Errorf("Run = %v, want it to say the connection closed before the upgrade response", err)
		}
		if d := testkit.Last[*events.Disconnected](t, log); d.Reason != "connection lost" || d.Graceful {
			t.Errorf("Disconnected{Reason: %q, Graceful: %v}, want \"connection lost\", not graceful", d.Reason, d.Graceful)
		}
	})
}

// TestSlowHandlerDuringCloseLosesNothing: a handler that is busy for longer
// than the close timeout, after calling Close, while the server's echo and
// close reply are already waiting unread, must not turn into a close timeout.
// The contract: a slow handler delays events but must not stall or fail the
// close handshake, and messages before the close reply are delivered.
func TestSlowHandlerDuringCloseLosesNothing(t *testing.T) {
	url := wstest.NewServer(t, wstest.Echo).URL()
	ws, err := New(url, WithPollInterval(0), WithPingRate(0),
		WithCloseTimeout(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var names []string
	var busy time.Duration
	err = ws.Run(ctx, HandlerFunc(func(ws *WebSocket, ev events.Event) {
		names = append(names, ev.Name())
		if _, ok := ev.(*events.Ready); ok {
			_ = ws.SendText("x")
			_ = ws.Close(StatusNormal, "bye")
			// Slow on purpose: the slowness is what is tested, nothing is
			// synchronised on it. The echo and the close reply arrive in
			// well under 300 ms on loopback and wait unread meanwhile.
			start := time.Now()
			<-time.After(300 * time.Millisecond)
			busy = time.Since(start)
		}
	}))
	if err != nil {
		t.Errorf("Run = %v after a handler busy for %v; want nil (the reply was waiting unread)", err, busy)
	}
	want := []string{"connecting", "connected", "ready", "text", "closed", "disconnected"}
	if len(names) != len(want) {
		t.Fatalf("events = %v, want %v", names, want)
	}
	for i := range want {
		if names[i] != want[i] {
			t.Fatalf("events = %v, want %v", names, want)
		}
	}
}

// TestSendInDisconnectedIsNotConnected: after Disconnected the session has
// ended, so a send from the Disconnected handler returns ErrNotConnected,
// whether the session ended with a completed close or a dropped connection.
func TestSendInDisconnectedIsNotConnected(t *testing.T) {
	cases := map[string]func(c *wstest.Conn){
		"completed close": func(c *wstest.Conn) {
			if _, err := c.Handshake(); err == nil {
				_ = c.WriteFrame(wstest.Close(StatusNormal, "bye"))
				_, _, _ = c.ExpectClose()
			}
		},
		"client close": testkit.AnswerClose,
		"dropped TCP": func(c *wstest.Conn) {
			_, _ = c.Handshake()
		},
	}
	for name, script := range cases {
		t.Run(name, func(t *testing.T) {
			srv := wstest.NewServer(t, script)
			var sendErr, pingErr, closeErr error
			seen := false
			rec, _ := runRecorded(t, mustNew(t, srv.URL(), WithoutProxy(), WithPollInterval(0)), func(ws *WebSocket, ev events.Event) {
				switch ev.(type) {
				case *events.Ready:
					if name == "client close" {
						_ = ws.Close(StatusNormal, "bye")
					}
				case *events.Disconnected:
					seen = true
					sendErr, pingErr, closeErr = ws.SendText("late"), ws.SendPing(nil), ws.Close(StatusNormal, "")
				}
			})
			if !seen {
				t.Fatalf("no Disconnected; events %v", rec.Names())
			}
			for what, err := range map[string]error{"SendText": sendErr, "SendPing": pingErr, "Close": closeErr} {
				if !errors.Is(err, ErrNotConnected) {
					t.Errorf("%s in OnDisconnected = %v, want ErrNotConnected", what, err)
				}
			}
		})
	}
}

// TestPanicBeforeReadyEndsWithDisconnected: a panic in OnConnected (or
// OnConnecting) ends the session like a panic in OnReady: Disconnected is
// still delivered and Run returns the *PanicError.
func TestPanicBeforeReadyEndsWithDisconnected(t *testing.T) {
	for _, at := range []string{events.NameConnecting, events.NameConnected, events.NameReady} {
		t.Run(at, func(t *testing.T) {
			srv := wstest.NewServer(t, testkit.AnswerClose)
			rec, err := runRecorded(t, mustNew(t, srv.URL(), WithoutProxy(), WithCloseTimeout(2*time.Second)), func(_ *WebSocket, ev events.Event) {
				if ev.Name() == at {
					panic("test panic in " + at)
				}
			})
			var pe *PanicError
			if !errors.As(err, &pe) {
				t.Fatalf("Run = %v, want a *PanicError", err)
			}
			names := rec.Names()
			if len(names) == 0 || names[len(names)-1] != events.NameDisconnected {
				t.Errorf("events %v, want Disconnected last", names)
			}
		})
	}
}

// TestNoNetHTTPLogLines: nothing the client does writes to the standard
// logger; everything goes to WithLogger. A server that answers a rejected
// upgrade with more bytes than the response makes net/http log "Unsolicited
// response received on idle HTTP channel" to stderr.
func TestNoNetHTTPLogLines(t *testing.T) {
	var buf bytes.Buffer
	var mu sync.Mutex
	old := log.Writer()
	log.SetOutput(writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return buf.Write(p)
	}))
	defer log.SetOutput(old)
	srv := wstest.NewServer(t, func(c *wstest.Conn) {
		if _, err := c.ReadRequest(); err != nil {
			return
		}
		_ = c.WriteRaw([]byte("HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n" +
			"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"))
		<-c.Done()
	})
	for i := 0; i < 5; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		var rej *RejectedError
		err := mustNew(t, srv.URL(), WithoutProxy()).Run(ctx, HandlerFunc(func(*WebSocket, events.Event) {}))
		cancel()
		if !errors.As(err, &rej) {
			t.Fatalf("Run = %v, want a *RejectedError", err)
		}
	}
	// net/http's reader notices the extra bytes on its own goroutine; give
	// it a generous moment (it logs within microseconds when it does).
	deadline := time.Now().Add(500 * time.Millisecond)
	for time.Now().Before(deadline) {
		mu.Lock()
		n := buf.Len()
		mu.Unlock()
		if n > 0 {
			break
		}
		time.Sleep(10 * time.Millisecond) // polling a log buffer; nothing signals an absent line
	}
	mu.Lock()
	defer mu.Unlock()
	if s := buf.String(); strings.TrimSpace(s) != "" {
		t.Errorf("the client wrote to the standard logger:\n%s", s)
	}
}

type writerFunc func(p []byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// greetServer is a coder/websocket server that sends "hi" on every
// connection and then echoes until the client closes. It returns the ws://
// URL; the server is stopped when the test ends.
func greetServer(t *testing.T) string {
	t.Helper()
	var wg sync.WaitGroup
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		wg.Add(1)
		defer wg.Done()
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		ctx := context.Background()
		if c.Write(ctx, websocket.MessageText, []byte("hi")) != nil {
			return
		}
		for {
			typ, p, err := c.Read(ctx)
			if err != nil || c.Write(ctx, typ, p) != nil {
				return
			}
		}
	}))
	t.Cleanup(func() {
		srv.Close()
		wg.Wait()
	})
	return "ws" + strings.TrimPrefix(srv.URL, "http")
}

func loopWS(t *testing.T, url string) *WebSocket {
	t.Helper()
	ws, err := New(url, WithoutProxy(), WithPollInterval(0), WithPingRate(0), WithCloseTimeout(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	return ws
}

func TestLoopsAgreeOnBreak(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) }) // after the server's cleanup
	url := greetServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	fast := WithBackOff(func() backoff.BackOff { return &backoff.ConstantBackOff{Interval: time.Millisecond} })

	loops := map[string]func(ws *WebSocket) func(func(events.Event) bool){
		"Events":        func(ws *WebSocket) func(func(events.Event) bool) { return ws.Events(ctx) },
		"PersistEvents": func(ws *WebSocket) func(func(events.Event) bool) { return ws.PersistEvents(ctx, fast) },
	}
	for name, loop := range loops {
		t.Run(name, func(t *testing.T) {
			ws := loopWS(t, url)
			ws.setErr(errors.New("an earlier session's failure")) // must not survive the loop
			var got string
			for ev := range loop(ws) {
				if txt, ok := ev.(*events.Text); ok {
					got = txt.Text
					break
				}
			}
			if got != "hi" {
				t.Fatalf("the loop ended before the server's message (got %q); Err = %v", got, ws.Err())
			}
			if err := ws.Err(); err != nil {
				t.Errorf("Err after leaving the %s loop = %v, want nil", name, err)
			}
			if st := ws.State(); st != StateIdle {
				t.Errorf("State after the loop = %v, want idle", st)
			}
		})
	}
}

// TestLoopsReportTheirOwnEnd: a loop that ends by itself still reports why,
// so the nil after a break is not a lost error.
func TestLoopsReportTheirOwnEnd(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) }) // after the server's cleanup
	url := greetServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	ws := loopWS(t, url)
	for ev := range ws.Events(ctx) {
		if _, ok := ev.(*events.Text); ok {
			_ = ws.Close(4000, "") // the server echoes the code: a clean client close
		}
	}
	if err := ws.Err(); err != nil {
		t.Errorf("Err after a client close = %v, want nil", err)
	}

	// PersistEvents stopped by its retry policy: Err says so.
	for ev := range ws.PersistEvents(ctx, WithMaxAttempts(1)) {
		if _, ok := ev.(*events.Text); ok {
			_ = ws.Close(StatusNormal, "")
		}
	}
	if err := ws.Err(); !errors.Is(err, ErrMaxAttempts) {
		t.Errorf("Err after PersistEvents hit its attempt limit = %v, want ErrMaxAttempts", err)
	}
}

// TestPanicInLoopBodyOnTimerEvent: a panic in an Events loop body on a
// timer-fired event propagates as an ordinary panic (it was an unrecoverable
// "unlock of unlocked mutex"), and the session is closed.
func TestPanicInLoopBodyOnTimerEvent(t *testing.T) {
	srv, done := testkit.ScriptServer(t, func(c *wstest.Conn) {
		if testkit.Handshake(t, c) {
			testkit.ExpectClose(t, c, 1011, "handler panic")
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
	testkit.WaitScript(t, done)
	if recovered != "boom" {
		t.Errorf("recovered %v, want the loop body's panic", recovered)
	}
	if ws.State() != StateIdle {
		t.Errorf("state %v after the panic, want idle", ws.State())
	}
}

// echoSession is a normal session: the server sends a text and a binary,
// the client echoes them, and the server closes with 4001 "bye".
func echoSession(t *testing.T) func(c *wstest.Conn) {
	return func(c *wstest.Conn) {
		if !testkit.Handshake(t, c) || !testkit.Write(t, c, wstest.Text("hello"), wstest.Binary([]byte{1, 2, 3})) {
			return
		}
		if !testkit.ExpectMessage(t, c, wstest.OpText, "echo:hello") ||
			!testkit.ExpectMessage(t, c, wstest.OpBinary, "\x01\x02\x03") {
			return
		}
		if testkit.Write(t, c, wstest.Close(4001, "bye")) && testkit.ExpectClose(t, c, 4001, "bye") {
			testkit.ExpectEOF(t, c)
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
	return testkit.Seq(testkit.Opening(url), []string{
		`text "hello"`,
		`binary "\x01\x02\x03"`,
		`closing 4001 "bye"`,
		`closed 4001 "bye"`,
		"disconnected graceful=true err=false",
	})
}

// TestSessionNormal runs a whole session with Run and checks every event.
func TestSessionNormal(t *testing.T) {
	srv, done := testkit.ScriptServer(t, echoSession(t))
	ws := newTestWS(t, srv.URL())
	l := new(testkit.EventRecorder)
	lHook := echoBack(t)
	err := ws.Run(context.Background(), recording(l, lHook))
	testkit.WaitScript(t, done)
	var ce *CloseError
	if !errors.As(err, &ce) || ce.Code != 4001 || ce.Reason != "bye" {
		t.Fatalf("Run = %v, want *CloseError{4001, bye}", err)
	}
	if CloseStatus(err) != 4001 {
		t.Errorf("CloseStatus = %d, want 4001", CloseStatus(err))
	}
	testkit.ExpectLines(t, l, echoSessionLines(srv.URL()))
	ready := testkit.Last[*events.Ready](t, l)
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
	srv, done := testkit.ScriptServer(t, echoSession(t))
	ws := newTestWS(t, srv.URL())

	byRun := new(testkit.EventRecorder)
	byRunHook := echoBack(t)
	_ = ws.Run(context.Background(), recording(byRun, byRunHook))
	testkit.WaitScript(t, done)
	byRange := new(testkit.EventRecorder)
	byRangeHook := echoBack(t)
	rangeEvents(context.Background(), ws, byRange, byRangeHook)
	testkit.WaitScript(t, done)

	want := echoSessionLines(srv.URL())
	testkit.ExpectLines(t, byRun, want)
	testkit.ExpectLines(t, byRange, want)
	if srv.Conns() != 2 {
		t.Errorf("server saw %d connections, want 2", srv.Conns())
	}
}

// TestSessionServerClose: the server closes with 4001 "bye"; the client
// echoes the close after the Closing handler (which may still send) and Run
// returns a *CloseError.
func TestSessionServerClose(t *testing.T) {
	srv, done := testkit.ScriptServer(t, func(c *wstest.Conn) {
		if testkit.Handshake(t, c) && testkit.Write(t, c, wstest.Close(4001, "bye")) && testkit.ExpectClose(t, c, 4001, "bye") {
			testkit.ExpectEOF(t, c)
		}
	})
	lHook := func(ws *WebSocket, ev events.Event) {
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
	}
	l, err := runAgainstScript(t, srv, done, lHook)
	var ce *CloseError
	if !errors.As(err, &ce) || *ce != (CloseError{Code: 4001, Reason: "bye"}) {
		t.Fatalf("Run = %v, want *CloseError{4001, bye}", err)
	}
	testkit.ExpectLines(t, l, testkit.Seq(testkit.Opening(srv.URL()), []string{
		`closing 4001 "bye"`, `closed 4001 "bye"`, "disconnected graceful=true err=false",
	}))
}

// TestSessionServerCloseNoStatus: a close frame with no payload is code
// 1005, and the echo carries no payload either.
func TestSessionServerCloseNoStatus(t *testing.T) {
	srv, done := testkit.ScriptServer(t, func(c *wstest.Conn) {
		if testkit.Handshake(t, c) && testkit.Write(t, c, wstest.Close(0, "")) && testkit.ExpectClose(t, c, 0, "") {
			testkit.ExpectEOF(t, c)
		}
	})
	l, err := runAgainstScript(t, srv, done, nil)
	var ce *CloseError
	if !errors.As(err, &ce) || *ce != (CloseError{Code: StatusNoStatus}) {
		t.Fatalf("Run = %v, want *CloseError{1005}", err)
	}
	testkit.ExpectLines(t, l, testkit.Seq(testkit.Opening(srv.URL()), []string{
		`closing 1005 ""`, `closed 1005 ""`, "disconnected graceful=true err=false",
	}))
}

// TestSessionClientCloseLossless: after the client's close frame, every
// message the server sends before its close reply is delivered, and the
// client sends nothing after its close frame.
func TestSessionClientCloseLossless(t *testing.T) {
	srv, done := testkit.ScriptServer(t, func(c *wstest.Conn) {
		if !testkit.Handshake(t, c) || !testkit.ExpectClose(t, c, 1000, "client bye") {
			return
		}
		var frames []wstest.Frame
		for i := range 5 {
			frames = append(frames, wstest.Text(fmt.Sprintf("late %d", i)))
		}
		for _, f := range frames {
			if !testkit.Write(t, c, f) {
				return
			}
		}
		if testkit.Write(t, c, wstest.Close(4002, "ack")) {
			testkit.ExpectEOF(t, c)
		}
	})
	lHook := func(ws *WebSocket, ev events.Event) {
		if _, ok := ev.(*events.Ready); ok {
			if err := ws.Close(1000, "client bye"); err != nil {
				t.Errorf("Close: %v", err)
			}
		}
	}
	l, err := runAgainstScript(t, srv, done, lHook)
	if err != nil {
		t.Fatalf("Run = %v, want nil", err)
	}
	testkit.ExpectLines(t, l, testkit.Seq(testkit.Opening(srv.URL()), []string{
		`text "late 0"`, `text "late 1"`, `text "late 2"`, `text "late 3"`, `text "late 4"`,
		`closed 4002 "ack"`, "disconnected graceful=true err=false",
	}))
}

// TestSessionSendErrors checks what sends and Close return in each phase.
func TestSessionSendErrors(t *testing.T) {
	srv, done := testkit.ScriptServer(t, testkit.AnswerClientClose(t, 1000, "bye", 1000, "bye"))
	ws := newTestWS(t, srv.URL())
	if err := ws.SendText("x"); !errors.Is(err, ErrNotConnected) {
		t.Errorf("SendText before Run = %v, want ErrNotConnected", err)
	}
	if err := ws.Close(1000, ""); !errors.Is(err, ErrNotConnected) {
		t.Errorf("Close before Run = %v, want ErrNotConnected", err)
	}
	l := new(testkit.EventRecorder)
	lHook := func(ws *WebSocket, ev events.Event) {
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
	}
	err := ws.Run(context.Background(), recording(l, lHook))
	testkit.WaitScript(t, done)
	if err != nil {
		t.Fatalf("Run = %v, want nil", err)
	}
	testkit.ExpectLines(t, l, testkit.Seq(testkit.Opening(srv.URL()), []string{`closed 1000 "bye"`, "disconnected graceful=true err=false"}))
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
		srv, done := testkit.ScriptServer(t, func(c *wstest.Conn) {
			if !testkit.Handshake(t, c) || !testkit.ExpectMessage(t, c, wstest.OpPing, "are you there") ||
				!testkit.Write(t, c, wstest.Pong([]byte("are you there"))) ||
				!testkit.ExpectMessage(t, c, wstest.OpPong, "heartbeat") {
				return
			}
			if testkit.Write(t, c, wstest.Close(1000, "")) && testkit.ExpectClose(t, c, 1000, "") {
				testkit.ExpectEOF(t, c)
			}
		})
		lHook := func(ws *WebSocket, ev events.Event) {
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
		}
		l, err := runAgainstScript(t, srv, done, lHook)
		if CloseStatus(err) != 1000 {
			t.Fatalf("Run = %v, want *CloseError 1000", err)
		}
		testkit.ExpectLines(t, l, testkit.Seq(testkit.Opening(srv.URL()), []string{
			`pong "are you there" rtt=0s`,
			`closing 1000 ""`, `closed 1000 ""`, "disconnected graceful=true err=false",
		}))
	})

	// serverPing: the server pings; the client sends a text from OnPing. The
	// next frame the server reads shows whether a pong went out first.
	serverPing := func(t *testing.T, autoPong bool) {
		srv, done := testkit.ScriptServer(t, func(c *wstest.Conn) {
			if !testkit.Handshake(t, c) || !testkit.Write(t, c, wstest.Ping([]byte("ping-data"))) {
				return
			}
			if autoPong && !testkit.ExpectMessage(t, c, wstest.OpPong, "ping-data") {
				return
			}
			if !testkit.ExpectMessage(t, c, wstest.OpText, "saw ping") {
				return
			}
			if testkit.Write(t, c, wstest.Close(1000, "")) && testkit.ExpectClose(t, c, 1000, "") {
				testkit.ExpectEOF(t, c)
			}
		})
		lHook := func(ws *WebSocket, ev events.Event) {
			if _, ok := ev.(*events.Ping); ok {
				if err := ws.SendText("saw ping"); err != nil {
					t.Errorf("SendText: %v", err)
				}
			}
		}
		l, err := runAgainstScript(t, srv, done, lHook, WithAutoPong(autoPong))
		if CloseStatus(err) != 1000 {
			t.Fatalf("Run = %v, want *CloseError 1000", err)
		}
		testkit.ExpectLines(t, l, testkit.Seq(testkit.Opening(srv.URL()), []string{
			`ping "ping-data"`,
			`closing 1000 ""`, `closed 1000 ""`, "disconnected graceful=true err=false",
		}))
	}
	t.Run("server ping auto-pong", func(t *testing.T) { serverPing(t, true) })
	t.Run("server ping no auto-pong", func(t *testing.T) { serverPing(t, false) })

	t.Run("server ping inside a fragmented message", func(t *testing.T) {
		srv, done := testkit.ScriptServer(t, func(c *wstest.Conn) {
			if !testkit.Handshake(t, c) || !testkit.Write(t, c,
				wstest.Frame{Fin: false, Opcode: wstest.OpText, Payload: []byte("first half, ")},
				wstest.Ping([]byte("mid")),
				wstest.Frame{Fin: true, Opcode: wstest.OpContinuation, Payload: []byte("second half")}) {
				return
			}
			if testkit.ExpectMessage(t, c, wstest.OpPong, "mid") && testkit.Write(t, c, wstest.Close(1000, "")) &&
				testkit.ExpectClose(t, c, 1000, "") {
				testkit.ExpectEOF(t, c)
			}
		})
		l, err := runAgainstScript(t, srv, done, nil)
		if CloseStatus(err) != 1000 {
			t.Fatalf("Run = %v, want *CloseError 1000", err)
		}
		testkit.ExpectLines(t, l, testkit.Seq(testkit.Opening(srv.URL()), []string{
			`ping "mid"`, `text "first half, second half"`,
			`closing 1000 ""`, `closed 1000 ""`, "disconnected graceful=true err=false",
		}))
	})

	t.Run("unsolicited server pong", func(t *testing.T) {
		srv, done := testkit.ScriptServer(t, func(c *wstest.Conn) {
			if testkit.Handshake(t, c) && testkit.Write(t, c, wstest.Pong([]byte("tick")), wstest.Close(1000, "")) &&
				testkit.ExpectClose(t, c, 1000, "") {
				testkit.ExpectEOF(t, c)
			}
		})
		l, err := runAgainstScript(t, srv, done, nil)
		if CloseStatus(err) != 1000 {
			t.Fatalf("Run = %v, want *CloseError 1000", err)
		}
		testkit.ExpectLines(t, l, testkit.Seq(testkit.Opening(srv.URL()), []string{
			`pong "tick" rtt=0s`,
			`closing 1000 ""`, `closed 1000 ""`, "disconnected graceful=true err=false",
		}))
	})
}

// TestSessionCloseTimeout: the server never answers the client's close.
func TestSessionCloseTimeout(t *testing.T) {
	const timeout = 300 * time.Millisecond
	srv, done := testkit.ScriptServer(t, func(c *wstest.Conn) {
		if testkit.Handshake(t, c) && testkit.ExpectClose(t, c, 1000, "bye") {
			testkit.Drain(t, c) // no reply: wait for the client to drop the connection
		}
	})
	ws := newTestWS(t, srv.URL(), WithCloseTimeout(timeout))
	var closedAt time.Time
	l := new(testkit.EventRecorder)
	lHook := func(ws *WebSocket, ev events.Event) {
		if _, ok := ev.(*events.Ready); ok {
			closedAt = time.Now()
			if err := ws.Close(1000, "bye"); err != nil {
				t.Errorf("Close: %v", err)
			}
		}
	}
	err := ws.Run(context.Background(), recording(l, lHook))
	testkit.WaitScript(t, done)
	elapsed := time.Since(closedAt)
	if !errors.Is(err, ErrCloseTimeout) {
		t.Fatalf("Run = %v, want ErrCloseTimeout", err)
	}
	if elapsed < timeout-10*time.Millisecond || elapsed > timeout+5*time.Second {
		t.Errorf("Run returned %v after Close, want about %v", elapsed, timeout)
	}
	testkit.ExpectLines(t, l, testkit.Seq(testkit.Opening(srv.URL()), []string{"disconnected graceful=false err=true"}))
	if d := testkit.Last[*events.Disconnected](t, l); !errors.Is(d.Err, ErrCloseTimeout) {
		t.Errorf("Disconnected.Err = %v, want ErrCloseTimeout", d.Err)
	}
}

// TestSessionTCPDrop: the server drops the connection mid-session, and
// before its handshake response.
func TestSessionTCPDrop(t *testing.T) {
	t.Run("mid-session", func(t *testing.T) {
		srv, done := testkit.ScriptServer(t, func(c *wstest.Conn) {
			if testkit.Handshake(t, c) {
				testkit.Write(t, c, wstest.Text("last words"))
			}
		}) // the script returns: the connection is closed with no close frame
		l, err := runAgainstScript(t, srv, done, nil)
		if err == nil || CloseStatus(err) != -1 {
			t.Fatalf("Run = %v, want a transport error", err)
		}
		testkit.ExpectLines(t, l, testkit.Seq(testkit.Opening(srv.URL()), []string{`text "last words"`, "disconnected graceful=false err=true"}))
	})
	t.Run("before the response", func(t *testing.T) {
		srv, done := testkit.ScriptServer(t, func(c *wstest.Conn) {
			if _, err := c.ReadRequest(); err != nil {
				t.Errorf("server: %v", err)
			}
		})
		l, err := runAgainstScript(t, srv, done, nil)
		var re *RejectedError
		if err == nil || errors.As(err, &re) {
			t.Fatalf("Run = %v, want a transport error", err)
		}
		testkit.ExpectLines(t, l, testkit.Seq(testkit.Opening(srv.URL())[:2], []string{"disconnected graceful=false err=true"}))
	})
}

// TestSessionContextCancelled cancels the context while ready, during a
// handshake that never completes, and before Run.
func TestSessionContextCancelled(t *testing.T) {
	t.Run("while ready", func(t *testing.T) {
		srv, done := testkit.ScriptServer(t, testkit.AnswerClientClose(t, 1001, "going away", 1001, "going away"))
		ws := newTestWS(t, srv.URL())
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		l := new(testkit.EventRecorder)
		lHook := func(_ *WebSocket, ev events.Event) {
			if _, ok := ev.(*events.Ready); ok {
				cancel()
			}
		}
		err := ws.Run(ctx, recording(l, lHook))
		testkit.WaitScript(t, done)
		if err != nil {
			t.Fatalf("Run = %v, want nil", err)
		}
		testkit.ExpectLines(t, l, testkit.Seq(testkit.Opening(srv.URL()), []string{`closed 1001 "going away"`, "disconnected graceful=true err=false"}))
	})

	t.Run("during the handshake", func(t *testing.T) {
		gotRequest := make(chan struct{})
		srv, done := testkit.ScriptServer(t, func(c *wstest.Conn) {
			if _, err := c.ReadRequest(); err != nil {
				t.Errorf("server: %v", err)
				return
			}
			close(gotRequest)
			testkit.Drain(t, c) // never answer
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
		l := new(testkit.EventRecorder)
		err := ws.Run(ctx, recording(l, nil))
		end := time.Now()
		close(runDone)
		testkit.WaitScript(t, done)
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
		testkit.ExpectLines(t, l, testkit.Seq(testkit.Opening(srv.URL())[:2], []string{"disconnected graceful=false err=true"}))
	})

	t.Run("before Run", func(t *testing.T) {
		srv := wstest.NewServer(t, func(*wstest.Conn) {})
		ws := newTestWS(t, srv.URL())
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		l := new(testkit.EventRecorder)
		err := ws.Run(ctx, recording(l, nil))
		var ce *ConnectError
		if !errors.As(err, &ce) || !errors.Is(err, context.Canceled) {
			t.Fatalf("Run = %v, want a *ConnectError wrapping context.Canceled", err)
		}
		testkit.ExpectLines(t, l, []string{"connecting " + srv.URL(), "connect_fail"})
	})
}

// TestSessionRunTwice runs one WebSocket twice in sequence: each run is a
// fresh session with a fresh Sec-WebSocket-Key.
func TestSessionRunTwice(t *testing.T) {
	keys := make(chan string, 2)
	srv, done := testkit.ScriptServer(t, func(c *wstest.Conn) {
		req, err := c.Handshake()
		if err != nil {
			t.Errorf("server: handshake: %v", err)
			return
		}
		keys <- req.Header.Get("Sec-WebSocket-Key")
		if testkit.ExpectClose(t, c, 1000, "done") && testkit.Write(t, c, wstest.Close(1000, "done")) {
			testkit.ExpectEOF(t, c)
		}
	})
	ws := newTestWS(t, srv.URL())
	for i := range 2 {
		l := new(testkit.EventRecorder)
		lHook := func(ws *WebSocket, ev events.Event) {
			if _, ok := ev.(*events.Ready); ok {
				if err := ws.Close(1000, "done"); err != nil {
					t.Errorf("Close: %v", err)
				}
			}
		}
		err := ws.Run(context.Background(), recording(l, lHook))
		testkit.WaitScript(t, done)
		if err != nil {
			t.Fatalf("run %d: Run = %v, want nil", i, err)
		}
		testkit.ExpectLines(t, l, testkit.Seq(testkit.Opening(srv.URL()), []string{`closed 1000 "done"`, "disconnected graceful=true err=false"}))
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
	srv, done := testkit.ScriptServer(t, testkit.AnswerClientClose(t, 1000, "", 1000, ""))
	lHook := func(ws *WebSocket, ev events.Event) {
		if _, ok := ev.(*events.Ready); ok {
			second := new(testkit.EventRecorder)
			runErr := make(chan error, 1)
			go func() { runErr <- ws.Run(context.Background(), recording(second, nil)) }()
			if err := <-runErr; !errors.Is(err, ErrAlreadyRunning) {
				t.Errorf("concurrent Run = %v, want ErrAlreadyRunning", err)
			}
			if second.Len() != 0 {
				t.Errorf("concurrent Run delivered %q, want nothing", second.Lines())
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
	}
	l, err := runAgainstScript(t, srv, done, lHook)
	if err != nil {
		t.Fatalf("Run = %v, want nil", err)
	}
	testkit.ExpectLines(t, l, testkit.Seq(testkit.Opening(srv.URL()), []string{`closed 1000 ""`, "disconnected graceful=true err=false"}))
}

// panickyHandler records events and panics in OnText.
type panickyHandler struct {
	BaseHandler
	log *testkit.EventRecorder
}

func (h *panickyHandler) OnEvent(ws *WebSocket, ev events.Event) { h.log.Add(ev) }

func (h *panickyHandler) OnText(_ *WebSocket, ev *events.Text) { panic("boom: " + ev.Text) }

// TestSessionHandlerPanic: a panic in OnText closes with 1011 and Run
// returns a *PanicError; nothing leaks.
func TestSessionHandlerPanic(t *testing.T) {
	srv, done := testkit.ScriptServer(t, func(c *wstest.Conn) {
		if testkit.Handshake(t, c) && testkit.Write(t, c, wstest.Text("x")) && testkit.ExpectClose(t, c, 1011, "handler panic") &&
			testkit.Write(t, c, wstest.Close(1011, "")) {
			testkit.ExpectEOF(t, c)
		}
	})
	ws := newTestWS(t, srv.URL())
	l := new(testkit.EventRecorder)
	err := ws.Run(context.Background(), &panickyHandler{log: l})
	testkit.WaitScript(t, done)
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
	testkit.ExpectLines(t, l, testkit.Seq(testkit.Opening(srv.URL()), []string{`text "x"`, "disconnected graceful=false err=true"}))
	srv.Close()
	goleak.VerifyNone(t)
}

// TestSessionEventsBreak: leaving an Events loop closes with 1000 and
// delivers nothing more.
func TestSessionEventsBreak(t *testing.T) {
	srv, done := testkit.ScriptServer(t, func(c *wstest.Conn) {
		if testkit.Handshake(t, c) && testkit.Write(t, c, wstest.Text("one")) && testkit.ExpectClose(t, c, 1000, "goodbye") &&
			testkit.Write(t, c, wstest.Text("after the break"), wstest.Close(1000, "")) {
			testkit.ExpectEOF(t, c)
		}
	})
	ws := newTestWS(t, srv.URL())
	l := new(testkit.EventRecorder)
	for ev := range ws.Events(context.Background()) {
		recording(l, nil)(ws, ev)
		if _, ok := ev.(*events.Text); ok {
			break
		}
	}
	testkit.WaitScript(t, done)
	testkit.ExpectLines(t, l, testkit.Seq(testkit.Opening(srv.URL()), []string{`text "one"`}))
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
	srv, done := testkit.ScriptServer(t, func(c *wstest.Conn) {
		if testkit.Handshake(t, c) && testkit.Write(t, c, wstest.Text("one")) && testkit.ExpectClose(t, c, 1000, "goodbye") {
			testkit.Drain(t, c)
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
	testkit.WaitScript(t, done)
	if elapsed < timeout-10*time.Millisecond || elapsed > timeout+5*time.Second {
		t.Errorf("the loop returned %v after the break, want about %v", elapsed, timeout)
	}
}

// TestSessionCloseDuringHandshake: Close from OnConnected is sent once the
// session is ready.
func TestSessionCloseDuringHandshake(t *testing.T) {
	srv, done := testkit.ScriptServer(t, testkit.AnswerClientClose(t, 1000, "early", 1000, "early ack"))
	lHook := func(ws *WebSocket, ev events.Event) {
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
	}
	l, err := runAgainstScript(t, srv, done, lHook)
	if err != nil {
		t.Fatalf("Run = %v, want nil", err)
	}
	testkit.ExpectLines(t, l, testkit.Seq(testkit.Opening(srv.URL()), []string{`closed 1000 "early ack"`, "disconnected graceful=true err=false"}))
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
		l := new(testkit.EventRecorder)
		err = ws.Run(context.Background(), recording(l, nil))
		var ce *ConnectError
		if !errors.As(err, &ce) || ce.URL != url {
			t.Fatalf("Run = %v, want a *ConnectError for %s", err, url)
		}
		testkit.ExpectLines(t, l, []string{"connecting " + url, "connect_fail"})
		if cf := testkit.Last[*events.ConnectFail](t, l); cf.Err == nil || cf.Reason == "" || cf.URL != url {
			t.Errorf("ConnectFail = %+v, want URL, Reason and Err", cf)
		}
	})
	t.Run("DNS failure", func(t *testing.T) {
		const url = "ws://nonexistent.invalid/"
		ws := newTestWS(t, url, WithDialer(testkit.NXDOMAINDial()), WithDialTimeout(5*time.Second))
		l := new(testkit.EventRecorder)
		err := ws.Run(context.Background(), recording(l, nil))
		var ce *ConnectError
		if !errors.As(err, &ce) {
			t.Fatalf("Run = %v, want a *ConnectError", err)
		}
		var de *net.DNSError
		if !errors.As(err, &de) || !de.IsNotFound {
			t.Errorf("Run = %v, want a *net.DNSError (not found)", err)
		}
		testkit.ExpectLines(t, l, []string{"connecting " + url, "connect_fail"})
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
		l := new(testkit.EventRecorder)
		lHook := func(ws *WebSocket, ev events.Event) {
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
		}
		if err := ws.Run(context.Background(), recording(l, lHook)); err != nil {
			t.Fatalf("Run = %v, want nil", err)
		}
		if err := <-serverErr; websocket.CloseStatus(err) != 1000 {
			t.Errorf("server: %v, want close 1000", err)
		}
		testkit.ExpectLines(t, l, testkit.Seq(testkit.Opening(url), []string{
			`text "hi"`, `binary "\x00\xff"`, `closed 1000 "done"`, "disconnected graceful=true err=false",
		}))
	})
	t.Run("server close", func(t *testing.T) {
		ws := newTestWS(t, url)
		l := new(testkit.EventRecorder)
		lHook := func(ws *WebSocket, ev events.Event) {
			if _, ok := ev.(*events.Ready); ok {
				if err := ws.SendText("please close"); err != nil {
					t.Errorf("SendText: %v", err)
				}
			}
		}
		err := ws.Run(context.Background(), recording(l, lHook))
		var ce *CloseError
		if !errors.As(err, &ce) || *ce != (CloseError{Code: 4001, Reason: "bye"}) {
			t.Fatalf("Run = %v, want *CloseError{4001, bye}", err)
		}
		if err := <-serverErr; err != nil {
			t.Errorf("server Close: %v", err)
		}
		testkit.ExpectLines(t, l, testkit.Seq(testkit.Opening(url), []string{
			`closing 4001 "bye"`, `closed 4001 "bye"`, "disconnected graceful=true err=false",
		}))
	})
}

// The dial and the handshake run on a helper goroutine: a panic there (in a
// dialer the application gave) goes on on the caller of Run, as if the
// dialer had run there, and no goroutine is left behind.
func TestDialPanicReachesRunsCaller(t *testing.T) {
	dial := func(context.Context, string, string) (net.Conn, error) { panic("dialer broke") }
	ws := newTestWS(t, "ws://127.0.0.1:1/", WithDialer(dial), WithoutProxy())
	var got any
	func() {
		defer func() { got = recover() }()
		_ = ws.Run(context.Background(), BaseHandler{})
	}()
	if got != "dialer broke" {
		t.Fatalf("Run's caller recovered %v, want the dialer's panic", got)
	}
}

// A handler that panics in the direct delivery path (no plugins, no
// judgement pending) ends the session as a panic in any other handler:
// close 1011, Disconnected("handler panic"), Run returns the *PanicError;
// the messages before it were delivered in order.
func TestDirectDeliveryPanic(t *testing.T) {
	codes := make(chan int, 1)
	srv := wstest.NewServer(t, func(c *wstest.Conn) {
		if _, err := c.Handshake(); err != nil {
			return
		}
		if c.WriteRaw(wstest.EncodeAll(wstest.Binary([]byte("1")), wstest.Binary([]byte("2")), wstest.Binary([]byte("3")))) != nil {
			return
		}
		if code, _, err := c.ExpectClose(); err == nil {
			codes <- code
			_ = c.WriteFrame(wstest.Close(code, ""))
		}
	})
	ws := newTestWS(t, srv.URL(), WithPingRate(0))
	var got []string
	var reason string
	h := &panicOnSecond{got: &got, reason: &reason}
	err := ws.Run(context.Background(), h)
	var pe *PanicError
	if !errors.As(err, &pe) || pe.Value != "second" {
		t.Fatalf("Run: %v, want the handler's panic", err)
	}
	if !strings.Contains(string(pe.Stack), "panicOnSecond") {
		t.Errorf("the panic's stack does not show the handler:\n%s", pe.Stack)
	}
	if strings.Join(got, ",") != "1,2" || reason != "handler panic" {
		t.Errorf("messages %v, Disconnected %q; want 1,2 and handler panic", got, reason)
	}
	if c := testkit.Recv(t, codes, "the client's close"); c != StatusInternalError {
		t.Errorf("close code %d, want %d", c, StatusInternalError)
	}
}

type panicOnSecond struct {
	BaseHandler
	got    *[]string
	reason *string
}

func (h *panicOnSecond) OnBinary(_ *WebSocket, ev *events.Binary) {
	*h.got = append(*h.got, string(ev.Data))
	if len(*h.got) == 2 {
		panic("second")
	}
}

func (h *panicOnSecond) OnDisconnected(_ *WebSocket, ev *events.Disconnected) { *h.reason = ev.Reason }

// The session struct is most of an idle connection's heap: it stays in the
// 1280-byte size class (state that only some sessions need, compression,
// medium payloads and streams, hangs off pointers).
func TestSessionStructSize(t *testing.T) {
	if n := unsafe.Sizeof(session{}); n > 1280 {
		t.Errorf("session is %d bytes, want at most 1280 (the next size class costs 128 bytes per connection)", n)
	}
}
