package lomond

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lomond-go/lomond/events"
	"github.com/lomond-go/lomond/internal/testkit"
	"github.com/lomond-go/lomond/internal/wstest"
)

// Send observers over real sessions: sends from handlers, from other
// goroutines, the library's own frames, and Persist's send queue.

// sentLog is a SendObserver that keeps a copy of every report.
type sentLog struct {
	testkit.Recorder[events.Outbound]
}

func (r *sentLog) OnSend(_ *WebSocket, ev *events.Outbound) {
	c := *ev
	c.Data = bytes.Clone(ev.Data)
	r.Add(c)
}

// Lines renders the reports as "kind result payload [flags]", skipping
// kinds in skip.
func (r *sentLog) Lines(skip ...events.OutboundKind) []string {
	var out []string
	for _, ev := range r.All() {
		if slices.Contains(skip, ev.Kind) {
			continue
		}
		s := fmt.Sprintf("%s %s %q", ev.Kind, ev.Result, ev.Data)
		if ev.Kind == events.KindClose {
			s = fmt.Sprintf("%s %s %d %q", ev.Kind, ev.Result, ev.Code, ev.Reason)
		}
		if ev.Size != len(ev.Data) {
			s += fmt.Sprintf(" size=%d", ev.Size)
		}
		if ev.Auto {
			s += " auto"
		}
		if ev.FromQueue {
			s += " from_queue"
		}
		if ev.Err != nil {
			s += " err=" + ev.Err.Error()
		}
		if ev.Time.IsZero() {
			s += " NO-TIME"
		}
		out = append(out, s)
	}
	return out
}

// count returns how many reports of a text message data had result res.
func (r *sentLog) count(data string, res events.OutboundResult) int {
	n := 0
	for _, ev := range r.All() {
		if ev.Kind == events.KindText && string(ev.Data) == data && ev.Result == res {
			n++
		}
	}
	return n
}

// sendingApp sends from OnReady and from a goroutine it starts, then, once the
// server's ping arrived, a ping, a pong and Close.
type sendingApp struct {
	BaseHandler
	wg sync.WaitGroup
}

func (a *sendingApp) OnReady(ws *WebSocket, _ *events.Ready) {
	_ = ws.SendText("from-handler")
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		_ = ws.SendBinary([]byte("from-goroutine"))
	}()
}

func (a *sendingApp) OnPing(ws *WebSocket, _ *events.Ping) {
	_ = ws.SendPing([]byte("cp"))
	_ = ws.SendPong([]byte("cu"))
	a.wg.Wait()
	_ = ws.Close(StatusNormal, "bye")
}

func TestSendObserverSeesSendsFromHandlersAndGoroutines(t *testing.T) {
	srv, done := testkit.ScriptServer(t, func(c *wstest.Conn) {
		if !testkit.Handshake(t, c) || !testkit.Write(t, c, wstest.Ping([]byte("p1"))) {
			return
		}
		if code, reason, err := c.ExpectClose(); err == nil {
			_ = c.WriteFrame(wstest.Close(code, reason))
		}
	})
	installed, composed := &sentLog{}, &sentLog{}
	ws := newTestWS(t, srv.URL(), WithPlugins(installed))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := ws.Run(ctx, Compose(composed, &sendingApp{})); err != nil {
		t.Fatalf("Run = %v", err)
	}
	testkit.WaitScript(t, done)
	want := []string{
		`binary sent "from-goroutine"`,
		`close sent 1000 "bye"`,
		`ping sent "cp"`,
		`pong sent "cu"`,
		`pong sent "p1" auto`,
		`text sent "from-handler"`,
	}
	for name, r := range map[string]*sentLog{"WithPlugins": installed, "Compose": composed} {
		got := r.Lines()
		slices.Sort(got) // the goroutine's send may come at any point
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s observer:\n got %q\nwant %q", name, got, want)
		}
	}

	// After Run: the WebSocket's plugin still hears of failed sends; the
	// run's handler, whose run is over, does not.
	if err := ws.SendText("late"); !errors.Is(err, ErrNotConnected) {
		t.Fatalf("SendText after Run = %v", err)
	}
	if err := ws.Close(StatusNormal, ""); !errors.Is(err, ErrNotConnected) {
		t.Fatalf("Close after Run = %v", err)
	}
	// A Close that sends nothing is not reported.
	if got := installed.Lines()[6:]; !reflect.DeepEqual(got, []string{`text failed "late" err=lomond: not connected`}) {
		t.Errorf("WithPlugins observer after Run: %q", got)
	}
	if n := len(composed.Lines()); n != len(want) {
		t.Errorf("the Compose observer got %d reports, want %d (none after Run)", n, len(want))
	}
}

func TestSendObserverSeesTheLibrarysOwnFrames(t *testing.T) {
	srv, done := testkit.ScriptServer(t, func(c *wstest.Conn) {
		if !testkit.Handshake(t, c) {
			return
		}
		// Wait for the keep-alive ping, then break the protocol.
		if f, err := c.ReadFrame(); err != nil || f.Opcode != wstest.OpPing {
			t.Errorf("server: got %v %v, want the keep-alive ping", f.Opcode, err)
			return
		}
		if !testkit.Write(t, c, wstest.Frame{Fin: true, Opcode: wstest.OpText, Payload: []byte{0xff}}) {
			return
		}
		if code, reason, err := c.ExpectClose(); err == nil {
			_ = c.WriteFrame(wstest.Close(code, reason))
		}
	})
	rec := &sentLog{}
	ws := newTestWS(t, srv.URL(), WithPlugins(rec), WithPingRate(20*time.Millisecond), WithPingTimeout(0))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var pe *ProtocolError
	if err := ws.Run(ctx, BaseHandler{}); !errors.As(err, &pe) {
		t.Fatalf("Run = %v, want a *ProtocolError", err)
	}
	testkit.WaitScript(t, done)
	got := rec.Lines()
	if len(got) < 2 || got[len(got)-1] != `close sent 1007 "invalid UTF-8 in text" auto` {
		t.Fatalf("reports %q, want keep-alive pings then the protocol error's close", got)
	}
	for _, l := range got[:len(got)-1] {
		if !bytes.HasPrefix([]byte(l), []byte("ping sent ")) || !bytes.HasSuffix([]byte(l), []byte(" auto")) {
			t.Errorf("report %q, want an automatic keep-alive ping", l)
		}
	}
}

// TestSendObserverSeesTheSendQueue: queued, dropped, flushed after Ready,
// and left unsent when Persist returns.
func TestSendObserverSeesTheSendQueue(t *testing.T) {
	testkit.NoLeak(t)
	var conns atomic.Int32
	flushed := make(chan string, 4)
	srv, _ := testkit.ScriptServer(t, func(c *wstest.Conn) {
		if conns.Add(1) != 2 {
			testkit.Reject(http.StatusServiceUnavailable, nil)(c)
			return
		}
		if !testkit.Handshake(t, c) {
			return
		}
		for i := 0; i < 2; i++ {
			_, p, err := c.ReadMessage()
			if err != nil {
				t.Errorf("server: %v", err)
				return
			}
			flushed <- string(p)
		}
		if testkit.Write(t, c, wstest.Close(StatusNormal, "enough")) {
			_, _, _ = c.ExpectClose()
		}
	})
	installed, composed := &sentLog{}, &sentLog{}
	ws := newQuietWS(t, srv.URL(), WithPlugins(installed), WithSendQueue(2, DropOldest))
	ctx, stop := context.WithTimeout(context.Background(), testkit.Timeout)
	defer stop()
	backOffs := 0
	app := HandlerFunc(func(ws *WebSocket, ev events.Event) {
		if ev.Name() != events.NameBackOff {
			return
		}
		switch backOffs++; backOffs {
		case 1: // rejected: no session; a queue of two drops q1
			for _, m := range []string{"q1", "q2", "q3"} {
				_ = ws.SendText(m)
			}
		case 2: // the session that flushed ended
			_ = ws.SendBinary([]byte("left"))
			stop()
		}
	})
	err := ws.Persist(ctx, Compose(composed, app), constantBackOff(time.Millisecond))
	if err != nil {
		t.Fatalf("Persist = %v", err)
	}
	if a, b := testkit.Recv(t, flushed, "the first flushed message"), testkit.Recv(t, flushed, "the second"); a != "q2" || b != "q3" {
		t.Errorf("server got %q %q, want q2 q3", a, b)
	}
	want := []string{
		`text queued "q1"`,
		`text queued "q2"`,
		`text dropped "q1" err=lomond: send queue full`,
		`text queued "q3"`,
		`text sent "q2" from_queue`,
		`text sent "q3" from_queue`,
		`binary queued "left"`,
		`binary unsent "left"`,
	}
	// The queue outlives Persist: "left" waits for the next run until
	// Unsent takes it, which only the WebSocket's own plugins still see.
	if u := ws.Unsent(); len(u) != 1 || string(u[0].Data) != "left" {
		t.Errorf("Unsent = %v, want [left]", messageTexts(u))
	}
	// Close frames are checked elsewhere.
	if got := installed.Lines(events.KindClose); !reflect.DeepEqual(got, want) {
		t.Errorf("WithPlugins observer:\n got %q\nwant %q", got, want)
	}
	if got := composed.Lines(events.KindClose); !reflect.DeepEqual(got, want[:len(want)-1]) {
		t.Errorf("Compose observer:\n got %q\nwant %q", got, want[:len(want)-1])
	}
}

func TestSendObserverSeesAFullQueueRefuse(t *testing.T) {
	testkit.NoLeak(t)
	rec := &sentLog{}
	ws := newQuietWS(t, "ws://"+testkit.RefusedAddr(t)+"/", WithPlugins(rec), WithSendQueue(1, RejectNewest))
	var errs []error
	_, err := runPersist(t, ws, sendOnFirstBackOff(func(ws *WebSocket) {
		errs = []error{ws.SendText("q1"), ws.SendText("q2")}
	}, true), constantBackOff(time.Hour))
	if err != nil || errs[0] != nil || !errors.Is(errs[1], ErrQueueFull) {
		t.Fatalf("Persist = %v, sends = %v", err, errs)
	}
	_ = ws.Unsent()
	want := []string{`text queued "q1"`, `text failed "q2" err=lomond: send queue full`, `text unsent "q1"`}
	if got := rec.Lines(); !reflect.DeepEqual(got, want) {
		t.Errorf("reports %q, want %q", got, want)
	}
}

// TestSendObserverConcurrentSenders: every send of several goroutines is
// reported exactly once (run with -race).
func TestSendObserverConcurrentSenders(t *testing.T) {
	const senders, each = 4, 50
	srv, done := testkit.ScriptServer(t, func(c *wstest.Conn) {
		if !testkit.Handshake(t, c) {
			return
		}
		if code, reason, err := c.ExpectClose(); err == nil {
			_ = c.WriteFrame(wstest.Close(code, reason))
		}
	})
	var sent, failed atomic.Int32
	counter := sendCounter(func(ev *events.Outbound) {
		if ev.Kind == events.KindText && ev.Result == events.Sent {
			sent.Add(1)
		} else if ev.Kind == events.KindText {
			failed.Add(1)
		}
	})
	ws := newTestWS(t, srv.URL())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	app := HandlerFunc(func(ws *WebSocket, ev events.Event) {
		if _, ok := ev.(*events.Ready); !ok {
			return
		}
		go func() {
			var wg sync.WaitGroup
			for g := 0; g < senders; g++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := 0; i < each; i++ {
						_ = ws.SendText("x")
					}
				}()
			}
			wg.Wait()
			_ = ws.Close(StatusNormal, "")
		}()
	})
	if err := ws.Run(ctx, Compose(counter, app)); err != nil {
		t.Fatalf("Run = %v", err)
	}
	testkit.WaitScript(t, done)
	if s, f := sent.Load(), failed.Load(); s != senders*each || f != 0 {
		t.Errorf("observer counted %d sent and %d failed texts, want %d and 0", s, f, senders*each)
	}
}

// sendCounter adapts a function to a SendObserver.
type sendCounter func(*events.Outbound)

func (f sendCounter) OnSend(_ *WebSocket, ev *events.Outbound) { f(ev) }

// TestObserveSentCostsNothingUnobserved: with no send observer the report
// is a nil check: no allocation, no clock reading.
func TestObserveSentCostsNothingUnobserved(t *testing.T) {
	ws, err := New("ws://127.0.0.1:1/")
	if err != nil {
		t.Fatal(err)
	}
	p := []byte("payload")
	if a := testing.AllocsPerRun(1000, func() { ws.observeSent(opText, p, 0, nil) }); a != 0 {
		t.Errorf("observeSent with no observer: %v allocs, want 0", a)
	}
	// An installed plugin that does not observe sends costs nothing either.
	ws, err = New("ws://127.0.0.1:1/", WithPlugins(&textPlugin{}))
	if err != nil {
		t.Fatal(err)
	}
	if a := testing.AllocsPerRun(1000, func() { ws.observeSent(opText, p, 0, nil) }); a != 0 {
		t.Errorf("observeSent with a plugin that has no OnSend: %v allocs, want 0", a)
	}
}

// TestSendObserverAloneIsAHandler: a value with only OnSend is a valid
// plugin that receives no event.
func TestSendObserverAloneIsAHandler(t *testing.T) {
	log := new(callLog)
	tb, err := discover(onlySend{callRecorder{log, "s"}})
	if err != nil {
		t.Fatalf("discover(SendObserver): %v", err)
	}
	for _, c := range eventMethods {
		tb.deliver(nil, c.ev)
	}
	if len(log.All()) != 0 || len(tb.out) != 1 {
		t.Errorf("SendObserver: calls %q and %d send observers, want none and 1", log.All(), len(tb.out))
	}
}
