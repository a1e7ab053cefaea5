package lomond

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/lomond-go/lomond/events"
	"github.com/lomond-go/lomond/internal/testkit"
	"github.com/lomond-go/lomond/internal/wstest"
)

// Tests of queue.go: the send queue's order, bounds (messages and bytes),
// overflow policies, and what is left Unsent, with Run and with Persist.

// sentTexts is a SendObserver that reports the text messages written, in
// full, on its channel (long ones by their length).
type sentTexts chan string

func (c sentTexts) OnSend(_ *WebSocket, ev *events.Outbound) {
	if ev.Kind == events.KindText && ev.Result == events.Sent {
		c <- shortLabel(string(ev.Data))
	}
}

// shortLabel names a message in failure output and on sentTexts.
func shortLabel(s string) string {
	if len(s) > 64 {
		return fmt.Sprintf("<%d bytes>", len(s))
	}
	return s
}

// waitSent waits until the observer reports that last was written.
func waitSent(t *testing.T, sent sentTexts, last string) {
	t.Helper()
	for {
		if got := testkit.Recv(t, sent, "the sent report of "+shortLabel(last)); got == shortLabel(last) {
			return
		}
	}
}

// queueServer is coder/websocket's server (an independent implementation) on
// 127.0.0.1: it accepts one connection, reads every text message until the
// connection ends, and reports them on done.
type queueServer struct {
	url  string
	done chan coderReading
}

func startQueueServer(t *testing.T) *queueServer {
	t.Helper()
	s := &queueServer{done: make(chan coderReading, 1)}
	var wg sync.WaitGroup
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		wg.Add(1)
		defer wg.Done()
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			s.done <- coderReading{err: err}
			return
		}
		defer c.CloseNow()
		c.SetReadLimit(-1)
		s.done <- readCoderTexts(c)
	}))
	t.Cleanup(func() {
		hs.Close()
		wg.Wait()
	})
	s.url = "ws" + strings.TrimPrefix(hs.URL, "http") + "/"
	return s
}

// flushQueue runs ws against a coder/websocket server that reads everything,
// waits until the observer saw last written, closes, and returns the text
// messages the server received.
func flushQueue(t *testing.T, srv *queueServer, ws *WebSocket, sent sentTexts, last string) []string {
	t.Helper()
	ready := make(chan struct{})
	runDone := runInBackground(t, context.Background(), ws, readyHandler(ready, nil))
	testkit.Recv(t, ready, "Ready")
	waitSent(t, sent, last)
	return shortLabels(closeAndRead(t, ws, runDone, srv.done).texts)
}

// shortLabels is shortLabel of each of texts.
func shortLabels(texts []string) []string {
	var got []string
	for _, m := range texts {
		got = append(got, shortLabel(m))
	}
	return got
}

// wantQueued checks what waits in the queue, messages and bytes.
func wantQueued(t *testing.T, ws *WebSocket, msgs, bytes int) {
	t.Helper()
	if n, b := ws.Queued(), ws.QueuedBytes(); n != msgs || b != bytes {
		t.Errorf("Queued, QueuedBytes = %d, %d; want %d, %d", n, b, msgs, bytes)
	}
}

// wantNotDropped checks that err refuses the message outright: ErrQueueFull,
// and no *DroppedError (nothing was dropped for it).
func wantNotDropped(t *testing.T, what string, err error) {
	t.Helper()
	var de *DroppedError
	if !errors.Is(err, ErrQueueFull) || errors.As(err, &de) {
		t.Errorf("%s = %v, want ErrQueueFull and nothing dropped", what, err)
	}
}

// writeGate dials TCP connections whose first write of more than one frame's
// payload (a large message's first frame) waits until release is called:
// it holds a message in the middle of being written, for as long as the
// test needs, and reports on held when it does.
type writeGate struct {
	held      chan struct{}
	open      chan struct{}
	heldOnce  sync.Once
	closeOnce sync.Once
}

// newWriteGate returns a gate that the test's end opens, if the test did not.
func newWriteGate(t *testing.T) *writeGate {
	g := &writeGate{held: make(chan struct{}), open: make(chan struct{})}
	t.Cleanup(g.release)
	return g
}

func (g *writeGate) release() { g.closeOnce.Do(func() { close(g.open) }) }

func (g *writeGate) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	return &gatedConn{Conn: c, gate: g}, nil
}

type gatedConn struct {
	net.Conn
	gate *writeGate
}

func (c *gatedConn) Write(p []byte) (int, error) {
	if len(p) > maxFrame {
		held := false
		c.gate.heldOnce.Do(func() { held = true })
		if held {
			close(c.gate.held)
			<-c.gate.open
		}
	}
	return c.Conn.Write(p)
}

func TestQueueByteBound(t *testing.T) {
	t.Run("RejectNewestRefusesAMessageOverTheByteBound", func(t *testing.T) {
		testkit.NoLeak(t)
		srv := startQueueServer(t)
		sent := make(sentTexts, 16)
		ws := newQuietWS(t, srv.url, WithPlugins(sent), WithSendQueue(10, RejectNewest), WithSendQueueBytes(10))
		for _, m := range []string{"aaaa", "bbbb"} {
			if err := ws.SendText(m); err != nil {
				t.Fatalf("SendText(%q) = %v, want nil (queued)", m, err)
			}
		}
		wantNotDropped(t, `SendText("ccc"), 11 bytes in all`, ws.SendText("ccc"))
		wantQueued(t, ws, 2, 8)
		if err := ws.SendText("cc"); err != nil {
			t.Errorf(`SendText("cc") = %v, want nil (10 bytes in all: the bound is inclusive)`, err)
		}
		wantQueued(t, ws, 3, 10)
		if got, want := flushQueue(t, srv, ws, sent, "cc"), []string{"aaaa", "bbbb", "cc"}; !slices.Equal(got, want) {
			t.Errorf("server received %q, want %q", got, want)
		}
		wantQueued(t, ws, 0, 0)
	})

	t.Run("DropOldestDropsUntilTheNewMessageFits", func(t *testing.T) {
		testkit.NoLeak(t)
		srv := startQueueServer(t)
		sent := make(sentTexts, 16)
		rec := &sentLog{}
		ws := newQuietWS(t, srv.url, WithPlugins(rec, sent), WithSendQueue(10, DropOldest), WithSendQueueBytes(10))
		for _, m := range []string{"a", "bb", "ccc", "dddd"} {
			if err := ws.SendText(m); err != nil {
				t.Fatalf("SendText(%q) = %v, want nil (queued)", m, err)
			}
		}
		// 6 more bytes: "a", "bb" and "ccc" must go, "dddd" may stay.
		err := ws.SendText("eeeeee")
		var de *DroppedError
		if !errors.As(err, &de) || !errors.Is(err, ErrQueueFull) {
			t.Fatalf(`SendText("eeeeee") = %v, want a *DroppedError wrapping ErrQueueFull`, err)
		}
		if got := messageTexts(append([]Message{de.Dropped}, de.More...)); !slices.Equal(got, messageTexts([]Message{txt("a"), txt("bb"), txt("ccc")})) {
			t.Errorf("dropped %q, want a, bb, ccc (oldest first, no more than needed)", got)
		}
		if want := "lomond: send queue full: dropped the 3 oldest messages (6 bytes); the new one is queued"; err.Error() != want {
			t.Errorf("error %q, want %q", err, want)
		}
		wantQueued(t, ws, 2, 10)
		if got, want := flushQueue(t, srv, ws, sent, "eeeeee"), []string{"dddd", "eeeeee"}; !slices.Equal(got, want) {
			t.Errorf("server received %q, want %q", got, want)
		}
		want := []string{
			`text queued "a"`, `text queued "bb"`, `text queued "ccc"`, `text queued "dddd"`,
			`text dropped "a" err=lomond: send queue full`,
			`text dropped "bb" err=lomond: send queue full`,
			`text dropped "ccc" err=lomond: send queue full`,
			`text queued "eeeeee"`,
			`text sent "dddd" from_queue`, `text sent "eeeeee" from_queue`,
		}
		if got := rec.Lines(events.KindClose); !reflect.DeepEqual(got, want) {
			t.Errorf("observer:\n got %q\nwant %q", got, want)
		}
	})

	t.Run("MessageLargerThanTheBoundIsRefused", func(t *testing.T) {
		testkit.NoLeak(t)
		for _, overflow := range []Overflow{RejectNewest, DropOldest} {
			rec := &sentLog{}
			ws := newQuietWS(t, "ws://"+testkit.RefusedAddr(t)+"/", WithPlugins(rec), WithSendQueue(10, overflow), WithSendQueueBytes(8))
			if err := ws.SendText("abc"); err != nil {
				t.Fatal(err)
			}
			err := ws.SendText("123456789")
			if err == nil {
				t.Fatalf("overflow %d: a 9-byte send = nil, want refused", overflow)
			}
			wantNotDropped(t, fmt.Sprintf("overflow %d: a 9-byte send", overflow), err)
			if !strings.Contains(err.Error(), "a message of 9 bytes is larger than the queue's bound of 8 bytes") {
				t.Errorf("overflow %d: error %q does not say the message is larger than the bound", overflow, err)
			}
			wantUnsent(t, ws, txt("abc"))
			want := []string{
				`text queued "abc"`,
				`text failed "123456789" err=` + err.Error(),
				`text unsent "abc"`,
			}
			if got := rec.Lines(); !reflect.DeepEqual(got, want) {
				t.Errorf("overflow %d: observer:\n got %q\nwant %q", overflow, got, want)
			}
		}
	})

	t.Run("MessageLargerThanTheBoundGoesOutDirectlyWhenReady", func(t *testing.T) {
		testkit.NoLeak(t)
		srv := startQueueServer(t)
		sent := make(sentTexts, 16)
		ws := newQuietWS(t, srv.url, WithPlugins(sent), WithSendQueue(10, RejectNewest), WithSendQueueBytes(8))
		ready := make(chan struct{})
		runDone := runInBackground(t, context.Background(), ws, readyHandler(ready, nil))
		testkit.Recv(t, ready, "Ready")
		// Nothing waits: the send does not go through the queue.
		if err := ws.SendText("a message over the bound"); err != nil {
			t.Errorf("SendText = %v, want nil (sent directly)", err)
		}
		rd := closeAndRead(t, ws, runDone, srv.done)
		if want := []string{"a message over the bound"}; !slices.Equal(rd.texts, want) {
			t.Errorf("server received %q, want %q", rd.texts, want)
		}
	})

	// While the flush writes a message (held at its first frame by the
	// link), that message counts against the bound though it no longer
	// waits in the queue.
	const big = 1 << 17
	bigText := strings.Repeat("x", big)
	startStuckFlush := func(t *testing.T, overflow Overflow) (*queueServer, *writeGate, *WebSocket, sentTexts, <-chan error) {
		t.Helper()
		srv := startQueueServer(t)
		gate := newWriteGate(t)
		sent := make(sentTexts, 16)
		ws := newQuietWS(t, srv.url, WithDialer(gate.dial), WithCloseTimeout(testkit.Timeout),
			WithPlugins(sent), WithSendQueue(10, overflow), WithSendQueueBytes(big+10))
		if err := ws.SendText(bigText); err != nil {
			t.Fatalf("SendText(%d bytes) = %v, want nil (queued)", big, err)
		}
		wantQueued(t, ws, 1, big)
		runDone := runInBackground(t, context.Background(), ws, HandlerFunc(func(*WebSocket, events.Event) {}))
		t.Cleanup(func() { // a failed test ends the run before waiting for it
			gate.release()
			_ = ws.Close(StatusNormal, "test over")
		})
		testkit.Recv(t, gate.held, "the flush's first write of the large message")
		wantQueued(t, ws, 0, 0) // it is being written: no longer waiting
		return srv, gate, ws, sent, runDone
	}
	finish := func(t *testing.T, srv *queueServer, gate *writeGate, ws *WebSocket, sent sentTexts, runDone <-chan error, want ...string) {
		t.Helper()
		gate.release()
		waitSent(t, sent, want[len(want)-1])
		got := shortLabels(closeAndRead(t, ws, runDone, srv.done).texts)
		if !slices.Equal(got, want) {
			t.Errorf("server received %q, want %q", got, want)
		}
	}

	t.Run("BytesInFlightCountAgainstTheBound", func(t *testing.T) {
		testkit.NoLeak(t)
		srv, gate, ws, sent, runDone := startStuckFlush(t, RejectNewest)
		wantNotDropped(t, "an 11-byte send beside the message being written", ws.SendText("0123456789a"))
		if err := ws.SendText("0123456789"); err != nil {
			t.Errorf("a 10-byte send = %v, want nil (queued: the bound is reached, not passed)", err)
		}
		wantQueued(t, ws, 1, 10)
		finish(t, srv, gate, ws, sent, runDone, shortLabel(bigText), "0123456789")
	})

	t.Run("DropOldestNeverDropsTheMessageBeingWritten", func(t *testing.T) {
		testkit.NoLeak(t)
		srv, gate, ws, sent, runDone := startStuckFlush(t, DropOldest)
		for _, m := range []string{"aaaaa", "bbbbb"} {
			if err := ws.SendText(m); err != nil {
				t.Fatalf("SendText(%q) = %v, want nil (queued)", m, err)
			}
		}
		err := ws.SendText("cccccc")
		var de *DroppedError
		if !errors.As(err, &de) {
			t.Fatalf(`SendText("cccccc") = %v, want a *DroppedError`, err)
		}
		if got := messageTexts(append([]Message{de.Dropped}, de.More...)); !slices.Equal(got, messageTexts([]Message{txt("aaaaa"), txt("bbbbb")})) {
			t.Errorf("dropped %q, want aaaaa, bbbbb", got)
		}
		// 11 bytes beside the message being written cannot fit even with
		// "cccccc" dropped: refused, and "cccccc" stays.
		wantNotDropped(t, "an 11-byte send", ws.SendText("0123456789a"))
		wantQueued(t, ws, 1, 6)
		finish(t, srv, gate, ws, sent, runDone, shortLabel(bigText), "cccccc")
	})
}

func TestWithSendQueueBytesOption(t *testing.T) {
	t.Run("ZeroOrNegativeIsInvalid", func(t *testing.T) {
		wantInvalidOption(t, "zero byte bound", WithSendQueue(1, RejectNewest), WithSendQueueBytes(0))
		wantInvalidOption(t, "negative byte bound", WithSendQueue(1, RejectNewest), WithSendQueueBytes(-1))
	})
	t.Run("WithoutWithSendQueueIsInvalid", func(t *testing.T) {
		ws, err := New("ws://127.0.0.1:1/", WithSendQueueBytes(1024))
		if !errors.Is(err, ErrInvalidOption) || !strings.Contains(err.Error(), "WithSendQueueBytes needs WithSendQueue") || ws != nil {
			t.Errorf("New = %v, %v; want no WebSocket and ErrInvalidOption naming WithSendQueue", ws, err)
		}
	})
	t.Run("EitherOrderWorks", func(t *testing.T) {
		for _, opts := range [][]Option{
			{WithSendQueue(3, DropOldest), WithSendQueueBytes(1024)},
			{WithSendQueueBytes(1024), WithSendQueue(3, DropOldest)},
		} {
			ws, err := New("ws://127.0.0.1:1/", opts...)
			if err != nil {
				t.Fatalf("New = %v", err)
			}
			if q := ws.queue; q == nil || q.size != 3 || q.maxBytes != 1024 || q.overflow != DropOldest {
				t.Errorf("queue %+v, want size 3, 1024 bytes, DropOldest", q)
			}
		}
	})
	t.Run("QueuedBytesIsZeroWithoutAQueue", func(t *testing.T) {
		ws, err := New("ws://127.0.0.1:1/")
		if err != nil {
			t.Fatal(err)
		}
		if n := ws.QueuedBytes(); n != 0 {
			t.Errorf("QueuedBytes = %d, want 0", n)
		}
	})
}

// recordingServer accepts every connection, records the text messages of each
// connection (numbered from 1), reports each one on got, and answers the
// client's close.
func recordingServer(t *testing.T, log *messageLog, got chan<- string) *wstest.Server {
	var n atomic.Int32
	return wstest.NewServer(t, func(c *wstest.Conn) {
		conn := n.Add(1)
		if _, err := c.Handshake(); err != nil {
			return
		}
		testkit.ServeMessages(c, func(op byte, p []byte) {
			if op == wstest.OpText {
				log.add(conn, string(p))
				if got != nil {
					got <- string(p)
				}
			}
		})
	})
}

// TestQueueKeepsSendOrder: A is sent while the session is connecting (it is
// queued), B from OnReady: the server must get A, then B.
func TestQueueKeepsSendOrder(t *testing.T) {
	testkit.NoLeak(t)
	var log messageLog
	got := make(chan string, 4)
	srv := recordingServer(t, &log, got)
	ws := newQuietWS(t, srv.URL(), WithSendQueue(4, RejectNewest))
	var errs []error
	run := goPersist(t, ws, func(ws *WebSocket, ev events.Event, _ context.CancelFunc) {
		switch ev.(type) {
		case *events.Connecting:
			errs = append(errs, ws.SendText("A"))
		case *events.Ready:
			errs = append(errs, ws.SendText("B"))
		}
	})
	testkit.Recv(t, got, "the first message")
	testkit.Recv(t, got, "the second message")
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
// pause while Persist is cancelled: every send that returned nil must be in
// Unsent afterwards (nothing was ever connected).
func TestQueueNothingLostAtPersistReturn(t *testing.T) {
	testkit.NoLeak(t)
	addr := testkit.RefusedAddr(t)
	for round := 0; round < 40; round++ {
		ws := newQuietWS(t, "ws://"+addr+"/", WithSendQueue(1<<20, RejectNewest))
		ctx, cancel := context.WithCancel(context.Background())
		backoff := make(chan struct{})
		var once sync.Once
		persistDone := make(chan error, 1)
		go func() {
			persistDone <- ws.Persist(ctx, HandlerFunc(func(_ *WebSocket, ev events.Event) {
				if ev.Name() == events.NameBackOff {
					once.Do(func() { close(backoff) })
				}
			}), constantBackOff(time.Hour))
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
		testkit.Recv(t, backoff, "BackOff")
		cancel()
		if err := testkit.Recv(t, persistDone, "Persist's return"); err != nil {
			t.Fatalf("Persist = %v", err)
		}
		close(stopSending)
		accepted = testkit.Recv(t, sent, "the sender")
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
// the queue must still hold at most its size.
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
	_ = s.w.acquire(context.Background()) // another send is writing
	q.flushing = true
	flushed := make(chan struct{})
	go func() {
		defer close(flushed)
		q.flush(context.Background(), ws, s)
	}()
	testkit.Eventually(t, `the flush has taken "a" out and waits for the lock`, func() bool {
		q.mu.Lock()
		defer q.mu.Unlock()
		return len(q.msgs) == 1
	})
	if err := q.send(context.Background(), ws, opText, []byte("c")); err != nil {
		t.Logf("send during the flush: %v", err)
	}
	s.state.Store(int32(StateClosing))
	s.w.closeSent = true // the client's close frame went out
	s.w.unlock()
	<-flushed
	if n := len(q.msgs); n > size {
		t.Errorf("queue holds %d messages (%q), more than its size %d", n, messageTexts(q.msgs), size)
	}
	if len(q.msgs) == 0 || string(q.msgs[0].Data) != "a" {
		t.Errorf("queue %q, want the unwritten \"a\" first", messageTexts(q.msgs))
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
// refused address, queueing one message each time, and never reads Unsent:
// what waits must stay within the queue's size.
func TestQueueUnsentBoundedAcrossRuns(t *testing.T) {
	testkit.NoLeak(t)
	ws := newQuietWS(t, "ws://"+testkit.RefusedAddr(t)+"/", WithSendQueue(1, DropOldest))
	for i := 1; i <= 3; i++ {
		_, err := runPersist(t, ws, sendOnFirstBackOff(func(ws *WebSocket) {
			_ = ws.SendText(fmt.Sprint("m", i))
		}, true), constantBackOff(time.Hour))
		if err != nil {
			t.Fatalf("Persist %d = %v", i, err)
		}
	}
	wantUnsent(t, ws, txt("m3"))
}

// TestQueueBeforeFirstConnection: a producer that sends before Run starts
// has its message queued and flushed after Ready; the queue works with Run,
// not only with Persist.
func TestQueueBeforeFirstConnection(t *testing.T) {
	testkit.NoLeak(t)
	var log messageLog
	got := make(chan string, 4)
	srv := recordingServer(t, &log, got)
	ws := newQuietWS(t, srv.URL(), WithSendQueue(4, RejectNewest))
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
	testkit.Recv(t, got, "the first message")
	testkit.Recv(t, got, "the second message")
	if err := ws.Close(StatusNormal, "bye"); err != nil {
		t.Fatal(err)
	}
	if err := testkit.Recv(t, done, "Run's return"); err != nil {
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
	testkit.NoLeak(t)
	srv := wstest.NewServer(t, testkit.Reject(http.StatusServiceUnavailable, nil))
	ws := newQuietWS(t, srv.URL(), WithSendQueue(2, RejectNewest))
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
	wantUnsent(t, ws, txt("kept"))
	if n := ws.Queued(); n != 0 {
		t.Errorf("Queued after Unsent = %d, want 0", n)
	}
}

// sendOnFirstBackOff returns an persistFunc that runs send once, at the first
// BackOff (no session is running then), and cancels Persist if stop is set.
func sendOnFirstBackOff(send func(ws *WebSocket), stopAfter bool) persistFunc {
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

func wantUnsent(t *testing.T, ws *WebSocket, want ...Message) {
	t.Helper()
	got := ws.Unsent()
	if !slices.EqualFunc(got, want, func(a, b Message) bool { return a.Binary == b.Binary && string(a.Data) == string(b.Data) }) {
		t.Errorf("Unsent = %v, want %v", messageTexts(got), messageTexts(want))
	}
	if again := ws.Unsent(); len(again) != 0 {
		t.Errorf("second Unsent = %v, want nothing (Unsent forgets)", messageTexts(again))
	}
}

// messageTexts renders messages for failure output.
func messageTexts(ms []Message) []string {
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
	testkit.NoLeak(t)
	ws := newQuietWS(t, "ws://"+testkit.RefusedAddr(t)+"/", WithSendQueue(3, RejectNewest))
	var errs []error
	queued := -1
	_, err := runPersist(t, ws, sendOnFirstBackOff(func(ws *WebSocket) {
		errs = []error{ws.SendText("q1"), ws.SendBinary([]byte("q2")), ws.SendJSON(map[string]int{"q": 3}), ws.SendText("q4")}
		queued = ws.Queued()
	}, true), constantBackOff(time.Hour))
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
	wantUnsent(t, ws, txt("q1"), Message{Binary: true, Data: []byte("q2")}, txt(`{"q":3}`))
	if n := ws.Queued(); n != 0 {
		t.Errorf("Queued after Unsent = %d, want 0", n)
	}
	if err := ws.SendText("late"); err != nil {
		t.Errorf("SendText after Persist = %v, want nil (queued for the next run)", err)
	}
	wantUnsent(t, ws, txt("late"))
}

func TestPersistQueueDropOldest(t *testing.T) {
	testkit.NoLeak(t)
	ws := newQuietWS(t, "ws://"+testkit.RefusedAddr(t)+"/", WithSendQueue(3, DropOldest))
	var errs []error
	_, err := runPersist(t, ws, sendOnFirstBackOff(func(ws *WebSocket) {
		for _, m := range []string{"q1", "q2", "q3", "q4", "q5"} {
			errs = append(errs, ws.SendText(m))
		}
	}, true), constantBackOff(time.Hour))
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
	wantUnsent(t, ws, txt("q3"), txt("q4"), txt("q5"))
}

// messageLog records, per connection, the text messages a server received.
type messageLog struct {
	mu   sync.Mutex
	msgs map[int32][]string
}

func (l *messageLog) add(conn int32, m string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.msgs == nil {
		l.msgs = map[int32][]string{}
	}
	l.msgs[conn] = append(l.msgs[conn], m)
	return len(l.msgs[conn])
}

func (l *messageLog) get(conn int32) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.msgs[conn])
}

func TestPersistQueueFlushAfterOnReady(t *testing.T) {
	testkit.NoLeak(t)
	var log messageLog
	var n atomic.Int32
	third := make(chan struct{}, 1)
	srv := wstest.NewServer(t, func(c *wstest.Conn) {
		conn := n.Add(1)
		if conn == 1 {
			testkit.Reject(http.StatusServiceUnavailable, nil)(c)
			return
		}
		if _, err := c.Handshake(); err != nil {
			return
		}
		p, closed := testkit.ReadMessages(c, func(op byte, p []byte) {
			if op != wstest.OpText {
				return
			}
			got := log.add(conn, string(p))
			if conn == 2 && got == 4 {
				// End this session; the client's echo ends the loop.
				_ = c.WriteFrame(wstest.Close(StatusServiceRestart, "restart"))
			}
			if conn == 3 && got == 1 {
				third <- struct{}{}
			}
		})
		if closed && conn != 2 {
			_ = c.WriteFrame(wstest.Frame{Fin: true, Opcode: wstest.OpClose, Payload: p})
		}
	})
	ws := newQuietWS(t, srv.URL(), WithSendQueue(8, RejectNewest))
	var queueErrs []error
	var helloErrs []error
	queue := sendOnFirstBackOff(func(ws *WebSocket) {
		queueErrs = []error{ws.SendText("q1"), ws.SendText("q2"), ws.SendText("q3")}
	}, false)
	run := goPersist(t, ws, func(ws *WebSocket, ev events.Event, stop context.CancelFunc) {
		queue(ws, ev, stop)
		if ev.Name() == "ready" {
			helloErrs = append(helloErrs, ws.SendText("hello"))
		}
	}, constantBackOff(5*time.Millisecond))
	testkit.Recv(t, third, "the third connection's first message")
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
	wantUnsent(t, ws)
}

func TestPersistQueueUnsentAtShutdown(t *testing.T) {
	testkit.NoLeak(t)
	srv := wstest.NewServer(t, testkit.Reject(http.StatusServiceUnavailable, nil))
	ws := newQuietWS(t, srv.URL(), WithSendQueue(4, DropOldest))
	var errs []error
	_, err := runPersist(t, ws, sendOnFirstBackOff(func(ws *WebSocket) {
		errs = []error{ws.SendText("m1"), ws.SendBinary([]byte{0, 1})}
	}, true), constantBackOff(time.Hour))
	if err != nil {
		t.Fatalf("Persist = %v", err)
	}
	if errors.Join(errs...) != nil {
		t.Errorf("sends = %v, want queued", errs)
	}
	wantUnsent(t, ws, txt("m1"), Message{Binary: true, Data: []byte{0, 1}})
	if n := srv.Conns(); n != 1 {
		t.Errorf("%d connections, want 1 (no attempt after cancel)", n)
	}
}

func TestPersistNoQueueNotConnected(t *testing.T) {
	testkit.NoLeak(t)
	ws := newQuietWS(t, "ws://"+testkit.RefusedAddr(t)+"/")
	var errs []error
	_, err := runPersist(t, ws, func(ws *WebSocket, ev events.Event, stop context.CancelFunc) {
		switch ev.Name() {
		case "connecting", "connect_fail":
			errs = append(errs, ws.SendText(ev.Name()))
		case "back_off":
			errs = append(errs, ws.SendText(ev.Name()), ws.SendBinary(nil))
			stop()
		}
	}, constantBackOff(time.Hour))
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
		t.Errorf("Unsent = %v, want nothing without a queue", messageTexts(u))
	}
}

// TestPersistQueueOrderAgainstConcurrentSend sends "late" from another
// goroutine as soon as WaitReady returns, after "q1" was queued, while
// OnReady is still busy: the queue must keep its order, so "q1" reaches the
// server before "late".
func TestPersistQueueOrderAgainstConcurrentSend(t *testing.T) {
	testkit.NoLeak(t)
	var log messageLog
	var n atomic.Int32
	two := make(chan struct{}, 1)
	srv := wstest.NewServer(t, func(c *wstest.Conn) {
		if n.Add(1) == 1 {
			testkit.Reject(http.StatusServiceUnavailable, nil)(c)
			return
		}
		if _, err := c.Handshake(); err != nil {
			return
		}
		testkit.ServeMessages(c, func(op byte, p []byte) {
			if op == wstest.OpText && log.add(2, string(p)) == 2 {
				two <- struct{}{}
			}
		})
	})
	ws := newQuietWS(t, srv.URL(), WithSendQueue(4, RejectNewest))
	release := make(chan struct{})
	queue := sendOnFirstBackOff(func(ws *WebSocket) { _ = ws.SendText("q1") }, false)
	run := goPersist(t, ws, func(ws *WebSocket, ev events.Event, stop context.CancelFunc) {
		queue(ws, ev, stop)
		if ev.Name() == "ready" {
			<-release // OnReady is busy (say, authenticating)
		}
	}, constantBackOff(5*time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), testkit.Timeout)
	defer cancel()
	sent := make(chan error, 1)
	go func() {
		err := ws.WaitReady(ctx)
		if err == nil {
			err = ws.SendText("late")
		}
		sent <- err
	}()
	run.rec.WaitCount(t, "ready", 1)
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
		err = testkit.Recv(t, sent, "WaitReady and SendText")
	}
	if err != nil {
		t.Fatalf("WaitReady/SendText = %v", err)
	}
	testkit.Recv(t, two, "two messages")
	if err := run.stop(t); err != nil {
		t.Fatal(err)
	}
	if got, want := log.get(2), []string{"q1", "late"}; !slices.Equal(got, want) {
		t.Errorf("server received %q, want %q (a message sent after q1 was queued overtook it)", got, want)
	}
}
