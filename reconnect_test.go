package lomond

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/lomond-go/lomond/events"
	"github.com/lomond-go/lomond/internal/testkit"
	"github.com/lomond-go/lomond/internal/wstest"
)

// Tests of reconnect.go: Persist against real sockets on 127.0.0.1
// (restarts, back-offs, Retry-After, retry policies, before-dial hooks,
// cancellation, Reconnect and Stop), PersistEvents, and the back-off
// arithmetic without sleeping.

// exponentialBackOff1ms is an exponential backoff without jitter: 1 ms, 2 ms, 4 ms...
func exponentialBackOff1ms() PersistOption {
	return WithBackOff(func() backoff.BackOff {
		b := backoff.NewExponentialBackOff()
		b.InitialInterval = time.Millisecond
		b.Multiplier = 2
		b.RandomizationFactor = 0
		b.MaxElapsedTime = 0
		return b
	})
}

// stopAtEvent returns an persistFunc that cancels Persist at the n-th event named
// name.
func stopAtEvent(name string, n int) persistFunc {
	seen := 0
	return func(_ *WebSocket, ev events.Event, stop context.CancelFunc) {
		if ev.Name() == name {
			if seen++; seen == n {
				stop()
			}
		}
	}
}

func wantNames(t *testing.T, rec *testkit.EventRecorder, want ...string) {
	t.Helper()
	if got := rec.Names(); !slices.Equal(got, want) {
		t.Errorf("events:\n got %v\nwant %v", got, want)
	}
}

func TestPersistServerDownThenUp(t *testing.T) {
	testkit.NoLeak(t)
	srv := testkit.NewPortServer(t)
	ws := newQuietWS(t, srv.URL())
	run := goPersist(t, ws, nil, constantBackOff(5*time.Millisecond))
	run.rec.WaitCount(t, "back_off", 3)
	srv.Start() // the same port, as a restarted server process would
	run.rec.WaitCount(t, "ready", 1)
	if err := run.stop(t); err != nil {
		t.Fatalf("Persist = %v, want nil after cancel", err)
	}

	evs := run.rec.All()
	i, fails := 0, 0
	for ; i+2 < len(evs) && evs[i+1].Name() == "connect_fail"; i += 3 {
		fails++
		if evs[i].Name() != "connecting" || evs[i+2].Name() != "back_off" {
			t.Fatalf("cycle %d: %v %v %v, want connecting connect_fail back_off", fails, evs[i], evs[i+1], evs[i+2])
		}
		if cf := evs[i+1].(*events.ConnectFail); !errors.Is(cf.Err, syscall.ECONNREFUSED) {
			t.Errorf("cycle %d: ConnectFail.Err = %v, want connection refused", fails, cf.Err)
		}
		bo := evs[i+2].(*events.BackOff)
		var ce *ConnectError
		if bo.Attempt != fails || bo.Delay != 5*time.Millisecond || !errors.As(bo.Cause, &ce) {
			t.Errorf("cycle %d: BackOff attempt %d delay %v cause %v, want attempt %d, 5ms, a *ConnectError",
				fails, bo.Attempt, bo.Delay, bo.Cause, fails)
		}
	}
	if fails < 3 {
		t.Errorf("%d ConnectFail/BackOff cycles before the server came up, want >= 3; events %v", fails, run.rec.Names())
	}
	var tail []string
	for _, ev := range evs[i:] {
		tail = append(tail, ev.Name())
	}
	if want := []string{"connecting", "connected", "ready", "closed", "disconnected"}; !slices.Equal(tail, want) {
		t.Errorf("after the server came up: %v, want %v", tail, want)
	}
}

func TestPersistServerRestarted20Times(t *testing.T) {
	testkit.NoLeak(t)
	srv := testkit.NewPortServer(t)
	srv.Start()
	ws := newQuietWS(t, srv.URL())
	run := goPersist(t, ws, nil, constantBackOff(5*time.Millisecond))
	var first int
	for i := 1; i <= 20; i++ {
		run.rec.WaitCount(t, "ready", i)
		if i == 1 {
			first = runtime.NumGoroutine()
		}
		srv.Stop() // every connection dropped
		srv.Start()
	}
	run.rec.WaitCount(t, "ready", 21)
	if grown := runtime.NumGoroutine() - first; grown > 8 {
		t.Errorf("%d more goroutines after 20 restarts than after the first Ready", grown)
	}
	if err := run.stop(t); err != nil {
		t.Fatalf("Persist = %v, want nil after cancel", err)
	}

	if n := run.rec.Count("ready"); n != 21 {
		t.Errorf("%d Ready, want 21", n)
	}
	if n := run.rec.Count("connected"); n != 21 {
		t.Errorf("%d Connected, want 21 (one per Ready)", n)
	}
	discs := testkit.All[*events.Disconnected](run.rec)
	if len(discs) != 21 {
		t.Fatalf("%d Disconnected, want 21", len(discs))
	}
	for i, d := range discs[:20] {
		if d.Graceful || d.Err == nil {
			t.Errorf("Disconnected %d = %v, want graceful=false with the cause", i+1, d)
		}
	}
	if !discs[20].Graceful {
		t.Errorf("last Disconnected = %v, want graceful (client close)", discs[20])
	}
	// Every session but the last is followed by a BackOff, then Connecting.
	names := run.rec.Names()
	for i, n := range names {
		if n == "disconnected" && i+1 < len(names) && (names[i+1] != "back_off" || i+2 >= len(names) || names[i+2] != "connecting") {
			t.Fatalf("after disconnected at %d: %v", i, names[i:])
		}
	}
}

func TestPersistAcceptThenDropGrowsBackOff(t *testing.T) {
	testkit.NoLeak(t)
	srv := wstest.NewServer(t, func(c *wstest.Conn) { _, _ = c.Handshake() }) // then drop TCP
	ws := newQuietWS(t, srv.URL())
	rec, err := runPersist(t, ws, stopAtEvent("back_off", 6), exponentialBackOff1ms(), WithStableAfter(time.Second))
	if err != nil {
		t.Fatalf("Persist = %v, want nil", err)
	}
	bos := testkit.All[*events.BackOff](rec)
	if len(bos) != 6 {
		t.Fatalf("%d BackOff, want 6; events %v", len(bos), rec.Names())
	}
	for i, bo := range bos {
		if want := time.Millisecond << i; bo.Delay != want || bo.Attempt != i+1 {
			t.Errorf("BackOff %d: delay %v attempt %d, want %v attempt %d", i+1, bo.Delay, bo.Attempt, want, i+1)
		}
		if i > 0 && bo.Delay <= bos[i-1].Delay {
			t.Errorf("BackOff %d: delay %v does not grow (previous %v)", i+1, bo.Delay, bos[i-1].Delay)
		}
	}
	if n := rec.Count("ready"); n != 6 {
		t.Errorf("%d Ready, want 6 (every connection was accepted)", n)
	}
	for _, d := range testkit.All[*events.Disconnected](rec) {
		if d.Graceful {
			t.Errorf("Disconnected %v, want graceful=false for a dropped TCP connection", d)
		}
	}
}

func TestPersistStableAfterZeroResetsEachTime(t *testing.T) {
	testkit.NoLeak(t)
	srv := wstest.NewServer(t, func(c *wstest.Conn) { _, _ = c.Handshake() })
	ws := newQuietWS(t, srv.URL())
	rec, err := runPersist(t, ws, stopAtEvent("back_off", 6), exponentialBackOff1ms(), WithStableAfter(0))
	if err != nil {
		t.Fatalf("Persist = %v, want nil", err)
	}
	bos := testkit.All[*events.BackOff](rec)
	if len(bos) != 6 {
		t.Fatalf("%d BackOff, want 6", len(bos))
	}
	for i, bo := range bos {
		if bo.Delay != time.Millisecond || bo.Attempt != 1 {
			t.Errorf("BackOff %d: delay %v attempt %d, want 1ms attempt 1 (reset after every Ready)", i+1, bo.Delay, bo.Attempt)
		}
	}
}

func TestPersistRetryAfter(t *testing.T) {
	testkit.NoLeak(t)
	cases := []struct {
		name, value string
		opts        []PersistOption
		want        time.Duration
	}{
		{"seconds", "1", nil, time.Second},
		{"zero is floored at the backoff's minimum", "0", nil, 5 * time.Millisecond},
		{"bounded", "100", []PersistOption{WithMaxRetryAfter(50 * time.Millisecond)}, 50 * time.Millisecond},
		{"date bounded", time.Now().Add(time.Hour).UTC().Format(http.TimeFormat),
			[]PersistOption{WithMaxRetryAfter(50 * time.Millisecond)}, 50 * time.Millisecond},
		{"ignored with max 0", "1", []PersistOption{WithMaxRetryAfter(0)}, 5 * time.Millisecond},
		{"unparsable", "soon", nil, 5 * time.Millisecond},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srv := wstest.NewServer(t, testkit.Reject(http.StatusServiceUnavailable, http.Header{"Retry-After": {c.value}}))
			ws := newQuietWS(t, srv.URL())
			opts := append([]PersistOption{constantBackOff(5 * time.Millisecond)}, c.opts...)
			rec, err := runPersist(t, ws, stopAtEvent("back_off", 1), opts...)
			if err != nil {
				t.Fatalf("Persist = %v", err)
			}
			bos := testkit.All[*events.BackOff](rec)
			if len(bos) != 1 {
				t.Fatalf("events %v, want one BackOff", rec.Names())
			}
			var rej *RejectedError
			if !errors.As(bos[0].Cause, &rej) || rej.StatusCode != http.StatusServiceUnavailable {
				t.Errorf("BackOff cause = %v, want a *RejectedError 503", bos[0].Cause)
			}
			if bos[0].Delay != c.want {
				t.Errorf("Retry-After %q: delay %v, want %v", c.value, bos[0].Delay, c.want)
			}
		})
	}
}

// TestPersistRetryAfterIsWaited checks that the bounded Retry-After is
// really waited, not only announced.
func TestPersistRetryAfterIsWaited(t *testing.T) {
	testkit.NoLeak(t)
	srv := wstest.NewServer(t, testkit.Reject(http.StatusTooManyRequests, http.Header{"Retry-After": {"100"}}))
	ws := newQuietWS(t, srv.URL())
	rec, err := runPersist(t, ws, stopAtEvent("connecting", 2), constantBackOff(time.Millisecond), WithMaxRetryAfter(50*time.Millisecond))
	if err != nil {
		t.Fatalf("Persist = %v", err)
	}
	bo := testkit.All[*events.BackOff](rec)[0]
	next := testkit.All[*events.Connecting](rec)[1]
	if gap := next.ReceivedTime().Sub(bo.ReceivedTime()); gap < 50*time.Millisecond {
		t.Errorf("next attempt %v after BackOff(%v), want >= 50ms", gap, bo.Delay)
	}
}

func TestPersistRetryStrict401Stops(t *testing.T) {
	testkit.NoLeak(t)
	srv := wstest.NewServer(t, testkit.Reject(http.StatusUnauthorized, nil))
	ws := newQuietWS(t, srv.URL())
	rec, err := runPersist(t, ws, nil, WithRetryPolicy(RetryStrict), constantBackOff(time.Millisecond))
	if !errors.Is(err, ErrRetryPolicy) {
		t.Fatalf("Persist = %v, want ErrRetryPolicy", err)
	}
	var rej *RejectedError
	if !errors.As(err, &rej) || rej.StatusCode != http.StatusUnauthorized {
		t.Errorf("Persist = %v, want it to wrap the *RejectedError 401", err)
	}
	wantNames(t, rec, "connecting", "connected", "rejected", "disconnected")
	if n := srv.Conns(); n != 1 {
		t.Errorf("%d connections, want 1", n)
	}
}

func TestPersistRetryAlways401Retries(t *testing.T) {
	testkit.NoLeak(t)
	srv := wstest.NewServer(t, testkit.Reject(http.StatusUnauthorized, nil))
	ws := newQuietWS(t, srv.URL())
	rec, err := runPersist(t, ws, stopAtEvent("rejected", 3), constantBackOff(time.Millisecond))
	if err != nil {
		t.Fatalf("Persist = %v, want nil after cancel", err)
	}
	if n := srv.Conns(); n != 3 {
		t.Errorf("%d attempts, want 3", n)
	}
	for i, bo := range testkit.All[*events.BackOff](rec) {
		var rej *RejectedError
		if !errors.As(bo.Cause, &rej) || rej.StatusCode != http.StatusUnauthorized || bo.Attempt != i+1 {
			t.Errorf("BackOff %d = %v (cause %v), want attempt %d caused by the 401", i+1, bo, bo.Cause, i+1)
		}
	}
	if n := rec.Count("back_off"); n != 2 {
		t.Errorf("%d BackOff, want 2 (none after the cancelled third attempt)", n)
	}
}

func TestPersistRetryStrict429Retries(t *testing.T) {
	testkit.NoLeak(t)
	var n atomic.Int32
	srv := wstest.NewServer(t, func(c *wstest.Conn) {
		if n.Add(1) == 1 {
			testkit.Reject(http.StatusTooManyRequests, http.Header{"Retry-After": {"0"}})(c)
			return
		}
		testkit.AnswerClose(c)
	})
	ws := newQuietWS(t, srv.URL())
	rec, err := runPersist(t, ws, stopAtEvent("ready", 1), WithRetryPolicy(RetryStrict), constantBackOff(5*time.Millisecond))
	if err != nil {
		t.Fatalf("Persist = %v, want nil", err)
	}
	if bos := testkit.All[*events.BackOff](rec); len(bos) != 1 || bos[0].Delay != 5*time.Millisecond {
		t.Errorf("events %v, want one BackOff of 5ms (Retry-After: 0, floored at the backoff's minimum)", rec.Names())
	}
}

func TestPersistRetryStrictClose1008Stops(t *testing.T) {
	testkit.NoLeak(t)
	srv := wstest.NewServer(t, func(c *wstest.Conn) {
		if _, err := c.Handshake(); err != nil {
			return
		}
		_ = c.WriteFrame(wstest.Close(StatusPolicyViolation, "banned"))
		_, _, _ = c.ExpectClose()
	})
	ws := newQuietWS(t, srv.URL())
	rec, err := runPersist(t, ws, nil, WithRetryPolicy(RetryStrict), constantBackOff(time.Millisecond))
	if !errors.Is(err, ErrRetryPolicy) || CloseStatus(err) != StatusPolicyViolation {
		t.Fatalf("Persist = %v, want ErrRetryPolicy wrapping close 1008", err)
	}
	var ce *CloseError
	if !errors.As(err, &ce) || ce.Reason != "banned" {
		t.Errorf("Persist = %v, want a *CloseError with the reason", err)
	}
	wantNames(t, rec, "connecting", "connected", "ready", "closing", "closed", "disconnected")
}

func TestPersistCustomRetryPolicy(t *testing.T) {
	testkit.NoLeak(t)
	var n atomic.Int32
	srv := wstest.NewServer(t, func(c *wstest.Conn) {
		if n.Add(1) == 1 {
			testkit.Reject(http.StatusInternalServerError, nil)(c)
			return
		}
		if _, err := c.Handshake(); err != nil {
			return
		}
		_ = c.WriteFrame(wstest.Close(4001, "account closed"))
		_, _, _ = c.ExpectClose()
	})
	ws := newQuietWS(t, srv.URL())
	var causes []error
	policy := func(cause error) bool {
		causes = append(causes, cause)
		return CloseStatus(cause) != 4001
	}
	_, err := runPersist(t, ws, nil, WithRetryPolicy(policy), constantBackOff(time.Millisecond))
	if !errors.Is(err, ErrRetryPolicy) || CloseStatus(err) != 4001 {
		t.Fatalf("Persist = %v, want ErrRetryPolicy wrapping close 4001", err)
	}
	var rej *RejectedError
	if len(causes) != 2 || !errors.As(causes[0], &rej) || rej.StatusCode != 500 || CloseStatus(causes[1]) != 4001 {
		t.Errorf("policy saw %v, want the 500 rejection then the 4001 close", causes)
	}
}

func TestPersistMaxAttempts(t *testing.T) {
	testkit.NoLeak(t)
	ws := newQuietWS(t, "ws://"+testkit.RefusedAddr(t)+"/")
	rec, err := runPersist(t, ws, nil, WithMaxAttempts(3), constantBackOff(time.Millisecond))
	if !errors.Is(err, ErrMaxAttempts) {
		t.Fatalf("Persist = %v, want ErrMaxAttempts", err)
	}
	var ce *ConnectError
	if !errors.As(err, &ce) {
		t.Errorf("Persist = %v, want it to wrap the last *ConnectError", err)
	}
	wantNames(t, rec, "connecting", "connect_fail", "back_off", "connecting", "connect_fail", "back_off",
		"connecting", "connect_fail")
}

func TestPersistBackOffStop(t *testing.T) {
	testkit.NoLeak(t)
	ws := newQuietWS(t, "ws://"+testkit.RefusedAddr(t)+"/")
	rec, err := runPersist(t, ws, nil, WithBackOff(func() backoff.BackOff { return &backoff.StopBackOff{} }))
	var ce *ConnectError
	if !errors.Is(err, ErrBackOffStop) || !errors.As(err, &ce) {
		t.Fatalf("Persist = %v, want ErrBackOffStop wrapping the *ConnectError", err)
	}
	wantNames(t, rec, "connecting", "connect_fail")
}

func TestPersistLomondBackOff(t *testing.T) {
	testkit.NoLeak(t)
	ws := newQuietWS(t, "ws://"+testkit.RefusedAddr(t)+"/")
	rec, err := runPersist(t, ws, stopAtEvent("back_off", 4), WithLomondBackOff(time.Millisecond, 4*time.Millisecond))
	if err != nil {
		t.Fatalf("Persist = %v", err)
	}
	for _, bo := range testkit.All[*events.BackOff](rec) {
		if bo.Delay < time.Millisecond || bo.Delay >= 4*time.Millisecond {
			t.Errorf("BackOff delay %v, want within [1ms, 4ms)", bo.Delay)
		}
	}
}

// tokenServer rejects every Authorization but "Bearer tok-3" with 401 and
// records what each request carried.
type tokenServer struct {
	mu      sync.Mutex
	tokens  []string
	statics [][]string
}

func (s *tokenServer) script(c *wstest.Conn) {
	req, err := c.ReadRequest()
	if err != nil {
		return
	}
	tok := req.Header.Get("Authorization")
	s.mu.Lock()
	s.tokens = append(s.tokens, tok)
	s.statics = append(s.statics, req.Header.Values("X-Static"))
	s.mu.Unlock()
	if tok != "Bearer tok-3" {
		_ = c.Reject(http.StatusUnauthorized, nil, "bad token")
		return
	}
	if err := c.Accept(req, nil); err != nil {
		return
	}
	if code, reason, err := c.ExpectClose(); err == nil {
		_ = c.WriteFrame(wstest.Close(code, reason))
	}
}

func TestPersistBeforeDialTokenRefresh(t *testing.T) {
	testkit.NoLeak(t)
	ts := &tokenServer{}
	srv := wstest.NewServer(t, ts.script)
	ws := newQuietWS(t, srv.URL(), WithHeader("X-Static", "1"), WithHeader("Authorization", "Bearer stale"))
	var numbers []int
	var seenStale []string
	hook := func(_ context.Context, a *Attempt) error {
		numbers = append(numbers, a.Number)
		seenStale = append(seenStale, a.Header.Get("Authorization"))
		a.Header.Set("Authorization", fmt.Sprintf("Bearer tok-%d", len(numbers)))
		return nil
	}
	_, err := runPersist(t, ws, stopAtEvent("ready", 1), WithBeforeDial(hook), constantBackOff(time.Millisecond))
	if err != nil {
		t.Fatalf("Persist = %v, want nil", err)
	}
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if want := []string{"Bearer tok-1", "Bearer tok-2", "Bearer tok-3"}; !slices.Equal(ts.tokens, want) {
		t.Errorf("server saw %q, want %q", ts.tokens, want)
	}
	if want := []int{1, 2, 3}; !slices.Equal(numbers, want) {
		t.Errorf("Attempt.Number %v, want %v", numbers, want)
	}
	for i, s := range seenStale {
		if s != "Bearer stale" {
			t.Errorf("attempt %d: hook got Authorization %q, want the WebSocket's own %q (a fresh copy)", i+1, s, "Bearer stale")
		}
	}
	for i, v := range ts.statics {
		if !slices.Equal(v, []string{"1"}) {
			t.Errorf("request %d: X-Static %q, want exactly [1]", i+1, v)
		}
	}
}

func TestPersistBeforeDialChangesURL(t *testing.T) {
	testkit.NoLeak(t)
	var n atomic.Int32
	uris := make(chan string, 4)
	srv := wstest.NewServer(t, func(c *wstest.Conn) {
		req, err := c.ReadRequest()
		if err != nil {
			return
		}
		uris <- req.URL.RequestURI() + " " + req.Header.Get("Sec-WebSocket-Protocol")
		if n.Add(1) == 1 {
			_ = c.Reject(http.StatusServiceUnavailable, nil, "busy")
			return
		}
		if err := c.Accept(req, http.Header{"Sec-WebSocket-Protocol": {"v2"}}); err != nil {
			return
		}
		if code, reason, err := c.ExpectClose(); err == nil {
			_ = c.WriteFrame(wstest.Close(code, reason))
		}
	})
	base := srv.URL()
	ws := newQuietWS(t, base)
	hook := func(_ context.Context, a *Attempt) error {
		a.URL = fmt.Sprintf("%sv2/feed?attempt=%d", base, a.Number)
		a.Protocols = []string{"v2"}
		return nil
	}
	rec, err := runPersist(t, ws, stopAtEvent("ready", 1), WithBeforeDial(hook), constantBackOff(time.Millisecond))
	if err != nil {
		t.Fatalf("Persist = %v", err)
	}
	for i := 1; i <= 2; i++ {
		if got, want := testkit.Recv(t, uris, "request"), fmt.Sprintf("/v2/feed?attempt=%d v2", i); got != want {
			t.Errorf("request %d: %q, want %q", i, got, want)
		}
	}
	for i, c := range testkit.All[*events.Connecting](rec) {
		if want := fmt.Sprintf("%sv2/feed?attempt=%d", base, i+1); c.URL != want {
			t.Errorf("Connecting %d URL %q, want %q", i+1, c.URL, want)
		}
	}
	if r := testkit.All[*events.Ready](rec); len(r) != 1 || r[0].Protocol != "v2" {
		t.Errorf("events %v, want a Ready with protocol v2", rec.Names())
	}
	if ws.URL() != base {
		t.Errorf("ws.URL() = %q after the hook, want it unchanged %q", ws.URL(), base)
	}
}

func TestPersistBeforeDialInvalid(t *testing.T) {
	testkit.NoLeak(t)
	cases := []struct {
		name   string
		change func(a *Attempt)
		want   error
	}{
		{"header value with CRLF", func(a *Attempt) { a.Header.Set("X-Token", "a\r\nInjected: 1") }, ErrInvalidOption},
		{"handshake header", func(a *Attempt) { a.Header.Set("Sec-WebSocket-Key", "x") }, ErrInvalidOption},
		{"bad header name", func(a *Attempt) { a.Header["Bad Name"] = []string{"v"} }, ErrInvalidOption},
		{"bad subprotocol", func(a *Attempt) { a.Protocols = []string{"two words"} }, ErrInvalidOption},
		{"not a websocket URL", func(a *Attempt) { a.URL = "ftp://example.com/" }, ErrInvalidURL},
	}
	srv := wstest.NewServer(t, testkit.AnswerClose)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ws := newQuietWS(t, srv.URL())
			hook := func(_ context.Context, a *Attempt) error { c.change(a); return nil }
			rec, err := runPersist(t, ws, nil, WithBeforeDial(hook))
			if !errors.Is(err, c.want) {
				t.Errorf("Persist = %v, want %v", err, c.want)
			}
			if n := len(rec.All()); n != 0 {
				t.Errorf("events %v, want none", rec.Names())
			}
		})
	}
	if n := srv.Conns(); n != 0 {
		t.Errorf("%d connections, want none", n)
	}
}

// TestPersistBeforeDialCancelled cancels ctx while the hook waits on it (as
// a token fetch with ctx would): like every other cancellation, Persist
// should return nil.
func TestPersistBeforeDialCancelled(t *testing.T) {
	testkit.NoLeak(t)
	entered := make(chan struct{})
	hook := func(ctx context.Context, _ *Attempt) error {
		close(entered)
		<-ctx.Done()
		return ctx.Err()
	}
	ws := newQuietWS(t, "ws://"+testkit.RefusedAddr(t)+"/")
	run := goPersist(t, ws, nil, WithBeforeDial(hook))
	testkit.Recv(t, entered, "the hook")
	if err := run.stop(t); err != nil {
		t.Errorf("Persist = %v after ctx was cancelled during the before-dial hook, want nil", err)
	}
}

// TestPersistCloseReconnects checks that ws.Close ends the connection, not
// Persist: the session's cause is nil, and RetryAlways reconnects.
func TestPersistCloseReconnects(t *testing.T) {
	testkit.NoLeak(t)
	codes := make(chan int, 2)
	srv := wstest.NewServer(t, testkit.CloseCodes(codes))
	ws := newQuietWS(t, srv.URL())
	readies := 0
	rec, err := runPersist(t, ws, func(ws *WebSocket, ev events.Event, stop context.CancelFunc) {
		if ev.Name() == "ready" {
			if readies++; readies == 1 {
				_ = ws.Close(StatusNormal, "bye")
			} else {
				stop()
			}
		}
	}, constantBackOff(time.Millisecond))
	if err != nil {
		t.Fatalf("Persist = %v", err)
	}
	if code := testkit.Recv(t, codes, "the close frame"); code != StatusNormal {
		t.Errorf("server saw close %d, want 1000", code)
	}
	wantNames(t, rec, "connecting", "connected", "ready", "closed", "disconnected", "back_off",
		"connecting", "connected", "ready", "closed", "disconnected")
	if bos := testkit.All[*events.BackOff](rec); len(bos) == 1 && bos[0].Cause != nil {
		t.Errorf("BackOff cause = %v, want nil (the client closed)", bos[0].Cause)
	}
}

func TestReconnectDuringSession(t *testing.T) {
	testkit.NoLeak(t)
	codes := make(chan int, 4)
	srv := wstest.NewServer(t, testkit.CloseCodes(codes))
	ws := newQuietWS(t, srv.URL())
	run := goPersist(t, ws, nil, constantBackOff(time.Hour)) // a BackOff wait would hang the test
	run.rec.WaitCount(t, "ready", 1)
	if err := ws.Reconnect(); err != nil {
		t.Fatalf("Reconnect = %v", err)
	}
	if code := testkit.Recv(t, codes, "the close of the first connection"); code != StatusGoingAway {
		t.Errorf("server saw close %d, want 1001", code)
	}
	run.rec.WaitCount(t, "ready", 2)
	if err := run.stop(t); err != nil {
		t.Fatalf("Persist = %v, want nil", err)
	}
	wantNames(t, run.rec, "connecting", "connected", "ready", "closed", "disconnected",
		"connecting", "connected", "ready", "closed", "disconnected")
	if d := testkit.All[*events.Disconnected](run.rec)[0]; !d.Graceful {
		t.Errorf("first Disconnected %v, want graceful", d)
	}
}

func TestReconnectDuringBackOff(t *testing.T) {
	testkit.NoLeak(t)
	var n atomic.Int32
	srv := wstest.NewServer(t, func(c *wstest.Conn) {
		if n.Add(1) <= 2 {
			testkit.Reject(http.StatusServiceUnavailable, nil)(c)
			return
		}
		testkit.AnswerClose(c)
	})
	ws := newQuietWS(t, srv.URL())
	run := goPersist(t, ws, nil, constantBackOff(time.Hour))
	for i := 1; i <= 2; i++ {
		run.rec.WaitCount(t, "back_off", i)
		if err := ws.Reconnect(); err != nil {
			t.Fatalf("Reconnect = %v", err)
		}
	}
	run.rec.WaitCount(t, "ready", 1)
	if err := run.stop(t); err != nil {
		t.Fatalf("Persist = %v", err)
	}
	for i, bo := range testkit.All[*events.BackOff](run.rec) {
		if bo.Delay != time.Hour || bo.Attempt != 1 {
			t.Errorf("BackOff %d: %v attempt %d, want 1h attempt 1 (Reconnect resets the count)", i+1, bo.Delay, bo.Attempt)
		}
	}
}

// TestReconnectOutsideWaitIsNotRemembered calls Reconnect while Persist is
// about to dial anyway (in the before-dial hook): it must not cut short a
// later, unrelated backoff wait.
func TestReconnectOutsideWaitIsNotRemembered(t *testing.T) {
	testkit.NoLeak(t)
	srv := wstest.NewServer(t, testkit.Reject(http.StatusServiceUnavailable, nil))
	ws := newQuietWS(t, srv.URL())
	var reconnectErr error
	calls := 0
	hook := func(context.Context, *Attempt) error {
		if calls++; calls == 1 {
			reconnectErr = ws.Reconnect()
		}
		return nil
	}
	run := goPersist(t, ws, nil, WithBeforeDial(hook), constantBackOff(time.Hour))
	run.rec.WaitCount(t, "back_off", 1)
	// The wait is 1 h: nothing may happen in the next 200 ms.
	window, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	<-window.Done()
	if err := run.stop(t); err != nil {
		t.Fatal(err)
	}
	if reconnectErr != nil {
		t.Errorf("Reconnect in the hook = %v, want nil", reconnectErr)
	}
	if n := srv.Conns(); n != 1 {
		t.Errorf("%d connections within 200 ms of a 1 h BackOff, want 1", n)
	}
}

func TestReconnectWithoutPersist(t *testing.T) {
	testkit.NoLeak(t)
	ws := newQuietWS(t, "ws://"+testkit.RefusedAddr(t)+"/")
	if err := ws.Reconnect(); !errors.Is(err, ErrNotConnected) {
		t.Errorf("Reconnect before Persist = %v, want ErrNotConnected", err)
	}
	if _, err := runPersist(t, ws, stopAtEvent("back_off", 1)); err != nil {
		t.Fatal(err)
	}
	if err := ws.Reconnect(); !errors.Is(err, ErrNotConnected) {
		t.Errorf("Reconnect after Persist = %v, want ErrNotConnected", err)
	}
}

func TestWaitReady(t *testing.T) {
	testkit.NoLeak(t)
	srv := wstest.NewServer(t, testkit.AnswerClose)
	ws := newQuietWS(t, srv.URL())
	ctx, cancel := context.WithTimeout(context.Background(), testkit.Timeout)
	defer cancel()
	waited := make(chan error, 1)
	go func() { waited <- ws.WaitReady(ctx) }() // before Persist starts
	run := goPersist(t, ws, nil)
	if err := testkit.Recv(t, waited, "WaitReady"); err != nil {
		t.Fatalf("WaitReady = %v", err)
	}
	if st := ws.State(); st != StateReady {
		t.Errorf("State after WaitReady = %v, want ready", st)
	}
	if err := ws.WaitReady(ctx); err != nil {
		t.Errorf("WaitReady while ready = %v, want nil at once", err)
	}
	if err := run.stop(t); err != nil {
		t.Fatal(err)
	}
	short, cancel2 := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel2()
	if err := ws.WaitReady(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("WaitReady after Persist returned = %v, want DeadlineExceeded", err)
	}
}

func TestWaitReadyTimeout(t *testing.T) {
	testkit.NoLeak(t)
	ws := newQuietWS(t, "ws://"+testkit.RefusedAddr(t)+"/")
	run := goPersist(t, ws, nil, constantBackOff(5*time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := ws.WaitReady(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("WaitReady = %v, want DeadlineExceeded while the server is down", err)
	}
	if err := run.stop(t); err != nil {
		t.Fatal(err)
	}
}

// wantPrompt fails the test if the cancelled Persist took longer than 2 s to
// return, or returned an error.
func wantPrompt(t *testing.T, run *persistRun) {
	t.Helper()
	start := time.Now()
	if err := run.stop(t); err != nil {
		t.Errorf("Persist = %v after cancel, want nil", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Persist returned %v after cancel, want promptly", d)
	}
}

func TestPersistCancelWhileDialing(t *testing.T) {
	testkit.NoLeak(t)
	entered := make(chan struct{}, 1)
	dial := func(ctx context.Context, _, _ string) (net.Conn, error) {
		entered <- struct{}{}
		<-ctx.Done()
		return nil, ctx.Err()
	}
	ws := newQuietWS(t, "ws://127.0.0.1:9/", WithDialer(dial))
	run := goPersist(t, ws, nil)
	testkit.Recv(t, entered, "the dialer")
	wantPrompt(t, run)
	wantNames(t, run.rec, "connecting", "connect_fail")
}

func TestPersistCancelWhileHandshaking(t *testing.T) {
	testkit.NoLeak(t)
	gotRequest := make(chan struct{}, 1)
	srv := wstest.NewServer(t, func(c *wstest.Conn) {
		if _, err := c.ReadRequest(); err != nil {
			return
		}
		gotRequest <- struct{}{}
		_, _ = io.Copy(io.Discard, c.Reader()) // never answer
	})
	ws := newQuietWS(t, srv.URL())
	run := goPersist(t, ws, nil)
	testkit.Recv(t, gotRequest, "the upgrade request")
	wantPrompt(t, run)
	wantNames(t, run.rec, "connecting", "connected", "disconnected")
	if d := testkit.All[*events.Disconnected](run.rec); len(d) == 1 && !errors.Is(d[0].Err, context.Canceled) {
		t.Errorf("Disconnected.Err = %v, want context.Canceled", d[0].Err)
	}
}

func TestPersistCancelWhileReady(t *testing.T) {
	testkit.NoLeak(t)
	codes := make(chan int, 1)
	srv := wstest.NewServer(t, testkit.CloseCodes(codes))
	ws := newQuietWS(t, srv.URL())
	run := goPersist(t, ws, nil)
	run.rec.WaitCount(t, "ready", 1)
	wantPrompt(t, run)
	if code := testkit.Recv(t, codes, "the close frame"); code != StatusGoingAway {
		t.Errorf("server saw close %d, want 1001", code)
	}
	wantNames(t, run.rec, "connecting", "connected", "ready", "closed", "disconnected")
}

func TestPersistCancelWhileBackingOff(t *testing.T) {
	testkit.NoLeak(t)
	ws := newQuietWS(t, "ws://"+testkit.RefusedAddr(t)+"/")
	run := goPersist(t, ws, nil, constantBackOff(time.Hour))
	run.rec.WaitCount(t, "back_off", 1)
	wantPrompt(t, run)
	wantNames(t, run.rec, "connecting", "connect_fail", "back_off")
}

// scriptedServer serves: a 503, then a session the server closes after one
// message, then 403 for ever.
func scriptedServer(t *testing.T) *wstest.Server {
	var n atomic.Int32
	return wstest.NewServer(t, func(c *wstest.Conn) {
		switch n.Add(1) {
		case 1:
			testkit.Reject(http.StatusServiceUnavailable, nil)(c)
		case 2:
			if _, err := c.Handshake(); err != nil {
				return
			}
			_ = c.WriteFrame(wstest.Text("hi"))
			_ = c.WriteFrame(wstest.Close(StatusNormal, "bye"))
			_, _, _ = c.ExpectClose()
		default:
			testkit.Reject(http.StatusForbidden, nil)(c)
		}
	})
}

func TestPersistEventsSameAsPersist(t *testing.T) {
	testkit.NoLeak(t)
	opts := []PersistOption{WithRetryPolicy(RetryStrict), constantBackOff(time.Millisecond)}
	rec, err := runPersist(t, newQuietWS(t, scriptedServer(t).URL()), nil, opts...)
	if !errors.Is(err, ErrRetryPolicy) {
		t.Fatalf("Persist = %v, want ErrRetryPolicy (403)", err)
	}
	want := []string{"connecting", "connected", "rejected", "disconnected", "back_off",
		"connecting", "connected", "ready", "text", "closing", "closed", "disconnected", "back_off",
		"connecting", "connected", "rejected", "disconnected"}
	wantNames(t, rec, want...)

	ctx, cancel := context.WithTimeout(context.Background(), testkit.Timeout)
	defer cancel()
	var got []string
	for ev := range newQuietWS(t, scriptedServer(t).URL()).PersistEvents(ctx, opts...) {
		got = append(got, ev.Name())
	}
	if !slices.Equal(got, want) {
		t.Errorf("PersistEvents:\n got %v\nwant %v", got, want)
	}
}

func TestPersistEventsBreakOnReady(t *testing.T) {
	testkit.NoLeak(t)
	codes := make(chan int, 1)
	srv := wstest.NewServer(t, testkit.CloseCodes(codes))
	ws := newQuietWS(t, srv.URL())
	ctx, cancel := context.WithTimeout(context.Background(), testkit.Timeout)
	defer cancel()
	var got []string
	for ev := range ws.PersistEvents(ctx, constantBackOff(time.Millisecond)) {
		got = append(got, ev.Name())
		if ev.Name() == "ready" {
			break
		}
	}
	if want := []string{"connecting", "connected", "ready"}; !slices.Equal(got, want) {
		t.Errorf("events %v, want %v", got, want)
	}
	if code := testkit.Recv(t, codes, "the close frame"); code != StatusNormal {
		t.Errorf("server saw close %d, want 1000", code)
	}
	if st := ws.State(); st != StateIdle {
		t.Errorf("State after the loop = %v, want idle", st)
	}
	if err := ws.Reconnect(); !errors.Is(err, ErrNotConnected) {
		t.Errorf("Reconnect after the loop = %v, want ErrNotConnected (no Persist running)", err)
	}
	if n := srv.Conns(); n != 1 {
		t.Errorf("%d connections, want 1 (no reconnection after break)", n)
	}
}

func TestPersistEventsBreakOnBackOff(t *testing.T) {
	testkit.NoLeak(t)
	ws := newQuietWS(t, "ws://"+testkit.RefusedAddr(t)+"/")
	ctx, cancel := context.WithTimeout(context.Background(), testkit.Timeout)
	defer cancel()
	var got []string
	for ev := range ws.PersistEvents(ctx, constantBackOff(time.Hour)) {
		got = append(got, ev.Name())
		if ev.Name() == "back_off" {
			break
		}
	}
	if want := []string{"connecting", "connect_fail", "back_off"}; !slices.Equal(got, want) {
		t.Errorf("events %v, want %v", got, want)
	}
}

func TestPersistEventsInvalidOption(t *testing.T) {
	testkit.NoLeak(t)
	ws := newQuietWS(t, "ws://"+testkit.RefusedAddr(t)+"/")
	var got []events.Event
	for ev := range ws.PersistEvents(context.Background(), WithMaxAttempts(-1)) {
		got = append(got, ev)
	}
	if len(got) != 1 {
		t.Fatalf("events %v, want one ConnectFail", got)
	}
	if cf, ok := got[0].(*events.ConnectFail); !ok || !errors.Is(cf.Err, ErrInvalidOption) {
		t.Errorf("event %v, want a ConnectFail wrapping ErrInvalidOption", got[0])
	}
}

func TestPersistAlreadyRunning(t *testing.T) {
	testkit.NoLeak(t)
	ctx, cancel := context.WithTimeout(context.Background(), testkit.Timeout)
	defer cancel()
	var errs []error
	var evs []events.Event
	check := func(ws *WebSocket) {
		errs = append(errs, ws.Run(ctx, BaseHandler{}), ws.Persist(ctx, BaseHandler{}))
		for ev := range ws.Events(ctx) {
			evs = append(evs, ev)
		}
		for ev := range ws.PersistEvents(ctx) {
			evs = append(evs, ev)
		}
	}

	// While a session runs.
	srv := wstest.NewServer(t, testkit.AnswerClose)
	_, err := runPersist(t, newQuietWS(t, srv.URL()), func(ws *WebSocket, ev events.Event, stop context.CancelFunc) {
		if ev.Name() == "ready" {
			check(ws)
			stop()
		}
	})
	if err != nil {
		t.Fatalf("Persist = %v", err)
	}

	// Between sessions: no session runs, but Persist does.
	var n atomic.Int32
	srv2 := wstest.NewServer(t, func(c *wstest.Conn) {
		if n.Add(1) == 1 {
			testkit.Reject(http.StatusServiceUnavailable, nil)(c)
			return
		}
		testkit.AnswerClose(c)
	})
	_, err = runPersist(t, newQuietWS(t, srv2.URL()), func(ws *WebSocket, ev events.Event, stop context.CancelFunc) {
		switch ev.Name() {
		case "back_off":
			check(ws)
		case "ready":
			stop()
		}
	}, constantBackOff(time.Millisecond))
	if err != nil {
		t.Fatalf("Persist = %v", err)
	}

	if len(errs) != 4 || len(evs) != 4 {
		t.Fatalf("%d errors, %d events, want 4 of each", len(errs), len(evs))
	}
	for i, err := range errs {
		if !errors.Is(err, ErrAlreadyRunning) {
			t.Errorf("call %d = %v, want ErrAlreadyRunning", i, err)
		}
	}
	for _, ev := range evs {
		if cf, ok := ev.(*events.ConnectFail); !ok || !errors.Is(cf.Err, ErrAlreadyRunning) {
			t.Errorf("event %v, want a ConnectFail with ErrAlreadyRunning", ev)
		}
	}
}

// TestPersistWhileRunRuns starts Persist from a handler of Run: it must
// refuse, and leave the running session alone.
func TestPersistWhileRunRuns(t *testing.T) {
	testkit.NoLeak(t)
	srv := wstest.NewServer(t, wstest.Echo)
	ws := newQuietWS(t, srv.URL())
	ctx, cancel := context.WithTimeout(context.Background(), testkit.Timeout)
	defer cancel()
	var persistErr, reconnectErr, sendErr error
	err := ws.Run(ctx, HandlerFunc(func(ws *WebSocket, ev events.Event) {
		switch ev.(type) {
		case *events.Ready:
			persistErr = ws.Persist(ctx, BaseHandler{}, WithStableAfter(time.Second))
			reconnectErr = ws.Reconnect()
			sendErr = ws.SendText("still here")
		case *events.Text:
			_ = ws.Close(StatusNormal, "done")
		}
	}))
	if err != nil {
		t.Fatalf("Run = %v", err)
	}
	if !errors.Is(persistErr, ErrAlreadyRunning) {
		t.Errorf("Persist inside Run = %v, want ErrAlreadyRunning", persistErr)
	}
	if !errors.Is(reconnectErr, ErrNotConnected) {
		t.Errorf("Reconnect after the refused Persist = %v, want ErrNotConnected", reconnectErr)
	}
	if sendErr != nil {
		t.Errorf("SendText after the refused Persist = %v, want nil (the Run session is intact)", sendErr)
	}
}

func TestPersistInvalidOptions(t *testing.T) {
	testkit.NoLeak(t)
	cases := map[string]PersistOption{
		"nil option":           nil,
		"nil backoff":          WithBackOff(nil),
		"lomond max < min":     WithLomondBackOff(2*time.Second, time.Second),
		"lomond negative":      WithLomondBackOff(-time.Second, time.Second),
		"negative stable":      WithStableAfter(-time.Second),
		"negative retry-after": WithMaxRetryAfter(-time.Second),
		"nil policy":           WithRetryPolicy(nil),
		"negative attempts":    WithMaxAttempts(-1),
		"nil hook":             WithBeforeDial(nil),
	}
	dials := 0
	dial := func(context.Context, string, string) (net.Conn, error) {
		dials++
		return nil, errors.New("no I/O expected")
	}
	ws := newQuietWS(t, "ws://127.0.0.1:9/", WithDialer(dial))
	for name, opt := range cases {
		err := ws.Persist(context.Background(), BaseHandler{}, constantBackOff(time.Millisecond), opt)
		if !errors.Is(err, ErrInvalidOption) {
			t.Errorf("%s: Persist = %v, want ErrInvalidOption", name, err)
		}
	}
	if err := ws.Persist(context.Background(), nil); !errors.Is(err, ErrInvalidHandler) {
		t.Errorf("nil handler: Persist = %v, want ErrInvalidHandler", err)
	}
	if dials != 0 {
		t.Errorf("%d dials, want none", dials)
	}
	if err := ws.Reconnect(); !errors.Is(err, ErrNotConnected) {
		t.Errorf("Reconnect after the refused Persist calls = %v, want ErrNotConnected", err)
	}
}

// TestPersistNilContext checks that Persist treats a nil context like Run
// does (ErrInvalidOption), rather than panicking.
func TestPersistNilContext(t *testing.T) {
	testkit.NoLeak(t)
	ws := newQuietWS(t, "ws://"+testkit.RefusedAddr(t)+"/")
	var nilCtx context.Context
	var err error
	func() {
		defer func() {
			if v := recover(); v != nil {
				t.Errorf("Persist(nil ctx) panicked: %v", v)
			}
		}()
		err = ws.Persist(nilCtx, BaseHandler{})
	}()
	if !errors.Is(err, ErrInvalidOption) {
		t.Errorf("Persist(nil ctx) = %v, want ErrInvalidOption like Run", err)
	}
	if runErr := ws.Run(nilCtx, BaseHandler{}); !errors.Is(runErr, ErrInvalidOption) {
		t.Errorf("Run(nil ctx) = %v, want ErrInvalidOption", runErr)
	}
}

func TestPersistHandlerPanics(t *testing.T) {
	testkit.NoLeak(t)
	t.Run("OnBackOff", func(t *testing.T) {
		ws := newQuietWS(t, "ws://"+testkit.RefusedAddr(t)+"/")
		rec, err := runPersist(t, ws, func(_ *WebSocket, ev events.Event, _ context.CancelFunc) {
			if ev.Name() == "back_off" {
				panic("boom in OnBackOff")
			}
		}, constantBackOff(time.Millisecond))
		var pe *PanicError
		if !errors.As(err, &pe) || pe.Value != "boom in OnBackOff" {
			t.Fatalf("Persist = %v, want a *PanicError", err)
		}
		wantNames(t, rec, "connecting", "connect_fail", "back_off")
	})
	t.Run("OnReady", func(t *testing.T) {
		codes := make(chan int, 1)
		srv := wstest.NewServer(t, testkit.CloseCodes(codes))
		ws := newQuietWS(t, srv.URL())
		_, err := runPersist(t, ws, func(_ *WebSocket, ev events.Event, _ context.CancelFunc) {
			if ev.Name() == "ready" {
				panic("boom in OnReady")
			}
		}, constantBackOff(time.Millisecond))
		var pe *PanicError
		if !errors.As(err, &pe) || !strings.Contains(string(pe.Stack), "TestPersistHandlerPanics") {
			t.Fatalf("Persist = %v, want a *PanicError with the handler's stack", err)
		}
		if code := testkit.Recv(t, codes, "the close frame"); code != StatusInternalError {
			t.Errorf("server saw close %d, want 1011", code)
		}
		if n := srv.Conns(); n != 1 {
			t.Errorf("%d connections, want 1 (no reconnection after a panic)", n)
		}
	})
}

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

// bdTokenSecret stands for a credential in the token service's URL, which
// an http.Client error quotes.
const bdTokenSecret = "Cl1ent-s3cret-b7"

var errTokenDown = errors.New("token service unavailable")

// tokenError is what a token fetch through net/http returns while the
// token service is down.
func tokenError() error {
	return fmt.Errorf("fetching token: %w", &url.Error{Op: "Post",
		URL: "https://user:" + bdTokenSecret + "@127.0.0.1:9/token?client_secret=" + bdTokenSecret, Err: errTokenDown})
}

// TestPersistBeforeDialRetried: a hook that fails twice (its token service
// is down) and then succeeds: Persist connects on the third attempt, after
// two ConnectFail and two BackOff events that carry the hook's error with
// its credentials hidden.
func TestPersistBeforeDialRetried(t *testing.T) {
	testkit.NoLeak(t)
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
	ws := newQuietWS(t, srv.URL())
	var numbers []int
	hook := func(_ context.Context, a *Attempt) error {
		numbers = append(numbers, a.Number)
		if len(numbers) <= 2 {
			return tokenError()
		}
		a.Header.Set("Authorization", "Bearer fresh")
		return nil
	}
	rec, err := runPersist(t, ws, stopAtEvent("ready", 1), WithBeforeDial(hook), constantBackOff(time.Millisecond))
	if err != nil {
		t.Fatalf("Persist = %v, want nil", err)
	}
	wantNames(t, rec, "connecting", "connect_fail", "back_off", "connecting", "connect_fail", "back_off",
		"connecting", "connected", "ready", "closed", "disconnected")
	if got := testkit.Recv(t, auths, "the upgrade request"); got != "Bearer fresh" {
		t.Errorf("the server got Authorization %q, want the hook's", got)
	}
	if n := srv.Conns(); n != 1 {
		t.Errorf("%d connections, want 1 (none while the hook failed)", n)
	}
	if want := []int{1, 2, 3}; !slices.Equal(numbers, want) {
		t.Errorf("Attempt.Number %v, want %v", numbers, want)
	}
	var shown []string
	for i, cf := range testkit.All[*events.ConnectFail](rec) {
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
	for i, bo := range testkit.All[*events.BackOff](rec) {
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
	testkit.NoLeak(t)
	srv := wstest.NewServer(t, testkit.Reject(http.StatusServiceUnavailable, nil))
	errRevoked := errors.New("credential revoked")
	for _, policy := range []RetryPolicy{RetryAlways, RetryStrict} {
		ws := newQuietWS(t, srv.URL())
		calls := 0
		hook := func(_ context.Context, a *Attempt) error {
			if calls++; calls == 2 {
				return Permanent(fmt.Errorf("refresh: %w", errRevoked))
			}
			return nil
		}
		rec, err := runPersist(t, ws, nil, WithBeforeDial(hook), WithRetryPolicy(policy), constantBackOff(time.Millisecond))
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
		wantNames(t, rec, "connecting", "connected", "rejected", "disconnected", "back_off", "connecting", "connect_fail")
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
	testkit.NoLeak(t)
	failing := func(context.Context, *Attempt) error { return tokenError() }
	t.Run("policy", func(t *testing.T) {
		ws := newQuietWS(t, "ws://"+testkit.RefusedAddr(t)+"/")
		var seen error
		policy := func(cause error) bool { seen = cause; return false }
		_, err := runPersist(t, ws, nil, WithBeforeDial(failing), WithRetryPolicy(policy))
		if !errors.Is(err, ErrRetryPolicy) || !errors.Is(err, errTokenDown) {
			t.Errorf("Persist = %v, want ErrRetryPolicy with the hook's error", err)
		}
		var ce *ConnectError
		if !errors.As(seen, &ce) || !strings.HasPrefix(ce.Reason, "before-dial hook; ") {
			t.Errorf("the policy saw %v, want the attempt's *ConnectError", seen)
		}
	})
	t.Run("attempt limit", func(t *testing.T) {
		ws := newQuietWS(t, "ws://"+testkit.RefusedAddr(t)+"/")
		rec, err := runPersist(t, ws, nil, WithBeforeDial(failing), WithMaxAttempts(3), constantBackOff(time.Millisecond))
		if !errors.Is(err, ErrMaxAttempts) || !errors.Is(err, errTokenDown) {
			t.Errorf("Persist = %v, want ErrMaxAttempts with the hook's error", err)
		}
		if n, b := rec.Count("connect_fail"), rec.Count("back_off"); n != 3 || b != 2 {
			t.Errorf("%d ConnectFail and %d BackOff, want 3 and 2", n, b)
		}
	})
}

// TestStopEndsBeforeDialHook: Stop cancels the context of a hook in
// progress (a token fetch waiting on a slow service), and Persist returns
// nil whatever the hook returns then; no event follows.
func TestStopEndsBeforeDialHook(t *testing.T) {
	testkit.NoLeak(t)
	srv := wstest.NewServer(t, testkit.AnswerClose)
	ws := newQuietWS(t, srv.URL())
	entered := make(chan struct{})
	hook := func(ctx context.Context, _ *Attempt) error {
		close(entered)
		select {
		case <-ctx.Done():
			return fmt.Errorf("fetching token: %w", ctx.Err())
		case <-time.After(3 * testkit.Timeout):
			return errors.New("the hook's context was not cancelled by Stop")
		}
	}
	run := goPersist(t, ws, nil, WithBeforeDial(hook))
	testkit.Recv(t, entered, "the hook")
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
	if n := len(run.rec.All()); n != 0 || srv.Conns() != 0 {
		t.Errorf("events %v, %d connections; want nothing after Stop", run.rec.Names(), srv.Conns())
	}
}

// TestWithBackOffCalledOncePerPersist: WithBackOff's constructor runs once
// per Persist, as documented (it ran twice: once more for the minimum
// delay), whatever the number of attempts.
func TestWithBackOffCalledOncePerPersist(t *testing.T) {
	testkit.NoLeak(t)
	srv := wstest.NewServer(t, testkit.Reject(http.StatusServiceUnavailable, http.Header{"Retry-After": {"0"}}))
	var calls atomic.Int32
	newBackOff := func() backoff.BackOff {
		calls.Add(1)
		return &backoff.ConstantBackOff{Interval: time.Millisecond}
	}
	for run := 1; run <= 2; run++ {
		ws := newQuietWS(t, srv.URL())
		rec, err := runPersist(t, ws, stopAtEvent("back_off", 3), WithBackOff(newBackOff))
		if err != nil {
			t.Fatalf("Persist = %v", err)
		}
		// Retry-After: 0 is raised to the backoff's minimum: the floor
		// still comes from the one backoff.
		for _, bo := range testkit.All[*events.BackOff](rec) {
			if bo.Delay != time.Millisecond {
				t.Errorf("BackOff delay %v, want the constant backoff's 1ms", bo.Delay)
			}
		}
		if n := calls.Load(); n != int32(run) {
			t.Errorf("after %d Persist runs the constructor ran %d times, want %d", run, n, run)
		}
	}
}

// stableThenDrop is a server whose first connection stays up for twice
// stable (the duration is the scenario, not a synchronisation) and whose
// later connections are dropped right after the handshake.
func stableThenDrop(t *testing.T, stable time.Duration) *wstest.Server {
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
// connection: 1, 2, 3, 4.
func TestBackOffAttemptAfterStableSession(t *testing.T) {
	testkit.NoLeak(t)
	const stable = 300 * time.Millisecond
	ws := newQuietWS(t, stableThenDrop(t, stable).URL())
	rec, err := runPersist(t, ws, stopAtEvent("back_off", 4), constantBackOff(time.Millisecond), WithStableAfter(stable))
	if err != nil {
		t.Fatalf("Persist = %v", err)
	}
	var got []int
	for _, bo := range testkit.All[*events.BackOff](rec) {
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
	testkit.NoLeak(t)
	const stable = 300 * time.Millisecond
	ws := newQuietWS(t, stableThenDrop(t, stable).URL())
	var numbers []int
	hook := func(_ context.Context, a *Attempt) error {
		numbers = append(numbers, a.Number)
		return nil
	}
	rec, err := runPersist(t, ws, nil, constantBackOff(time.Millisecond), WithStableAfter(stable), WithMaxAttempts(3), WithBeforeDial(hook))
	if !errors.Is(err, ErrMaxAttempts) {
		t.Fatalf("Persist = %v, want ErrMaxAttempts", err)
	}
	if got := rec.Count("ready"); got != 4 {
		t.Errorf("%d sessions, want 4 (one stable, then the limit of 3)", got)
	}
	if want := []int{1, 1, 2, 3}; !slices.Equal(numbers, want) {
		t.Errorf("Attempt.Number %v, want %v", numbers, want)
	}
}

// TestRetryAfterZeroIsFloored: a server answering 503 with Retry-After: 0
// (or a date in the past) must not get a reconnect storm: the wait is at
// least the backoff's minimum delay.
func TestRetryAfterZeroIsFloored(t *testing.T) {
	testkit.NoLeak(t)
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
		{"past date, constant", past, constantBackOff(60 * time.Millisecond), 60 * time.Millisecond},
		{"zero, lomond", "0", WithLomondBackOff(70*time.Millisecond, time.Second), 70 * time.Millisecond},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srv := wstest.NewServer(t, testkit.Reject(http.StatusServiceUnavailable, http.Header{"Retry-After": {c.value}}))
			ws := newQuietWS(t, srv.URL())
			rec, err := runPersist(t, ws, stopAtEvent("back_off", 3), c.opt)
			if err != nil {
				t.Fatalf("Persist = %v", err)
			}
			bos := testkit.All[*events.BackOff](rec)
			if len(bos) != 3 {
				t.Fatalf("events %v, want 3 BackOff", rec.Names())
			}
			for i, bo := range bos {
				if bo.Delay < c.floor {
					t.Errorf("BackOff %d: delay %v, want at least the backoff's minimum %v", i+1, bo.Delay, c.floor)
				}
			}
			conns := testkit.All[*events.Connecting](rec)
			if gap := conns[2].ReceivedTime().Sub(conns[0].ReceivedTime()); gap < 2*c.floor {
				t.Errorf("three attempts within %v, want at least %v apart in all", gap, 2*c.floor)
			}
		})
	}
}

// TestPersistDeadlineIsAnError: Persist whose context reaches its deadline
// returns context.DeadlineExceeded; a cancelled context still returns nil.
func TestPersistDeadlineIsAnError(t *testing.T) {
	testkit.NoLeak(t)
	ws := newQuietWS(t, "ws://"+testkit.RefusedAddr(t)+"/")
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- ws.Persist(ctx, HandlerFunc(func(*WebSocket, events.Event) {}), constantBackOff(time.Hour))
	}()
	err := testkit.Recv(t, done, "Persist's return")
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
		}), constantBackOff(time.Hour))
	}()
	if err := testkit.Recv(t, done, "Persist's return"); !errors.Is(err, cause) {
		t.Errorf("Persist cancelled with a cause = %v, want the cause", err)
	}

	pctx, pcancel := context.WithCancel(context.Background())
	go func() {
		done <- ws.Persist(pctx, HandlerFunc(func(_ *WebSocket, ev events.Event) {
			if ev.Name() == events.NameBackOff {
				pcancel()
			}
		}), constantBackOff(time.Hour))
	}()
	if err := testkit.Recv(t, done, "Persist's return"); err != nil {
		t.Errorf("Persist cancelled = %v, want nil", err)
	}
}

// TestStopFromHandler: Stop in OnReady closes the connection with the
// given code and Persist returns nil, with no reconnection. (ws.Close in
// the same place reconnects: TestCloseReconnects.)
func TestStopFromHandler(t *testing.T) {
	testkit.NoLeak(t)
	codes := make(chan int, 4)
	srv := wstest.NewServer(t, testkit.CloseCodes(codes))
	ws := newQuietWS(t, srv.URL())
	var stopErr error
	rec, err := runPersist(t, ws, func(ws *WebSocket, ev events.Event, _ context.CancelFunc) {
		if ev.Name() == events.NameReady {
			stopErr = ws.Stop(StatusNormal, "done")
		}
	}, constantBackOff(time.Millisecond))
	if err != nil || stopErr != nil {
		t.Fatalf("Persist = %v, Stop = %v; want nil, nil", err, stopErr)
	}
	if code := testkit.Recv(t, codes, "the close code"); code != StatusNormal {
		t.Errorf("server got close %d, want 1000", code)
	}
	wantNames(t, rec, "connecting", "connected", "ready", "closed", "disconnected")
	if n := srv.Conns(); n != 1 {
		t.Errorf("%d connections, want 1", n)
	}
	if err := ws.Stop(StatusNormal, ""); !errors.Is(err, ErrNotConnected) {
		t.Errorf("Stop after Persist = %v, want ErrNotConnected", err)
	}
}

// TestCloseReconnects documents the difference: ws.Close ends the
// connection, and Persist connects again.
func TestCloseReconnects(t *testing.T) {
	testkit.NoLeak(t)
	srv := wstest.NewServer(t, testkit.AnswerClose)
	ws := newQuietWS(t, srv.URL())
	readies := 0
	rec, err := runPersist(t, ws, func(ws *WebSocket, ev events.Event, stop context.CancelFunc) {
		if ev.Name() != events.NameReady {
			return
		}
		if readies++; readies == 2 {
			stop()
			return
		}
		_ = ws.Close(StatusNormal, "again")
	}, constantBackOff(time.Millisecond))
	if err != nil {
		t.Fatalf("Persist = %v", err)
	}
	if n := rec.Count("ready"); n < 2 {
		t.Errorf("%d Ready, want at least 2 (Close does not stop Persist)", n)
	}
}

// TestStopFromAnotherGoroutine: Stop during the backoff wait, during a
// dial, and from the before-dial hook ends Persist at once with nil.
func TestStopFromAnotherGoroutine(t *testing.T) {
	testkit.NoLeak(t)
	t.Run("backoff wait", func(t *testing.T) {
		ws := newQuietWS(t, "ws://"+testkit.RefusedAddr(t)+"/")
		run := goPersist(t, ws, nil, constantBackOff(time.Hour))
		run.rec.WaitCount(t, "back_off", 1)
		if err := ws.Stop(StatusNormal, ""); err != nil {
			t.Fatalf("Stop = %v", err)
		}
		if err := run.wait(t); err != nil {
			t.Errorf("Persist = %v, want nil", err)
		}
		wantNames(t, run.rec, "connecting", "connect_fail", "back_off")
	})
	t.Run("dial", func(t *testing.T) {
		dialing := make(chan struct{}, 1)
		block := func(ctx context.Context, _, _ string) (net.Conn, error) {
			dialing <- struct{}{}
			<-ctx.Done()
			return nil, ctx.Err()
		}
		ws := newQuietWS(t, "ws://127.0.0.1:9/", WithDialer(block))
		run := goPersist(t, ws, nil, constantBackOff(time.Millisecond))
		testkit.Recv(t, dialing, "the dial")
		start := time.Now()
		if err := ws.Stop(StatusGoingAway, ""); err != nil {
			t.Fatalf("Stop = %v", err)
		}
		if err := run.wait(t); err != nil {
			t.Errorf("Persist = %v, want nil", err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("Persist returned %v after Stop, want at once (the dial timeout is 30 s)", d)
		}
		wantNames(t, run.rec, "connecting", "connect_fail")
	})
	t.Run("before-dial hook", func(t *testing.T) {
		srv := wstest.NewServer(t, testkit.AnswerClose)
		ws := newQuietWS(t, srv.URL())
		hook := func(context.Context, *Attempt) error { return ws.Stop(StatusNormal, "") }
		rec, err := runPersist(t, ws, nil, WithBeforeDial(hook))
		if err != nil {
			t.Errorf("Persist = %v, want nil", err)
		}
		if n := len(rec.All()); n != 0 || srv.Conns() != 0 {
			t.Errorf("events %v, %d connections; want nothing after Stop", rec.Names(), srv.Conns())
		}
	})
}

// TestStopPersistEventsAndRun: Stop ends a PersistEvents loop the same way,
// and on a Run session it is Close.
func TestStopPersistEventsAndRun(t *testing.T) {
	testkit.NoLeak(t)
	codes := make(chan int, 4)
	srv := wstest.NewServer(t, testkit.CloseCodes(codes))
	ws := newQuietWS(t, srv.URL())
	var names []string
	for ev := range ws.PersistEvents(context.Background(), constantBackOff(time.Millisecond)) {
		names = append(names, ev.Name())
		if ev.Name() == events.NameReady {
			if err := ws.Stop(4000, "bye"); err != nil {
				t.Errorf("Stop = %v", err)
			}
		}
	}
	if ws.Err() != nil {
		t.Errorf("ws.Err() = %v, want nil", ws.Err())
	}
	if code := testkit.Recv(t, codes, "the close code"); code != 4000 {
		t.Errorf("server got close %d, want 4000", code)
	}
	if got := names[len(names)-1]; got != events.NameDisconnected {
		t.Errorf("events %v, want Disconnected last and no reconnection", names)
	}

	err := ws.Run(context.Background(), HandlerFunc(func(ws *WebSocket, ev events.Event) {
		if ev.Name() == events.NameReady {
			_ = ws.Stop(StatusNormal, "run")
		}
	}))
	if err != nil {
		t.Errorf("Run = %v, want nil (Stop is Close)", err)
	}
	if code := testkit.Recv(t, codes, "the close code"); code != StatusNormal {
		t.Errorf("server got close %d, want 1000", code)
	}
	for _, bad := range []struct {
		code   int
		reason string
		want   error
	}{{999, "", ErrInvalidCloseCode}, {StatusNormal, string(make([]byte, 124)), ErrReasonTooLong}} {
		if err := ws.Stop(bad.code, bad.reason); !errors.Is(err, bad.want) {
			t.Errorf("Stop(%d, %d bytes) = %v, want %v", bad.code, len(bad.reason), err, bad.want)
		}
	}
}
