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
	"testing"

	"github.com/coder/websocket"
	"github.com/lomond-go/lomond/events"
)

// The send queue bounded in bytes (WithSendQueueBytes, issue 17, item 4):
// both overflow policies against the byte bound, a message larger than the
// bound, and the message being written counting against it. What was
// queued is flushed to coder/websocket's server, which checks what reached
// the wire.

// qbSentTexts is a SendObserver that reports the text messages written, in
// full, on its channel (long ones by their length).
type qbSentTexts chan string

func (c qbSentTexts) OnSend(_ *WebSocket, ev *events.Outbound) {
	if ev.Kind == events.KindText && ev.Result == events.Sent {
		c <- qbShort(string(ev.Data))
	}
}

// qbShort names a message in failure output and on qbSentTexts.
func qbShort(s string) string {
	if len(s) > 64 {
		return fmt.Sprintf("<%d bytes>", len(s))
	}
	return s
}

// qbWaitSent waits until the observer reports that last was written.
func qbWaitSent(t *testing.T, sent qbSentTexts, last string) {
	t.Helper()
	for {
		if got := rcRecv(t, sent, "the sent report of "+qbShort(last)); got == qbShort(last) {
			return
		}
	}
}

// qbServer is coder/websocket's server (an independent implementation) on
// 127.0.0.1: it accepts one connection, reads every text message until the
// connection ends, and reports them on done.
type qbServer struct {
	url  string
	done chan coderReading
}

func startQBServer(t *testing.T) *qbServer {
	t.Helper()
	s := &qbServer{done: make(chan coderReading, 1)}
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
		var rd coderReading
		for {
			typ, b, err := c.Read(context.Background())
			if err != nil {
				rd.err = err
				break
			}
			if typ != websocket.MessageText {
				rd.err = fmt.Errorf("a %v message", typ)
				break
			}
			rd.texts = append(rd.texts, string(b))
		}
		s.done <- rd
	}))
	t.Cleanup(func() {
		hs.Close()
		wg.Wait()
	})
	s.url = "ws" + strings.TrimPrefix(hs.URL, "http") + "/"
	return s
}

// qbFlush runs ws against a coder/websocket server that reads everything,
// waits until the observer saw last written, closes, and returns the text
// messages the server received.
func qbFlush(t *testing.T, srv *qbServer, ws *WebSocket, sent qbSentTexts, last string) []string {
	t.Helper()
	ready := make(chan struct{})
	runDone := runInBackground(t, context.Background(), ws, readyHandler(ready, nil))
	rcRecv(t, ready, "Ready")
	qbWaitSent(t, sent, last)
	if err := ws.Close(StatusNormal, "done"); err != nil {
		t.Errorf("Close = %v", err)
	}
	if err := rcRecv(t, runDone, "Run's return"); err != nil {
		t.Errorf("Run = %v", err)
	}
	rd := rcRecv(t, srv.done, "the server's reading")
	rd.checkCleanEnd(t)
	var got []string
	for _, m := range rd.texts {
		got = append(got, qbShort(m))
	}
	return got
}

// qbWantQueue checks what waits in the queue, messages and bytes.
func qbWantQueue(t *testing.T, ws *WebSocket, msgs, bytes int) {
	t.Helper()
	if n, b := ws.Queued(), ws.QueuedBytes(); n != msgs || b != bytes {
		t.Errorf("Queued, QueuedBytes = %d, %d; want %d, %d", n, b, msgs, bytes)
	}
}

// qbNotDropped checks that err refuses the message outright: ErrQueueFull,
// and no *DroppedError (nothing was dropped for it).
func qbNotDropped(t *testing.T, what string, err error) {
	t.Helper()
	var de *DroppedError
	if !errors.Is(err, ErrQueueFull) || errors.As(err, &de) {
		t.Errorf("%s = %v, want ErrQueueFull and nothing dropped", what, err)
	}
}

// qbGate dials TCP connections whose first write of more than one frame's
// payload (a large message's first frame) waits until release is called:
// it holds a message in the middle of being written, for as long as the
// test needs, and reports on held when it does.
type qbGate struct {
	held      chan struct{}
	open      chan struct{}
	heldOnce  sync.Once
	closeOnce sync.Once
}

// newQBGate returns a gate that the test's end opens, if the test did not.
func newQBGate(t *testing.T) *qbGate {
	g := &qbGate{held: make(chan struct{}), open: make(chan struct{})}
	t.Cleanup(g.release)
	return g
}

func (g *qbGate) release() { g.closeOnce.Do(func() { close(g.open) }) }

func (g *qbGate) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	return &qbGatedConn{Conn: c, gate: g}, nil
}

type qbGatedConn struct {
	net.Conn
	gate *qbGate
}

func (c *qbGatedConn) Write(p []byte) (int, error) {
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
		rcNoLeak(t)
		srv := startQBServer(t)
		sent := make(qbSentTexts, 16)
		ws := rcNew(t, srv.url, WithPlugins(sent), WithSendQueue(10, RejectNewest), WithSendQueueBytes(10))
		for _, m := range []string{"aaaa", "bbbb"} {
			if err := ws.SendText(m); err != nil {
				t.Fatalf("SendText(%q) = %v, want nil (queued)", m, err)
			}
		}
		qbNotDropped(t, `SendText("ccc"), 11 bytes in all`, ws.SendText("ccc"))
		qbWantQueue(t, ws, 2, 8)
		if err := ws.SendText("cc"); err != nil {
			t.Errorf(`SendText("cc") = %v, want nil (10 bytes in all: the bound is inclusive)`, err)
		}
		qbWantQueue(t, ws, 3, 10)
		if got, want := qbFlush(t, srv, ws, sent, "cc"), []string{"aaaa", "bbbb", "cc"}; !slices.Equal(got, want) {
			t.Errorf("server received %q, want %q", got, want)
		}
		qbWantQueue(t, ws, 0, 0)
	})

	t.Run("DropOldestDropsUntilTheNewMessageFits", func(t *testing.T) {
		rcNoLeak(t)
		srv := startQBServer(t)
		sent := make(qbSentTexts, 16)
		rec := &obRec{}
		ws := rcNew(t, srv.url, WithPlugins(rec, sent), WithSendQueue(10, DropOldest), WithSendQueueBytes(10))
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
		if got := rcMsgs(append([]Message{de.Dropped}, de.More...)); !slices.Equal(got, rcMsgs([]Message{txt("a"), txt("bb"), txt("ccc")})) {
			t.Errorf("dropped %q, want a, bb, ccc (oldest first, no more than needed)", got)
		}
		if want := "lomond: send queue full: dropped the 3 oldest messages (6 bytes); the new one is queued"; err.Error() != want {
			t.Errorf("error %q, want %q", err, want)
		}
		qbWantQueue(t, ws, 2, 10)
		if got, want := qbFlush(t, srv, ws, sent, "eeeeee"), []string{"dddd", "eeeeee"}; !slices.Equal(got, want) {
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
		if got := rec.lines(events.KindClose); !reflect.DeepEqual(got, want) {
			t.Errorf("observer:\n got %q\nwant %q", got, want)
		}
	})

	t.Run("MessageLargerThanTheBoundIsRefused", func(t *testing.T) {
		rcNoLeak(t)
		for _, overflow := range []Overflow{RejectNewest, DropOldest} {
			rec := &obRec{}
			ws := rcNew(t, "ws://"+rcRefusedAddr(t)+"/", WithPlugins(rec), WithSendQueue(10, overflow), WithSendQueueBytes(8))
			if err := ws.SendText("abc"); err != nil {
				t.Fatal(err)
			}
			err := ws.SendText("123456789")
			if err == nil {
				t.Fatalf("overflow %d: a 9-byte send = nil, want refused", overflow)
			}
			qbNotDropped(t, fmt.Sprintf("overflow %d: a 9-byte send", overflow), err)
			if !strings.Contains(err.Error(), "a message of 9 bytes is larger than the queue's bound of 8 bytes") {
				t.Errorf("overflow %d: error %q does not say the message is larger than the bound", overflow, err)
			}
			rcWantUnsent(t, ws, txt("abc"))
			want := []string{
				`text queued "abc"`,
				`text failed "123456789" err=` + err.Error(),
				`text unsent "abc"`,
			}
			if got := rec.lines(); !reflect.DeepEqual(got, want) {
				t.Errorf("overflow %d: observer:\n got %q\nwant %q", overflow, got, want)
			}
		}
	})

	t.Run("MessageLargerThanTheBoundGoesOutDirectlyWhenReady", func(t *testing.T) {
		rcNoLeak(t)
		srv := startQBServer(t)
		sent := make(qbSentTexts, 16)
		ws := rcNew(t, srv.url, WithPlugins(sent), WithSendQueue(10, RejectNewest), WithSendQueueBytes(8))
		ready := make(chan struct{})
		runDone := runInBackground(t, context.Background(), ws, readyHandler(ready, nil))
		rcRecv(t, ready, "Ready")
		// Nothing waits: the send does not go through the queue.
		if err := ws.SendText("a message over the bound"); err != nil {
			t.Errorf("SendText = %v, want nil (sent directly)", err)
		}
		if err := ws.Close(StatusNormal, "done"); err != nil {
			t.Errorf("Close = %v", err)
		}
		if err := rcRecv(t, runDone, "Run's return"); err != nil {
			t.Errorf("Run = %v", err)
		}
		rd := rcRecv(t, srv.done, "the server's reading")
		rd.checkCleanEnd(t)
		if want := []string{"a message over the bound"}; !slices.Equal(rd.texts, want) {
			t.Errorf("server received %q, want %q", rd.texts, want)
		}
	})

	// While the flush writes a message (held at its first frame by the
	// link), that message counts against the bound though it no longer
	// waits in the queue.
	const big = 1 << 17
	bigText := strings.Repeat("x", big)
	startStuckFlush := func(t *testing.T, overflow Overflow) (*qbServer, *qbGate, *WebSocket, qbSentTexts, <-chan error) {
		t.Helper()
		srv := startQBServer(t)
		gate := newQBGate(t)
		sent := make(qbSentTexts, 16)
		ws := rcNew(t, srv.url, WithDialer(gate.dial), WithCloseTimeout(rcTimeout),
			WithPlugins(sent), WithSendQueue(10, overflow), WithSendQueueBytes(big+10))
		if err := ws.SendText(bigText); err != nil {
			t.Fatalf("SendText(%d bytes) = %v, want nil (queued)", big, err)
		}
		qbWantQueue(t, ws, 1, big)
		runDone := runInBackground(t, context.Background(), ws, HandlerFunc(func(*WebSocket, events.Event) {}))
		t.Cleanup(func() { // a failed test ends the run before waiting for it
			gate.release()
			_ = ws.Close(StatusNormal, "test over")
		})
		rcRecv(t, gate.held, "the flush's first write of the large message")
		qbWantQueue(t, ws, 0, 0) // it is being written: no longer waiting
		return srv, gate, ws, sent, runDone
	}
	finish := func(t *testing.T, srv *qbServer, gate *qbGate, ws *WebSocket, sent qbSentTexts, runDone <-chan error, want ...string) {
		t.Helper()
		gate.release()
		qbWaitSent(t, sent, want[len(want)-1])
		if err := ws.Close(StatusNormal, "done"); err != nil {
			t.Errorf("Close = %v", err)
		}
		if err := rcRecv(t, runDone, "Run's return"); err != nil {
			t.Errorf("Run = %v", err)
		}
		rd := rcRecv(t, srv.done, "the server's reading")
		rd.checkCleanEnd(t)
		var got []string
		for _, m := range rd.texts {
			got = append(got, qbShort(m))
		}
		if !slices.Equal(got, want) {
			t.Errorf("server received %q, want %q", got, want)
		}
	}

	t.Run("BytesInFlightCountAgainstTheBound", func(t *testing.T) {
		rcNoLeak(t)
		srv, gate, ws, sent, runDone := startStuckFlush(t, RejectNewest)
		qbNotDropped(t, "an 11-byte send beside the message being written", ws.SendText("0123456789a"))
		if err := ws.SendText("0123456789"); err != nil {
			t.Errorf("a 10-byte send = %v, want nil (queued: the bound is reached, not passed)", err)
		}
		qbWantQueue(t, ws, 1, 10)
		finish(t, srv, gate, ws, sent, runDone, qbShort(bigText), "0123456789")
	})

	t.Run("DropOldestNeverDropsTheMessageBeingWritten", func(t *testing.T) {
		rcNoLeak(t)
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
		if got := rcMsgs(append([]Message{de.Dropped}, de.More...)); !slices.Equal(got, rcMsgs([]Message{txt("aaaaa"), txt("bbbbb")})) {
			t.Errorf("dropped %q, want aaaaa, bbbbb", got)
		}
		// 11 bytes beside the message being written cannot fit even with
		// "cccccc" dropped: refused, and "cccccc" stays.
		qbNotDropped(t, "an 11-byte send", ws.SendText("0123456789a"))
		qbWantQueue(t, ws, 1, 6)
		finish(t, srv, gate, ws, sent, runDone, qbShort(bigText), "cccccc")
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
