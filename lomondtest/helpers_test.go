package lomondtest_test

import (
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
)

// fakeT stands in for the testing.T given to the kit, to check what the kit
// reports when a test goes wrong: it records Errorf and Fatalf (Fatalf ends
// the calling goroutine, as testing.T's does) and hands the rest to the
// real test.
type fakeT struct {
	testing.TB
	mu     sync.Mutex
	errors []string
	logs   []string
	fatal  string
}

func newFakeT(t *testing.T) *fakeT { return &fakeT{TB: t} }

func (f *fakeT) Helper() {}

func (f *fakeT) Errorf(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.errors = append(f.errors, fmt.Sprintf(format, args...))
}

func (f *fakeT) Logf(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.logs = append(f.logs, fmt.Sprintf(format, args...))
}

func (f *fakeT) Log(args ...any) { f.Logf("%s", fmt.Sprint(args...)) }

// Failed reports whether the kit has reported a failure to f.
func (f *fakeT) Failed() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.errors) > 0 || f.fatal != ""
}

// logged returns everything logged so far, one message a line.
func (f *fakeT) logged() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return strings.Join(f.logs, "\n")
}

func (f *fakeT) Error(args ...any) { f.Errorf("%s", fmt.Sprint(args...)) }

func (f *fakeT) Fatalf(format string, args ...any) {
	f.mu.Lock()
	f.fatal = fmt.Sprintf(format, args...)
	f.mu.Unlock()
	runtime.Goexit()
}

func (f *fakeT) Fatal(args ...any) { f.Fatalf("%s", fmt.Sprint(args...)) }

// reported returns everything reported so far, one message a line.
func (f *fakeT) reported() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	all := append([]string(nil), f.errors...)
	if f.fatal != "" {
		all = append(all, f.fatal)
	}
	return strings.Join(all, "\n")
}

// fatalOf runs fn on its own goroutine with f and returns the message of
// the Fatalf that ended it ("" if fn returned normally).
func (f *fakeT) fatalOf(fn func(tb testing.TB)) string {
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(f)
	}()
	<-done
	f.mu.Lock()
	defer f.mu.Unlock()
	msg := f.fatal
	f.fatal = ""
	return msg
}

// mustContain fails t unless got contains every one of wants.
func mustContain(t *testing.T, got string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(got, w) {
			t.Errorf("message lacks %q; it is:\n%s", w, got)
		}
	}
}
