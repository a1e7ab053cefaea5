package lomond

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/cenkalti/backoff/v4"
)

// TestErrAfterRangeLoops: ws.Err tells a range loop why it ended, as Run and
// Persist would have.
func TestErrAfterRangeLoops(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // a refused port
	ws, err := New("ws://"+addr+"/", WithoutProxy())
	if err != nil {
		t.Fatal(err)
	}
	if ws.Err() != nil {
		t.Fatalf("Err before any run = %v", ws.Err())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for range ws.Events(ctx) {
	}
	var ce *ConnectError
	if !errors.As(ws.Err(), &ce) {
		t.Fatalf("Err after Events = %v, want a *ConnectError", ws.Err())
	}
	for range ws.PersistEvents(ctx, WithMaxAttempts(2),
		WithBackOff(func() backoff.BackOff { return &backoff.ZeroBackOff{} })) {
	}
	if !errors.Is(ws.Err(), ErrMaxAttempts) || !errors.As(ws.Err(), &ce) {
		t.Fatalf("Err after PersistEvents = %v, want ErrMaxAttempts and the *ConnectError", ws.Err())
	}
}
