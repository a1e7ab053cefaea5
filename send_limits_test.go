package lomond

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/lomond-go/lomond/events"
	"github.com/lomond-go/lomond/internal/wstest"
)

// Tests of the send paths added by issue 8: the rate limit (item 12) and
// the sends bounded by a context (item 11).

// slArrival is a frame the server received, and when.
type slArrival struct {
	op   byte
	data string
	at   time.Time
}

// slServer accepts one connection; if ping is set it pings right after the
// handshake. It reports every frame it receives on got until the client's
// close, which it answers.
func slServer(t *testing.T, ping bool, got chan<- slArrival) *wstest.Server {
	return wstest.NewServer(t, func(c *wstest.Conn) {
		if _, err := c.Handshake(); err != nil {
			return
		}
		if ping && c.WriteFrame(wstest.Ping([]byte("hi"))) != nil {
			return
		}
		for {
			f, err := c.ReadFrame()
			if err != nil {
				return
			}
			got <- slArrival{f.Opcode, string(f.Payload), time.Now()}
			if f.Opcode == wstest.OpClose {
				_ = c.WriteFrame(wstest.Frame{Fin: true, Opcode: wstest.OpClose, Payload: f.Payload})
				return
			}
		}
	})
}

// slRun runs ws in the background and returns a channel for Run's result
// and one closed at Ready.
func slRun(ws *WebSocket) (done <-chan error, ready <-chan struct{}) {
	d, r := make(chan error, 1), make(chan struct{})
	go func() {
		d <- ws.Run(context.Background(), HandlerFunc(func(_ *WebSocket, ev events.Event) {
			if ev.Name() == events.NameReady {
				close(r)
			}
		}))
	}()
	return d, r
}

// TestSendRateDirect: with WithSendRate(20, 2), eight sends from a
// goroutine take at least (8-2)/20 s = 300 ms to reach the server.
func TestSendRateDirect(t *testing.T) {
	rcNoLeak(t)
	got := make(chan slArrival, 16)
	srv := slServer(t, false, got)
	ws := rcNew(t, srv.URL(), WithSendRate(20, 2))
	done, ready := slRun(ws)
	rcRecv(t, ready, "Ready")
	start := time.Now()
	for i := 0; i < 8; i++ {
		if err := ws.SendText(fmt.Sprint(i)); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}
	var last slArrival
	for i := 0; i < 8; i++ {
		last = rcRecv(t, got, "a message")
	}
	if d := last.at.Sub(start); d < 250*time.Millisecond || d > 5*time.Second {
		t.Errorf("8 messages at 20/s with a burst of 2 took %v, want about 300ms", d)
	}
	// Control frames do not wait for a turn.
	pingStart := time.Now()
	if err := ws.SendPing([]byte("p")); err != nil {
		t.Fatal(err)
	}
	if a := rcRecv(t, got, "the ping"); a.op != wstest.OpPing || a.at.Sub(pingStart) > 40*time.Millisecond {
		t.Errorf("ping arrived as %#x after %v, want at once (the bucket is empty)", a.op, a.at.Sub(pingStart))
	}
	_ = ws.Close(StatusNormal, "bye")
	if err := rcRecv(t, done, "Run's return"); err != nil {
		t.Errorf("Run = %v", err)
	}
}

// TestSendRateFlush: ten messages queued before Run are flushed at the
// rate limit, and the session keeps reading meanwhile: the pong for the
// server's ping goes out before the last queued message.
func TestSendRateFlush(t *testing.T) {
	rcNoLeak(t)
	got := make(chan slArrival, 32)
	srv := slServer(t, true, got)
	ws := rcNew(t, srv.URL(), WithSendQueue(16, RejectNewest), WithSendRate(20, 2))
	for i := 0; i < 10; i++ {
		if err := ws.SendText(fmt.Sprint("q", i)); err != nil {
			t.Fatal(err)
		}
	}
	done, ready := slRun(ws)
	rcRecv(t, ready, "Ready")
	var texts []slArrival
	pongAt := -1
	for len(texts) < 10 {
		a := rcRecv(t, got, "a frame")
		switch a.op {
		case wstest.OpText:
			texts = append(texts, a)
		case wstest.OpPong:
			pongAt = len(texts)
		}
	}
	for i, a := range texts {
		if a.data != fmt.Sprint("q", i) {
			t.Fatalf("message %d is %q, want q%d (in order)", i, a.data, i)
		}
	}
	if d := texts[9].at.Sub(texts[0].at); d < 350*time.Millisecond {
		t.Errorf("the flush of 10 messages at 20/s with a burst of 2 took %v, want at least 400ms", d)
	}
	if pongAt < 0 || pongAt >= 10 {
		t.Errorf("the pong came after %d queued messages, want before the last: reading stopped during the flush", pongAt)
	}
	// A send during the paced flush would have joined the queue; now it is
	// empty and a send goes out directly.
	if n := ws.Queued(); n != 0 {
		t.Errorf("Queued = %d after the flush", n)
	}
	_ = ws.Close(StatusNormal, "bye")
	if err := rcRecv(t, done, "Run's return"); err != nil {
		t.Errorf("Run = %v", err)
	}
}

// TestSendRateContext: a SendTextContext waiting for its turn returns when
// ctx ends, and sends nothing.
func TestSendRateContext(t *testing.T) {
	rcNoLeak(t)
	got := make(chan slArrival, 16)
	srv := slServer(t, false, got)
	ws := rcNew(t, srv.URL(), WithSendRate(1, 1))
	done, ready := slRun(ws)
	rcRecv(t, ready, "Ready")
	if err := ws.SendText("first"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := ws.SendTextContext(ctx, "never"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("SendTextContext waiting for its turn = %v, want context.DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 700*time.Millisecond {
		t.Errorf("SendTextContext returned after %v, want about 100ms (the turn was 1 s away)", d)
	}
	if a := rcRecv(t, got, "the first message"); a.data != "first" {
		t.Errorf("server got %q", a.data)
	}
	_ = ws.Close(StatusNormal, "bye")
	if a := rcRecv(t, got, "the close"); a.op != wstest.OpClose {
		t.Errorf("server got %#x %q after the first message, want the close (nothing of the cancelled send)", a.op, a.data)
	}
	if err := rcRecv(t, done, "Run's return"); err != nil {
		t.Errorf("Run = %v", err)
	}
}

// TestSendContextArguments: the ctx forms check their arguments and send
// normally with a live context.
func TestSendContextArguments(t *testing.T) {
	rcNoLeak(t)
	got := make(chan slArrival, 16)
	srv := slServer(t, false, got)
	ws := rcNew(t, srv.URL())
	var nilCtx context.Context
	if err := ws.SendTextContext(nilCtx, "x"); !errors.Is(err, ErrInvalidOption) {
		t.Errorf("SendTextContext(nil) = %v, want ErrInvalidOption", err)
	}
	if err := ws.SendBinaryContext(nilCtx, nil); !errors.Is(err, ErrInvalidOption) {
		t.Errorf("SendBinaryContext(nil) = %v, want ErrInvalidOption", err)
	}
	if err := ws.SendTextContext(context.Background(), "\xff"); !errors.Is(err, ErrInvalidUTF8) {
		t.Errorf("SendTextContext(invalid UTF-8) = %v, want ErrInvalidUTF8", err)
	}
	if err := ws.SendTextContext(context.Background(), "x"); !errors.Is(err, ErrNotConnected) {
		t.Errorf("SendTextContext before Run = %v, want ErrNotConnected", err)
	}
	done, ready := slRun(ws)
	rcRecv(t, ready, "Ready")
	ended, cancel := context.WithCancel(context.Background())
	cancel()
	if err := ws.SendTextContext(ended, "never"); !errors.Is(err, context.Canceled) {
		t.Errorf("SendTextContext with an ended ctx = %v, want context.Canceled", err)
	}
	live, cancelLive := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancelLive()
	if err := ws.SendTextContext(live, "text"); err != nil {
		t.Errorf("SendTextContext = %v", err)
	}
	if err := ws.SendBinaryContext(live, []byte{1, 2}); err != nil {
		t.Errorf("SendBinaryContext = %v", err)
	}
	if a := rcRecv(t, got, "the text"); a.op != wstest.OpText || a.data != "text" {
		t.Errorf("server got %#x %q, want the text (nothing of the ended ctx's send)", a.op, a.data)
	}
	if a := rcRecv(t, got, "the binary"); a.op != wstest.OpBinary || a.data != "\x01\x02" {
		t.Errorf("server got %#x %q, want the binary", a.op, a.data)
	}
	_ = ws.Close(StatusNormal, "bye")
	if err := rcRecv(t, done, "Run's return"); err != nil {
		t.Errorf("Run = %v", err)
	}
}

// TestSendContextBlockedWrite: a server that stops reading blocks a large
// send. Its context ending does not cut the message (a frame cut short
// could not be taken back): the write goes on until it makes no progress
// for the stall timeout (the ping timeout), and then the session ends as
// Unresponsive and the send fails saying so.
func TestSendContextBlockedWrite(t *testing.T) {
	rcNoLeak(t)
	srv := wstest.NewServer(t, func(c *wstest.Conn) {
		if _, err := c.Handshake(); err == nil {
			<-c.Done() // never reads
		}
	})
	ws := rcNew(t, srv.URL(), WithPingTimeout(500*time.Millisecond))
	var disc *events.Disconnected
	done := make(chan error, 1)
	ready := make(chan struct{})
	go func() {
		done <- ws.Run(context.Background(), HandlerFunc(func(_ *WebSocket, ev events.Event) {
			switch e := ev.(type) {
			case *events.Ready:
				close(ready)
			case *events.Disconnected:
				disc = e
			}
		}))
	}()
	rcRecv(t, ready, "Ready")
	big := make([]byte, 16<<20)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := ws.SendBinaryContext(ctx, big)
	if !errors.Is(err, ErrUnresponsive) {
		t.Errorf("SendBinaryContext blocked = %v, want an error wrapping ErrUnresponsive", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("SendBinaryContext returned after %v, want about the 500ms stall timeout (plus masking 16 MiB)", d)
	}
	if err := rcRecv(t, done, "Run's return"); !errors.Is(err, ErrUnresponsive) {
		t.Errorf("Run = %v, want ErrUnresponsive", err)
	}
	if disc == nil || disc.Graceful || disc.Reason != "ping timeout" {
		t.Errorf("Disconnected = %v, want a non-graceful end for the ping timeout", disc)
	}
}
