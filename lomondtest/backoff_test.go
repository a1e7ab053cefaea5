package lomondtest_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/lomond-go/lomond"
	"github.com/lomond-go/lomond/events"
	"github.com/lomond-go/lomond/lomondtest"
	"github.com/lomond-go/lomond/lomondtest/fault"
)

// TestReconnectTestRunsInMilliseconds is the shape of a reconnect test:
// a server that fails twice, a client that must come back, no sleeping.
func TestReconnectTestRunsInMilliseconds(t *testing.T) {
	start := time.Now()
	srv := lomondtest.NewServer(t,
		fault.Reject(http.StatusServiceUnavailable),                   // connection 1
		lomondtest.Script(lomondtest.SendText("hello"), fault.Drop()), // connection 2
		lomondtest.Script(lomondtest.SendText("hello again")),         // 3 and after
	)
	b := &lomondtest.BackOff{}
	p := lomondtest.Persist(t, srv.Client(), nil, b.Option())
	if tx := p.WaitFor(t, "text", lomondtest.Timeout).(*events.Text); tx.Text != "hello" {
		t.Errorf("first text %q", tx.Text)
	}
	if tx := p.WaitFor(t, "text", lomondtest.Timeout).(*events.Text); tx.Text != "hello again" {
		t.Errorf("second text %q", tx.Text)
	}
	if err := p.Stop(t); err != nil {
		t.Fatal(err)
	}
	p.AssertSequence(t, "connecting connected rejected disconnected back_off"+
		" connecting connected ready text disconnected back_off"+
		" connecting connected ready text closed disconnected")
	if n := b.Attempts(); n != 2 {
		t.Errorf("Attempts() = %d, want 2", n)
	}
	for _, ev := range p.Events() {
		if bo, ok := ev.(*events.BackOff); ok && bo.Delay != 0 {
			t.Errorf("BackOff.Delay = %v, want 0", bo.Delay)
		}
	}
	elapsed := time.Since(start)
	t.Logf("three sessions, two reconnections: %v", elapsed)
	if elapsed > 2*time.Second {
		t.Errorf("the reconnect test took %v", elapsed)
	}
}

// TestRetryAfterCutShortByReconnect: a Retry-After sets the delay, and
// ws.Reconnect skips the wait.
func TestRetryAfterCutShortByReconnect(t *testing.T) {
	srv := lomondtest.NewServer(t,
		fault.Reject(http.StatusServiceUnavailable, "Retry-After", "30"),
		lomondtest.Echo(),
	)
	ws := srv.Client()
	b := &lomondtest.BackOff{}
	p := lomondtest.Persist(t, ws, nil, b.Option())
	bo := p.WaitFor(t, "back_off", lomondtest.Timeout).(*events.BackOff)
	if bo.Delay != 30*time.Second {
		t.Errorf("BackOff.Delay = %v, want the server's 30s", bo.Delay)
	}
	start := time.Now()
	if err := ws.Reconnect(); err != nil {
		t.Fatal(err)
	}
	p.WaitFor(t, "ready", lomondtest.Timeout)
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Reconnect took %v to end the wait", d)
	}
	if err := p.Stop(t); err != nil {
		t.Fatal(err)
	}
	if b.Attempts() != 0 {
		t.Errorf("Attempts() = %d, want 0: the Retry-After decided the delay", b.Attempts())
	}
	if b.Resets() != 2 {
		t.Errorf("Resets() = %d, want 2 (Persist's start, and Reconnect)", b.Resets())
	}
}

func TestBackOffDelayAndDirectPersist(t *testing.T) {
	srv := lomondtest.NewServer(t, lomondtest.Script(lomondtest.Accept(), fault.Drop()), lomondtest.SendText("back"))
	b := &lomondtest.BackOff{Delay: 20 * time.Millisecond}
	ws := srv.Client()
	rec := lomondtest.NewRecorder()
	ctx, cancel := context.WithTimeout(context.Background(), lomondtest.Timeout)
	defer cancel()
	h := lomond.Compose(lomond.HandlerFunc(func(ws *lomond.WebSocket, ev events.Event) {
		if ev.Name() == "text" {
			cancel()
		}
	}), rec)
	if err := ws.Persist(ctx, h, b.Option()); err != nil {
		t.Fatal(err)
	}
	rec.AssertSequence(t, "connecting connected ready disconnected back_off connecting connected ready text closed? disconnected")
	evs := rec.Events()
	bo := evs[4].(*events.BackOff)
	if bo.Delay != 20*time.Millisecond || b.Attempts() != 1 {
		t.Errorf("BackOff.Delay = %v, Attempts() = %d", bo.Delay, b.Attempts())
	}
	if gap := evs[5].ReceivedTime().Sub(bo.ReceivedTime()); gap < 15*time.Millisecond {
		t.Errorf("reconnected %v after BackOff, before the 20ms delay", gap)
	}
}

func TestPersistStopFailsOnAPanic(t *testing.T) {
	srv := lomondtest.NewServer(t)
	ft := newFakeT(t)
	p := lomondtest.Persist(t, srv.Client(), lomond.HandlerFunc(func(_ *lomond.WebSocket, ev events.Event) {
		if ev.Name() == "ready" {
			panic("boom")
		}
	}))
	msg := ft.fatalOf(func(tb testing.TB) { _ = p.Wait(tb) })
	mustContain(t, msg, "lomondtest: Persist: lomond: handler panicked: boom")

	ws := srv.Client()
	msg = ft.fatalOf(func(tb testing.TB) { lomondtest.Run(tb, ws, 42) })
	mustContain(t, msg, "lomondtest: Run: lomond: invalid handler")
}
