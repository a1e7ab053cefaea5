package lomond

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/lomond-go/lomond/events"
	"github.com/lomond-go/lomond/internal/wstest"
)

// Regression tests for Persist (issue 8): the attempt count after a stable
// session (item 2), the floor under a server's Retry-After (item 3), and
// Persist's result when its context has a deadline (item 13).

// pfStableThenDrop is a server whose first connection stays up for twice
// stable (the duration is the scenario, not a synchronisation) and whose
// later connections are dropped right after the handshake.
func pfStableThenDrop(t *testing.T, stable time.Duration) *wstest.Server {
	var n atomic.Int32
	return wstest.NewServer(t, func(c *wstest.Conn) {
		if _, err := c.Handshake(); err != nil {
			return
		}
		if n.Add(1) == 1 {
			select {
			case <-time.After(2 * stable):
			case <-c.Done():
			}
		}
	})
}

// TestBackOffAttemptAfterStableSession: one stable session, then three that
// drop at once. BackOff.Attempt numbers the reconnections since the stable
// connection: 1, 2, 3, 4. Before the fix it read 1, 1, 2, 3.
func TestBackOffAttemptAfterStableSession(t *testing.T) {
	rcNoLeak(t)
	const stable = 300 * time.Millisecond
	ws := rcNew(t, pfStableThenDrop(t, stable).URL())
	rec, err := rcPersist(t, ws, rcStopAt("back_off", 4), rcConst(time.Millisecond), WithStableAfter(stable))
	if err != nil {
		t.Fatalf("Persist = %v", err)
	}
	var got []int
	for _, bo := range rcAll[*events.BackOff](rec) {
		got = append(got, bo.Attempt)
	}
	if want := []int{1, 2, 3, 4}; !slices.Equal(got, want) {
		t.Errorf("BackOff.Attempt %v, want %v", got, want)
	}
}

// TestBackOffAttemptLimitAfterStableSession checks the before-dial hook's
// Attempt.Number and the attempt limit around a stable session: the limit
// counts only the attempts that did not become stable.
func TestBackOffAttemptLimitAfterStableSession(t *testing.T) {
	rcNoLeak(t)
	const stable = 300 * time.Millisecond
	ws := rcNew(t, pfStableThenDrop(t, stable).URL())
	var numbers []int
	hook := func(_ context.Context, a *Attempt) error {
		numbers = append(numbers, a.Number)
		return nil
	}
	rec, err := rcPersist(t, ws, nil, rcConst(time.Millisecond), WithStableAfter(stable), WithMaxAttempts(3), WithBeforeDial(hook))
	if !errors.Is(err, ErrMaxAttempts) {
		t.Fatalf("Persist = %v, want ErrMaxAttempts", err)
	}
	if got := rec.count("ready"); got != 4 {
		t.Errorf("%d sessions, want 4 (one stable, then the limit of 3)", got)
	}
	if want := []int{1, 1, 2, 3}; !slices.Equal(numbers, want) {
		t.Errorf("Attempt.Number %v, want %v", numbers, want)
	}
}

// TestRetryAfterZeroIsFloored: a server answering 503 with Retry-After: 0
// (or a date in the past) must not get a reconnect storm: the wait is at
// least the backoff's minimum delay. Before the fix the delay was 0.
func TestRetryAfterZeroIsFloored(t *testing.T) {
	rcNoLeak(t)
	exp := func(initial time.Duration, jitter float64) PersistOption {
		return WithBackOff(func() backoff.BackOff {
			b := backoff.NewExponentialBackOff()
			b.InitialInterval, b.RandomizationFactor, b.MaxElapsedTime = initial, jitter, 0
			return b
		})
	}
	past := time.Now().Add(-time.Hour).UTC().Format(http.TimeFormat)
	cases := []struct {
		name, value string
		opt         PersistOption
		floor       time.Duration
	}{
		{"zero, exponential", "0", exp(80*time.Millisecond, 0), 80 * time.Millisecond},
		{"zero, exponential with jitter", "0", exp(80*time.Millisecond, 0.5), 40 * time.Millisecond},
		{"past date, constant", past, rcConst(60 * time.Millisecond), 60 * time.Millisecond},
		{"zero, lomond", "0", WithLomondBackOff(70*time.Millisecond, time.Second), 70 * time.Millisecond},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srv := wstest.NewServer(t, rcReject(http.StatusServiceUnavailable, http.Header{"Retry-After": {c.value}}))
			ws := rcNew(t, srv.URL())
			rec, err := rcPersist(t, ws, rcStopAt("back_off", 3), c.opt)
			if err != nil {
				t.Fatalf("Persist = %v", err)
			}
			bos := rcAll[*events.BackOff](rec)
			if len(bos) != 3 {
				t.Fatalf("events %v, want 3 BackOff", rec.names())
			}
			for i, bo := range bos {
				if bo.Delay < c.floor {
					t.Errorf("BackOff %d: delay %v, want at least the backoff's minimum %v", i+1, bo.Delay, c.floor)
				}
			}
			conns := rcAll[*events.Connecting](rec)
			if gap := conns[2].ReceivedTime().Sub(conns[0].ReceivedTime()); gap < 2*c.floor {
				t.Errorf("three attempts within %v, want at least %v apart in all", gap, 2*c.floor)
			}
		})
	}
}

// TestPersistDeadlineIsAnError: Persist whose context reaches its deadline
// returns context.DeadlineExceeded; a cancelled context still returns nil.
// Before the fix both returned nil.
func TestPersistDeadlineIsAnError(t *testing.T) {
	rcNoLeak(t)
	ws := rcNew(t, "ws://"+rcRefusedAddr(t)+"/")
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- ws.Persist(ctx, HandlerFunc(func(*WebSocket, events.Event) {}), rcConst(time.Hour)) }()
	err := rcRecv(t, done, "Persist's return")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Persist at its deadline = %v, want context.DeadlineExceeded", err)
	}
	if ws.Err() != err {
		t.Errorf("ws.Err() = %v, want Persist's %v", ws.Err(), err)
	}

	cause := errors.New("test: shutting down")
	cctx, ccancel := context.WithCancelCause(context.Background())
	go func() {
		done <- ws.Persist(cctx, HandlerFunc(func(_ *WebSocket, ev events.Event) {
			if ev.Name() == events.NameBackOff {
				ccancel(cause)
			}
		}), rcConst(time.Hour))
	}()
	if err := rcRecv(t, done, "Persist's return"); !errors.Is(err, cause) {
		t.Errorf("Persist cancelled with a cause = %v, want the cause", err)
	}

	pctx, pcancel := context.WithCancel(context.Background())
	go func() {
		done <- ws.Persist(pctx, HandlerFunc(func(_ *WebSocket, ev events.Event) {
			if ev.Name() == events.NameBackOff {
				pcancel()
			}
		}), rcConst(time.Hour))
	}()
	if err := rcRecv(t, done, "Persist's return"); err != nil {
		t.Errorf("Persist cancelled = %v, want nil", err)
	}
}
