package lomondtest_test

import (
	"strings"
	"testing"

	"github.com/lomond-go/lomond"
	"github.com/lomond-go/lomond/events"
	"github.com/lomond-go/lomond/lomondtest"
)

// sayer sends one text when ready.
type sayer struct {
	lomond.BaseHandler
	say string
}

func (s sayer) OnReady(ws *lomond.WebSocket, _ *events.Ready) { _ = ws.SendText(s.say) }

// A script that fails under Persist is reported once, with the events that
// led to it, and Persist stops instead of reconnecting every millisecond
// to fail the same way.
func TestPersistStopsOnceTheTestHasFailed(t *testing.T) {
	ft := newFakeT(t)
	srv := lomondtest.NewServer(ft, lomondtest.Script(lomondtest.Expect(lomondtest.Text("hello"))))
	p := lomondtest.Persist(ft, srv.Client(), sayer{say: "hullo"})
	msg := ft.fatalOf(func(tb testing.TB) { p.WaitFor(tb, "text", lomondtest.Timeout) })
	mustContain(t, msg, "waiting for a \"text\" event after event 0: Persist stopped reconnecting after event 6, because the test had failed")
	if strings.Contains(msg, "events:") {
		t.Errorf("the failed wait lists the events again:\n%s", msg)
	}
	if err := p.Stop(t); err != nil {
		t.Errorf("Stop = %v", err)
	}
	reported := ft.reported()
	if n := strings.Count(reported, "lomondtest: connection"); n != 1 {
		t.Errorf("%d script failures reported, want 1:\n%s", n, reported)
	}
	mustContain(t, reported, `lomondtest: connection 1: step 1: expected text "hello", got text "hullo"`)
	logged := ft.logged()
	mustContain(t, logged, "Persist stops here", "Ready(", "->  6 Disconnected(")
	if n := strings.Count(logged, "events:"); n != 1 {
		t.Errorf("the events are listed %d times, want once:\n%s", n, logged)
	}
	if n := len(srv.Conns()); n != 1 {
		t.Errorf("the client connected %d times, want once", n)
	}
	p.AssertSequence(t, "connecting connected ready closing closed disconnected")
}

// A server whose script fails the same way on every connection reports
// the failure once, and the repeats in one line when it closes.
func TestServerReportsARepeatedFailureOnce(t *testing.T) {
	ft := newFakeT(t)
	srv := lomondtest.NewServer(ft, lomondtest.Script(lomondtest.Expect(lomondtest.Text("hello"))))
	for range 5 {
		lomondtest.Run(t, srv.Client(), sayer{say: "hullo"})
	}
	srv.Close()
	reported := ft.reported()
	if n := strings.Count(reported, `expected text "hello", got text "hullo"`); n != 1 {
		t.Errorf("the failure is reported %d times, want once:\n%s", n, reported)
	}
	mustContain(t, reported, "lomondtest: 4 more connections (up to 5) failed the same way as connection 1")
}
