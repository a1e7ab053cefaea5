package lomond

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/lomond-go/lomond/events"
	"github.com/lomond-go/lomond/internal/wstest"
)

// Tests of the timers that judge the server (the ping timeout) and of the
// Poll rhythm around them: a compliant server is never judged dead, a
// server that floods is judged within a bound, and Poll keeps its rhythm
// until the session fails, and no longer.

// judgedLog records a session's events from any goroutine. Messages and
// pings are only counted: a flood would fill the memory.
type judgedLog struct {
	mu       sync.Mutex
	evs      []events.Event
	messages int
	pings    int
}

func (l *judgedLog) OnEvent(_ *WebSocket, ev events.Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch ev.(type) {
	case *events.Text, *events.Binary:
		l.messages++
	case *events.Ping:
		l.pings++
	default:
		l.evs = append(l.evs, ev)
	}
}

func (l *judgedLog) OnReady(*WebSocket, *events.Ready)   {}
func (l *judgedLog) OnText(*WebSocket, *events.Text)     {}
func (l *judgedLog) OnBinary(*WebSocket, *events.Binary) {}
func (l *judgedLog) OnClosed(*WebSocket, *events.Closed) {}

func (l *judgedLog) counts() (messages, pings int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.messages, l.pings
}

func (l *judgedLog) all() []events.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]events.Event(nil), l.evs...)
}

// judgedOf returns the recorded events of type T, in order.
func judgedOf[T events.Event](l *judgedLog) []T {
	var out []T
	for _, ev := range l.all() {
		if e, ok := ev.(T); ok {
			out = append(out, e)
		}
	}
	return out
}

func judgedNames(l *judgedLog) []string {
	var ns []string
	for _, ev := range l.all() {
		ns = append(ns, ev.Name())
	}
	return ns
}

func TestPingTimeoutJudging(t *testing.T) {
	t.Run("DelayedPongsToEveryPingKeepTheSessionAlive", func(t *testing.T) {
		// Pings every 100 ms, each answered 150 ms later: at any moment a
		// pong is on its way, but never for the latest ping. Any pong ends
		// the wait, so the server is never unresponsive.
		const delay = 150 * time.Millisecond
		srv, done := scriptServer(t, func(c *wstest.Conn) {
			if !srvHandshake(t, c) {
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
		waitScript(t, done)
		if n := len(judgedOf[*events.Unresponsive](log)); n > 0 {
			t.Errorf("a server answering every ping %v late was judged unresponsive; events: %q", delay, judgedNames(log))
		}
		if err != nil {
			t.Errorf("Run = %v, want nil (the context ended the session)", err)
		}
		pongs := judgedOf[*events.Pong](log)
		if len(pongs) < 8 {
			t.Fatalf("%d Pong events in 2 s of pings every 100 ms, want at least 8; events: %q", len(pongs), judgedNames(log))
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
			srv, done := scriptServer(t, func(c *wstest.Conn) {
				if !srvHandshake(t, c) {
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
			waitScript(t, done)
			msgs, pings := log.counts()
			un := judgedOf[*events.Unresponsive](log)
			if len(un) != 1 {
				t.Fatalf("%d Unresponsive events after %d messages and %d pings from a server that never answers pings, want 1; events: %q",
					len(un), msgs, pings, judgedNames(log))
			}
			ready := judgedOf[*events.Ready](log)[0]
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
		srv, done := scriptServer(t, func(c *wstest.Conn) {
			if !srvHandshake(t, c) {
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
		waitScript(t, done)
		_, pings := log.counts()
		if took > 5*time.Second {
			t.Errorf("the session took %v to end (after %d pings; events %q), want under 5 s", took, pings, judgedNames(log))
		}
		if !errors.Is(err, ErrUnresponsive) {
			t.Errorf("Run = %v, want ErrUnresponsive (no pong, or a stalled write)", err)
		}
	})
}

func TestPollRhythm(t *testing.T) {
	t.Run("KeepsItsRhythmWhileAPongIsOverdueAndDataArrives", func(t *testing.T) {
		const interval = 100 * time.Millisecond
		srv, done := scriptServer(t, func(c *wstest.Conn) {
			if !srvHandshake(t, c) {
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
		waitScript(t, done)

		ready := judgedOf[*events.Ready](log)[0].ReceivedTime()
		un := judgedOf[*events.Unresponsive](log)
		end := judgedOf[*events.Disconnected](log)[0].ReceivedTime()
		if len(un) == 1 {
			end = un[0].ReceivedTime()
		} else {
			t.Errorf("%d Unresponsive events, want 1 (Run = %v); events: %q", len(un), err, judgedNames(log))
		}
		var times []time.Time
		for _, p := range judgedOf[*events.Poll](log) {
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
			t.Errorf("%d Poll events in the first second at a 100 ms interval, want at least 8", first)
		}
		// From Ready to the verdict, no gap longer than three intervals.
		prev := ready
		for _, at := range append(times, end) {
			if gap := at.Sub(prev); gap > 3*interval {
				t.Errorf("no Poll for %v (from %v to %v after Ready), want at most %v between two", gap.Round(time.Millisecond),
					prev.Sub(ready).Round(time.Millisecond), at.Sub(ready).Round(time.Millisecond), 3*interval)
				break
			}
			prev = at
		}
	})

	t.Run("StopsOnceTheSessionHasFailed", func(t *testing.T) {
		// A protocol violation, then no close reply: the session has failed
		// and awaits only the reply or the close timeout.
		srv, done := scriptServer(t, func(c *wstest.Conn) {
			if !srvHandshake(t, c) {
				return
			}
			// Invalid UTF-8: the frames stay in step, so the client waits for
			// the close reply.
			if !srvWrite(t, c, wstest.Text("bad \xff text")) {
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
		waitScript(t, done)
		var pe *ProtocolError
		if !errors.As(err, &pe) {
			t.Errorf("Run = %v, want a *ProtocolError", err)
		}
		failed, polls := false, 0
		for _, ev := range log.all() {
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
			t.Fatalf("no ProtocolError event; events: %q", judgedNames(log))
		}
		if polls > 0 {
			t.Errorf("%d Poll events between ProtocolError and Disconnected, want none: %q", polls, judgedNames(log))
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
