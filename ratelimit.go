package lomond

import (
	"context"
	"math"
	"sync"
	"time"
)

// WithSendRate limits outgoing messages to perSecond on average, with bursts
// of up to burst messages (a token bucket, full at the start). Exchange APIs
// close connections that exceed their message rate, and the burst right
// after a reconnect is where clients exceed it: the limit applies to
// SendText, SendBinary, SendJSON and their Context forms, and to the send
// queue's flush after each Ready. Pings, pongs and Close are not limited:
// control frames never wait behind data.
//
// A send waits for its turn, and the turns are shared by every goroutine
// that sends. SendText, SendBinary and SendJSON wait however long it takes
// (with many senders, their waits add up); SendTextContext and
// SendBinaryContext return ctx's error if ctx ends first, giving their turn
// back. A send that cannot go out (no ready session) takes no turn. A
// queued message takes its turn when it is flushed, not when it is queued.
//
// The limiter is a small token bucket of the library's own: no dependency
// (golang.org/x/time/rate) for forty lines.
func WithSendRate(perSecond float64, burst int) Option {
	return func(c *config) error {
		if !(perSecond > 0) || math.IsInf(perSecond, 1) {
			return optErr("send rate must be a positive number of messages per second, got %v", perSecond)
		}
		if burst < 1 {
			return optErr("send burst must be at least 1, got %d", burst)
		}
		c.sendRate, c.sendBurst = perSecond, burst
		return nil
	}
}

// tokenBucket paces sends: burst tokens, refilled at rate per second. A
// negative count is the turns already promised to waiting senders.
type tokenBucket struct {
	mu     sync.Mutex
	rate   float64
	burst  float64
	tokens float64
	last   time.Time
}

func newTokenBucket(rate float64, burst int) *tokenBucket {
	return &tokenBucket{rate: rate, burst: float64(burst), tokens: float64(burst), last: time.Now()}
}

// refill adds the tokens earned since the last call. Under b.mu.
func (b *tokenBucket) refill(now time.Time) {
	b.tokens = min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
	b.last = now
}

// wait takes a token, waiting for it if needed, however long it takes when
// ctx cannot end (context.Background()); when ctx ends first, the token is
// given back and ctx's error returned.
func (b *tokenBucket) wait(ctx context.Context) error {
	b.mu.Lock()
	b.refill(time.Now())
	b.tokens--
	if b.tokens >= 0 {
		b.mu.Unlock()
		return nil
	}
	d := time.Duration(-b.tokens / b.rate * float64(time.Second))
	b.mu.Unlock()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		b.mu.Lock()
		b.tokens++
		b.mu.Unlock()
		return ctx.Err()
	}
}
