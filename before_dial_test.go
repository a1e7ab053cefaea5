package lomond

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/lomond-go/lomond/events"
	"github.com/lomond-go/lomond/internal/wstest"
)

// A before-dial hook's error is a failed attempt like a failed dial: the
// retry policy decides, BackOff carries the cause, and only an error marked
// Permanent (or an invalid change) ends Persist. Stop ends a hook in
// progress.

// bdTokenSecret stands for a credential in the token service's URL, which
// an http.Client error quotes.
const bdTokenSecret = "Cl1ent-s3cret-b7"

var errTokenDown = errors.New("token service unavailable")

// bdTokenError is what a token fetch through net/http returns while the
// token service is down.
func bdTokenError() error {
	return fmt.Errorf("fetching token: %w", &url.Error{Op: "Post",
		URL: "https://user:" + bdTokenSecret + "@127.0.0.1:9/token?client_secret=" + bdTokenSecret, Err: errTokenDown})
}

// TestPersistBeforeDialRetried: a hook that fails twice (its token service
// is down) and then succeeds: Persist connects on the third attempt, after
// two ConnectFail and two BackOff events that carry the hook's error with
// its credentials hidden.
func TestPersistBeforeDialRetried(t *testing.T) {
	rcNoLeak(t)
	auths := make(chan string, 4)
	srv := wstest.NewServer(t, func(c *wstest.Conn) {
		req, err := c.ReadRequest()
		if err != nil {
			return
		}
		auths <- req.Header.Get("Authorization")
		if err := c.Accept(req, nil); err != nil {
			return
		}
		if code, reason, err := c.ExpectClose(); err == nil {
			_ = c.WriteFrame(wstest.Close(code, reason))
		}
	})
	ws := rcNew(t, srv.URL())
	var numbers []int
	hook := func(_ context.Context, a *Attempt) error {
		numbers = append(numbers, a.Number)
		if len(numbers) <= 2 {
			return bdTokenError()
		}
		a.Header.Set("Authorization", "Bearer fresh")
		return nil
	}
	rec, err := rcPersist(t, ws, rcStopAt("ready", 1), WithBeforeDial(hook), rcConst(time.Millisecond))
	if err != nil {
		t.Fatalf("Persist = %v, want nil", err)
	}
	rcWantNames(t, rec, "connecting", "connect_fail", "back_off", "connecting", "connect_fail", "back_off",
		"connecting", "connected", "ready", "closed", "disconnected")
	if got := rcRecv(t, auths, "the upgrade request"); got != "Bearer fresh" {
		t.Errorf("the server got Authorization %q, want the hook's", got)
	}
	if n := srv.Conns(); n != 1 {
		t.Errorf("%d connections, want 1 (none while the hook failed)", n)
	}
	if want := []int{1, 2, 3}; !slices.Equal(numbers, want) {
		t.Errorf("Attempt.Number %v, want %v", numbers, want)
	}
	var shown []string
	for i, cf := range rcAll[*events.ConnectFail](rec) {
		if cf.URL != ws.URL() {
			t.Errorf("ConnectFail %d URL %q, want %q", i+1, cf.URL, ws.URL())
		}
		if !strings.HasPrefix(cf.Reason, "before-dial hook; fetching token: ") || !strings.Contains(cf.Reason, errTokenDown.Error()) {
			t.Errorf("ConnectFail %d Reason %q, want the hook's error", i+1, cf.Reason)
		}
		if !strings.Contains(cf.Reason, "https://127.0.0.1:9/token?client_secret=xxxxx") {
			t.Errorf("ConnectFail %d Reason %q, want the token URL shown redacted", i+1, cf.Reason)
		}
		if !errors.Is(cf.Err, errTokenDown) {
			t.Errorf("ConnectFail %d Err %v does not wrap the hook's error", i+1, cf.Err)
		}
		shown = append(shown, cf.String(), cf.Reason, cf.Err.Error())
	}
	for i, bo := range rcAll[*events.BackOff](rec) {
		var ce *ConnectError
		var ue *url.Error
		if !errors.As(bo.Cause, &ce) || !errors.Is(bo.Cause, errTokenDown) || !errors.As(bo.Cause, &ue) {
			t.Errorf("BackOff %d Cause %v, want a *ConnectError wrapping the hook's error", i+1, bo.Cause)
		}
		if bo.Attempt != i+1 {
			t.Errorf("BackOff %d Attempt %d, want %d", i+1, bo.Attempt, i+1)
		}
		shown = append(shown, bo.String(), bo.Cause.Error())
	}
	for _, s := range shown {
		if strings.Contains(s, bdTokenSecret) {
			t.Errorf("the hook's credential shows: %s", s)
		}
	}
}

// TestPersistBeforeDialPermanent: an error marked Permanent ends Persist
// after its ConnectFail, whatever the retry policy; the error returned is
// the attempt's *ConnectError, wrapping the hook's error and ErrPermanent.
func TestPersistBeforeDialPermanent(t *testing.T) {
	rcNoLeak(t)
	srv := wstest.NewServer(t, rcReject(http.StatusServiceUnavailable, nil))
	errRevoked := errors.New("credential revoked")
	for _, policy := range []RetryPolicy{RetryAlways, RetryStrict} {
		ws := rcNew(t, srv.URL())
		calls := 0
		hook := func(_ context.Context, a *Attempt) error {
			if calls++; calls == 2 {
				return Permanent(fmt.Errorf("refresh: %w", errRevoked))
			}
			return nil
		}
		rec, err := rcPersist(t, ws, nil, WithBeforeDial(hook), WithRetryPolicy(policy), rcConst(time.Millisecond))
		var ce *ConnectError
		if !errors.Is(err, ErrPermanent) || !errors.Is(err, errRevoked) || !errors.As(err, &ce) {
			t.Fatalf("Persist = %v, want a *ConnectError wrapping ErrPermanent and the hook's error", err)
		}
		if errors.Is(err, ErrRetryPolicy) {
			t.Errorf("Persist = %v: the policy was not asked", err)
		}
		if !strings.Contains(err.Error(), "before-dial hook; refresh: credential revoked") {
			t.Errorf("Persist's error reads %q, want the hook's error", err)
		}
		rcWantNames(t, rec, "connecting", "connected", "rejected", "disconnected", "back_off", "connecting", "connect_fail")
		if calls != 2 {
			t.Errorf("hook called %d times, want 2", calls)
		}
	}
	if n := srv.Conns(); n != 2 {
		t.Errorf("%d connections, want 2 (one per Persist, none after the permanent error)", n)
	}
}

func TestPersistPermanentMarker(t *testing.T) {
	if Permanent(nil) != nil {
		t.Error("Permanent(nil) is not nil")
	}
	base := errors.New("base")
	p := Permanent(base)
	if p.Error() != "base" || !errors.Is(p, base) || !errors.Is(p, ErrPermanent) || errors.Is(base, ErrPermanent) {
		t.Errorf("Permanent(base) = %v: want it to read as base and wrap base and ErrPermanent", p)
	}
}

// TestPersistBeforeDialPolicyAndLimit: a hook's error goes to the retry
// policy and counts against the attempt limit, as a failed dial does.
func TestPersistBeforeDialPolicyAndLimit(t *testing.T) {
	rcNoLeak(t)
	failing := func(context.Context, *Attempt) error { return bdTokenError() }
	t.Run("policy", func(t *testing.T) {
		ws := rcNew(t, "ws://"+rcRefusedAddr(t)+"/")
		var seen error
		policy := func(cause error) bool { seen = cause; return false }
		_, err := rcPersist(t, ws, nil, WithBeforeDial(failing), WithRetryPolicy(policy))
		if !errors.Is(err, ErrRetryPolicy) || !errors.Is(err, errTokenDown) {
			t.Errorf("Persist = %v, want ErrRetryPolicy with the hook's error", err)
		}
		var ce *ConnectError
		if !errors.As(seen, &ce) || !strings.HasPrefix(ce.Reason, "before-dial hook; ") {
			t.Errorf("the policy saw %v, want the attempt's *ConnectError", seen)
		}
	})
	t.Run("attempt limit", func(t *testing.T) {
		ws := rcNew(t, "ws://"+rcRefusedAddr(t)+"/")
		rec, err := rcPersist(t, ws, nil, WithBeforeDial(failing), WithMaxAttempts(3), rcConst(time.Millisecond))
		if !errors.Is(err, ErrMaxAttempts) || !errors.Is(err, errTokenDown) {
			t.Errorf("Persist = %v, want ErrMaxAttempts with the hook's error", err)
		}
		if n, b := rec.count("connect_fail"), rec.count("back_off"); n != 3 || b != 2 {
			t.Errorf("%d ConnectFail and %d BackOff, want 3 and 2", n, b)
		}
	})
}

// TestStopEndsBeforeDialHook: Stop cancels the context of a hook in
// progress (a token fetch waiting on a slow service), and Persist returns
// nil whatever the hook returns then; no event follows. Before the fix the
// hook's context lived on, so Persist waited for the hook, then returned
// its error.
func TestStopEndsBeforeDialHook(t *testing.T) {
	rcNoLeak(t)
	srv := wstest.NewServer(t, rcAnswerClose)
	ws := rcNew(t, srv.URL())
	entered := make(chan struct{})
	hook := func(ctx context.Context, _ *Attempt) error {
		close(entered)
		select {
		case <-ctx.Done():
			return fmt.Errorf("fetching token: %w", ctx.Err())
		case <-time.After(3 * rcTimeout):
			return errors.New("the hook's context was not cancelled by Stop")
		}
	}
	run := rcGo(t, ws, nil, WithBeforeDial(hook))
	rcRecv(t, entered, "the hook")
	start := time.Now()
	if err := ws.Stop(StatusNormal, ""); err != nil {
		t.Fatalf("Stop = %v", err)
	}
	if err := run.wait(t); err != nil {
		t.Errorf("Persist = %v after Stop during the hook, want nil", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Persist returned %v after Stop, want at once", d)
	}
	if n := len(run.rec.all()); n != 0 || srv.Conns() != 0 {
		t.Errorf("events %v, %d connections; want nothing after Stop", run.rec.names(), srv.Conns())
	}
}

// TestWithBackOffCalledOncePerPersist: WithBackOff's constructor runs once
// per Persist, as documented (it ran twice: once more for the minimum
// delay), whatever the number of attempts.
func TestWithBackOffCalledOncePerPersist(t *testing.T) {
	rcNoLeak(t)
	srv := wstest.NewServer(t, rcReject(http.StatusServiceUnavailable, http.Header{"Retry-After": {"0"}}))
	var calls atomic.Int32
	newBackOff := func() backoff.BackOff {
		calls.Add(1)
		return &backoff.ConstantBackOff{Interval: time.Millisecond}
	}
	for run := 1; run <= 2; run++ {
		ws := rcNew(t, srv.URL())
		rec, err := rcPersist(t, ws, rcStopAt("back_off", 3), WithBackOff(newBackOff))
		if err != nil {
			t.Fatalf("Persist = %v", err)
		}
		// Retry-After: 0 is raised to the backoff's minimum: the floor
		// still comes from the one backoff.
		for _, bo := range rcAll[*events.BackOff](rec) {
			if bo.Delay != time.Millisecond {
				t.Errorf("BackOff delay %v, want the constant backoff's 1ms", bo.Delay)
			}
		}
		if n := calls.Load(); n != int32(run) {
			t.Errorf("after %d Persist runs the constructor ran %d times, want %d", run, n, run)
		}
	}
}
