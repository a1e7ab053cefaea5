package lomond

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"math/rand/v2"
	"net/http"
	"runtime/debug"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/lomond-go/lomond/events"
)

// Persist defaults.
const (
	// DefaultStableAfter is how long a connection must stay ready before the
	// backoff resets. A server that accepts and drops at once therefore sees
	// growing delays, not a reconnect storm.
	DefaultStableAfter = 10 * time.Second
	// DefaultMaxRetryAfter bounds a server's Retry-After.
	DefaultMaxRetryAfter = 5 * time.Minute
)

// Errors that end Persist.
var (
	// ErrRetryPolicy is wrapped by Persist's error when the retry policy
	// declined to reconnect; the error also wraps the cause.
	ErrRetryPolicy = errors.New("lomond: retry policy stopped reconnecting")
	// ErrMaxAttempts is wrapped by Persist's error when the attempt limit was
	// reached; the error also wraps the last cause.
	ErrMaxAttempts = errors.New("lomond: reconnect attempt limit reached")
	// ErrBackOffStop is wrapped by Persist's error when the backoff returned
	// backoff.Stop; the error also wraps the last cause.
	ErrBackOffStop = errors.New("lomond: backoff gave up")
)

// ErrPermanent marks an error that retrying will not cure: when the cause
// of a failed attempt wraps it (see Permanent), Persist ends with that
// cause, whatever the retry policy says.
var ErrPermanent = errors.New("lomond: permanent error")

// Permanent marks err as permanent, for a WithBeforeDial hook (or a
// WithDialer function) to end Persist rather than have the attempt retried:
// a revoked credential, an account that no longer exists. The result wraps
// both err and ErrPermanent, and reads as err. Permanent(nil) is nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err: err}
}

type permanentError struct{ err error }

func (e *permanentError) Error() string        { return e.err.Error() }
func (e *permanentError) Unwrap() error        { return e.err }
func (e *permanentError) Is(target error) bool { return target == ErrPermanent }

// RetryPolicy decides whether Persist reconnects after a session ended with
// cause (the error Run would have returned: a *ConnectError, *RejectedError,
// *CloseError, *ProtocolError, ErrUnresponsive, a transport error, or nil
// when the client closed the session). A before-dial hook's error is a
// *ConnectError too (see WithBeforeDial). A cause that wraps ErrPermanent
// ends Persist without asking the policy.
type RetryPolicy func(cause error) bool

// RetryAlways reconnects after anything: lomond's promise, and the default.
func RetryAlways(error) bool { return true }

// RetryStrict reconnects after anything except a rejection with a 4xx
// status other than 408 (timeout) and 429 (too many requests), and a close
// with code 1008 (policy violation): the server said that trying again
// will not help.
func RetryStrict(cause error) bool {
	var rej *RejectedError
	if errors.As(cause, &rej) {
		s := rej.StatusCode
		if s >= 400 && s < 500 && s != http.StatusRequestTimeout && s != http.StatusTooManyRequests {
			return false
		}
	}
	return CloseStatus(cause) != StatusPolicyViolation
}

// Attempt is what a per-attempt hook (WithBeforeDial) may change before a
// dial: the URL, the extra headers and the subprotocols offered.
type Attempt struct {
	// Number counts the attempts since the last stable connection (or
	// since Persist started, or Reconnect), this one included: 1, 2, 3...
	Number int
	// URL is the websocket URL to dial.
	URL string
	// Header holds the extra request headers (a copy: change it freely).
	Header http.Header
	// Protocols are the subprotocols to offer.
	Protocols []string
}

// PersistOption configures Persist and PersistEvents.
type PersistOption func(*persistConfig) error

type persistConfig struct {
	newBackOff    func() backoff.BackOff
	stableAfter   time.Duration
	maxRetryAfter time.Duration
	policy        RetryPolicy
	maxAttempts   int
	beforeDial    func(ctx context.Context, a *Attempt) error
}

// DefaultBackOff returns the default reconnect backoff: exponential from 1 s,
// doubling, capped at 30 s (lomond's max_wait), each delay randomized by
// ±50% so that clients dropped together do not return together, and never
// giving up (backoff/v4's 15-minute MaxElapsedTime is turned off).
func DefaultBackOff() backoff.BackOff {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = time.Second
	b.Multiplier = 2
	b.RandomizationFactor = 0.5
	b.MaxInterval = 30 * time.Second
	b.MaxElapsedTime = 0
	b.Reset()
	return b
}

// LomondBackOff is lomond's persist() wait: MinWait + random ×
// min(MaxWait − MinWait, 2^retries) seconds, where retries counts attempts
// since the last Reset.
type LomondBackOff struct {
	MinWait, MaxWait time.Duration
	// Rand returns a number in [0, 1); nil means math/rand/v2.
	Rand    func() float64
	retries int
}

// NextBackOff returns the next wait.
func (b *LomondBackOff) NextBackOff() time.Duration {
	b.retries++
	r := rand.Float64
	if b.Rand != nil {
		r = b.Rand
	}
	span := b.MaxWait - b.MinWait
	if b.retries < 33 { // 2^33 s overflows a Duration
		if exp := time.Duration(1<<b.retries) * time.Second; exp < span {
			span = exp
		}
	}
	return b.MinWait + time.Duration(r()*float64(span))
}

// Reset starts the count again.
func (b *LomondBackOff) Reset() { b.retries = 0 }

// WithBackOff uses the backoff returned by newBackOff (called once per
// Persist) instead of DefaultBackOff. Any backoff.BackOff works; if it
// returns backoff.Stop, Persist ends with ErrBackOffStop.
func WithBackOff(newBackOff func() backoff.BackOff) PersistOption {
	return func(c *persistConfig) error {
		if newBackOff == nil {
			return optErr("nil backoff constructor")
		}
		c.newBackOff = newBackOff
		return nil
	}
}

// WithLomondBackOff uses lomond's persist() wait (see LomondBackOff); lomond's
// defaults are 5 s and 30 s.
func WithLomondBackOff(minWait, maxWait time.Duration) PersistOption {
	return func(c *persistConfig) error {
		if minWait < 0 || maxWait < minWait {
			return optErr("lomond backoff needs 0 <= minWait <= maxWait, got %v, %v", minWait, maxWait)
		}
		c.newBackOff = func() backoff.BackOff { return &LomondBackOff{MinWait: minWait, MaxWait: maxWait} }
		return nil
	}
}

// WithStableAfter sets how long a connection must stay ready before the
// backoff resets (default 10 s).
func WithStableAfter(d time.Duration) PersistOption {
	return func(c *persistConfig) error {
		if d < 0 {
			return optErr("stable period must not be negative, got %v", d)
		}
		c.stableAfter = d
		return nil
	}
}

// WithMaxRetryAfter bounds the wait a server may ask for with Retry-After on
// a rejected upgrade (default 5 min); 0 ignores Retry-After. A server's wait
// is never shorter than the backoff's minimum delay (see docs/reconnecting.md, Retry-After).
func WithMaxRetryAfter(d time.Duration) PersistOption {
	return func(c *persistConfig) error {
		if d < 0 {
			return optErr("max Retry-After must not be negative, got %v", d)
		}
		c.maxRetryAfter = d
		return nil
	}
}

// WithRetryPolicy sets the retry policy (default RetryAlways).
func WithRetryPolicy(p RetryPolicy) PersistOption {
	return func(c *persistConfig) error {
		if p == nil {
			return optErr("nil retry policy")
		}
		c.policy = p
		return nil
	}
}

// WithMaxAttempts ends Persist with ErrMaxAttempts after n consecutive
// attempts without a stable connection (default 0: no limit).
func WithMaxAttempts(n int) PersistOption {
	return func(c *persistConfig) error {
		if n < 0 {
			return optErr("attempt limit must not be negative, got %d", n)
		}
		c.maxAttempts = n
		return nil
	}
}

// WithBeforeDial runs hook before every attempt, on the Persist goroutine.
// It may change the attempt's URL, headers and subprotocols (a fresh token,
// another server); its changes are validated like New's, and an invalid
// change ends Persist (an error wrapping ErrInvalidURL or
// ErrInvalidOption).
//
// An error from the hook fails the attempt, as a failed dial does: the
// handler gets Connecting, then ConnectFail with Reason "before-dial hook;
// " and the error's text (URLs in it redacted as in every event), then the
// retry policy decides and BackOff follows, its Cause a *ConnectError
// wrapping the hook's error. A token service that is down for a while is
// thus retried with the backoff. An error marked with Permanent ends
// Persist with that *ConnectError instead. ctx ends when Persist's context
// does or Stop is called; Persist then returns as it would anyway (nil
// after Stop), whatever the hook returns.
func WithBeforeDial(hook func(ctx context.Context, a *Attempt) error) PersistOption {
	return func(c *persistConfig) error {
		if hook == nil {
			return optErr("nil before-dial hook")
		}
		c.beforeDial = hook
		return nil
	}
}

// Persist runs sessions one after another until ctx ends or Stop is called:
// after every session (ConnectFail, Rejected, any Disconnected) it emits
// BackOff, waits, and connects again. Each session's events follow the same
// contract as Run's; OnReady runs once per connection, the place to
// subscribe again. ws.Close ends the current connection only: Persist
// connects again.
//
// Persist returns nil when ctx was cancelled or Stop was called (the live
// connection, if any, is closed gracefully first), and ctx's deadline error
// (context.DeadlineExceeded) or cancel cause when ctx ended that way.
// Otherwise it returns why it stopped: an error wrapping ErrRetryPolicy,
// ErrMaxAttempts or ErrBackOffStop together with the last session's cause,
// a cause that wraps ErrPermanent, a *PanicError, an invalid change made
// by the before-dial hook, ErrAlreadyRunning, or an option, handler or
// zero-WebSocket error.
func (ws *WebSocket) Persist(ctx context.Context, h EventHandler, options ...PersistOption) error {
	t, err := ws.prepare(h)
	if err != nil {
		return err
	}
	return ws.persistLoop(ctx, t, true, nil, options)
}

// PersistEvents is Persist for a range loop, like iterating over lomond's
// persist(websocket). Breaking out of the loop closes the live connection
// gracefully and stops reconnecting. If the loop cannot start (an invalid
// option, or the WebSocket is already running), the only event is a
// ConnectFail whose Err says why.
func (ws *WebSocket) PersistEvents(ctx context.Context, options ...PersistOption) iter.Seq[events.Event] {
	return func(yield func(events.Event) bool) {
		t := &table{}
		var stopped bool
		stop := func(s *session) {
			stopped = true
			if s != nil {
				s.stopRequested(ErrStopped)
			}
		}
		err := ws.persistLoop(ctx, t, false, func(pl *persistLoop) {
			t.observer = func(_ *WebSocket, ev events.Event) {
				if stopped {
					return
				}
				if !yield(ev) {
					stop(pl.current)
				}
			}
			pl.stopped = func() bool { return stopped }
		}, options)
		if err != nil && !stopped && (errors.Is(err, ErrAlreadyRunning) || errors.Is(err, ErrInvalidOption) || errors.Is(err, errZeroWebSocket)) {
			yield(&events.ConnectFail{Meta: events.Stamp(), URL: ws.raw, Reason: err.Error(), Err: err})
		}
	}
}

// persistLoop is the state of one Persist call.
type persistLoop struct {
	ws       *WebSocket
	cfg      persistConfig
	t        *table
	recover  bool
	b        backoff.BackOff
	floor    time.Duration // the backoff's minimum delay: Retry-After's floor
	unstable int           // consecutive sessions that did not become stable
	retries  int           // reconnections since the last reset: BackOff.Attempt
	current  *session
	stopped  func() bool
	panicErr error

	hookCtx    context.Context    // the before-dial hook's: Persist's, ended by Stop too
	cancelHook context.CancelFunc // called by Stop

	mu        sync.Mutex
	reconnect chan struct{} // Reconnect() signals the loop
	cancel    context.CancelFunc
	asked     bool          // Reconnect was asked for the current cycle
	stopAsked bool          // Stop was called
	stopCh    chan struct{} // closed by Stop
}

func (ws *WebSocket) persistLoop(ctx context.Context, t *table, recoverPanics bool, prepare func(*persistLoop), options []PersistOption) (err error) {
	defer func() { ws.setErr(err) }()
	if ctx == nil {
		return optErr("nil context")
	}
	if err := ws.usable(); err != nil {
		return err
	}
	pc := persistConfig{
		newBackOff:    DefaultBackOff,
		stableAfter:   DefaultStableAfter,
		maxRetryAfter: DefaultMaxRetryAfter,
		policy:        RetryAlways,
	}
	for _, o := range options {
		if o == nil {
			return optErr("nil persist option")
		}
		if err := o(&pc); err != nil {
			return err
		}
	}
	hookCtx, cancelHook := context.WithCancel(ctx)
	defer cancelHook()
	pl := &persistLoop{ws: ws, cfg: pc, t: t, recover: recoverPanics, reconnect: make(chan struct{}, 1),
		stopCh: make(chan struct{}), stopped: func() bool { return false }, hookCtx: hookCtx, cancelHook: cancelHook}
	if prepare != nil {
		prepare(pl)
	}
	if !ws.persist.CompareAndSwap(nil, pl) {
		return ErrAlreadyRunning
	}
	defer ws.persist.Store(nil)
	pl.b = pc.newBackOff() // once per Persist, as WithBackOff says
	pl.b.Reset()
	pl.floor = minDelay(pl.b)
	return pl.run(ctx)
}

// ctxResult is what Persist returns when ctx ended: nil when it was
// cancelled, its deadline error or cancel cause otherwise.
func ctxResult(ctx context.Context) error {
	cause := context.Cause(ctx)
	if errors.Is(cause, context.Canceled) {
		return nil
	}
	return cause
}

// stopWasAsked reports whether Stop was called.
func (pl *persistLoop) stopWasAsked() bool {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	return pl.stopAsked
}

func (pl *persistLoop) run(ctx context.Context) error {
	for {
		if ctx.Err() != nil {
			return ctxResult(ctx)
		}
		if pl.stopWasAsked() {
			return nil
		}
		end, done, err := pl.attempt(ctx)
		if done {
			return err
		}
		if done, err := pl.afterAttempt(ctx, end); done {
			return err
		}
	}
}

// attemptEnd is how an attempt ended.
type attemptEnd struct {
	cause error    // what Run would have returned, or the hook's failure
	sess  *session // nil when the before-dial hook failed
	asked bool     // Reconnect was called during the session
}

// attempt runs the before-dial hook and, unless it failed, one session. It
// reports done, with Persist's result, when Persist must return now.
func (pl *persistLoop) attempt(ctx context.Context) (end attemptEnd, done bool, result error) {
	ws := pl.ws
	tgt, err := pl.nextTarget(pl.hookCtx)
	if err != nil {
		switch {
		case ctx.Err() != nil:
			return end, true, ctxResult(ctx)
		case pl.stopWasAsked():
			return end, true, nil
		}
		var he *hookError
		if !errors.As(err, &he) {
			return end, true, err // an invalid change: a bug, not a failure to retry
		}
		end.cause = pl.hookFailed(he)
		if pl.panicErr != nil {
			return end, true, pl.panicErr
		}
		if pl.stopWasAsked() || pl.stopped() {
			return end, true, nil
		}
		return end, false, nil
	}
	sctx, cancel := context.WithCancel(ctx)
	pl.mu.Lock()
	if pl.stopAsked { // Stop came while the hook ran
		pl.mu.Unlock()
		cancel()
		return end, true, nil
	}
	pl.cancel, pl.asked = cancel, false
	select {
	case <-pl.reconnect: // a Reconnect made between cycles is spent by this one
	default:
	}
	pl.mu.Unlock()
	end.cause = ws.runSessionWith(sctx, pl.t, pl.recover, func(s *session) {
		s.target = tgt
		end.sess = s
		pl.current = s
	})
	cancel()
	pl.current = nil
	pl.mu.Lock()
	end.asked = pl.asked
	stopAsked := pl.stopAsked
	pl.cancel = nil
	pl.mu.Unlock()
	if errors.Is(end.cause, ErrAlreadyRunning) {
		return end, true, end.cause
	}
	var pe *PanicError
	if errors.As(end.cause, &pe) {
		return end, true, pe
	}
	if stopAsked || pl.stopped() || (end.sess != nil && errors.Is(end.sess.stopErr, ErrStopped)) {
		return end, true, nil
	}
	if ctx.Err() != nil {
		return end, true, ctxResult(ctx)
	}
	return end, false, nil
}

// hookFailed reports a before-dial hook's error as a failed attempt:
// Connecting, then ConnectFail. It returns the attempt's cause.
func (pl *persistLoop) hookFailed(err *hookError) error {
	ws := pl.ws
	reason := "before-dial hook; " + err.shown
	pl.emit(&events.Connecting{Meta: events.Stamp(), URL: ws.raw})
	if pl.panicErr == nil && !pl.stopped() {
		pl.emit(&events.ConnectFail{Meta: events.Stamp(), URL: ws.raw, Reason: reason, Err: err})
	}
	return &ConnectError{URL: ws.raw, Reason: reason, Err: err}
}

// afterAttempt decides what follows an attempt: a reset of the backoff,
// the retry policy, the attempt limit, BackOff and the wait. It reports
// done, with Persist's result, when Persist must return.
func (pl *persistLoop) afterAttempt(ctx context.Context, end attemptEnd) (done bool, result error) {
	cause, sess := end.cause, end.sess
	if sess != nil && !sess.readyAt.IsZero() && time.Since(sess.readyAt) >= pl.cfg.stableAfter {
		// A stable session starts a new series: the reconnection after
		// it is the first.
		pl.b.Reset()
		pl.unstable, pl.retries = 0, 1
	} else {
		pl.unstable++
		pl.retries++
	}
	if end.asked {
		pl.b.Reset()
		pl.unstable, pl.retries = 0, 0
		return false, nil
	}
	if errors.Is(cause, ErrPermanent) {
		return true, cause
	}
	if !pl.cfg.policy(cause) {
		return true, fmt.Errorf("%w: %w", ErrRetryPolicy, cause)
	}
	if pl.cfg.maxAttempts > 0 && pl.unstable >= pl.cfg.maxAttempts {
		return true, fmt.Errorf("%w (%d): %w", ErrMaxAttempts, pl.unstable, cause)
	}
	delay := pl.delay(cause)
	if delay == backoff.Stop {
		return true, fmt.Errorf("%w: %w", ErrBackOffStop, cause)
	}
	pl.emit(&events.BackOff{Meta: events.Stamp(), Delay: delay, Attempt: pl.retries, Cause: cause})
	if pl.panicErr != nil {
		return true, pl.panicErr
	}
	if pl.stopped() {
		return true, nil
	}
	return pl.wait(ctx, delay)
}

// delay picks the wait after cause: the server's Retry-After when it sent
// one (bounded, and never shorter than the backoff's minimum), the
// backoff's next delay otherwise.
func (pl *persistLoop) delay(cause error) time.Duration {
	var rej *RejectedError
	if errors.As(cause, &rej) && rej.HasRetryAfter && pl.cfg.maxRetryAfter > 0 {
		return max(min(rej.RetryAfter, pl.cfg.maxRetryAfter), pl.floor)
	}
	return pl.b.NextBackOff()
}

// minDelay returns the shortest delay b would wait, the floor under a
// server's Retry-After: InitialInterval × (1 − RandomizationFactor) for a
// *backoff.ExponentialBackOff (0.5 s for DefaultBackOff), Interval for a
// *backoff.ConstantBackOff, MinWait for a *LomondBackOff, 0 for a
// *backoff.ZeroBackOff, what MinDelay returns for a backoff that has that
// method, and 0 for any other: asking it for a delay would change its
// state (and its own count of attempts).
func minDelay(b backoff.BackOff) time.Duration {
	switch x := b.(type) {
	case *backoff.ExponentialBackOff:
		return max(time.Duration(float64(x.InitialInterval)*(1-x.RandomizationFactor)), 0)
	case *backoff.ConstantBackOff:
		return x.Interval
	case *LomondBackOff:
		return x.MinWait
	case interface{ MinDelay() time.Duration }:
		return max(x.MinDelay(), 0)
	}
	return 0
}

// wait sleeps for delay. It reports done, with Persist's result, when ctx
// ended or Stop was called first. Reconnect cuts the wait short and resets
// the backoff.
func (pl *persistLoop) wait(ctx context.Context, delay time.Duration) (done bool, result error) {
	t := time.NewTimer(delay)
	defer t.Stop()
	select {
	case <-t.C:
		return false, nil
	case <-pl.reconnect:
		pl.b.Reset()
		pl.unstable, pl.retries = 0, 0
		return false, nil
	case <-pl.stopCh:
		return true, nil
	case <-ctx.Done():
		return true, ctxResult(ctx)
	}
}

func (pl *persistLoop) emit(ev events.Event) {
	if pl.recover {
		defer func() {
			if v := recover(); v != nil {
				pl.panicErr = &PanicError{Value: v, Stack: debug.Stack()}
			}
		}()
	}
	pl.t.deliver(pl.ws, ev)
}

// nextTarget builds the next attempt's target, through the before-dial hook.
func (pl *persistLoop) nextTarget(ctx context.Context) (target, error) {
	ws := pl.ws
	tgt := ws.defaultTarget()
	if pl.cfg.beforeDial == nil {
		return tgt, nil
	}
	a := &Attempt{Number: pl.unstable + 1, URL: ws.URL(), Header: ws.cfg.header.Clone(), Protocols: append([]string(nil), ws.cfg.protocols...)}
	if a.Header == nil {
		a.Header = http.Header{}
	}
	if err := pl.cfg.beforeDial(ctx, a); err != nil {
		return target{}, &hookError{err: err, shown: shownText(err.Error(), ws.cfg.sensitive)}
	}
	u, err := parseWSURL(a.URL, ws.cfg.sensitive)
	if err != nil {
		return target{}, fmt.Errorf("lomond: before-dial hook: %w", err)
	}
	var c config
	c.header = http.Header{}
	c.host = ws.cfg.host
	for name, values := range a.Header {
		for _, v := range values {
			if err := WithHeader(name, v)(&c); err != nil {
				return target{}, fmt.Errorf("lomond: before-dial hook: %w", err)
			}
		}
	}
	if err := WithProtocols(a.Protocols...)(&c); err != nil {
		return target{}, fmt.Errorf("lomond: before-dial hook: %w", err)
	}
	return target{url: u, raw: shownURL(u, ws.cfg.sensitive), header: c.header, host: c.host, protocols: c.protocols}, nil
}

// hookError is a before-dial hook's error as the library shows it: its
// text with the URLs in it redacted. errors.Is and errors.As see the hook's
// own error.
type hookError struct {
	err   error
	shown string
}

func (e *hookError) Error() string { return "lomond: before-dial hook: " + e.shown }
func (e *hookError) Unwrap() error { return e.err }

// Reconnect drops the current connection of a running Persist (with a
// graceful close, code 1001) and connects again at once, resetting the
// backoff; during a backoff wait it ends the wait. It returns
// ErrNotConnected when no Persist is running.
func (ws *WebSocket) Reconnect() error {
	pl := ws.persist.Load()
	if pl == nil {
		return ErrNotConnected
	}
	pl.mu.Lock()
	defer pl.mu.Unlock()
	if pl.cancel != nil {
		pl.asked = true
		pl.cancel()
		return nil
	}
	select {
	case pl.reconnect <- struct{}{}:
	default:
	}
	return nil
}

// Stop ends a running Persist or PersistEvents for good, from any goroutine
// (a handler included): a ready connection is closed with code and reason
// (lomond's default is 1000, "goodbye"), bounded by the close timeout; a
// dial or an opening handshake in progress is abandoned; a backoff wait
// ends. No reconnection follows, and Persist returns nil. Stop returns at
// once; Persist returns when the session is over.
//
// With no Persist running, Stop is Close: it closes a Run or Events session,
// and returns ErrNotConnected when nothing runs. An invalid code or reason is
// an error, as for Close, and nothing is stopped.
func (ws *WebSocket) Stop(code int, reason string) error {
	if err := checkClose(code, reason); err != nil {
		return err
	}
	pl := ws.persist.Load()
	if pl == nil {
		return ws.Close(code, reason)
	}
	pl.mu.Lock()
	first := !pl.stopAsked
	pl.stopAsked = true
	cancel := pl.cancel
	pl.mu.Unlock()
	if first {
		close(pl.stopCh)
		pl.cancelHook() // a before-dial hook in progress (a token fetch)
	}
	if cancel == nil {
		return nil // between sessions: the loop sees stopAsked
	}
	if st := ws.State(); st == StateReady || st == StateClosing {
		// A ready session closes with Stop's code; in OnClosing, Stop's
		// close is the reply to the server's.
		if err := ws.Close(code, reason); err == nil || errors.Is(err, ErrClosing) {
			return nil
		}
	}
	cancel() // not ready (or no longer): abandon the attempt
	return nil
}
