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

// Regression tests for the send queue's defects (issue 8, item 1): order,
// sends lost at Persist's return, the bound, and Unsent across runs.

// qoServer accepts every connection, records the text messages of each
// connection (numbered from 1), reports each one on got, and answers the
// client's close.
func qoServer(t *testing.T, log *rcMsgLog, got chan<- string) *wstest.Server {
	var n atomic.Int32
	return wstest.NewServer(t, func(c *wstest.Conn) {
		conn := n.Add(1)
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
				log.add(conn, string(p))
				if got != nil {
					got <- string(p)
				}
			case wstest.OpClose:
				_ = c.WriteFrame(wstest.Frame{Fin: true, Opcode: wstest.OpClose, Payload: p})
				return
			}
		}
	})
}

// TestQueueKeepsSendOrder: A is sent while the session is connecting (it is
// queued), B from OnReady: the server must get A, then B. Before the fix
// OnReady's send bypassed the queue and the server got B, A.
func TestQueueKeepsSendOrder(t *testing.T) {
	rcNoLeak(t)
	var log rcMsgLog
	got := make(chan string, 4)
	srv := qoServer(t, &log, got)
	ws := rcNew(t, srv.URL(), WithSendQueue(4, RejectNewest))
	var errs []error
	run := rcGo(t, ws, func(ws *WebSocket, ev events.Event, _ context.CancelFunc) {
		switch ev.(type) {
		case *events.Connecting:
			errs = append(errs, ws.SendText("A"))
		case *events.Ready:
			errs = append(errs, ws.SendText("B"))
		}
	})
	rcRecv(t, got, "the first message")
	rcRecv(t, got, "the second message")
	if err := run.stop(t); err != nil {
		t.Fatalf("Persist = %v", err)
	}
	if err := errors.Join(errs...); err != nil {
		t.Errorf("sends = %v, want nil", err)
	}
	if got, want := log.get(1), []string{"A", "B"}; !slices.Equal(got, want) {
		t.Errorf("server received %q, want %q (the order of the sends)", got, want)
	}
}

// TestQueueNothingLostAtPersistReturn sends from another goroutine without
// pause while Persist is cancelled: every send that returned nil must be
// in Unsent afterwards (nothing was ever connected). Before the fix a send
// racing Persist's return could return nil and be in neither.
func TestQueueNothingLostAtPersistReturn(t *testing.T) {
	rcNoLeak(t)
	addr := rcRefusedAddr(t)
	for round := 0; round < 40; round++ {
		ws := rcNew(t, "ws://"+addr+"/", WithSendQueue(1<<20, RejectNewest))
		ctx, cancel := context.WithCancel(context.Background())
		backoff := make(chan struct{})
		var once sync.Once
		persistDone := make(chan error, 1)
		go func() {
			persistDone <- ws.Persist(ctx, HandlerFunc(func(_ *WebSocket, ev events.Event) {
				if ev.Name() == events.NameBackOff {
					once.Do(func() { close(backoff) })
				}
			}), rcConst(time.Hour))
		}()
		var accepted []string
		stopSending := make(chan struct{})
		sent := make(chan []string)
		go func() {
			var ok []string
			for i := 0; ; i++ {
				select {
				case <-stopSending:
					sent <- ok
					return
				default:
				}
				m := fmt.Sprint(i)
				if ws.SendText(m) == nil {
					ok = append(ok, m)
				}
			}
		}()
		rcRecv(t, backoff, "BackOff")
		cancel()
		if err := rcRecv(t, persistDone, "Persist's return"); err != nil {
			t.Fatalf("Persist = %v", err)
		}
		close(stopSending)
		accepted = rcRecv(t, sent, "the sender")
		var unsent []string
		for _, m := range ws.Unsent() {
			unsent = append(unsent, string(m.Data))
		}
		if !slices.Equal(unsent, accepted) {
			t.Fatalf("round %d: %d sends returned nil, Unsent holds %d: a queued message was lost", round, len(accepted), len(unsent))
		}
	}
}

// TestQueueBoundHoldsDuringFlush: while the flush writes a message (here it
// waits for the send lock), the queue fills up; the write then fails
// because the session is closing, and the message goes back to the queue:
// the queue must still hold at most its size. Before the fix it held
// size+1.
func TestQueueBoundHoldsDuringFlush(t *testing.T) {
	const size = 2
	ws := &WebSocket{}
	q := newSendQueue(size, 0, RejectNewest)
	s := &session{ws: ws}
	s.state.Store(int32(StateReady))
	ws.sess.Store(s)
	for _, m := range []string{"a", "b"} {
		q.push(txt(m))
	}
	s.w.init(nil, 0)
	_ = s.w.acquire(nil) // another send is writing
	q.flushing = true
	flushed := make(chan struct{})
	go func() {
		defer close(flushed)
		q.flush(context.Background(), ws, s)
	}()
	// Wait until the flush has taken "a" out and waits for the lock.
	deadline := time.Now().Add(5 * time.Second)
	for {
		q.mu.Lock()
		n := len(q.msgs)
		q.mu.Unlock()
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the flush never took the first message")
		}
		time.Sleep(time.Millisecond) // polling the queue; no event signals the pop
	}
	if err := q.send(context.Background(), ws, opText, []byte("c")); err != nil {
		t.Logf("send during the flush: %v", err)
	}
	s.state.Store(int32(StateClosing))
	s.w.closeSent = true // the client's close frame went out
	s.w.unlock()
	<-flushed
	if n := len(q.msgs); n > size {
		t.Errorf("queue holds %d messages (%q), more than its size %d", n, rcMsgs(q.msgs), size)
	}
	if len(q.msgs) == 0 || string(q.msgs[0].Data) != "a" {
		t.Errorf("queue %q, want the unwritten \"a\" first", rcMsgs(q.msgs))
	}
	want := 0
	for _, m := range q.msgs {
		want += len(m.Data)
	}
	if q.bytes != want || q.inflight != 0 || q.inflightBytes != 0 {
		t.Errorf("queue counts %d bytes, %d in flight (%d bytes); want %d bytes, none in flight (the unwritten message's bytes count again)",
			q.bytes, q.inflight, q.inflightBytes, want)
	}
}

// TestQueueUnsentBoundedAcrossRuns runs Persist three times against a
// refused address, queueing one message each time, and never reads
// Unsent: what waits must stay within the queue's size. Before the fix
// Unsent grew by one message per run.
func TestQueueUnsentBoundedAcrossRuns(t *testing.T) {
	rcNoLeak(t)
	ws := rcNew(t, "ws://"+rcRefusedAddr(t)+"/", WithSendQueue(1, DropOldest))
	for i := 1; i <= 3; i++ {
		_, err := rcPersist(t, ws, rcSendOnFirstBackOff(func(ws *WebSocket) {
			_ = ws.SendText(fmt.Sprint("m", i))
		}, true), rcConst(time.Hour))
		if err != nil {
			t.Fatalf("Persist %d = %v", i, err)
		}
	}
	rcWantUnsent(t, ws, txt("m3"))
}

// TestQueueBeforeFirstConnection: a producer that sends before Run starts
// has its message queued and flushed after Ready; the queue works with Run,
// not only with Persist (issue 8, item 10). Before the fix the send
// returned ErrNotConnected.
func TestQueueBeforeFirstConnection(t *testing.T) {
	rcNoLeak(t)
	var log rcMsgLog
	got := make(chan string, 4)
	srv := qoServer(t, &log, got)
	ws := rcNew(t, srv.URL(), WithSendQueue(4, RejectNewest))
	if err := ws.SendText("early"); err != nil {
		t.Fatalf("SendText before Run = %v, want nil (queued)", err)
	}
	if n := ws.Queued(); n != 1 {
		t.Errorf("Queued = %d, want 1", n)
	}
	done := make(chan error, 1)
	go func() {
		done <- ws.Run(context.Background(), HandlerFunc(func(ws *WebSocket, ev events.Event) {
			if ev.Name() == events.NameReady {
				_ = ws.SendText("ready")
			}
		}))
	}()
	rcRecv(t, got, "the first message")
	rcRecv(t, got, "the second message")
	if err := ws.Close(StatusNormal, "bye"); err != nil {
		t.Fatal(err)
	}
	if err := rcRecv(t, done, "Run's return"); err != nil {
		t.Fatalf("Run = %v", err)
	}
	if got, want := log.get(1), []string{"early", "ready"}; !slices.Equal(got, want) {
		t.Errorf("server received %q, want %q", got, want)
	}
	if n := ws.Queued(); n != 0 {
		t.Errorf("Queued after the flush = %d, want 0", n)
	}
}

// TestQueueRejectedSessionKeepsMessages: a message queued before a Run
// whose upgrade is rejected stays queued for the next run.
func TestQueueRejectedSessionKeepsMessages(t *testing.T) {
	rcNoLeak(t)
	srv := wstest.NewServer(t, rcReject(http.StatusServiceUnavailable, nil))
	ws := rcNew(t, srv.URL(), WithSendQueue(2, RejectNewest))
	if err := ws.SendText("kept"); err != nil {
		t.Fatal(err)
	}
	var rej *RejectedError
	if err := ws.Run(context.Background(), HandlerFunc(func(*WebSocket, events.Event) {})); !errors.As(err, &rej) {
		t.Fatalf("Run = %v, want a *RejectedError", err)
	}
	if n := ws.Queued(); n != 1 {
		t.Errorf("Queued after a rejected run = %d, want 1", n)
	}
	rcWantUnsent(t, ws, txt("kept"))
	if n := ws.Queued(); n != 0 {
		t.Errorf("Queued after Unsent = %d, want 0", n)
	}
}
