package lomond

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/lomond-go/lomond/events"
	"github.com/lomond-go/lomond/internal/wstest"
)

// Tests of how a session ends: whatever happens at the end (a handler that
// panics, a range loop left early, a Stop from a handler, a server that
// hangs up during the handshake), the session's last events are emitted
// once, to plugins too, and Run, Err and Persist say why it ended.

// pluginLog is a plugin (WithPlugins) that records every event it sees.
type pluginLog struct {
	mu  sync.Mutex
	evs []events.Event
}

func (p *pluginLog) OnEvent(_ *WebSocket, ev events.Event) {
	p.mu.Lock()
	p.evs = append(p.evs, ev)
	p.mu.Unlock()
}

func (p *pluginLog) names() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	ns := make([]string, len(p.evs))
	for i, ev := range p.evs {
		ns[i] = ev.Name()
	}
	return ns
}

// count returns how many of the recorded events are named name.
func (p *pluginLog) count(name string) int {
	n := 0
	for _, got := range p.names() {
		if got == name {
			n++
		}
	}
	return n
}

// last returns the name of the last event recorded, or "".
func (p *pluginLog) last() string {
	ns := p.names()
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
		if !srvHandshake(t, c) || !srvWrite(t, c, wstest.Close(StatusNormal, "bye")) {
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
			if !srvHandshake(t, c) || !srvWrite(t, c, wstest.Close(StatusNormal, "bye")) {
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
			if !srvHandshake(t, c) || !srvWrite(t, c, wstest.Text("bad \xff text")) {
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
				if n := plug.count("disconnected"); n != 0 {
					t.Errorf("a session that never connected ended with %d Disconnected: %q", n, plug.names())
				}
				return
			}
			if n := plug.count("disconnected"); n != 1 || plug.last() != "disconnected" {
				t.Errorf("the plugin saw %q: want exactly one Disconnected, last", plug.names())
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
		if !srvHandshake(t, c) {
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
		if plug.count("closed") != 1 || plug.count("disconnected") != 1 || plug.last() != "disconnected" {
			t.Errorf("the plugin saw %q: want the session's end (closed, then disconnected last)", plug.names())
		}
		if n := plug.count("connecting"); n != 1 {
			t.Errorf("%d sessions, want 1 (the loop was left)", n)
		}
		if err := ws.Err(); err != nil {
			t.Errorf("Err() = %v after leaving the loop, want nil", err)
		}
	}
	t.Run("BreakOnReadyInEvents", func(t *testing.T) {
		plug := &pluginLog{}
		ws := newTestWS(t, echoCloseServer(t).URL(), WithPlugins(plug))
		for ev := range ws.Events(context.Background()) {
			if _, ok := ev.(*events.Ready); ok {
				break
			}
		}
		check(t, plug, ws)
	})
	t.Run("BreakOnReadyInPersistEvents", func(t *testing.T) {
		plug := &pluginLog{}
		ws := newTestWS(t, echoCloseServer(t).URL(), WithPlugins(plug))
		for ev := range ws.PersistEvents(context.Background()) {
			if _, ok := ev.(*events.Ready); ok {
				break
			}
		}
		check(t, plug, ws)
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
		srv, done := scriptServer(t, func(c *wstest.Conn) {
			if srvHandshake(t, c) && srvWrite(t, c, wstest.Close(StatusNormal, "bye")) {
				srvExpectClose(t, c, 4000, "stopping")
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
		waitScript(t, done)
		if n := srv.Conns(); n != 1 {
			t.Errorf("%d connections, want 1 (Stop ends Persist)", n)
		}
	})

	t.Run("LeavingALoopOnClosingIsACleanEnd", func(t *testing.T) {
		srv, done := scriptServer(t, func(c *wstest.Conn) {
			if srvHandshake(t, c) && srvWrite(t, c, wstest.Close(StatusNormal, "bye")) {
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
		waitScript(t, done)
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
		for deadline := time.Now().Add(10 * time.Second); outs.sent() < senders*each+1 && time.Now().Before(deadline); {
			time.Sleep(5 * time.Millisecond) // polling with a deadline
		}
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
		srv, done := scriptServer(t, func(c *wstest.Conn) {
			if _, err := c.ReadRequest(); err != nil {
				t.Errorf("server: reading the upgrade request: %v", err)
			}
			// Return: the connection closes with no response.
		})
		ws := newTestWS(t, srv.URL())
		log := &evLog{}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		err := ws.Run(ctx, log.handler())
		waitScript(t, done)
		if !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("Run = %v, want an error wrapping io.ErrUnexpectedEOF", err)
		}
		if err == nil || !strings.Contains(err.Error(), "before the upgrade response") {
			t.Errorf("Run = %v, want it to say the connection closed before the upgrade response", err)
		}
		if d := lastEvent[*events.Disconnected](t, log); d.Reason != "connection lost" || d.Graceful {
			t.Errorf("Disconnected{Reason: %q, Graceful: %v}, want \"connection lost\", not graceful", d.Reason, d.Graceful)
		}
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
	if c := rcRecv(t, codes, "the client's close"); c != StatusInternalError {
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
