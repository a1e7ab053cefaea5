package testkit

import (
	"slices"
	"sync"
	"testing"
	"time"
)

// Timeout bounds every wait of the kit, so that a broken test fails instead
// of hanging.
const Timeout = 10 * time.Second

// Recorder keeps values in the order they were added, from any goroutine,
// and lets a test wait for what it expects. The zero value is ready to use.
type Recorder[T any] struct {
	mu      sync.Mutex
	items   []T
	changed chan struct{} // closed and replaced by every Add
}

// Add records v and wakes every waiter.
func (r *Recorder[T]) Add(v T) {
	r.mu.Lock()
	r.items = append(r.items, v)
	if r.changed != nil {
		close(r.changed)
		r.changed = nil
	}
	r.mu.Unlock()
}

// All returns a copy of what was recorded, in order.
func (r *Recorder[T]) All() []T {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.items)
}

// Len returns how many values were recorded.
func (r *Recorder[T]) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.items)
}

// Reset forgets every recorded value.
func (r *Recorder[T]) Reset() {
	r.mu.Lock()
	r.items = nil
	r.mu.Unlock()
}

// snapshot returns what was recorded and a channel closed by the next Add.
func (r *Recorder[T]) snapshot() ([]T, <-chan struct{}) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.changed == nil {
		r.changed = make(chan struct{})
	}
	return slices.Clone(r.items), r.changed
}

// Wait blocks until ok holds for what was recorded, and returns it. After
// Timeout it fails the test, naming what and showing the values.
func (r *Recorder[T]) Wait(t testing.TB, what string, ok func([]T) bool) []T {
	t.Helper()
	timeout := time.NewTimer(Timeout)
	defer timeout.Stop()
	for {
		items, changed := r.snapshot()
		if ok(items) {
			return items
		}
		select {
		case <-changed:
		case <-timeout.C:
			t.Fatalf("timed out waiting for %s; recorded: %v", what, items)
			return nil
		}
	}
}

// WaitLen blocks until at least n values were recorded.
func (r *Recorder[T]) WaitLen(t testing.TB, n int) []T {
	t.Helper()
	return r.Wait(t, "values", func(items []T) bool { return len(items) >= n })
}
