package lomond

import (
	"context"
	"testing"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/lomond-go/lomond/events"
	"github.com/lomond-go/lomond/internal/testkit"
)

// Helpers of the package's tests that need the package itself (a
// WebSocket, a handler). Everything else a test needs (the event recorder,
// waits, servers, frame reading) is in internal/testkit.

// newQuietWS is New with no proxy, quiet timers (no Poll, no automatic ping)
// and short close and handshake timeouts, failing the test on error.
func newQuietWS(t *testing.T, url string, opts ...Option) *WebSocket {
	t.Helper()
	base := []Option{WithoutProxy(), WithPollInterval(0), WithPingRate(0), WithCloseTimeout(2 * time.Second),
		WithHandshakeTimeout(5 * time.Second)}
	ws, err := New(url, append(base, opts...)...)
	if err != nil {
		t.Fatalf("New(%q): %v", url, err)
	}
	return ws
}

// constantBackOff is a constant backoff of d.
func constantBackOff(d time.Duration) PersistOption {
	return WithBackOff(func() backoff.BackOff { return &backoff.ConstantBackOff{Interval: d} })
}

// persistFunc sees every event after it was recorded; stop cancels Persist's
// context.
type persistFunc func(ws *WebSocket, ev events.Event, stop context.CancelFunc)

// persistRun is a Persist running in its own goroutine.
type persistRun struct {
	rec      *testkit.EventRecorder
	cancel   context.CancelFunc
	done     chan error
	finished bool
	err      error
}

// goPersist starts ws.Persist with a handler that records every event and
// then calls fn. The test's cleanup cancels it and waits for it.
func goPersist(t *testing.T, ws *WebSocket, fn persistFunc, opts ...PersistOption) *persistRun {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*testkit.Timeout)
	r := &persistRun{rec: new(testkit.EventRecorder), cancel: cancel, done: make(chan error, 1)}
	h := HandlerFunc(func(ws *WebSocket, ev events.Event) {
		r.rec.Add(ev)
		if fn != nil {
			fn(ws, ev, cancel)
		}
	})
	go func() { r.done <- ws.Persist(ctx, h, opts...) }()
	t.Cleanup(func() {
		cancel()
		if !r.join() {
			t.Errorf("Persist did not return within %v of its cancellation", testkit.Timeout)
		}
	})
	return r
}

// join waits for Persist to return and keeps its error in r.err; it
// reports false if Persist did not return within testkit.Timeout.
func (r *persistRun) join() bool {
	if r.finished {
		return true
	}
	timeout := time.NewTimer(testkit.Timeout)
	defer timeout.Stop()
	select {
	case r.err = <-r.done:
		r.finished = true
		return true
	case <-timeout.C:
		return false
	}
}

// wait returns Persist's error, failing the test if it does not return.
func (r *persistRun) wait(t *testing.T) error {
	t.Helper()
	if !r.join() {
		t.Fatalf("Persist did not return within %v; events: %v", testkit.Timeout, r.rec.Names())
	}
	return r.err
}

// stop cancels Persist and returns its error.
func (r *persistRun) stop(t *testing.T) error {
	t.Helper()
	r.cancel()
	return r.wait(t)
}

// runPersist runs Persist until it returns (fn may call stop).
func runPersist(t *testing.T, ws *WebSocket, fn persistFunc, opts ...PersistOption) (*testkit.EventRecorder, error) {
	t.Helper()
	r := goPersist(t, ws, fn, opts...)
	return r.rec, r.wait(t)
}

// newTestWS makes a WebSocket for url with test defaults: no proxy from the
// environment, one Poll (right after Ready), no automatic pings, and a
// close timeout that ends a stuck test quickly.
func newTestWS(t *testing.T, url string, opts ...Option) *WebSocket {
	t.Helper()
	base := []Option{WithoutProxy(), WithPollInterval(time.Hour), WithPingRate(0), WithCloseTimeout(10 * time.Second)}
	ws, err := New(url, append(base, opts...)...)
	if err != nil {
		t.Fatalf("New(%q): %v", url, err)
	}
	return ws
}

// mustNew is New that fails the test on error.
func mustNew(t *testing.T, url string, opts ...Option) *WebSocket {
	t.Helper()
	ws, err := New(url, opts...)
	if err != nil {
		t.Fatalf("New(%q): %v", url, err)
	}
	return ws
}

// runRecorded runs one session, recording every event and then passing it
// to fn (if not nil). A 30 s context guards against a hung test.
func runRecorded(t *testing.T, ws *WebSocket, fn func(ws *WebSocket, ev events.Event)) (*testkit.EventRecorder, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rec := new(testkit.EventRecorder)
	err := ws.Run(ctx, recording(rec, fn))
	return rec, err
}

// recording returns a handler that records every event in rec and then
// passes it to also, if not nil.
func recording(rec *testkit.EventRecorder, also func(ws *WebSocket, ev events.Event)) HandlerFunc {
	return func(ws *WebSocket, ev events.Event) {
		rec.Add(ev)
		if also != nil {
			also(ws, ev)
		}
	}
}

// rangeEvents runs a session with a range loop over Events, recording every
// event in rec and then passing it to also, if not nil.
func rangeEvents(ctx context.Context, ws *WebSocket, rec *testkit.EventRecorder, also func(ws *WebSocket, ev events.Event)) {
	h := recording(rec, also)
	for ev := range ws.Events(ctx) {
		h(ws, ev)
	}
}
