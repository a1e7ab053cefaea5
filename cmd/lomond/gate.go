package main

import (
	"context"
	"sync"
)

// readyGate tracks, from the events the handler sees, whether a session is
// ready, and counts the sessions that became ready. The input goroutine
// waits at it before each send; after a send fails because its session went
// away, it waits for a later session (Persist) rather than retrying in a
// loop while the old one closes.
type readyGate struct {
	mu      sync.Mutex
	ready   bool
	gen     int           // sessions that became ready so far
	changed chan struct{} // closed at the next open or shut
}

func newReadyGate() *readyGate {
	return &readyGate{changed: make(chan struct{})}
}

// open records that a session is ready (its Ready event).
func (g *readyGate) open() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.ready = true
	g.gen++
	close(g.changed)
	g.changed = make(chan struct{})
}

// shut records that the session ended (Disconnected or ConnectFail).
func (g *readyGate) shut() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.ready {
		return
	}
	g.ready = false
	close(g.changed)
	g.changed = make(chan struct{})
}

// wait blocks until a session later than the after-th is ready and returns
// its number, or returns ctx's error.
func (g *readyGate) wait(ctx context.Context, after int) (int, error) {
	for {
		g.mu.Lock()
		if g.ready && g.gen > after {
			gen := g.gen
			g.mu.Unlock()
			return gen, nil
		}
		changed := g.changed
		g.mu.Unlock()
		select {
		case <-changed:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
}
