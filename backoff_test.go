package lomond

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"testing"
	"time"

	"github.com/cenkalti/backoff/v4"
)

// Backoff arithmetic and retry policies, without sleeping.

func TestLomondBackOffFormula(t *testing.T) {
	const minWait, maxWait = 5 * time.Second, 30 * time.Second
	for _, r := range []float64{0, 0.5, 0.999} {
		b := &LomondBackOff{MinWait: minWait, MaxWait: maxWait, Rand: func() float64 { return r }}
		for n := 1; n <= 100; n++ {
			// lomond: min_wait + random() * min(max_wait - min_wait, 2**retries)
			span := maxWait - minWait
			if exp := math.Pow(2, float64(n)); exp < span.Seconds() {
				span = time.Duration(exp) * time.Second
			}
			want := minWait + time.Duration(r*float64(span))
			got := b.NextBackOff()
			if got != want {
				t.Errorf("r=%v attempt %d: %v, want %v", r, n, got, want)
			}
			if got < minWait || got > maxWait {
				t.Fatalf("r=%v attempt %d: %v, outside [MinWait, MaxWait]", r, n, got)
			}
		}
	}
	// Spelled out for r = 0.5: 2^n s until it passes max-min = 25 s.
	b := &LomondBackOff{MinWait: minWait, MaxWait: maxWait, Rand: func() float64 { return 0.5 }}
	for i, want := range []time.Duration{6 * time.Second, 7 * time.Second, 9 * time.Second, 13 * time.Second,
		17500 * time.Millisecond, 17500 * time.Millisecond} {
		if got := b.NextBackOff(); got != want {
			t.Errorf("r=0.5 attempt %d: %v, want %v", i+1, got, want)
		}
	}
}

func TestLomondBackOffReset(t *testing.T) {
	b := &LomondBackOff{MinWait: 5 * time.Second, MaxWait: 30 * time.Second, Rand: func() float64 { return 0.999 }}
	first := b.NextBackOff()
	for range 10 {
		b.NextBackOff()
	}
	b.Reset()
	if got := b.NextBackOff(); got != first {
		t.Errorf("after Reset: %v, want the first delay again, %v", got, first)
	}
}

func TestLomondBackOffDefaultRand(t *testing.T) {
	b := &LomondBackOff{MinWait: time.Second, MaxWait: 3 * time.Second}
	for n := 1; n <= 1000; n++ {
		if d := b.NextBackOff(); d < time.Second || d >= 3*time.Second {
			t.Fatalf("attempt %d: %v, want within [1s, 3s)", n, d)
		}
	}
	same := &LomondBackOff{MinWait: 2 * time.Second, MaxWait: 2 * time.Second}
	if d := same.NextBackOff(); d != 2*time.Second {
		t.Errorf("MinWait == MaxWait: %v, want exactly 2s", d)
	}
}

func TestDefaultBackOff(t *testing.T) {
	b := DefaultBackOff()
	e, ok := b.(*backoff.ExponentialBackOff)
	if !ok {
		t.Fatalf("DefaultBackOff is %T, want *backoff.ExponentialBackOff", b)
	}
	if e.InitialInterval != time.Second || e.Multiplier != 2 || e.RandomizationFactor != 0.5 ||
		e.MaxInterval != 30*time.Second || e.MaxElapsedTime != 0 {
		t.Errorf("DefaultBackOff = initial %v ×%v ±%v max %v elapsed %v, want 1s ×2 ±0.5 max 30s elapsed 0",
			e.InitialInterval, e.Multiplier, e.RandomizationFactor, e.MaxInterval, e.MaxElapsedTime)
	}
	for range 100 {
		if d := DefaultBackOff().NextBackOff(); d < 500*time.Millisecond || d > 1500*time.Millisecond {
			t.Fatalf("first delay %v, want within [0.5s, 1.5s]", d)
		}
	}
	low, high := time.Duration(math.MaxInt64), time.Duration(0)
	for n := 1; n <= 1000; n++ {
		d := b.NextBackOff()
		if d == backoff.Stop {
			t.Fatalf("attempt %d: backoff.Stop; the default must never give up", n)
		}
		if d < 500*time.Millisecond || d > 45*time.Second {
			t.Fatalf("attempt %d: %v, want within [0.5s, 45s]", n, d)
		}
		if n > 10 {
			low, high = min(low, d), max(high, d)
		}
	}
	// Once capped, delays are 30 s ± 50%.
	if low < 15*time.Second || high > 45*time.Second {
		t.Errorf("capped delays within [%v, %v], want within [15s, 45s]", low, high)
	}
	b.Reset()
	if d := b.NextBackOff(); d > 1500*time.Millisecond {
		t.Errorf("after Reset: %v, want within [0.5s, 1.5s]", d)
	}
}

func TestRetryPolicies(t *testing.T) {
	rej := func(status int) error { return &RejectedError{StatusCode: status, Status: http.StatusText(status)} }
	closed := func(code int) error { return &CloseError{Code: code} }
	cases := []struct {
		name   string
		cause  error
		strict bool
	}{
		{"400", rej(400), false},
		{"401", rej(401), false},
		{"403", rej(403), false},
		{"404", rej(404), false},
		{"408", rej(408), true},
		{"429", rej(429), true},
		{"500", rej(500), true},
		{"503", rej(503), true},
		{"wrapped 401", fmt.Errorf("context: %w", rej(401)), false},
		{"close 1008", closed(1008), false},
		{"close 1000", closed(1000), true},
		{"close 1011", closed(1011), true},
		{"close 4001", closed(4001), true},
		{"connect error", &ConnectError{URL: "ws://x/", Reason: "refused", Err: errors.New("refused")}, true},
		{"protocol error 1002", &ProtocolError{Code: 1002, Err: errors.New("bad frame")}, true},
		{"unresponsive", ErrUnresponsive, true},
		{"handshake timeout", ErrHandshakeTimeout, true},
		{"nil (client closed)", nil, true},
	}
	for _, c := range cases {
		if got := RetryStrict(c.cause); got != c.strict {
			t.Errorf("RetryStrict(%s) = %v, want %v", c.name, got, c.strict)
		}
		if !RetryAlways(c.cause) {
			t.Errorf("RetryAlways(%s) = false", c.name)
		}
	}
}
