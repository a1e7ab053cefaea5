package lomondtest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/lomond-go/lomond"
	"github.com/lomond-go/lomond/events"
)

// Context returns a context that ends after Timeout, or when the test ends.
func Context(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	t.Cleanup(cancel)
	return ctx
}

// Run runs one session of ws (ws.Run) with h followed by a Recorder (h may
// be nil: the Recorder alone), and returns the Recorder once Run has
// returned. It fails the test if the session does not end within Timeout,
// if h is not a usable handler, or if a handler panicked. Any other end (a
// rejection, a server close, a lost connection) is in the recorded events,
// and ws.Err() returns Run's error.
func Run(t testing.TB, ws *lomond.WebSocket, h any) *Recorder {
	t.Helper()
	rec := &Recorder{managed: true}
	handler := lomond.EventHandler(rec)
	if h != nil {
		handler = lomond.Compose(h, rec)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	err := ws.Run(ctx, handler)
	rec.finish()
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Fatalf("lomondtest: Run: the session did not end within %v (the context then closed it)\n%s",
			waitLimit, listEvents(rec.Events(), 0, -1))
	}
	failOnBug(t, "Run", err)
	return rec
}

// failOnBug fails the test for the errors that are never the outcome a
// test wants: a handler panic and an unusable handler.
func failOnBug(t testing.TB, what string, err error) {
	t.Helper()
	var pe *lomond.PanicError
	if errors.As(err, &pe) || errors.Is(err, lomond.ErrInvalidHandler) {
		t.Fatalf("lomondtest: %s: %v", what, err)
	}
}

// Persisting is a Persist running in the background, started by Persist.
// Its Recorder holds the events of every session.
type Persisting struct {
	*Recorder
	cancel context.CancelFunc
	done   chan struct{}
	err    error
}

// Persist starts ws.Persist in the background with h followed by a
// Recorder (h may be nil), and a BackOff of 1 ms before opts: reconnecting
// takes a millisecond, and a client refused in a loop (a stopped server)
// does not spin. Pass (&BackOff{...}).Option() among opts to count
// attempts or change the delay.
// Stop it with Stop; t.Cleanup stops it if the test does not, and fails the
// test if it does not return within Timeout.
//
// Once the test has failed (a script failed, say), Persist stops at the
// end of the session, instead of reconnecting every millisecond to fail
// the same way: it logs the events that led there, once, and the waits
// that then fail say that Persist stopped, without listing them again.
func Persist(t testing.TB, ws *lomond.WebSocket, h any, opts ...lomond.PersistOption) *Persisting {
	t.Helper()
	rec := &Recorder{managed: true}
	ctx, cancel := context.WithCancel(context.Background())
	p := &Persisting{Recorder: rec, cancel: cancel, done: make(chan struct{})}
	guard := lomond.HandlerFunc(func(_ *lomond.WebSocket, ev events.Event) { p.stopIfFailed(t, ev) })
	handler := lomond.Compose(rec, guard)
	if h != nil {
		handler = lomond.Compose(h, rec, guard)
	}
	all := append([]lomond.PersistOption{(&BackOff{Delay: time.Millisecond}).Option()}, opts...)
	go func() {
		defer close(p.done)
		p.err = ws.Persist(ctx, handler, all...)
		rec.finish()
	}()
	t.Cleanup(func() {
		cancel()
		if !p.join() {
			t.Errorf("lomondtest: Persist did not return within %v of the end of the test", waitLimit)
		}
	})
	return p
}

// stopIfFailed cancels Persist at the end of a session once the test has
// failed, and logs the events that led there.
func (p *Persisting) stopIfFailed(t testing.TB, ev events.Event) {
	switch ev.Name() {
	case events.NameDisconnected, events.NameConnectFail:
	default:
		return
	}
	if !t.Failed() {
		return
	}
	r := p.Recorder
	r.mu.Lock()
	if r.stopped != "" {
		r.mu.Unlock()
		return
	}
	n := len(r.evs)
	r.stopped = fmt.Sprintf("Persist stopped reconnecting after event %d, because the test had failed (the events are listed above)", n)
	evs := append([]events.Event(nil), r.evs...)
	r.wakeLocked()
	r.mu.Unlock()
	p.cancel()
	t.Logf("lomondtest: Persist: the test has failed, so Persist stops here instead of reconnecting to fail again\n%s",
		listEvents(evs, 0, n-1))
}

// Stop cancels Persist's context, waits up to Timeout for Persist to
// return (closing the live connection gracefully), and returns its error:
// nil after a cancellation, or why it had stopped on its own. It fails the
// test if Persist does not return, or returns a handler panic.
func (p *Persisting) Stop(t testing.TB) error {
	t.Helper()
	p.cancel()
	return p.Wait(t)
}

// Wait waits up to Timeout for Persist to return on its own (an attempt
// limit, a retry policy, a back-off that gives up) and returns its error.
// It fails the test if Persist does not return, or returns a handler panic.
func (p *Persisting) Wait(t testing.TB) error {
	t.Helper()
	if !p.join() {
		t.Fatalf("lomondtest: Persist did not return within %v\n%s", waitLimit, listEvents(p.Events(), 0, -1))
	}
	failOnBug(t, "Persist", p.err)
	return p.err
}

// join waits up to Timeout for Persist to return.
func (p *Persisting) join() bool {
	timer := time.NewTimer(waitLimit)
	defer timer.Stop()
	select {
	case <-p.done:
		return true
	case <-timer.C:
		return false
	}
}
