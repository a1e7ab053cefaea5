package lomond

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/lomond-go/lomond/events"
	"github.com/lomond-go/lomond/internal/testkit"
	"github.com/lomond-go/lomond/internal/wstest"
)

// Tests of errors.go: what the library's error types say.

// TestPanicErrorOneLine: PanicError.Error is one line; the stack stays in
// Stack and in %+v.
func TestPanicErrorOneLine(t *testing.T) {
	srv := wstest.NewServer(t, testkit.AnswerClose)
	_, err := runRecorded(t, mustNew(t, srv.URL(), WithoutProxy()), func(_ *WebSocket, ev events.Event) {
		if ev.Name() == events.NameReady {
			panic("boom\nsecond line")
		}
	})
	var pe *PanicError
	if !errors.As(err, &pe) {
		t.Fatalf("Run = %v, want a *PanicError", err)
	}
	msg := pe.Error()
	if strings.ContainsAny(msg, "\r\n") || !strings.HasPrefix(msg, "lomond: handler panicked: ") || !strings.Contains(msg, "boom") {
		t.Errorf("Error() = %q, want one line naming the panic", msg)
	}
	if len(pe.Stack) == 0 {
		t.Error("Stack is empty")
	}
	full := fmt.Sprintf("%+v", pe)
	if !strings.HasPrefix(full, msg+"\n") || !strings.Contains(full, "goroutine") {
		t.Errorf("%%+v = %q, want the message then the stack", full)
	}
	if s := fmt.Sprintf("%v", pe); s != msg {
		t.Errorf("%%v = %q, want Error()", s)
	}
}
