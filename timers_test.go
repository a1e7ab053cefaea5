package lomond

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lomond-go/lomond/events"
	"github.com/lomond-go/lomond/internal/wstest"
)

// The timer tests check that each timer fires on time (within 10% of its
// due offset) whatever the poll interval, because timers ride on the read
// deadline rather than on a ticker.
//
// The machine running them may be loaded (2 cores, other test binaries), and
// a descheduled goroutine can wake tens of milliseconds late. So a scenario
// whose only failures are timing misses is run again, up to tdAttempts
// times: a timer that is wrong fails every attempt; scheduling jitter does
// not repeat. Every other check fails the test at once.

// tdRec records the events of one session. Anything delivered after the
// session's last event (Disconnected or ConnectFail) is also kept in late.
type tdRec struct {
	mu   sync.Mutex
	evs  []events.Event
	late []events.Event
	done bool
}

func (r *tdRec) add(ev events.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.done {
		r.late = append(r.late, ev)
	}
	r.evs = append(r.evs, ev)
	switch ev.(type) {
	case *events.Disconnected, *events.ConnectFail:
		r.done = true
	}
}

func (r *tdRec) all() []events.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.evs)
}

// lateCount returns how many events arrived after the session's last event.
func (r *tdRec) lateCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.late)
}

func (r *tdRec) names() []string {
	var ns []string
	for _, ev := range r.all() {
		ns = append(ns, ev.Name())
	}
	return ns
}

// tdAll returns the recorded events of type T, in order.
func tdAll[T events.Event](r *tdRec) []T {
	var out []T
	for _, ev := range r.all() {
		if e, ok := ev.(T); ok {
			out = append(out, e)
		}
	}
	return out
}

// tdOne returns the first recorded event of type T, failing the test if
// there is none.
func tdOne[T events.Event](t *testing.T, r *tdRec) T {
	t.Helper()
	all := tdAll[T](r)
	if len(all) == 0 {
		var zero T
		t.Fatalf("no %T event; events: %v", zero, r.names())
	}
	return all[0]
}

// tdNew is New that fails the test on error.
func tdNew(t *testing.T, url string, opts ...Option) *WebSocket {
	t.Helper()
	ws, err := New(url, opts...)
	if err != nil {
		t.Fatalf("New(%q): %v", url, err)
	}
	return ws
}

// tdRun runs one session, recording every event and then passing it to fn
// (if not nil). A 30 s context guards against a hung test.
func tdRun(t *testing.T, ws *WebSocket, fn func(ws *WebSocket, ev events.Event)) (*tdRec, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rec := &tdRec{}
	err := ws.Run(ctx, HandlerFunc(func(ws *WebSocket, ev events.Event) {
		rec.add(ev)
		if fn != nil {
			fn(ws, ev)
		}
	}))
	return rec, err
}

// tdAttempts bounds how often a scenario with timing misses is run.
const tdAttempts = 4

// tdTiming collects the timing misses of one attempt.
type tdTiming struct {
	misses []string
}

// within records a miss unless got is want ± 10%.
func (tm *tdTiming) within(what string, got, want time.Duration) {
	if tol := want / 10; got < want-tol || got > want+tol {
		tm.misses = append(tm.misses, fmt.Sprintf("%s at %v, want %v ± %v", what, got, want, tol))
	}
}

// atMost records a miss if got is over limit.
func (tm *tdTiming) atMost(what string, got, limit time.Duration) {
	if got < 0 || got > limit {
		tm.misses = append(tm.misses, fmt.Sprintf("%s at %v, want within %v", what, got, limit))
	}
}

// tdTimed runs attempt until its timing checks pass, at most tdAttempts
// times, and reports the misses of the last attempt as errors.
func tdTimed(t *testing.T, attempt func(t *testing.T, tm *tdTiming)) {
	t.Helper()
	for i := 1; ; i++ {
		tm := &tdTiming{}
		attempt(t, tm)
		if t.Failed() || len(tm.misses) == 0 {
			return
		}
		if i == tdAttempts {
			for _, m := range tm.misses {
				t.Errorf("%s (attempt %d of %d)", m, i, tdAttempts)
			}
			return
		}
		t.Logf("attempt %d: timing off (%s); running again", i, strings.Join(tm.misses, "; "))
	}
}

// tdIgnoreAll is a server script that accepts the handshake and then reads
// and ignores every frame (no pong, no close reply) until the client hangs
// up.
func tdIgnoreAll(c *wstest.Conn) {
	if _, err := c.Handshake(); err != nil {
		return
	}
	_, _ = io.Copy(io.Discard, c.Reader())
}

func TestTimersPollInterval(t *testing.T) {
	srv := wstest.NewServer(t, wstest.Echo)
	tdTimed(t, func(t *testing.T, tm *tdTiming) {
		ws := tdNew(t, srv.URL(), WithPollInterval(200*time.Millisecond))
		polls := 0
		rec, err := tdRun(t, ws, func(ws *WebSocket, ev events.Event) {
			if _, ok := ev.(*events.Poll); ok {
				if polls++; polls == 4 {
					_ = ws.Close(StatusNormal, "done")
				}
			}
		})
		if err != nil {
			t.Fatalf("Run: %v; events: %v", err, rec.names())
		}
		ready := tdOne[*events.Ready](t, rec).ReceivedTime()
		ps := tdAll[*events.Poll](rec)
		if len(ps) != 4 {
			t.Fatalf("got %d polls, want 4; events: %v", len(ps), rec.names())
		}
		if names := rec.names(); len(names) < 4 || names[2] != "ready" || names[3] != "poll" {
			t.Errorf("Poll does not follow Ready at once: %v", names)
		}
		tm.atMost("first Poll", ps[0].ReceivedTime().Sub(ready), 50*time.Millisecond)
		for i, p := range ps[1:] {
			tm.within("Poll", p.ReceivedTime().Sub(ready), time.Duration(i+1)*200*time.Millisecond)
		}
	})
}

func TestTimersPingRate(t *testing.T) {
	type stamped struct {
		at   time.Time
		data []byte
	}
	var (
		mu    sync.Mutex
		pings []stamped
	)
	srv := wstest.NewServer(t, func(c *wstest.Conn) {
		if _, err := c.Handshake(); err != nil {
			return
		}
		for {
			op, p, err := c.ReadMessage()
			if err != nil {
				return
			}
			switch op {
			case wstest.OpPing:
				mu.Lock()
				pings = append(pings, stamped{time.Now(), p})
				mu.Unlock()
				_ = c.WriteFrame(wstest.Pong(p))
			case wstest.OpClose:
				_ = c.WriteFrame(wstest.Frame{Fin: true, Opcode: wstest.OpClose, Payload: p})
				return
			}
		}
	})
	tdTimed(t, func(t *testing.T, tm *tdTiming) {
		mu.Lock()
		pings = nil
		mu.Unlock()
		ws := tdNew(t, srv.URL(), WithPingRate(250*time.Millisecond), WithPollInterval(5*time.Second))
		pongs := 0
		rec, err := tdRun(t, ws, func(ws *WebSocket, ev events.Event) {
			if _, ok := ev.(*events.Pong); ok {
				if pongs++; pongs == 2 {
					_ = ws.Close(StatusNormal, "done")
				}
			}
		})
		if err != nil {
			t.Fatalf("Run: %v; events: %v", err, rec.names())
		}
		ready := tdOne[*events.Ready](t, rec).ReceivedTime()
		// The server recorded both pings before it answered the close.
		mu.Lock()
		got := slices.Clone(pings)
		mu.Unlock()
		if len(got) != 2 {
			t.Fatalf("server saw %d pings, want 2", len(got))
		}
		for i, p := range got {
			tm.within("ping", p.at.Sub(ready), time.Duration(i+1)*250*time.Millisecond)
			if len(p.data) != 8 {
				t.Errorf("ping %d payload is %d bytes, want 8", i, len(p.data))
			}
		}
		ps := tdAll[*events.Pong](rec)
		if len(ps) != 2 {
			t.Fatalf("got %d Pong events, want 2", len(ps))
		}
		for i, p := range ps {
			if p.RTT <= 0 {
				t.Errorf("Pong %d RTT = %v, want > 0", i, p.RTT)
			}
			if !bytes.Equal(p.Data, got[i].data) {
				t.Errorf("Pong %d data %x, want the ping's %x", i, p.Data, got[i].data)
			}
		}
	})
}

func TestTimersPingTimeout(t *testing.T) {
	srv := wstest.NewServer(t, tdIgnoreAll)
	tdTimed(t, func(t *testing.T, tm *tdTiming) {
		ws := tdNew(t, srv.URL(), WithPingRate(200*time.Millisecond), WithPingTimeout(500*time.Millisecond))
		rec, err := tdRun(t, ws, nil)
		if !errors.Is(err, ErrUnresponsive) {
			t.Fatalf("Run = %v, want ErrUnresponsive; events: %v", err, rec.names())
		}
		ready := tdOne[*events.Ready](t, rec).ReceivedTime()
		un := tdOne[*events.Unresponsive](t, rec)
		// First ping at 200ms, unanswered for 500ms.
		tm.within("Unresponsive", un.ReceivedTime().Sub(ready), 700*time.Millisecond)
		if un.Timeout != 500*time.Millisecond {
			t.Errorf("Unresponsive.Timeout = %v, want 500ms", un.Timeout)
		}
		names := rec.names()
		if len(names) < 2 || names[len(names)-2] != "unresponsive" || names[len(names)-1] != "disconnected" {
			t.Errorf("events end %v, want ... unresponsive, disconnected", names)
		}
		d := tdOne[*events.Disconnected](t, rec)
		if d.Graceful || !errors.Is(d.Err, ErrUnresponsive) {
			t.Errorf("Disconnected graceful=%v err=%v, want false, ErrUnresponsive", d.Graceful, d.Err)
		}
	})
}

func TestTimersCloseTimeout(t *testing.T) {
	check := func(t *testing.T, tm *tdTiming, rec *tdRec, err error, closeAt time.Time) {
		t.Helper()
		if !errors.Is(err, ErrCloseTimeout) {
			t.Fatalf("Run = %v, want ErrCloseTimeout; events: %v", err, rec.names())
		}
		d := tdOne[*events.Disconnected](t, rec)
		tm.within("Disconnected", d.ReceivedTime().Sub(closeAt), 400*time.Millisecond)
		if d.Graceful || !errors.Is(d.Err, ErrCloseTimeout) {
			t.Errorf("Disconnected graceful=%v err=%v, want false, ErrCloseTimeout", d.Graceful, d.Err)
		}
		if len(tdAll[*events.Closed](rec)) != 0 {
			t.Errorf("Closed delivered without a close reply: %v", rec.names())
		}
	}
	opts := []Option{WithCloseTimeout(400 * time.Millisecond), WithPollInterval(10 * time.Second)}

	t.Run("from handler", func(t *testing.T) {
		srv := wstest.NewServer(t, tdIgnoreAll)
		tdTimed(t, func(t *testing.T, tm *tdTiming) {
			ws := tdNew(t, srv.URL(), opts...)
			var closeAt time.Time
			rec, err := tdRun(t, ws, func(ws *WebSocket, ev events.Event) {
				if _, ok := ev.(*events.Ready); ok {
					closeAt = time.Now()
					if err := ws.Close(StatusNormal, "bye"); err != nil {
						t.Errorf("Close: %v", err)
					}
				}
			})
			check(t, tm, rec, err, closeAt)
		})
	})

	// Close from another goroutine while the dispatcher waits in a read
	// whose deadline is the 10 s poll: the close timer must move it.
	t.Run("from another goroutine", func(t *testing.T) {
		srv := wstest.NewServer(t, tdIgnoreAll)
		tdTimed(t, func(t *testing.T, tm *tdTiming) {
			ws := tdNew(t, srv.URL(), opts...)
			polled := make(chan struct{})
			type result struct {
				rec *tdRec
				err error
			}
			done := make(chan result, 1)
			go func() {
				rec, err := tdRun(t, ws, func(_ *WebSocket, ev events.Event) {
					if _, ok := ev.(*events.Poll); ok {
						close(polled)
					}
				})
				done <- result{rec, err}
			}()
			select {
			case <-polled:
			case r := <-done:
				t.Fatalf("session ended before Ready: %v; events: %v", r.err, r.rec.names())
			}
			closeAt := time.Now()
			if err := ws.Close(StatusNormal, "bye"); err != nil {
				t.Errorf("Close: %v", err)
			}
			r := <-done
			check(t, tm, r.rec, r.err, closeAt)
		})
	})
}

func TestTimersHandshakeTimeout(t *testing.T) {
	// The server accepts TCP, reads the upgrade request and never answers.
	srv := wstest.NewServer(t, func(c *wstest.Conn) {
		_, _ = io.Copy(io.Discard, c.Reader())
	})
	tdTimed(t, func(t *testing.T, tm *tdTiming) {
		ws := tdNew(t, srv.URL(), WithHandshakeTimeout(400*time.Millisecond))
		rec, err := tdRun(t, ws, nil)
		if !errors.Is(err, ErrHandshakeTimeout) {
			t.Fatalf("Run = %v, want ErrHandshakeTimeout; events: %v", err, rec.names())
		}
		if got, want := rec.names(), []string{"connecting", "connected", "disconnected"}; !slices.Equal(got, want) {
			t.Errorf("events %v, want %v", got, want)
		}
		connected := tdOne[*events.Connected](t, rec).ReceivedTime()
		d := tdOne[*events.Disconnected](t, rec)
		tm.within("Disconnected", d.ReceivedTime().Sub(connected), 400*time.Millisecond)
		if d.Graceful || !errors.Is(d.Err, ErrHandshakeTimeout) {
			t.Errorf("Disconnected graceful=%v err=%v, want false, ErrHandshakeTimeout", d.Graceful, d.Err)
		}
	})
}

// A handler that blocks longer than the ping timeout while a pong is waiting
// unread must not make the session Unresponsive.
func TestTimersBusyHandlerIsNotUnresponsive(t *testing.T) {
	srv := wstest.NewServer(t, func(c *wstest.Conn) {
		if _, err := c.Handshake(); err != nil {
			return
		}
		first := true
		for {
			op, p, err := c.ReadMessage()
			if err != nil {
				return
			}
			switch op {
			case wstest.OpPing:
				if first {
					// The message that keeps the handler busy goes out
					// before the pong, so the pong waits unread.
					first = false
					_ = c.WriteFrame(wstest.Text("block"))
				}
				_ = c.WriteFrame(wstest.Pong(p))
			case wstest.OpText:
				_ = c.WriteFrame(wstest.Text(string(p)))
			case wstest.OpClose:
				_ = c.WriteFrame(wstest.Frame{Fin: true, Opcode: wstest.OpClose, Payload: p})
				return
			}
		}
	})
	ws := tdNew(t, srv.URL(), WithPingRate(100*time.Millisecond), WithPingTimeout(300*time.Millisecond))
	var unblocked time.Time
	rec, err := tdRun(t, ws, func(ws *WebSocket, ev events.Event) {
		te, ok := ev.(*events.Text)
		if !ok {
			return
		}
		switch te.Text {
		case "block":
			time.Sleep(time.Second) // the handler's own slow work, not synchronisation
			unblocked = time.Now()
			if err := ws.SendText("after"); err != nil {
				t.Errorf("SendText after the busy handler: %v", err)
			}
		case "after":
			_ = ws.Close(StatusNormal, "done")
		}
	})
	if err != nil {
		t.Fatalf("Run = %v, want nil; events: %v", err, rec.names())
	}
	if n := len(tdAll[*events.Unresponsive](rec)); n != 0 {
		t.Errorf("got %d Unresponsive events; events: %v", n, rec.names())
	}
	texts := tdAll[*events.Text](rec)
	if len(texts) != 2 || texts[0].Text != "block" || texts[1].Text != "after" {
		t.Errorf("texts %v, want block, after", texts)
	}
	if cl := tdOne[*events.Closed](t, rec); cl.Code != StatusNormal {
		t.Errorf("Closed code %d, want 1000", cl.Code)
	}
	if d := tdOne[*events.Disconnected](t, rec); !d.Graceful {
		t.Errorf("Disconnected not graceful: %v", d)
	}
	pongsAfter := 0
	for _, p := range tdAll[*events.Pong](rec) {
		if p.ReceivedTime().After(unblocked) {
			pongsAfter++
		}
	}
	if pongsAfter == 0 {
		t.Errorf("no Pong after the handler unblocked; events: %v", rec.names())
	}
}

func TestTimersStopAfterSession(t *testing.T) {
	fast := []Option{WithPollInterval(30 * time.Millisecond), WithPingRate(30 * time.Millisecond)}
	cases := []struct {
		name   string
		script func(c *wstest.Conn)
		opts   []Option
		close  bool
	}{
		{"client close", wstest.Echo, fast, true},
		{"unresponsive", tdIgnoreAll, append(fast, WithPingTimeout(150*time.Millisecond)), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := wstest.NewServer(t, tc.script)
			ws := tdNew(t, srv.URL(), tc.opts...)
			polls := 0
			rec, _ := tdRun(t, ws, func(ws *WebSocket, ev events.Event) {
				if _, ok := ev.(*events.Poll); ok && tc.close {
					if polls++; polls == 3 {
						_ = ws.Close(StatusNormal, "done")
					}
				}
			})
			n := len(rec.all())
			if names := rec.names(); names[len(names)-1] != "disconnected" {
				t.Fatalf("session did not end with Disconnected: %v", names)
			}
			// Observe for several timer periods: nothing may arrive.
			<-time.After(300 * time.Millisecond)
			if got := len(rec.all()); got != n || rec.lateCount() != 0 {
				t.Errorf("events after Disconnected: %v", rec.names()[n-1:])
			}
			if st := ws.State(); st != StateIdle {
				t.Errorf("State after Run = %v, want idle", st)
			}
		})
	}
}
