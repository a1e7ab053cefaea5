package testkit

import (
	"fmt"
	"strings"
	"testing"

	"github.com/lomond-go/lomond/events"
)

// EventRecorder records a session's events. Add it to a handler (or a
// range loop); the methods read and wait from any goroutine.
type EventRecorder struct {
	Recorder[events.Event]
}

// Names returns the Name of every event, in order.
func (r *EventRecorder) Names() []string { return Names(r.All()) }

// Count returns how many events named name were recorded.
func (r *EventRecorder) Count(name string) int { return count(r.All(), name) }

// WaitCount blocks until at least n events named name were recorded.
func (r *EventRecorder) WaitCount(t testing.TB, name string, n int) {
	t.Helper()
	r.Wait(t, fmt.Sprintf("%d %s events", n, name), func(evs []events.Event) bool { return count(evs, name) >= n })
}

// WaitFor blocks until an event of type E was recorded, and returns the
// first.
func WaitFor[E events.Event](t testing.TB, r *EventRecorder) E {
	t.Helper()
	var zero E
	evs := r.Wait(t, fmt.Sprintf("a %T event", zero), func(evs []events.Event) bool { return len(Of[E](evs)) > 0 })
	if found := Of[E](evs); len(found) > 0 {
		return found[0]
	}
	return zero
}

// Late returns how many events were recorded after the session's last
// event (the first Disconnected or ConnectFail): a session delivers none.
func (r *EventRecorder) Late() int {
	evs := r.All()
	for i, ev := range evs {
		switch ev.(type) {
		case *events.Disconnected, *events.ConnectFail:
			return len(evs) - i - 1
		}
	}
	return 0
}

// Lines renders every event with Describe.
func (r *EventRecorder) Lines() []string { return Lines(r.All()) }

// Of returns the events of type E in evs, in order.
func Of[E events.Event](evs []events.Event) []E {
	var out []E
	for _, ev := range evs {
		if e, ok := ev.(E); ok {
			out = append(out, e)
		}
	}
	return out
}

// All returns the recorded events of type E, in order.
func All[E events.Event](r *EventRecorder) []E { return Of[E](r.All()) }

// First returns the first recorded event of type E, failing the test if
// there is none.
func First[E events.Event](t testing.TB, r *EventRecorder) E {
	t.Helper()
	all := All[E](r)
	if len(all) == 0 {
		var zero E
		t.Fatalf("no %T event; events: %v", zero, r.Names())
		return zero
	}
	return all[0]
}

// Last returns the last recorded event of type E, failing the test if
// there is none.
func Last[E events.Event](t testing.TB, r *EventRecorder) E {
	t.Helper()
	all := All[E](r)
	if len(all) == 0 {
		var zero E
		t.Fatalf("no %T event in %q", zero, r.Lines())
		return zero
	}
	return all[len(all)-1]
}

// Names returns the Name of every event of evs.
func Names(evs []events.Event) []string {
	ns := make([]string, len(evs))
	for i, ev := range evs {
		ns[i] = ev.Name()
	}
	return ns
}

func count(evs []events.Event, name string) int {
	n := 0
	for _, ev := range evs {
		if ev.Name() == name {
			n++
		}
	}
	return n
}

// Lines renders each event of evs with Describe.
func Lines(evs []events.Event) []string {
	out := make([]string, len(evs))
	for i, ev := range evs {
		out[i] = Describe(ev)
	}
	return out
}

// ExpectLines checks the recorded events against want (lines as Describe
// renders them) and that their ReceivedTime never goes backwards.
func ExpectLines(t testing.TB, r *EventRecorder, want []string) {
	t.Helper()
	evs := r.All()
	got := Lines(evs)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("events:\n\t%s\nwant:\n\t%s", strings.Join(got, "\n\t"), strings.Join(want, "\n\t"))
	}
	CheckMonotone(t, evs)
}

// CheckMonotone checks that ReceivedTime is set and never goes backwards.
func CheckMonotone(t testing.TB, evs []events.Event) {
	t.Helper()
	for i := 1; i < len(evs); i++ {
		if evs[i].ReceivedTime().Before(evs[i-1].ReceivedTime()) {
			t.Errorf("event %d (%s) received at %v, before event %d (%s) at %v", i, evs[i].Name(),
				evs[i].ReceivedTime(), i-1, evs[i-1].Name(), evs[i-1].ReceivedTime())
		}
		if evs[i].ReceivedTime().IsZero() {
			t.Errorf("event %d (%s) has a zero ReceivedTime", i, evs[i].Name())
		}
	}
}

// Seq joins line groups into one expected sequence.
func Seq(groups ...[]string) []string {
	var out []string
	for _, g := range groups {
		out = append(out, g...)
	}
	return out
}

// Opening returns the lines of a session's opening up to the Poll that
// follows Ready, for a server that chose no subprotocol.
func Opening(url string) []string {
	return []string{
		"connecting " + url,
		"connected " + url + ` proxy=""`,
		`ready 101 protocol="" extensions=[]`,
		"poll",
	}
}

// Describe renders ev as its Name followed by its key attributes.
func Describe(ev events.Event) string {
	var attrs string
	switch e := ev.(type) {
	case *events.Connecting:
		attrs = e.URL
	case *events.Connected:
		attrs = fmt.Sprintf("%s proxy=%q", e.URL, e.Proxy)
	case *events.Rejected:
		attrs = fmt.Sprint(e.StatusCode)
	case *events.Ready:
		status := 0
		if e.Response != nil {
			status = e.Response.StatusCode
		}
		attrs = fmt.Sprintf("%d protocol=%q extensions=%q", status, e.Protocol, e.Extensions)
	case *events.Ping:
		attrs = fmt.Sprintf("%q", e.Data)
	case *events.Pong:
		attrs = fmt.Sprintf("%q rtt=%v", e.Data, e.RTT)
	case *events.Text:
		attrs = payloadAttr([]byte(e.Text))
	case *events.Binary:
		attrs = payloadAttr(e.Data)
	case *events.Closing:
		attrs = fmt.Sprintf("%d %q", e.Code, e.Reason)
	case *events.Closed:
		attrs = fmt.Sprintf("%d %q", e.Code, e.Reason)
	case *events.ProtocolError:
		attrs = fmt.Sprint(e.Code)
	case *events.Disconnected:
		attrs = fmt.Sprintf("graceful=%v err=%v", e.Graceful, e.Err != nil)
	}
	if attrs == "" {
		return ev.Name()
	}
	return ev.Name() + " " + attrs
}

func payloadAttr(p []byte) string {
	if len(p) > 40 {
		return fmt.Sprintf("<%d bytes>", len(p))
	}
	return fmt.Sprintf("%q", p)
}
