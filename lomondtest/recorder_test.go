package lomondtest_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/lomond-go/lomond"
	"github.com/lomond-go/lomond/events"
	"github.com/lomond-go/lomond/lomondtest"
	"github.com/lomond-go/lomond/lomondtest/fault"
)

// app counts texts; the recorder put after it must see each event after
// app did.
type app struct {
	lomond.BaseHandler
	texts int
}

func (a *app) OnText(ws *lomond.WebSocket, ev *events.Text) {
	if a.texts++; a.texts == 2 {
		_ = ws.Close(1000, "")
	}
}

func TestRecorderAsAPluginWithCompose(t *testing.T) {
	srv := lomondtest.NewServer(t, lomondtest.Script(lomondtest.SendText("1"), lomondtest.SendText("2")))
	a := &app{}
	seen := 0
	rec := lomondtest.NewRecorder()
	check := lomond.HandlerFunc(func(_ *lomond.WebSocket, ev events.Event) {
		if ev.Name() == "text" {
			seen++
			if a.texts != seen {
				t.Errorf("text %d reached the plugin before the app", seen)
			}
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), lomondtest.Timeout)
	defer cancel()
	if err := srv.Client().Run(ctx, lomond.Compose(a, check, rec)); err != nil {
		t.Fatal(err)
	}
	rec.AssertSequence(t, "connecting connected ready text text closed disconnected")
	if got := strings.Join(rec.Names(), " "); got != "connecting connected ready text text closed disconnected" {
		t.Errorf("Names() = %s", got)
	}
	var zero lomondtest.Recorder // the zero value works
	if err := srv.Client().Run(ctx, lomond.Compose(&app{}, &zero)); err != nil {
		t.Fatal(err)
	}
	zero.AssertSequence(t, "connecting connected ready text text closed disconnected")
}

func TestWaitForReadsLikeAStream(t *testing.T) {
	srv := lomondtest.NewServer(t, lomondtest.Script(lomondtest.SendText("a"), lomondtest.SendText("b"),
		lomondtest.SendText("c"), lomondtest.CloseWith(1000, "")))
	p := lomondtest.Persist(t, srv.Client(), nil, lomond.WithMaxAttempts(1))
	first := p.WaitFor(t, "text", lomondtest.Timeout).(*events.Text)
	second := p.WaitFor(t, "text", lomondtest.Timeout).(*events.Text)
	third := p.WaitFor(t, func(ev events.Event) bool {
		tx, ok := ev.(*events.Text)
		return ok && tx.Text == "c"
	}, lomondtest.Timeout)
	if first.Text != "a" || second.Text != "b" || third.(*events.Text).Text != "c" {
		t.Errorf("WaitFor returned %v, %v, %v", first, second, third)
	}
	closed := p.WaitFor(t, events.NameClosed, lomondtest.Timeout)
	if closed.Name() != "closed" {
		t.Errorf("WaitFor(closed) = %v", closed)
	}
	if err := p.Wait(t); err == nil {
		t.Error("Persist with one attempt ended without an error")
	}
}

func TestWaitForFailures(t *testing.T) {
	srv := lomondtest.NewServer(t, lomondtest.Script(lomondtest.CloseWith(1000, "")))
	rec := lomondtest.Run(t, srv.Client(), nil)
	ft := newFakeT(t)
	for _, tt := range []struct {
		match any
		want  []string
	}{
		{"text", []string{`waiting for a "text" event after event 0: the session ended`,
			"1 Connecting(", "6 Disconnected("}},
		{"txt", []string{`WaitFor: unknown event name "txt"`, "back_off"}},
		{42, []string{"match is int; want an event name (string) or a func(events.Event) bool"}},
		{(func(events.Event) bool)(nil), []string{"nil predicate"}},
	} {
		msg := ft.fatalOf(func(tb testing.TB) { rec.WaitFor(tb, tt.match, time.Second) })
		mustContain(t, msg, tt.want...)
	}

	// A session still running: WaitFor gives up after its timeout.
	srv2 := lomondtest.NewServer(t, lomondtest.Script())
	p := lomondtest.Persist(t, srv2.Client(), nil)
	p.WaitFor(t, "ready", lomondtest.Timeout)
	start := time.Now()
	msg := ft.fatalOf(func(tb testing.TB) { p.WaitFor(tb, "text", 50*time.Millisecond) })
	mustContain(t, msg, `waiting for a "text" event after event 3: none within 50ms`, "(3 before)", "(none since)")
	if d := time.Since(start); d < 50*time.Millisecond || d > 5*time.Second {
		t.Errorf("WaitFor gave up after %v", d)
	}
	if err := p.Stop(t); err != nil {
		t.Fatal(err)
	}
}

func TestAssertSequenceDiff(t *testing.T) {
	srv := lomondtest.NewServer(t, lomondtest.Script(lomondtest.CloseWith(4001, "go away")))
	rec := lomondtest.Run(t, srv.Client(), nil)
	ft := newFakeT(t)
	msg := ft.fatalOf(func(tb testing.TB) {
		rec.AssertSequence(tb, "connecting connected ready text closed disconnected")
	})
	mustContain(t, msg,
		"the events do not follow the sequence",
		"want: connecting connected ready text closed disconnected",
		"got:  connecting connected ready closing closed disconnected",
		"at event 4: want text, got closing",
		"->  4 Closing(code=4001, reason='go away')")

	msg = ft.fatalOf(func(tb testing.TB) { rec.AssertSequence(tb, "connecting connected ready closing closed") })
	mustContain(t, msg, "at event 6: want the end, got disconnected")
	msg = ft.fatalOf(func(tb testing.TB) {
		rec.AssertSequence(tb, "connecting connected ready closing closed disconnected back_off")
	})
	mustContain(t, msg, "after event 6: want back_off, but the session ended")
	msg = ft.fatalOf(func(tb testing.TB) { rec.AssertSequence(tb, "connecting (ready") })
	mustContain(t, msg, `AssertSequence("connecting (ready"): the group opened at offset 11 is not closed`)
}

func TestAssertSequenceWaitsForARunningSession(t *testing.T) {
	srv := lomondtest.NewServer(t, lomondtest.Script(lomondtest.Pause(30*time.Millisecond), lomondtest.SendText("hi")))
	p := lomondtest.Persist(t, srv.Client(), nil)
	p.AssertSequence(t, "connecting connected ready text") // waits for the text
	if err := p.Stop(t); err != nil {
		t.Fatal(err)
	}

	defer lomondtest.SetWaitLimit(50 * time.Millisecond)()
	srv2 := lomondtest.NewServer(t, lomondtest.Script())
	p2 := lomondtest.Persist(t, srv2.Client(), nil)
	ft := newFakeT(t)
	msg := ft.fatalOf(func(tb testing.TB) { p2.AssertSequence(tb, "connecting connected ready text") })
	mustContain(t, msg, "after event 3: want text, but none came within 50ms")
	if err := p2.Stop(t); err != nil {
		t.Fatal(err)
	}
}

func TestLongEventListsAreCut(t *testing.T) {
	srv := lomondtest.NewServer(t)
	srv.Stop() // every attempt refused
	p := lomondtest.Persist(t, srv.Client(), nil)
	for i := 0; i < 60; i++ {
		p.WaitFor(t, "connect_fail", lomondtest.Timeout)
	}
	if err := p.Stop(t); err != nil {
		t.Fatal(err)
	}
	ft := newFakeT(t)
	msg := ft.fatalOf(func(tb testing.TB) { p.AssertSequence(tb, "connecting connected") })
	mustContain(t, msg, "at event 2: want connected, got connect_fail", "->  2 ConnectFail(", "... (")
	if lines := strings.Count(msg, "\n"); lines > 50 {
		t.Errorf("the message has %d lines for %d events", lines, len(p.Events()))
	}
	if !strings.Contains(msg, fmt.Sprintf("%d BackOff", len(p.Events()))) &&
		!strings.Contains(msg, "more)") {
		t.Errorf("the message neither ends with the last event nor says how many follow:\n%s", msg)
	}
}

// A Recorder composed by the test, not by Run, knows when ws.Run has
// returned: a failing wait fails at once instead of waiting its timeout.
func TestComposedRecorderStopsWaitingWhenTheRunEnds(t *testing.T) {
	srv := lomondtest.NewServer(t, lomondtest.Script(
		lomondtest.Expect(lomondtest.Text("hello")),
		lomondtest.SendText("hi"),
		lomondtest.ExpectClose(1000, "thanks"),
	))
	rec := lomondtest.NewRecorder()
	if err := srv.Client().Run(lomondtest.Context(t), lomond.Compose(&greeter{}, rec)); err != nil {
		t.Fatal(err)
	}
	ft := newFakeT(t)
	start := time.Now()
	msg := ft.fatalOf(func(tb testing.TB) { rec.WaitFor(tb, "binary", lomondtest.Timeout) })
	mustContain(t, msg, `waiting for a "binary" event after event 0: the session ended`)
	msg = ft.fatalOf(func(tb testing.TB) {
		rec.AssertSequence(tb, "connecting connected ready text closed disconnected back_off")
	})
	mustContain(t, msg, "after event 6: want back_off, but the session ended")
	if took := time.Since(start); took > lomondtest.Timeout/2 {
		t.Errorf("the failing waits took %v; they must fail well within Timeout (%v)", took, lomondtest.Timeout)
	}
}

// Between the sessions of a Persist the test composes itself, a Recorder
// does not take the run as over: the back_off after each session says
// more is coming, however long the wait.
func TestComposedRecorderWaitsThroughAPersistBackOff(t *testing.T) {
	srv := lomondtest.NewServer(t,
		lomondtest.Script(lomondtest.Accept(), fault.Drop()),
		lomondtest.SendText("hi"),
	)
	rec := lomondtest.NewRecorder()
	b := &lomondtest.BackOff{Delay: 500 * time.Millisecond} // longer than a Recorder's settling
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Client().Persist(ctx, lomond.Compose(rec), b.Option()) }()
	rec.WaitFor(t, "text", lomondtest.Timeout)
	rec.AssertSequence(t, "connecting connected ready disconnected back_off connecting connected ready text")
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Persist = %v", err)
	}
}

// WaitEvent returns the event typed, reads the recording like a stream as
// WaitFor does, and names the type it waited for when none comes.
func TestWaitEvent(t *testing.T) {
	srv := lomondtest.NewServer(t, lomondtest.Script(
		lomondtest.SendText("one"),
		lomondtest.SendText("two"),
		lomondtest.CloseWith(4000, "done"),
	))
	rec := lomondtest.Run(t, srv.Client(), nil)
	if got := lomondtest.WaitEvent[*events.Text](t, rec, time.Second).Text; got != "one" {
		t.Errorf("first text = %q", got)
	}
	if got := lomondtest.WaitEvent[*events.Text](t, rec, time.Second).Text; got != "two" {
		t.Errorf("second text = %q", got)
	}
	if got := lomondtest.WaitEvent[*events.Closed](t, rec, time.Second).Code; got != 4000 {
		t.Errorf("Closed.Code = %d", got)
	}
	ft := newFakeT(t)
	msg := ft.fatalOf(func(tb testing.TB) { lomondtest.WaitEvent[*events.Binary](tb, rec, time.Second) })
	mustContain(t, msg, "waiting for a *events.Binary event after event", "the session ended")
}
