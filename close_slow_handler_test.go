package lomond_test

import (
	"context"
	"testing"
	"time"

	"github.com/lomond-go/lomond"
	"github.com/lomond-go/lomond/events"
)

// TestSlowHandlerDuringCloseLosesNothing: a handler that is busy for longer
// than the close timeout, after calling Close, while the server's echo and
// close reply are already waiting unread, must not turn into a close timeout.
// The contract: a slow handler delays events but must not stall or fail the
// close handshake, and messages before the close reply are delivered.
func TestSlowHandlerDuringCloseLosesNothing(t *testing.T) {
	url, stop := exampleEchoServer()
	defer stop()
	ws, err := lomond.New(url, lomond.WithPollInterval(0), lomond.WithPingRate(0),
		lomond.WithCloseTimeout(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var names []string
	var busy time.Duration
	err = ws.Run(ctx, lomond.HandlerFunc(func(ws *lomond.WebSocket, ev events.Event) {
		names = append(names, ev.Name())
		if _, ok := ev.(*events.Ready); ok {
			_ = ws.SendText("x")
			_ = ws.Close(lomond.StatusNormal, "bye")
			// Slow on purpose: the slowness is what is tested, nothing is
			// synchronised on it. The echo and the close reply arrive in
			// well under 300 ms on loopback and wait unread meanwhile.
			start := time.Now()
			<-time.After(300 * time.Millisecond)
			busy = time.Since(start)
		}
	}))
	if err != nil {
		t.Errorf("Run = %v after a handler busy for %v; want nil (the reply was waiting unread)", err, busy)
	}
	want := []string{"connecting", "connected", "ready", "text", "closed", "disconnected"}
	if len(names) != len(want) {
		t.Fatalf("events = %v, want %v", names, want)
	}
	for i := range want {
		if names[i] != want[i] {
			t.Fatalf("events = %v, want %v", names, want)
		}
	}
}
