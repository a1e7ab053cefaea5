package lomondtest

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lomond-go/lomond"
	"github.com/lomond-go/lomond/events"
)

// Recorder records the events of a session (or of every session of a
// Persist), for a test to wait on and assert. It is a complete handler
// (the four EventHandler methods of its lomond.BaseHandler do nothing) and
// an Observer, so it works alone or as a plugin:
//
//	ws.Run(ctx, lomond.Compose(app, rec)) // rec sees each event after app
//
// Put it after the application handler, so that when WaitFor returns an
// event, the application has handled it. Run and Persist do this for you.
// The zero value is ready to use; its methods are safe for concurrent use.
//
// Waits stop waiting once no more events can come. Under Run and Persist,
// that is when they return. A Recorder you compose yourself cannot see
// ws.Run return, so it takes the run as over when a session has ended
// (disconnected, or connect_fail), no back_off followed it (Persist
// reconnecting), and the WebSocket has stayed idle for a moment (about 200 ms):
// a failing WaitFor or AssertSequence then fails within that moment
// instead of waiting out its timeout.
type Recorder struct {
	lomond.BaseHandler // OnEvent records every event: the rest do nothing

	mu       sync.Mutex
	evs      []events.Event
	changed  chan struct{} // closed and replaced on every event
	cursor   int           // WaitFor looks from here
	finished bool          // no more events will come (Run or Persist returned)
	managed  bool          // Run or Persist marks the end: no guessing
	ws       *lomond.WebSocket
	lastAt   time.Time // when the last event came
	// stopped, when Persist stopped because the test had failed, says so
	// to the waits that then fail.
	stopped string
}

// settle is how long a Recorder that is not under Run or Persist waits,
// after a session ended with no back_off and the WebSocket went idle,
// before it takes the run as over. Persist emits back_off at once after a
// session ends, so a Persist still running is never mistaken for one that
// returned.
const settle = 200 * time.Millisecond

// NewRecorder returns an empty Recorder.
func NewRecorder() *Recorder { return &Recorder{} }

// OnEvent records ev.
func (r *Recorder) OnEvent(ws *lomond.WebSocket, ev events.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.evs = append(r.evs, ev)
	r.ws, r.lastAt = ws, time.Now()
	r.wakeLocked()
}

func (r *Recorder) wakeLocked() {
	if r.changed != nil {
		close(r.changed)
	}
	r.changed = make(chan struct{})
}

// waitChanLocked returns a channel closed at the next event.
func (r *Recorder) waitChanLocked() <-chan struct{} {
	if r.changed == nil {
		r.changed = make(chan struct{})
	}
	return r.changed
}

// finish marks the recording complete: waits stop waiting for more.
func (r *Recorder) finish() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.finished = true
	r.wakeLocked()
}

// endedLocked reports whether no more events will come: Run or Persist
// returned, or (for a Recorder they do not manage) the last session ended
// with nothing after it, and the WebSocket has been idle since for settle.
func (r *Recorder) endedLocked() bool {
	if r.finished {
		return true
	}
	if r.managed || len(r.evs) == 0 || r.ws == nil {
		return false
	}
	switch r.evs[len(r.evs)-1].Name() {
	case events.NameDisconnected, events.NameConnectFail:
	default:
		return false
	}
	return r.ws.State() == lomond.StateIdle && time.Since(r.lastAt) >= settle
}

// pollEnd returns a channel that ticks while a wait must look again
// whether the run is over (a Recorder Run and Persist do not manage), or
// nil.
func (r *Recorder) pollEnd() (<-chan time.Time, func()) {
	r.mu.Lock()
	managed := r.managed
	r.mu.Unlock()
	if managed {
		return nil, func() {}
	}
	tick := time.NewTicker(settle / 4)
	return tick.C, tick.Stop
}

// Events returns the events recorded so far, in order.
func (r *Recorder) Events() []events.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]events.Event(nil), r.evs...)
}

// Names returns the names of the events recorded so far, in order.
func (r *Recorder) Names() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return namesOf(r.evs)
}

func namesOf(evs []events.Event) []string {
	out := make([]string, len(evs))
	for i, ev := range evs {
		out[i] = ev.Name()
	}
	return out
}

// WaitFor waits up to timeout for an event and returns it. match is an
// event name ("ready", or events.NameReady) or a func(events.Event) bool.
// WaitFor reads the recording like a stream: it returns the first matching
// event after the one the previous WaitFor returned, so calling
// WaitFor(t, "ready", d) twice waits for a second connection. It fails the
// test, listing the events so far, if none comes in time (or the session
// ended without one).
func (r *Recorder) WaitFor(t testing.TB, match any, timeout time.Duration) events.Event {
	t.Helper()
	var pred func(events.Event) bool
	var what string
	switch m := match.(type) {
	case string:
		if !eventNames[m] {
			t.Fatalf("lomondtest: WaitFor: unknown event name %q (the names are: %s)", m, knownNames())
		}
		pred, what = func(ev events.Event) bool { return ev.Name() == m }, fmt.Sprintf("a %q event", m)
	case func(events.Event) bool:
		if m == nil {
			t.Fatal("lomondtest: WaitFor: nil predicate")
		}
		pred, what = m, "an event matching the predicate"
	default:
		t.Fatalf("lomondtest: WaitFor: match is %T; want an event name (string) or a func(events.Event) bool", match)
	}
	return r.wait(t, pred, what, timeout)
}

// WaitEvent is WaitFor for an event type: it waits up to timeout for the
// next event of type E after the one the previous wait returned, and
// returns it typed, so a test reads its fields without an assertion:
//
//	bo := lomondtest.WaitEvent[*events.BackOff](t, p.Recorder, time.Second)
//	if bo.Delay != 2*time.Minute { ... }
//
// (A method cannot have type parameters, so it is a function.)
func WaitEvent[E events.Event](t testing.TB, r *Recorder, timeout time.Duration) E {
	t.Helper()
	var zero E
	ev := r.wait(t, func(ev events.Event) bool {
		_, ok := ev.(E)
		return ok
	}, fmt.Sprintf("a %T event", zero), timeout)
	if ev == nil {
		return zero // t.Fatalf did not end the goroutine (a fake testing.TB)
	}
	return ev.(E)
}

// wait is WaitFor's loop: the first event after the cursor that pred
// accepts.
func (r *Recorder) wait(t testing.TB, pred func(events.Event) bool, what string, timeout time.Duration) events.Event {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	poll, stopPoll := r.pollEnd()
	defer stopPoll()
	for {
		r.mu.Lock()
		for i := r.cursor; i < len(r.evs); i++ {
			if pred(r.evs[i]) {
				r.cursor = i + 1
				ev := r.evs[i]
				r.mu.Unlock()
				return ev
			}
		}
		from, evs, ended, stopped, changed := r.cursor, append([]events.Event(nil), r.evs...), r.endedLocked(), r.stopped, r.waitChanLocked()
		r.mu.Unlock()
		why := ""
		switch {
		case stopped != "":
			// Persist has listed the events when it stopped: say why only.
			t.Fatalf("lomondtest: waiting for %s after event %d: %s", what, from, stopped)
			return nil
		case ended:
			why = "the session ended"
		default:
			select {
			case <-changed:
				continue
			case <-poll:
				continue
			case <-deadline.C:
				why = fmt.Sprintf("none within %v", timeout)
			}
		}
		t.Fatalf("lomondtest: waiting for %s after event %d: %s\n%s", what, from, why, listEvents(evs, from, -1))
		return nil
	}
}

// AssertSequence checks the names of all the events recorded against
// pattern, and fails the test with a readable diff if they differ. The
// pattern lists event names separated by spaces; a name may be followed by
// "?" (optional), "*" (any number), "+" (one or more), "{n}" (exactly n),
// "{n,}" (n or more) or "{n,m}" (n to m, at most 1000), parentheses group
// names for a quantifier, and "|" separates alternatives:
//
//	rec.AssertSequence(t, "connecting connected ready text closed disconnected")
//	rec.AssertSequence(t, "(connecting connect_fail back_off)+ connecting connected ready")
//	rec.AssertSequence(t, "connecting connected ready (text|binary)* closing? closed disconnected")
//	rec.AssertSequence(t, "connecting connected ready text{3} closed disconnected")
//
// An unknown event name or a malformed pattern fails the test, so a typo
// cannot pass. Matching takes time linear in the number of events,
// whatever the pattern.
//
// While the events so far could still become the sequence (a Persist still
// running), it waits for more, up to Timeout; it does not wait once the run
// has ended (see Recorder).
func (r *Recorder) AssertSequence(t testing.TB, pattern string) {
	t.Helper()
	nodes, err := parsePattern(pattern)
	var prog *program
	if err == nil {
		prog, err = compilePattern(nodes)
	}
	if err != nil {
		t.Fatalf("lomondtest: AssertSequence(%q): %v", pattern, err)
	}
	deadline := time.NewTimer(waitLimit)
	defer deadline.Stop()
	poll, stopPoll := r.pollEnd()
	defer stopPoll()
	for {
		r.mu.Lock()
		evs, finished, changed := append([]events.Event(nil), r.evs...), r.endedLocked(), r.waitChanLocked()
		r.mu.Unlock()
		names := namesOf(evs)
		ok, at, wanted, _ := matchPattern(prog, names)
		if ok {
			return
		}
		incomplete := at == len(names)
		if incomplete && !finished {
			select {
			case <-changed:
				continue
			case <-poll:
				continue
			case <-deadline.C:
			}
		}
		t.Fatal(sequenceDiff(pattern, evs, at, wanted, incomplete, finished))
		return
	}
}

// sequenceDiff explains where events part from pattern.
func sequenceDiff(pattern string, evs []events.Event, at int, wanted []string, incomplete, finished bool) string {
	var b strings.Builder
	b.WriteString("lomondtest: the events do not follow the sequence\n")
	fmt.Fprintf(&b, "\twant: %s\n", strings.Join(strings.Fields(pattern), " "))
	fmt.Fprintf(&b, "\tgot:  %s\n", shortNames(namesOf(evs)))
	want := make([]string, len(wanted))
	for i, w := range wanted {
		want[i] = w
		if w == "" {
			want[i] = "the end"
		}
	}
	switch {
	case incomplete && finished:
		fmt.Fprintf(&b, "\tafter event %d: want %s, but the session ended\n", at, strings.Join(want, " or "))
	case incomplete:
		fmt.Fprintf(&b, "\tafter event %d: want %s, but none came within %v\n", at, strings.Join(want, " or "), waitLimit)
	default:
		fmt.Fprintf(&b, "\tat event %d: want %s, got %s\n", at+1, strings.Join(want, " or "), evs[at].Name())
	}
	b.WriteString(listEvents(evs, 0, at))
	return b.String()
}

// shortNames joins names, cutting the middle of a long list.
func shortNames(names []string) string {
	const head, tail = 24, 6
	if len(names) <= head+tail+1 {
		return strings.Join(names, " ")
	}
	return fmt.Sprintf("%s ... (%d more) ... %s", strings.Join(names[:head], " "),
		len(names)-head-tail, strings.Join(names[len(names)-tail:], " "))
}

// Of a long list (a client refused in a loop records thousands of events),
// listEvents shows the first headListed and a window of tailListed around
// the mark, or at the end.
const (
	headListed = 10
	tailListed = 30
)

// listEvents lists evs from index from, one a line, numbered from 1, with
// an arrow at index mark.
func listEvents(evs []events.Event, from, mark int) string {
	if len(evs) == 0 {
		return "\t(no events)"
	}
	var b strings.Builder
	b.WriteString("\tevents:")
	if from > 0 {
		fmt.Fprintf(&b, "\n\t   (%d before)", from)
	}
	line := func(i int) {
		arrow := "  "
		if i == mark {
			arrow = "->"
		}
		fmt.Fprintf(&b, "\n\t%s %2d %v", arrow, i+1, evs[i])
	}
	window := from
	if len(evs)-from > headListed+tailListed {
		focus := len(evs) - tailListed
		if mark >= from {
			focus = min(max(mark-tailListed/2, from), len(evs)-tailListed)
		}
		if focus > from+headListed {
			for i := from; i < from+headListed; i++ {
				line(i)
			}
			fmt.Fprintf(&b, "\n\t   ... (%d events)", focus-from-headListed)
			window = focus
		}
	}
	for i := window; i < len(evs) && i < window+tailListed+headListed; i++ {
		line(i)
	}
	if end := window + tailListed + headListed; end < len(evs) {
		fmt.Fprintf(&b, "\n\t   ... (%d more)", len(evs)-end)
	}
	if from >= len(evs) {
		b.WriteString("\n\t   (none since)")
	}
	return b.String()
}
