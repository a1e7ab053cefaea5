package testkit

import (
	"testing"
	"time"

	"go.uber.org/goleak"
)

// Recv returns the next value from ch, failing the test after Timeout.
func Recv[T any](t testing.TB, ch <-chan T, what string) T {
	t.Helper()
	return RecvWithin(t, Timeout, ch, what)
}

// RecvWithin is Recv with its own bound, for waits that move much data.
func RecvWithin[T any](t testing.TB, d time.Duration, ch <-chan T, what string) T {
	t.Helper()
	v, ok := recvWithin(d, ch)
	if !ok {
		t.Fatalf("timed out waiting for %s", what)
	}
	return v
}

func recv[T any](ch <-chan T) (T, bool) { return recvWithin(Timeout, ch) }

func recvWithin[T any](d time.Duration, ch <-chan T) (T, bool) {
	timeout := time.NewTimer(d)
	defer timeout.Stop()
	select {
	case v := <-ch:
		return v, true
	case <-timeout.C:
		var zero T
		return zero, false
	}
}

// NoLeak fails the test if, at its end, a goroutine is running that was
// not running when NoLeak was called: for tests that must prove their own
// cleanup, beside the package's TestMain check.
func NoLeak(t testing.TB) {
	t.Helper()
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
}

// Eventually polls cond every millisecond until it holds, failing the test
// after Timeout. It is for state that no event or channel signals (a lock
// taken, a queue popped); anything that can be waited on is waited on.
func Eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(Timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(time.Millisecond) // polling: nothing signals the state
	}
}
