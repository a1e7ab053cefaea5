package lomondtest

import (
	"sync"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/lomond-go/lomond"
)

// BackOff is a reconnect back-off for tests: every delay is Delay (zero by
// default, so Persist reconnects at once) and it counts what Persist asked
// of it. Give it to Persist with Option (lomondtest.Persist uses one of
// 1 ms unless given another). A Retry-After from the server still sets the
// delay (lomond.WithMaxRetryAfter bounds it, and ws.Reconnect cuts a wait
// short).
//
// The zero value is ready to use; its methods are safe for concurrent use.
type BackOff struct {
	// Delay is what NextBackOff returns.
	Delay time.Duration

	mu       sync.Mutex
	attempts int
	resets   int
}

// NextBackOff counts an attempt and returns Delay.
func (b *BackOff) NextBackOff() time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.attempts++
	return b.Delay
}

// Reset counts a reset (Persist resets after a stable connection and on
// Reconnect).
func (b *BackOff) Reset() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.resets++
}

// Attempts returns how many delays Persist has asked for: one per
// reconnection it waited for, except those a Retry-After decided.
func (b *BackOff) Attempts() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.attempts
}

// Resets returns how many times Persist reset the back-off, counting the
// reset it makes when it starts.
func (b *BackOff) Resets() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.resets
}

// Option returns the Persist option that makes Persist use b.
func (b *BackOff) Option() lomond.PersistOption {
	return lomond.WithBackOff(func() backoff.BackOff { return b })
}
