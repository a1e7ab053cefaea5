package lomond

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/lomond-go/lomond/events"
	"github.com/lomond-go/lomond/internal/testkit"
	"github.com/lomond-go/lomond/internal/wstest"
)

// Tests of ratelimit.go: WithSendRate paces direct sends, the queue's
// flush and sends bounded by a context.

// arrival is a frame the server received, and when.
type arrival struct {
	op   byte
	data string
	at   time.Time
}

// arrivalServer accepts one connection; if ping is set it pings right after the
// handshake. It reports every frame it receives on got until the client's
// close, which it answers.
func arrivalServer(t *testing.T, ping bool, got chan<- arrival) *wstest.Server {
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
			got <- arrival{f.Opcode, string(f.Payload), time.Now()}
			if f.Opcode == wstest.OpClose {
				_ = c.WriteFrame(wstest.Frame{Fin: true, Opcode: wstest.OpClose, Payload: f.Payload})
				return
			}
		}
	})
}

// startRun runs ws in the background and returns a channel for Run's result
// and one closed at Ready.
func startRun(ws *WebSocket) (done <-chan error, ready <-chan struct{}) {
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
	testkit.NoLeak(t)
	got := make(chan arrival, 16)
	srv := arrivalServer(t, false, got)
	ws := newQuietWS(t, srv.URL(), WithSendRate(20, 2))
	done, ready := startRun(ws)
	testkit.Recv(t, ready, "Ready")
	start := time.Now()
	for i := 0; i < 8; i++ {
		if err := ws.SendText(fmt.Sprint(i)); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}
	var last arrival
	for i := 0; i < 8; i++ {
		last = testkit.Recv(t, got, "a message")
	}
	if d := last.at.Sub(start); d < 250*time.Millisecond || d > 5*time.Second {
		t.Errorf("8 messages at 20/s with a burst of 2 took %v, want about 300ms", d)
	}
	// Control frames do not wait for a turn.
	pingStart := time.Now()
	if err := ws.SendPing([]byte("p")); err != nil {
		t.Fatal(err)
	}
	if a := testkit.Recv(t, got, "the ping"); a.op != wstest.OpPing || a.at.Sub(pingStart) > 40*time.Millisecond {
		t.Errorf("ping arrived as %#x after %v, want at once (the bucket is empty)", a.op, a.at.Sub(pingStart))
	}
	_ = ws.Close(StatusNormal, "bye")
	if err := testkit.Recv(t, done, "Run's return"); err != nil {
		t.Errorf("Run = %v", err)
	}
}

// TestSendRateFlush: ten messages queued before Run are flushed at the
// rate limit, and the session keeps reading meanwhile: the pong for the
// server's ping goes out before the last queued message.
func TestSendRateFlush(t *testing.T) {
	testkit.NoLeak(t)
	got := make(chan arrival, 32)
	srv := arrivalServer(t, true, got)
	ws := newQuietWS(t, srv.URL(), WithSendQueue(16, RejectNewest), WithSendRate(20, 2))
	for i := 0; i < 10; i++ {
		if err := ws.SendText(fmt.Sprint("q", i)); err != nil {
			t.Fatal(err)
		}
	}
	done, ready := startRun(ws)
	testkit.Recv(t, ready, "Ready")
	var texts []arrival
	pongAt := -1
	for len(texts) < 10 {
		a := testkit.Recv(t, got, "a frame")
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
	if err := testkit.Recv(t, done, "Run's return"); err != nil {
		t.Errorf("Run = %v", err)
	}
}

// TestSendRateContext: a SendTextContext waiting for its turn returns when
// ctx ends, and sends nothing.
func TestSendRateContext(t *testing.T) {
	testkit.NoLeak(t)
	got := make(chan arrival, 16)
	srv := arrivalServer(t, false, got)
	ws := newQuietWS(t, srv.URL(), WithSendRate(1, 1))
	done, ready := startRun(ws)
	testkit.Recv(t, ready, "Ready")
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
	if a := testkit.Recv(t, got, "the first message"); a.data != "first" {
		t.Errorf("server got %q", a.data)
	}
	_ = ws.Close(StatusNormal, "bye")
	if a := testkit.Recv(t, got, "the close"); a.op != wstest.OpClose {
		t.Errorf("server got %#x %q after the first message, want the close (nothing of the cancelled send)", a.op, a.data)
	}
	if err := testkit.Recv(t, done, "Run's return"); err != nil {
		t.Errorf("Run = %v", err)
	}
}
