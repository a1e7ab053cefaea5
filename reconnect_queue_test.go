package lomond

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lomond-go/lomond/events"
	"github.com/lomond-go/lomond/internal/wstest"
)

// The send queue's tests with Persist: WithSendQueue, Unsent and Queued.
// (queue_order_test.go has the queue's order, bound and Run tests.)

// rcSendOnFirstBackOff returns an rcFunc that runs send once, at the first
// BackOff (no session is running then), and cancels Persist if stop is set.
func rcSendOnFirstBackOff(send func(ws *WebSocket), stopAfter bool) rcFunc {
	done := false
	return func(ws *WebSocket, ev events.Event, stop context.CancelFunc) {
		if ev.Name() != "back_off" || done {
			return
		}
		done = true
		send(ws)
		if stopAfter {
			stop()
		}
	}
}

func rcWantUnsent(t *testing.T, ws *WebSocket, want ...Message) {
	t.Helper()
	got := ws.Unsent()
	if !slices.EqualFunc(got, want, func(a, b Message) bool { return a.Binary == b.Binary && string(a.Data) == string(b.Data) }) {
		t.Errorf("Unsent = %v, want %v", rcMsgs(got), rcMsgs(want))
	}
	if again := ws.Unsent(); len(again) != 0 {
		t.Errorf("second Unsent = %v, want nothing (Unsent forgets)", rcMsgs(again))
	}
}

// rcMsgs renders messages for failure output.
func rcMsgs(ms []Message) []string {
	var out []string
	for _, m := range ms {
		if m.Binary {
			out = append(out, fmt.Sprintf("binary %q", m.Data))
		} else {
			out = append(out, fmt.Sprintf("text %q", m.Data))
		}
	}
	return out
}

func txt(s string) Message { return Message{Data: []byte(s)} }

func TestPersistQueueRejectNewest(t *testing.T) {
	rcNoLeak(t)
	ws := rcNew(t, "ws://"+rcRefusedAddr(t)+"/", WithSendQueue(3, RejectNewest))
	var errs []error
	queued := -1
	_, err := rcPersist(t, ws, rcSendOnFirstBackOff(func(ws *WebSocket) {
		errs = []error{ws.SendText("q1"), ws.SendBinary([]byte("q2")), ws.SendJSON(map[string]int{"q": 3}), ws.SendText("q4")}
		queued = ws.Queued()
	}, true), rcConst(time.Hour))
	if err != nil {
		t.Fatalf("Persist = %v", err)
	}
	for i, err := range errs[:3] {
		if err != nil {
			t.Errorf("send %d = %v, want nil (queued)", i+1, err)
		}
	}
	var de *DroppedError
	if !errors.Is(errs[3], ErrQueueFull) || errors.As(errs[3], &de) {
		t.Errorf("4th send = %v, want ErrQueueFull (not a *DroppedError)", errs[3])
	}
	if queued != 3 {
		t.Errorf("Queued = %d, want 3", queued)
	}
	if n := ws.Queued(); n != 3 {
		t.Errorf("Queued after Persist = %d, want 3 (the queue is the WebSocket's)", n)
	}
	rcWantUnsent(t, ws, txt("q1"), Message{Binary: true, Data: []byte("q2")}, txt(`{"q":3}`))
	if n := ws.Queued(); n != 0 {
		t.Errorf("Queued after Unsent = %d, want 0", n)
	}
	if err := ws.SendText("late"); err != nil {
		t.Errorf("SendText after Persist = %v, want nil (queued for the next run)", err)
	}
	rcWantUnsent(t, ws, txt("late"))
}

func TestPersistQueueDropOldest(t *testing.T) {
	rcNoLeak(t)
	ws := rcNew(t, "ws://"+rcRefusedAddr(t)+"/", WithSendQueue(3, DropOldest))
	var errs []error
	_, err := rcPersist(t, ws, rcSendOnFirstBackOff(func(ws *WebSocket) {
		for _, m := range []string{"q1", "q2", "q3", "q4", "q5"} {
			errs = append(errs, ws.SendText(m))
		}
	}, true), rcConst(time.Hour))
	if err != nil {
		t.Fatalf("Persist = %v", err)
	}
	for i, err := range errs[:3] {
		if err != nil {
			t.Errorf("send %d = %v, want nil", i+1, err)
		}
	}
	for i, dropped := range []string{"q1", "q2"} {
		err := errs[3+i]
		var de *DroppedError
		if !errors.As(err, &de) || !errors.Is(err, ErrQueueFull) {
			t.Errorf("send %d = %v, want a *DroppedError wrapping ErrQueueFull", 4+i, err)
			continue
		}
		if de.Dropped.Binary || string(de.Dropped.Data) != dropped {
			t.Errorf("send %d dropped %q, want %q", 4+i, de.Dropped.Data, dropped)
		}
	}
	rcWantUnsent(t, ws, txt("q3"), txt("q4"), txt("q5"))
}

// rcMsgLog records, per connection, the text messages a server received.
type rcMsgLog struct {
	mu   sync.Mutex
	msgs map[int32][]string
}

func (l *rcMsgLog) add(conn int32, m string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.msgs == nil {
		l.msgs = map[int32][]string{}
	}
	l.msgs[conn] = append(l.msgs[conn], m)
	return len(l.msgs[conn])
}

func (l *rcMsgLog) get(conn int32) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.msgs[conn])
}

func TestPersistQueueFlushAfterOnReady(t *testing.T) {
	rcNoLeak(t)
	var log rcMsgLog
	var n atomic.Int32
	third := make(chan struct{}, 1)
	srv := wstest.NewServer(t, func(c *wstest.Conn) {
		conn := n.Add(1)
		if conn == 1 {
			rcReject(http.StatusServiceUnavailable, nil)(c)
			return
		}
		if _, err := c.Handshake(); err != nil {
			return
		}
		for {
			op, p, err := c.ReadMessage()
			if err != nil {
				return
			}
			switch op {
			case wstest.OpText:
				got := log.add(conn, string(p))
				if conn == 2 && got == 4 {
					// End this session; the client's echo ends the loop.
					_ = c.WriteFrame(wstest.Close(StatusServiceRestart, "restart"))
				}
				if conn == 3 && got == 1 {
					third <- struct{}{}
				}
			case wstest.OpClose:
				if conn != 2 {
					_ = c.WriteFrame(wstest.Frame{Fin: true, Opcode: wstest.OpClose, Payload: p})
				}
				return
			}
		}
	})
	ws := rcNew(t, srv.URL(), WithSendQueue(8, RejectNewest))
	var queueErrs []error
	var helloErrs []error
	queue := rcSendOnFirstBackOff(func(ws *WebSocket) {
		queueErrs = []error{ws.SendText("q1"), ws.SendText("q2"), ws.SendText("q3")}
	}, false)
	run := rcGo(t, ws, func(ws *WebSocket, ev events.Event, stop context.CancelFunc) {
		queue(ws, ev, stop)
		if ev.Name() == "ready" {
			helloErrs = append(helloErrs, ws.SendText("hello"))
		}
	}, rcConst(5*time.Millisecond))
	rcRecv(t, third, "the third connection's first message")
	if err := run.stop(t); err != nil {
		t.Fatalf("Persist = %v", err)
	}
	for _, err := range append(queueErrs, helloErrs...) {
		if err != nil {
			t.Errorf("send = %v, want nil", err)
		}
	}
	if got, want := log.get(2), []string{"q1", "q2", "q3", "hello"}; !slices.Equal(got, want) {
		t.Errorf("second connection received %q, want %q (the order of the sends: OnReady's message joins the queue)", got, want)
	}
	if got, want := log.get(3), []string{"hello"}; !slices.Equal(got, want) {
		t.Errorf("third connection received %q, want %q (queued messages are sent once)", got, want)
	}
	rcWantUnsent(t, ws)
}

func TestPersistQueueUnsentAtShutdown(t *testing.T) {
	rcNoLeak(t)
	srv := wstest.NewServer(t, rcReject(http.StatusServiceUnavailable, nil))
	ws := rcNew(t, srv.URL(), WithSendQueue(4, DropOldest))
	var errs []error
	_, err := rcPersist(t, ws, rcSendOnFirstBackOff(func(ws *WebSocket) {
		errs = []error{ws.SendText("m1"), ws.SendBinary([]byte{0, 1})}
	}, true), rcConst(time.Hour))
	if err != nil {
		t.Fatalf("Persist = %v", err)
	}
	if errors.Join(errs...) != nil {
		t.Errorf("sends = %v, want queued", errs)
	}
	rcWantUnsent(t, ws, txt("m1"), Message{Binary: true, Data: []byte{0, 1}})
	if n := srv.Conns(); n != 1 {
		t.Errorf("%d connections, want 1 (no attempt after cancel)", n)
	}
}

func TestPersistNoQueueNotConnected(t *testing.T) {
	rcNoLeak(t)
	ws := rcNew(t, "ws://"+rcRefusedAddr(t)+"/")
	var errs []error
	_, err := rcPersist(t, ws, func(ws *WebSocket, ev events.Event, stop context.CancelFunc) {
		switch ev.Name() {
		case "connecting", "connect_fail":
			errs = append(errs, ws.SendText(ev.Name()))
		case "back_off":
			errs = append(errs, ws.SendText(ev.Name()), ws.SendBinary(nil))
			stop()
		}
	}, rcConst(time.Hour))
	if err != nil {
		t.Fatalf("Persist = %v", err)
	}
	if len(errs) != 4 {
		t.Fatalf("%d sends, want 4", len(errs))
	}
	for i, err := range errs {
		if !errors.Is(err, ErrNotConnected) {
			t.Errorf("send %d = %v, want ErrNotConnected", i+1, err)
		}
	}
	if u := ws.Unsent(); len(u) != 0 {
		t.Errorf("Unsent = %v, want nothing without a queue", rcMsgs(u))
	}
}

// TestPersistQueueOrderAgainstConcurrentSend sends "late" from another
// goroutine as soon as WaitReady returns, after "q1" was queued, while
// OnReady is still busy: the queue must keep its order, so "q1" reaches the
// server before "late".
func TestPersistQueueOrderAgainstConcurrentSend(t *testing.T) {
	rcNoLeak(t)
	var log rcMsgLog
	var n atomic.Int32
	two := make(chan struct{}, 1)
	srv := wstest.NewServer(t, func(c *wstest.Conn) {
		if n.Add(1) == 1 {
			rcReject(http.StatusServiceUnavailable, nil)(c)
			return
		}
		if _, err := c.Handshake(); err != nil {
			return
		}
		for {
			op, p, err := c.ReadMessage()
			if err != nil {
				return
			}
			switch op {
			case wstest.OpText:
				if log.add(2, string(p)) == 2 {
					two <- struct{}{}
				}
			case wstest.OpClose:
				_ = c.WriteFrame(wstest.Frame{Fin: true, Opcode: wstest.OpClose, Payload: p})
				return
			}
		}
	})
	ws := rcNew(t, srv.URL(), WithSendQueue(4, RejectNewest))
	release := make(chan struct{})
	queue := rcSendOnFirstBackOff(func(ws *WebSocket) { _ = ws.SendText("q1") }, false)
	run := rcGo(t, ws, func(ws *WebSocket, ev events.Event, stop context.CancelFunc) {
		queue(ws, ev, stop)
		if ev.Name() == "ready" {
			<-release // OnReady is busy (say, authenticating)
		}
	}, rcConst(5*time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), rcTimeout)
	defer cancel()
	sent := make(chan error, 1)
	go func() {
		err := ws.WaitReady(ctx)
		if err == nil {
			err = ws.SendText("late")
		}
		sent <- err
	}()
	run.rec.waitCount(t, "ready", 1)
	// WaitReady may return now (and the send go out), or only once OnReady
	// and the flush are done; give the first case a generous window.
	window := time.NewTimer(200 * time.Millisecond)
	defer window.Stop()
	var err error
	select {
	case err = <-sent:
		close(release)
	case <-window.C:
		close(release)
		err = rcRecv(t, sent, "WaitReady and SendText")
	}
	if err != nil {
		t.Fatalf("WaitReady/SendText = %v", err)
	}
	rcRecv(t, two, "two messages")
	if err := run.stop(t); err != nil {
		t.Fatal(err)
	}
	if got, want := log.get(2), []string{"q1", "late"}; !slices.Equal(got, want) {
		t.Errorf("server received %q, want %q (a message sent after q1 was queued overtook it)", got, want)
	}
}
