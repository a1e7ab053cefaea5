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
	"sync/atomic"
	"testing"
	"time"

	"github.com/lomond-go/lomond/events"
	"github.com/lomond-go/lomond/internal/testkit"
	"github.com/lomond-go/lomond/internal/wstest"
)

// Tests of timers.go. Each timer fires on time (within 10% of its due
// offset) whatever the poll interval, because timers ride on the read
// deadline rather than on a ticker; the ping timeout judges a flooding
// server within a bound and never a compliant one; Poll keeps its rhythm
// until the session fails.
//
// The machine running them may be loaded (2 cores, other test binaries), and
// a descheduled goroutine can wake tens of milliseconds late. So a scenario
// whose only failures are timing misses is run again, up to timingAttempts
// times: a timer that is wrong fails every attempt; scheduling jitter does
// not repeat. Every other check fails the test at once.

// timingAttempts bounds how often a scenario with timing misses is run.
const timingAttempts = 4

// timing collects the timing misses of one attempt.
type timing struct {
	misses []string
}

// within records a miss unless got is want ± 10%.
func (tm *timing) within(what string, got, want time.Duration) {
	if tol := want / 10; got < want-tol || got > want+tol {
		tm.misses = append(tm.misses, fmt.Sprintf("%s at %v, want %v ± %v", what, got, want, tol))
	}
}

// atMost records a miss if got is over limit.
func (tm *timing) atMost(what string, got, limit time.Duration) {
	if got < 0 || got > limit {
		tm.misses = append(tm.misses, fmt.Sprintf("%s at %v, want within %v", what, got, limit))
	}
}

// timed runs attempt until its timing checks pass, at most timingAttempts
// times, and reports the misses of the last attempt as errors.
func timed(t *testing.T, attempt func(t *testing.T, tm *timing)) {
	t.Helper()
	for i := 1; ; i++ {
		tm := &timing{}
		attempt(t, tm)
		if t.Failed() || len(tm.misses) == 0 {
			return
		}
		if i == timingAttempts {
			for _, m := range tm.misses {
				t.Errorf("%s (attempt %d of %d)", m, i, timingAttempts)
			}
			return
		}
		t.Logf("attempt %d: timing off (%s); running again", i, strings.Join(tm.misses, "; "))
	}
}

func TestTimersPollInterval(t *testing.T) {
	srv := wstest.NewServer(t, wstest.Echo)
	timed(t, func(t *testing.T, tm *timing) {
		ws := mustNew(t, srv.URL(), WithPollInterval(200*time.Millisecond))
		polls := 0
		rec, err := runRecorded(t, ws, func(ws *WebSocket, ev events.Event) {
			if _, ok := ev.(*events.Poll); ok {
				if polls++; polls == 4 {
					_ = ws.Close(StatusNormal, "done")
				}
			}
		})
		if err != nil {
			t.Fatalf("Run: %v; events: %v", err, rec.Names())
		}
		ready := testkit.First[*events.Ready](t, rec).ReceivedTime()
		ps := testkit.All[*events.Poll](rec)
		if len(ps) != 4 {
			t.Fatalf("got %d polls, want 4; events: %v", len(ps), rec.Names())
		}
		if names := rec.Names(); len(names) < 4 || names[2] != "ready" || names[3] != "poll" {
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
		testkit.ServeMessages(c, func(op byte, p []byte) {
			if op == wstest.OpPing {
				mu.Lock()
				pings = append(pings, stamped{time.Now(), p})
				mu.Unlock()
				_ = c.WriteFrame(wstest.Pong(p))
			}
		})
	})
	timed(t, func(t *testing.T, tm *timing) {
		mu.Lock()
		pings = nil
		mu.Unlock()
		ws := mustNew(t, srv.URL(), WithPingRate(250*time.Millisecond), WithPollInterval(5*time.Second))
		pongs := 0
		rec, err := runRecorded(t, ws, func(ws *WebSocket, ev events.Event) {
			if _, ok := ev.(*events.Pong); ok {
				if pongs++; pongs == 2 {
					_ = ws.Close(StatusNormal, "done")
				}
			}
		})
		if err != nil {
			t.Fatalf("Run: %v; events: %v", err, rec.Names())
		}
		ready := testkit.First[*events.Ready](t, rec).ReceivedTime()
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
		ps := testkit.All[*events.Pong](rec)
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
	srv := wstest.NewServer(t, testkit.IgnoreAll)
	timed(t, func(t *testing.T, tm *timing) {
		ws := mustNew(t, srv.URL(), WithPingRate(200*time.Millisecond), WithPingTimeout(500*time.Millisecond))
		rec, err := runRecorded(t, ws, nil)
		if !errors.Is(err, ErrUnresponsive) {
			t.Fatalf("Run = %v, want ErrUnresponsive; events: %v", err, rec.Names())
		}
		ready := testkit.First[*events.Ready](t, rec).ReceivedTime()
		un := testkit.First[*events.Unresponsive](t, rec)
		// First ping at 200ms, unanswered for 500ms.
		tm.within("Unresponsive", un.ReceivedTime().Sub(ready), 700*time.Millisecond)
		if un.Timeout != 500*time.Millisecond {
			t.Errorf("Unresponsive.Timeout = %v, want 500ms", un.Timeout)
		}
		names := rec.Names()
		if len(names) < 2 || names[len(names)-2] != "unresponsive" || names[len(names)-1] != "disconnected" {
			t.Errorf("events end %v, want ... unresponsive, disconnected", names)
		}
		d := testkit.First[*events.Disconnected](t, rec)
		if d.Graceful || !errors.Is(d.Err, ErrUnresponsive) {
			t.Errorf("Disconnected graceful=%v err=%v, want false, ErrUnresponsive", d.Graceful, d.Err)
		}
	})
}

func TestTimersCloseTimeout(t *testing.T) {
	check := func(t *testing.T, tm *timing, rec *testkit.EventRecorder, err error, closeAt time.Time) {
		t.Helper()
		if !errors.Is(err, ErrCloseTimeout) {
			t.Fatalf("Run = %v, want ErrCloseTimeout; events: %v", err, rec.Names())
		}
		d := testkit.First[*events.Disconnected](t, rec)
		tm.within("Disconnected", d.ReceivedTime().Sub(closeAt), 400*time.Millisecond)
		if d.Graceful || !errors.Is(d.Err, ErrCloseTimeout) {
			t.Errorf("Disconnected graceful=%v err=%v, want false, ErrCloseTimeout", d.Graceful, d.Err)
		}
		if len(testkit.All[*events.Closed](rec)) != 0 {
			t.Errorf("Closed delivered without a close reply: %v", rec.Names())
		}
	}
	opts := []Option{WithCloseTimeout(400 * time.Millisecond), WithPollInterval(10 * time.Second)}

	t.Run("from handler", func(t *testing.T) {
		srv := wstest.NewServer(t, testkit.IgnoreAll)
		timed(t, func(t *testing.T, tm *timing) {
			ws := mustNew(t, srv.URL(), opts...)
			var closeAt time.Time
			rec, err := runRecorded(t, ws, func(ws *WebSocket, ev events.Event) {
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
		srv := wstest.NewServer(t, testkit.IgnoreAll)
		timed(t, func(t *testing.T, tm *timing) {
			ws := mustNew(t, srv.URL(), opts...)
			polled := make(chan struct{})
			type result struct {
				rec *testkit.EventRecorder
				err error
			}
			done := make(chan result, 1)
			go func() {
				rec, err := runRecorded(t, ws, func(_ *WebSocket, ev events.Event) {
					if _, ok := ev.(*events.Poll); ok {
						close(polled)
					}
				})
				done <- result{rec, err}
			}()
			select {
			case <-polled:
			case r := <-done:
				t.Fatalf("session ended before Ready: %v; events: %v", r.err, r.rec.Names())
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
	timed(t, func(t *testing.T, tm *timing) {
		ws := mustNew(t, srv.URL(), WithHandshakeTimeout(400*time.Millisecond))
		rec, err := runRecorded(t, ws, nil)
		if !errors.Is(err, ErrHandshakeTimeout) {
			t.Fatalf("Run = %v, want ErrHandshakeTimeout; events: %v", err, rec.Names())
		}
		if got, want := rec.Names(), []string{"connecting", "connected", "disconnected"}; !slices.Equal(got, want) {
			t.Errorf("events %v, want %v", got, want)
		}
		connected := testkit.First[*events.Connected](t, rec).ReceivedTime()
		d := testkit.First[*events.Disconnected](t, rec)
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
		testkit.ServeMessages(c, func(op byte, p []byte) {
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
			}
		})
	})
	ws := mustNew(t, srv.URL(), WithPingRate(100*time.Millisecond), WithPingTimeout(300*time.Millisecond))
	var unblocked time.Time
	rec, err := runRecorded(t, ws, func(ws *WebSocket, ev events.Event) {
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
		t.Fatalf("Run = %v, want nil; events: %v", err, rec.Names())
	}
	if n := len(testkit.All[*events.Unresponsive](rec)); n != 0 {
		t.Errorf("got %d Unresponsive events; events: %v", n, rec.Names())
	}
	texts := testkit.All[*events.Text](rec)
	if len(texts) != 2 || texts[0].Text != "block" || texts[1].Text != "after" {
		t.Errorf("texts %v, want block, after", texts)
	}
	if cl := testkit.First[*events.Closed](t, rec); cl.Code != StatusNormal {
		t.Errorf("Closed code %d, want 1000", cl.Code)
	}
	if d := testkit.First[*events.Disconnected](t, rec); !d.Graceful {
		t.Errorf("Disconnected not graceful: %v", d)
	}
	pongsAfter := 0
	for _, p := range testkit.All[*events.Pong](rec) {
		if p.ReceivedTime().After(unblocked) {
			pongsAfter++
		}
	}
	if pongsAfter == 0 {
		t.Errorf("no Pong after the handler unblocked; events: %v", rec.Names())
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
		{"unresponsive", testkit.IgnoreAll, append(fast, WithPingTimeout(150*time.Millisecond)), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := wstest.NewServer(t, tc.script)
			ws := mustNew(t, srv.URL(), tc.opts...)
			polls := 0
			rec, _ := runRecorded(t, ws, func(ws *WebSocket, ev events.Event) {
				if _, ok := ev.(*events.Poll); ok && tc.close {
					if polls++; polls == 3 {
						_ = ws.Close(StatusNormal, "done")
					}
				}
			})
			n := len(rec.All())
			if names := rec.Names(); names[len(names)-1] != "disconnected" {
				t.Fatalf("session did not end with Disconnected: %v", names)
			}
			// Observe for several timer periods: nothing may arrive.
			<-time.After(300 * time.Millisecond)
			if got := len(rec.All()); got != n || rec.Late() != 0 {
				t.Errorf("events after Disconnected: %v", rec.Names()[n-1:])
			}
			if st := ws.State(); st != StateIdle {
				t.Errorf("State after Run = %v, want idle", st)
			}
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
	srv, done := testkit.ScriptServer(t, func(c *wstest.Conn) {
		if !testkit.Handshake(t, c) {
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
	testkit.WaitScript(t, done)
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
	srv, done := testkit.ScriptServer(t, func(c *wstest.Conn) {
		if !testkit.Handshake(t, c) {
			return
		}
		for i := 0; i < n; i++ {
			if c.WriteRaw(frame) != nil {
				return
			}
		}
		if testkit.ExpectClose(t, c, 1000, "enough") {
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
	testkit.WaitScript(t, done)
	if err != nil {
		t.Errorf("Run = %v, want nil (a completed client close)", err)
	}
	if texts != n {
		t.Errorf("%d texts delivered, want %d", texts, n)
	}
}

// TestSlowPollHandlerWithAPingInFlight: a handler may take many poll
// intervals while a frame is half received (the read deadline passes
// inside the frame): nothing times out under it, and the frame is read on.
func TestSlowPollHandlerWithAPingInFlight(t *testing.T) {
	inPoll := make(chan struct{})
	srv, done := testkit.ScriptServer(t, func(c *wstest.Conn) {
		if !testkit.Handshake(t, c) {
			return
		}
		ping := wstest.Ping([]byte("in flight")).Encode()
		_ = c.WriteRaw(ping[:4])
		<-inPoll
		_ = c.WriteRaw(ping[4:])
		testkit.Write(t, c, wstest.Text("after"), wstest.Close(1000, ""))
		testkit.ExpectClose(t, c, 1000, "")
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
				time.Sleep(500 * time.Millisecond) // the handler's slow work: ten poll intervals
			}
		}
	}))
	testkit.WaitScript(t, done)
	if CloseStatus(err) != 1000 {
		t.Errorf("Run = %v, want the server's close 1000", err)
	}
	if !strings.Contains(strings.Join(names, " "), "ping") || !strings.Contains(strings.Join(names, " "), "text") {
		t.Errorf("events %v lack the ping or the text", names)
	}
}

// TestStalledWriterIsUnresponsive: a server that floods pings and never
// reads fills the client's send buffer; the write that makes no progress
// for the ping timeout ends the session as Unresponsive instead of freezing
// it, and a send stuck on it fails.
func TestStalledWriterIsUnresponsive(t *testing.T) {
	srv, done := testkit.ScriptServer(t, func(c *wstest.Conn) {
		if !testkit.Handshake(t, c) {
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
	testkit.WaitScript(t, done)
}

// judgedLog records a session's events. Messages and pings are only
// counted: a flood would fill the memory.
type judgedLog struct {
	testkit.EventRecorder
	messages, pings atomic.Int64
}

func (l *judgedLog) OnEvent(_ *WebSocket, ev events.Event) {
	switch ev.(type) {
	case *events.Text, *events.Binary:
		l.messages.Add(1)
	case *events.Ping:
		l.pings.Add(1)
	default:
		l.Add(ev)
	}
}

func (l *judgedLog) OnReady(*WebSocket, *events.Ready) {}

func (l *judgedLog) OnText(*WebSocket, *events.Text) {}

func (l *judgedLog) OnBinary(*WebSocket, *events.Binary) {}

func (l *judgedLog) OnClosed(*WebSocket, *events.Closed) {}

func (l *judgedLog) counts() (messages, pings int) {
	return int(l.messages.Load()), int(l.pings.Load())
}

func TestPingTimeoutJudging(t *testing.T) {
	t.Run("DelayedPongsToEveryPingKeepTheSessionAlive", func(t *testing.T) {
		// Pings every 100 ms, each answered 150 ms later: at any moment a
		// pong is on its way, but never for the latest ping. Any pong ends
		// the wait, so the server is never unresponsive.
		const delay = 150 * time.Millisecond
		srv, done := testkit.ScriptServer(t, func(c *wstest.Conn) {
			if !testkit.Handshake(t, c) {
				return
			}
			var pending sync.WaitGroup
			defer pending.Wait()
			var mu sync.Mutex
			closed := false // no pong after our close reply
			for {
				f, err := c.ReadFrame()
				if err != nil {
					return
				}
				switch f.Opcode {
				case wstest.OpPing:
					payload := f.Payload
					pending.Add(1)
					time.AfterFunc(delay, func() {
						defer pending.Done()
						mu.Lock()
						defer mu.Unlock()
						if !closed {
							_ = c.WriteFrame(wstest.Pong(payload))
						}
					})
				case wstest.OpClose:
					mu.Lock()
					closed = true
					_ = c.WriteFrame(wstest.Frame{Fin: true, Opcode: wstest.OpClose, Payload: f.Payload})
					mu.Unlock()
					return
				}
			}
		})
		ws := newTestWS(t, srv.URL(), WithPingRate(100*time.Millisecond), WithPingTimeout(400*time.Millisecond))
		log := &judgedLog{}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		err := ws.Run(ctx, log)
		testkit.WaitScript(t, done)
		if n := len(testkit.All[*events.Unresponsive](&log.EventRecorder)); n > 0 {
			t.Errorf("a server answering every ping %v late was judged unresponsive; events: %q", delay, log.Names())
		}
		if err != nil {
			t.Errorf("Run = %v, want nil (the context ended the session)", err)
		}
		pongs := testkit.All[*events.Pong](&log.EventRecorder)
		if len(pongs) < 8 {
			t.Fatalf("%d Pong events in 2 s of pings every 100 ms, want at least 8; events: %q", len(pongs), log.Names())
		}
		for i, p := range pongs {
			// Each pong answers one ping, 150 ms after the server read it.
			if p.RTT < delay-10*time.Millisecond || p.RTT > time.Second {
				t.Errorf("Pong %d (payload %x): RTT %v, want about %v (measured against the ping whose payload it carries)", i, p.Data, p.RTT, delay)
			}
		}
	})

	// A server that keeps sending, reads what the client writes, and never
	// answers its pings: bytes always wait to be read, but the ping timeout
	// is declared within a bound all the same.
	text := wstest.Text("flood of sixteen")
	for _, flood := range []struct {
		name   string
		frames []wstest.Frame
	}{
		{"Text", []wstest.Frame{text}},
		{"TextWithPings", append(repeatFrame(text, 15), wstest.Ping([]byte("ping")))},
		{"Pings", []wstest.Frame{wstest.Ping([]byte("flood of sixteen"))}},
	} {
		t.Run("FloodOf"+flood.name+"DoesNotPostponeTheVerdict", func(t *testing.T) {
			srv, done := testkit.ScriptServer(t, func(c *wstest.Conn) {
				if !testkit.Handshake(t, c) {
					return
				}
				floodUnanswered(c, flood.frames...)
			})
			ws := newTestWS(t, srv.URL(), WithPingRate(500*time.Millisecond), WithPingTimeout(time.Second),
				WithCloseTimeout(500*time.Millisecond))
			log := &judgedLog{}
			ctx, cancel := context.WithTimeout(context.Background(), 6*time.Second)
			defer cancel()
			err := ws.Run(ctx, log)
			testkit.WaitScript(t, done)
			msgs, pings := log.counts()
			un := testkit.All[*events.Unresponsive](&log.EventRecorder)
			if len(un) != 1 {
				t.Fatalf("%d Unresponsive events after %d messages and %d pings from a server that never answers pings, want 1; events: %q",
					len(un), msgs, pings, log.Names())
			}
			ready := testkit.All[*events.Ready](&log.EventRecorder)[0]
			if after := un[0].ReceivedTime().Sub(ready.ReceivedTime()); after > 4*time.Second {
				t.Errorf("Unresponsive %v after Ready, want within 4 s (ping at 0.5 s, timeout 1 s)", after)
			}
			if !errors.Is(err, ErrUnresponsive) {
				t.Errorf("Run = %v, want ErrUnresponsive", err)
			}
		})
	}

	t.Run("FloodOfPingsToAServerThatDoesNotReadEndsTheSession", func(t *testing.T) {
		// The client's pongs go unread; the session ends within a bound
		// all the same (unresponsive: no pong to its ping, or a write that
		// stalls), however much the socket buffers hold before a write
		// stalls.
		srv, done := testkit.ScriptServer(t, func(c *wstest.Conn) {
			if !testkit.Handshake(t, c) {
				return
			}
			batch := wstest.EncodeAll(repeatFrame(wstest.Ping(make([]byte, 125)), 2048)...)
			stopAt := time.Now().Add(8 * time.Second) // a bound for the server, not a test
			for time.Now().Before(stopAt) {
				if c.WriteRaw(batch) != nil {
					return
				}
			}
		})
		ws := newTestWS(t, srv.URL(), WithPingRate(500*time.Millisecond), WithPingTimeout(time.Second),
			WithCloseTimeout(500*time.Millisecond))
		log := &judgedLog{}
		ctx, cancel := context.WithTimeout(context.Background(), 7*time.Second)
		defer cancel()
		start := time.Now()
		err := ws.Run(ctx, log)
		took := time.Since(start)
		testkit.WaitScript(t, done)
		_, pings := log.counts()
		if took > 5*time.Second {
			t.Errorf("the session took %v to end (after %d pings; events %q), want under 5 s", took, pings, log.Names())
		}
		if !errors.Is(err, ErrUnresponsive) {
			t.Errorf("Run = %v, want ErrUnresponsive (no pong, or a stalled write)", err)
		}
	})
}

func TestPollRhythm(t *testing.T) {
	t.Run("KeepsItsRhythmWhileAPongIsOverdueAndDataArrives", func(t *testing.T) {
		const interval = 100 * time.Millisecond
		timed(t, func(t *testing.T, tm *timing) {
			srv, done := testkit.ScriptServer(t, func(c *wstest.Conn) {
				if !testkit.Handshake(t, c) {
					return
				}
				// Text, with a ping now and then: data keeps arriving.
				floodUnanswered(c, append(repeatFrame(wstest.Text("stream of sixteen"), 15), wstest.Ping([]byte("ping")))...)
			})
			ws := newTestWS(t, srv.URL(), WithPollInterval(interval), WithPingRate(200*time.Millisecond),
				WithPingTimeout(1500*time.Millisecond), WithCloseTimeout(500*time.Millisecond))
			log := &judgedLog{}
			ctx, cancel := context.WithTimeout(context.Background(), 4*time.Second)
			defer cancel()
			err := ws.Run(ctx, log)
			testkit.WaitScript(t, done)

			ready := testkit.All[*events.Ready](&log.EventRecorder)[0].ReceivedTime()
			un := testkit.All[*events.Unresponsive](&log.EventRecorder)
			end := testkit.All[*events.Disconnected](&log.EventRecorder)[0].ReceivedTime()
			if len(un) == 1 {
				end = un[0].ReceivedTime()
			} else {
				t.Errorf("%d Unresponsive events, want 1 (Run = %v); events: %q", len(un), err, log.Names())
			}
			var times []time.Time
			for _, p := range testkit.All[*events.Poll](&log.EventRecorder) {
				if !p.ReceivedTime().After(end) {
					times = append(times, p.ReceivedTime())
				}
			}
			first := 0
			for _, at := range times {
				if at.Sub(ready) <= time.Second {
					first++
				}
			}
			if first < 8 {
				tm.misses = append(tm.misses, fmt.Sprintf("%d Poll events in the first second at a 100 ms interval, want at least 8", first))
			}
			// From Ready to the verdict, no gap longer than three intervals.
			prev := ready
			for _, at := range append(times, end) {
				if gap := at.Sub(prev); gap > 3*interval {
					tm.misses = append(tm.misses, fmt.Sprintf("no Poll for %v (from %v to %v after Ready), want at most %v between two",
						gap.Round(time.Millisecond), prev.Sub(ready).Round(time.Millisecond), at.Sub(ready).Round(time.Millisecond), 3*interval))
					break
				}
				prev = at
			}
		})
	})

	t.Run("StopsOnceTheSessionHasFailed", func(t *testing.T) {
		// A protocol violation, then no close reply: the session has failed
		// and awaits only the reply or the close timeout.
		srv, done := testkit.ScriptServer(t, func(c *wstest.Conn) {
			if !testkit.Handshake(t, c) {
				return
			}
			// Invalid UTF-8: the frames stay in step, so the client waits for
			// the close reply.
			if !testkit.Write(t, c, wstest.Text("bad \xff text")) {
				return
			}
			if _, _, err := c.ExpectClose(); err != nil {
				t.Errorf("server: waiting for the client's close: %v", err)
				return
			}
			// Withhold the reply: read until the client drops the connection.
			for {
				if _, err := c.ReadFrame(); err != nil {
					return
				}
			}
		})
		ws := newTestWS(t, srv.URL(), WithPollInterval(100*time.Millisecond), WithCloseTimeout(time.Second))
		log := &judgedLog{}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		err := ws.Run(ctx, log)
		testkit.WaitScript(t, done)
		var pe *ProtocolError
		if !errors.As(err, &pe) {
			t.Errorf("Run = %v, want a *ProtocolError", err)
		}
		failed, polls := false, 0
		for _, ev := range log.All() {
			switch ev.(type) {
			case *events.ProtocolError:
				failed = true
			case *events.Poll:
				if failed {
					polls++
				}
			}
		}
		if !failed {
			t.Fatalf("no ProtocolError event; events: %q", log.Names())
		}
		if polls > 0 {
			t.Errorf("%d Poll events between ProtocolError and Disconnected, want none: %q", polls, log.Names())
		}
	})
}

// floodUnanswered writes frames to the client over and over, reading and dropping
// what the client sends (its pings go unanswered), until the client closes
// (answered with a close frame) or drops the connection. It gives up after
// 8 s: a bound for the server, not a test.
func floodUnanswered(c *wstest.Conn, frames ...wstest.Frame) {
	gotClose := make(chan struct{})
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		for {
			f, err := c.ReadFrame()
			if err != nil {
				return
			}
			if f.Opcode == wstest.OpClose {
				close(gotClose)
				return
			}
		}
	}()
	var batch []byte
	for len(batch) < 1024 {
		batch = append(batch, wstest.EncodeAll(frames...)...)
	}
	stopAt := time.Now().Add(8 * time.Second)
	for time.Now().Before(stopAt) {
		select {
		case <-gotClose:
			_ = c.WriteFrame(wstest.Close(StatusNormal, ""))
			<-readerDone
			return
		default:
		}
		if c.WriteRaw(batch) != nil {
			break
		}
	}
	_ = c.Close()
	<-readerDone
}

// repeatFrame returns n copies of f.
func repeatFrame(f wstest.Frame, n int) []wstest.Frame {
	fs := make([]wstest.Frame, n)
	for i := range fs {
		fs[i] = f
	}
	return fs
}
