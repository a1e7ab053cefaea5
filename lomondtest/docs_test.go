package lomondtest_test

// The tests and the handlers docs/testing.md shows, verbatim: they must
// compile and pass (docsync_test.go checks that they are the ones shown).

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/lomond-go/lomond"
	"github.com/lomond-go/lomond/events"
	"github.com/lomond-go/lomond/lomondtest"
	"github.com/lomond-go/lomond/lomondtest/fault"
)

// ticker subscribes when ready and keeps the last tick it received.
type ticker struct {
	lomond.BaseHandler
	mu   sync.Mutex
	last int
}

func (tk *ticker) OnReady(ws *lomond.WebSocket, _ *events.Ready) {
	_ = ws.SendJSON(map[string]string{"op": "subscribe", "topic": "ticks"})
}

func (tk *ticker) OnText(_ *lomond.WebSocket, ev *events.Text) {
	var tick struct{ Seq int }
	if ev.JSON(&tick) == nil {
		tk.mu.Lock()
		tk.last = tick.Seq
		tk.mu.Unlock()
	}
}

// Last returns the sequence number of the last tick.
func (tk *ticker) Last() int {
	tk.mu.Lock()
	defer tk.mu.Unlock()
	return tk.last
}

func TestTickerSubscribes(t *testing.T) {
	srv := lomondtest.NewServer(t, lomondtest.Script(
		lomondtest.Expect(lomondtest.JSON(`{"topic": "ticks", "op": "subscribe"}`)),
		lomondtest.SendJSON(map[string]int{"seq": 1}),
		lomondtest.SendJSON(map[string]int{"seq": 2}),
	))
	tk := &ticker{}
	p := lomondtest.Persist(t, srv.Client(), tk)
	p.WaitFor(t, "text", time.Second)
	p.WaitFor(t, "text", time.Second) // the second text: tk has handled it
	if got := tk.Last(); got != 2 {
		t.Errorf("last tick = %d, want 2", got)
	}
	if err := p.Stop(t); err != nil {
		t.Fatal(err)
	}
}

func TestTickerResubscribesAfterARestart(t *testing.T) {
	srv := lomondtest.NewServer(t, lomondtest.Script(
		lomondtest.Expect(lomondtest.JSON(`{"op": "subscribe", "topic": "ticks"}`)),
		lomondtest.SendJSON(map[string]int{"seq": 1}),
	))
	p := lomondtest.Persist(t, srv.Client(), &ticker{})
	p.WaitFor(t, "text", time.Second)
	srv.Restart()                     // a crash: connections dropped, same port
	p.WaitFor(t, "text", time.Second) // subscribed again on the new connection
	if err := p.Stop(t); err != nil {
		t.Fatal(err)
	}
	p.AssertSequence(t, "connecting connected ready text disconnected back_off"+
		" (connecting connect_fail back_off)* connecting connected ready text closed disconnected")
}

func TestTickerWaitsOutAnOutage(t *testing.T) {
	srv := lomondtest.NewServer(t, lomondtest.SendJSON(map[string]int{"seq": 1}))
	p := lomondtest.Persist(t, srv.Client(), &ticker{})
	p.WaitFor(t, "ready", time.Second)
	srv.Stop()                                // down: every attempt is refused
	p.WaitFor(t, "connect_fail", time.Second) // at least one refused attempt
	p.WaitFor(t, "connect_fail", time.Second) // and another
	srv.Start()                               // back on the same port
	p.WaitFor(t, "ready", time.Second)
	if err := p.Stop(t); err != nil {
		t.Fatal(err)
	}
}

func TestTickerCountsItsAttempts(t *testing.T) {
	srv := lomondtest.NewServer(t,
		fault.Reject(http.StatusServiceUnavailable),           // connection 1
		lomondtest.Script(lomondtest.Accept(), fault.Drop()),  // connection 2
		lomondtest.Script(lomondtest.Accept(), fault.Reset()), // connection 3
		lomondtest.SendJSON(map[string]int{"seq": 1}),         // 4 and after
	)
	b := &lomondtest.BackOff{}
	p := lomondtest.Persist(t, srv.Client(), &ticker{}, b.Option())
	p.WaitFor(t, "text", time.Second)
	if err := p.Stop(t); err != nil {
		t.Fatal(err)
	}
	if b.Attempts() != 3 {
		t.Errorf("Attempts() = %d, want 3", b.Attempts())
	}
}

func TestTickerHonoursRetryAfter(t *testing.T) {
	srv := lomondtest.NewServer(t,
		fault.Reject(http.StatusServiceUnavailable, "Retry-After", "120"),
		lomondtest.Echo(),
	)
	ws := srv.Client()
	p := lomondtest.Persist(t, ws, &ticker{})
	if bo := lomondtest.WaitEvent[*events.BackOff](t, p.Recorder, time.Second); bo.Delay != 2*time.Minute {
		t.Errorf("BackOff.Delay = %v, want the server's 2m", bo.Delay)
	}
	_ = ws.Reconnect() // skip the two minutes
	p.WaitFor(t, "ready", time.Second)
	if err := p.Stop(t); err != nil {
		t.Fatal(err)
	}
}

func TestTickerGivesUpWhenRefused(t *testing.T) {
	srv := lomondtest.NewServer(t, fault.Reject(http.StatusUnauthorized))
	p := lomondtest.Persist(t, srv.Client(), &ticker{}, lomond.WithRetryPolicy(lomond.RetryStrict))
	err := p.Wait(t) // Persist ends on its own
	if !errors.Is(err, lomond.ErrRetryPolicy) {
		t.Fatalf("Persist = %v, want ErrRetryPolicy", err)
	}
	p.AssertSequence(t, "connecting connected rejected disconnected")
}

func TestTickerNoticesADeadServer(t *testing.T) {
	srv := lomondtest.NewServer(t, fault.IgnorePings())
	ws := srv.Client(lomond.WithPingRate(20*time.Millisecond), lomond.WithPingTimeout(100*time.Millisecond))
	rec := lomondtest.Run(t, ws, &ticker{})
	rec.AssertSequence(t, "connecting connected ready unresponsive disconnected")
	if !errors.Is(ws.Err(), lomond.ErrUnresponsive) {
		t.Errorf("Err() = %v", ws.Err())
	}
}

func TestTickerFailsOnABrokenServer(t *testing.T) {
	srv := lomondtest.NewServer(t, lomondtest.Script(
		lomondtest.Expect(lomondtest.JSON(`{"op": "subscribe", "topic": "ticks"}`)),
		fault.ProtocolViolation(),
	))
	rec := lomondtest.Run(t, srv.Client(), &ticker{})
	rec.AssertSequence(t, "connecting connected ready protocol_error disconnected")
	if code, _, _ := srv.Conn(t, 1).ClientClose(); code != lomond.StatusProtocolError {
		t.Errorf("the client closed with %d, want 1002", code)
	}
}

func TestTickerTimesOutAStalledHandshake(t *testing.T) {
	srv := lomondtest.NewServer(t, fault.StallHandshake())
	ws := srv.Client(lomond.WithHandshakeTimeout(50 * time.Millisecond))
	lomondtest.Run(t, ws, &ticker{})
	if !errors.Is(ws.Err(), lomond.ErrHandshakeTimeout) {
		t.Errorf("Err() = %v, want ErrHandshakeTimeout", ws.Err())
	}
}

func TestTickerSubscribesOnce(t *testing.T) {
	srv := lomondtest.NewServer(t, lomondtest.SendJSON(map[string]int{"seq": 1}))
	p := lomondtest.Persist(t, srv.Client(), &ticker{})
	p.WaitFor(t, "text", time.Second)
	if err := p.Stop(t); err != nil {
		t.Fatal(err)
	}
	srv.Conn(t, 1).AssertMessages(t, lomondtest.JSON(`{"op": "subscribe", "topic": "ticks"}`))
}

// tokens hands out a new token every time: token-1, token-2...
type tokens struct {
	mu sync.Mutex
	n  int
}

func (ts *tokens) Get(context.Context) (string, error) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	ts.n++
	return fmt.Sprintf("token-%d", ts.n), nil
}

func TestClientSendsAFreshTokenOnEveryAttempt(t *testing.T) {
	srv := lomondtest.NewServer(t,
		fault.Reject(http.StatusUnauthorized), // connection 1: the token has expired
		lomondtest.Echo(),                     // 2 and after
	)
	ts := &tokens{}
	refresh := func(ctx context.Context, a *lomond.Attempt) error {
		tok, err := ts.Get(ctx)
		if err != nil {
			return err
		}
		a.Header.Set("Authorization", "Bearer "+tok)
		return nil
	}
	p := lomondtest.Persist(t, srv.Client(), &ticker{}, lomond.WithBeforeDial(refresh))
	p.WaitFor(t, "ready", time.Second)
	if err := p.Stop(t); err != nil {
		t.Fatal(err)
	}
	for n, want := range []string{"Bearer token-1", "Bearer token-2"} {
		if got := srv.Conn(t, n+1).Request().Header.Get("Authorization"); got != want {
			t.Errorf("connection %d: Authorization = %q, want %q", n+1, got, want)
		}
	}
}
