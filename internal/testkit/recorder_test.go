package testkit

import (
	"slices"
	"sync"
	"testing"

	"github.com/lomond-go/lomond/events"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// fakeT records a fatal failure instead of ending the test.
type fakeT struct {
	testing.TB
	failed bool
}

func (f *fakeT) Helper() {}

func (f *fakeT) Fatalf(format string, args ...any) { f.failed = true }

func TestRecorder(t *testing.T) {
	t.Run("KeepsOrderFromManyGoroutines", func(t *testing.T) {
		var r Recorder[int]
		var wg sync.WaitGroup
		for g := 0; g < 4; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < 100; i++ {
					r.Add(i)
				}
			}()
		}
		wg.Wait()
		if r.Len() != 400 {
			t.Errorf("Len = %d, want 400", r.Len())
		}
	})
	t.Run("WaitReturnsOnceTheConditionHolds", func(t *testing.T) {
		var r Recorder[string]
		go func() {
			for _, s := range []string{"a", "b", "c"} {
				r.Add(s)
			}
		}()
		got := r.Wait(t, "c", func(s []string) bool { return slices.Contains(s, "c") })
		if !slices.Equal(got, []string{"a", "b", "c"}) {
			t.Errorf("Wait = %q", got)
		}
	})
	t.Run("AllIsACopyAndResetForgets", func(t *testing.T) {
		var r Recorder[string]
		r.Add("a")
		all := r.All()
		all[0] = "changed"
		if r.All()[0] != "a" {
			t.Error("All shares its slice with the recorder")
		}
		r.Reset()
		if r.Len() != 0 {
			t.Errorf("Len after Reset = %d", r.Len())
		}
	})
}

func TestEventRecorder(t *testing.T) {
	var r EventRecorder
	r.Add(&events.Connecting{URL: "ws://127.0.0.1/"})
	r.Add(&events.Text{Text: "one"})
	r.Add(&events.Text{Text: "two"})
	r.Add(&events.Disconnected{Graceful: true})
	t.Run("NamesCountAndTypedAccess", func(t *testing.T) {
		if got := r.Names(); !slices.Equal(got, []string{"connecting", "text", "text", "disconnected"}) {
			t.Errorf("Names = %q", got)
		}
		if r.Count("text") != 2 {
			t.Errorf("Count(text) = %d", r.Count("text"))
		}
		if First[*events.Text](t, &r).Text != "one" || Last[*events.Text](t, &r).Text != "two" {
			t.Error("First or Last picked the wrong Text")
		}
		if WaitFor[*events.Disconnected](t, &r) == nil {
			t.Error("WaitFor returned nil")
		}
	})
	t.Run("LateCountsEventsAfterTheSessionsEnd", func(t *testing.T) {
		if r.Late() != 0 {
			t.Errorf("Late = %d before any late event", r.Late())
		}
		var late EventRecorder
		for _, ev := range r.All() {
			late.Add(ev)
		}
		late.Add(&events.Poll{})
		if late.Late() != 1 {
			t.Errorf("Late = %d, want 1", late.Late())
		}
	})
	t.Run("FirstOfAMissingTypeFails", func(t *testing.T) {
		ft := &fakeT{TB: t}
		First[*events.Pong](ft, &r)
		if !ft.failed {
			t.Error("First of a missing event type did not fail the test")
		}
	})
	t.Run("DescribeRendersKeyAttributes", func(t *testing.T) {
		if got := Lines(r.All()); !slices.Equal(got, []string{
			"connecting ws://127.0.0.1/", `text "one"`, `text "two"`, "disconnected graceful=true err=false",
		}) {
			t.Errorf("Lines = %q", got)
		}
	})
}
