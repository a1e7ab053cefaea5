package lomond

import (
	"context"
	"testing"
	"time"

	"github.com/lomond-go/lomond/events"
	"github.com/lomond-go/lomond/internal/wstest"
)

// TestStuckWriterCannotHangTheSession: a server that stops reading while
// the client sends a large message, and then pings, must not hang the
// session: the read loop does not wait for the stuck send (the pong is owed,
// not waited for), and cancelling the context ends Run within about the
// close timeout, failing the stuck send.
func TestStuckWriterCannotHangTheSession(t *testing.T) {
	pingNow := make(chan struct{})
	srv := wstest.NewServer(t, func(c *wstest.Conn) {
		if _, err := c.Handshake(); err != nil {
			return
		}
		select {
		case <-pingNow:
		case <-c.Done():
			return
		}
		if c.WriteFrame(wstest.Ping([]byte("are you there"))) != nil {
			return
		}
		<-c.Done() // never read: the client's send stays stuck
	})
	ws, err := New(srv.URL(), WithPollInterval(0), WithPingRate(0), WithoutProxy(),
		WithCloseTimeout(500*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sendDone := make(chan error, 1)
	gotPing := make(chan struct{})
	runDone := make(chan error, 1)
	go func() {
		runDone <- ws.Run(ctx, HandlerFunc(func(ws *WebSocket, ev events.Event) {
			switch ev.(type) {
			case *events.Ready:
				go func() { sendDone <- ws.SendBinary(make([]byte, 16<<20)) }()
			case *events.Ping:
				close(gotPing)
			}
		}))
	}()
	// Wait until the big send holds the send lock.
	deadline := time.Now().Add(5 * time.Second)
	for {
		s := ws.sess.Load()
		if s != nil && State(s.state.Load()) == StateReady && s.w.locked() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the send never took the lock")
		}
		time.Sleep(time.Millisecond) // polling the lock's state; no event signals it
	}
	close(pingNow)
	select {
	case <-gotPing: // the read loop did not wait for the stuck send
	case <-time.After(5 * time.Second):
		t.Fatal("the Ping event never came: the read loop is stuck behind the send")
	}
	start := time.Now()
	cancel()
	select {
	case <-runDone:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after the context was cancelled")
	}
	// Bounded: the stuck send by the close timeout, then the close frame,
	// then the wait for the reply (3 x 500 ms), plus the race detector's
	// slow masking of 16 MiB.
	if d := time.Since(start); d > 8*time.Second {
		t.Errorf("Run took %v after cancel, want a few close timeouts", d)
	}
	select {
	case err := <-sendDone:
		if err == nil {
			t.Error("the stuck 16 MiB send reported success")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the stuck send never returned")
	}
}
