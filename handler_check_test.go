package lomond

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"
)

// Tests of handler_check.go: handlers that cannot run fail clearly, before
// any I/O, naming the fix.

// TestUnusableHandlersFailClearly: Run and Persist with HandlerFunc(nil),
// Compose() of nothing, or a Compose holding a nil HandlerFunc must fail
// with ErrInvalidHandler before dialing.
func TestUnusableHandlersFailClearly(t *testing.T) {
	dialed := false
	ws := mustNew(t, "ws://127.0.0.1:1/", WithDialer(func(context.Context, string, string) (net.Conn, error) {
		dialed = true
		return nil, errors.New("test: must not dial")
	}), WithoutProxy())
	cases := []struct {
		name string
		h    EventHandler
		want string
	}{
		{"nil HandlerFunc", HandlerFunc(nil), "nil HandlerFunc"},
		{"Compose of nothing", Compose(), "Compose of no handler"},
		{"Compose holding a nil HandlerFunc", Compose(BaseHandler{}, HandlerFunc(nil)), "nil HandlerFunc"},
		{"nested Compose of nothing", Compose(BaseHandler{}, Compose()), "Compose of no handler"},
	}
	// A bounded context: an unusable handler that is run anyway must not
	// hang the test.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for _, c := range cases {
		for name, run := range map[string]func() error{
			"Run":     func() error { return ws.Run(ctx, c.h) },
			"Persist": func() error { return ws.Persist(ctx, c.h) },
		} {
			err := run()
			if !errors.Is(err, ErrInvalidHandler) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("%s(%s) = %v, want ErrInvalidHandler saying %q", name, c.name, err, c.want)
			}
		}
	}
	if dialed {
		t.Error("an unusable handler was run")
	}
}

func TestDiscoverInvalid(t *testing.T) {
	cases := []struct {
		name string
		h    any
		want string
	}{
		{"nil", nil, "nil handler"},
		{"struct", struct{}{}, "struct {} has no handler method"},
		{"int", 42, "int has no handler method"},
		{"nil pointer", (*embeddedBase)(nil), "nil *lomond.embeddedBase"},
		{"nil HandlerFunc", HandlerFunc(nil), "nil HandlerFunc"},
		{"empty Compose", Compose(), "Compose with no handlers"},
		{"nested empty Compose", Compose(BaseHandler{}, Compose()), "Compose argument 1: Compose with no handlers"},
		{"Compose nil part", Compose(onlyObserver{callRecorder{new(callLog), "a"}}, nil), "Compose argument 1"},
		{"Compose empty part", Compose(BaseHandler{}, struct{}{}), "Compose argument 1"},
		{"Compose string part", Compose("oops"), "Compose argument 0"},
		{"nested Compose bad part", Compose(Compose(BaseHandler{}, 3.5)), "Compose argument 0"},
	}
	for _, c := range cases {
		_, err := discover(c.h)
		if !errors.Is(err, ErrInvalidHandler) {
			t.Errorf("%s: discover err = %v, want ErrInvalidHandler", c.name, err)
			continue
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %q does not mention %q", c.name, err, c.want)
		}
		if n := strings.Count(err.Error(), "lomond:"); n != 1 {
			t.Errorf("%s: error %q says \"lomond:\" %d times, want once", c.name, err, n)
		}
	}
}

// TestRunRejectsInvalidHandlerBeforeIO checks that Run validates the
// handler before dialing: the dialer must never be called, and the
// WebSocket stays idle and reusable.
func TestRunRejectsInvalidHandlerBeforeIO(t *testing.T) {
	dialed := false
	ws, err := New("ws://127.0.0.1:1/", WithDialer(func(context.Context, string, string) (net.Conn, error) {
		dialed = true
		return nil, errors.New("test: must not dial")
	}), WithDialTimeout(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		h    EventHandler
	}{
		{"nil", nil},
		{"Compose of nothing useful", Compose(struct{}{})},
		{"Compose with nil", Compose(nil)},
		{"Compose with a bad second part", Compose(BaseHandler{}, 7)},
	}
	for _, c := range cases {
		err := ws.Run(context.Background(), c.h)
		if !errors.Is(err, ErrInvalidHandler) {
			t.Errorf("%s: Run = %v, want an error wrapping ErrInvalidHandler", c.name, err)
		}
		if st := ws.State(); st != StateIdle {
			t.Errorf("%s: State after Run = %v, want idle", c.name, st)
		}
	}
	if dialed {
		t.Error("Run dialed before validating the handler")
	}
}

func TestPointerReceiverMistakeNamesTheFix(t *testing.T) {
	cases := []struct {
		name string
		h    any
		want []string
	}{
		{"value with a pointer-receiver hook", pointerApp{}, []string{
			"lomond: invalid handler: OnDisconnected has a pointer receiver and would never be called on a lomond.pointerApp value: pass a pointer (&lomond.pointerApp{})"}},
		{"Compose part with pointer methods only", Compose(onlyObserver{callRecorder{new(callLog), "a"}}, pointerPlugin{}), []string{
			"lomond: invalid handler: Compose argument 1: OnPong, OnText have pointer receivers", "pass a pointer (&lomond.pointerPlugin{})"}},
		{"non-struct type", pointerCount(0), []string{"pass a pointer (a *lomond.pointerCount)"}},
		{"wrong signature", wrongSignature{}, []string{
			"lomond.wrongSignature.OnPong has the signature func(*lomond.WebSocket, events.Pong), want func(*lomond.WebSocket, *events.Pong)"}},
	}
	for _, c := range cases {
		_, err := discover(c.h)
		if !errors.Is(err, ErrInvalidHandler) {
			t.Errorf("%s: discover = %v, want ErrInvalidHandler", c.name, err)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q\ndoes not contain %q", c.name, err, w)
			}
		}
		if n := strings.Count(err.Error(), "lomond:"); n != 1 {
			t.Errorf("%s: error %q says \"lomond:\" %d times", c.name, err, n)
		}
	}
	// The pointers are fine.
	for _, h := range []any{&pointerApp{}, &pointerPlugin{}, new(pointerCount)} {
		if _, err := discover(h); err != nil {
			t.Errorf("discover(%T): %v", h, err)
		}
	}
}

// TestRunAndPersistRejectPointerMistakeBeforeIO: the mistake is an error
// from Run and Persist before anything is dialed.
func TestRunAndPersistRejectPointerMistakeBeforeIO(t *testing.T) {
	dialed := false
	ws, err := New("ws://127.0.0.1:1/", WithDialer(func(context.Context, string, string) (net.Conn, error) {
		dialed = true
		return nil, errors.New("test: must not dial")
	}))
	if err != nil {
		t.Fatal(err)
	}
	if err := ws.Run(context.Background(), pointerApp{}); !errors.Is(err, ErrInvalidHandler) || !strings.Contains(err.Error(), "pass a pointer") {
		t.Errorf("Run(value) = %v, want ErrInvalidHandler naming the fix", err)
	}
	if err := ws.Persist(context.Background(), Compose(pointerPlugin{}, BaseHandler{})); !errors.Is(err, ErrInvalidHandler) || !strings.Contains(err.Error(), "pass a pointer") {
		t.Errorf("Persist(Compose(value)) = %v, want ErrInvalidHandler naming the fix", err)
	}
	if dialed {
		t.Error("a handler mistake was found only after dialing")
	}
}

// TestStreamHandlerChecks: a plugin cannot read streams (New says so), nor
// can two parts of a Compose; an OnStream with the wrong signature is
// caught by Run.
func TestStreamHandlerChecks(t *testing.T) {
	sink := &streamSink{got: make(chan streamRead, 1)}
	if _, err := New("ws://127.0.0.1:1/", WithPlugins(sink)); !errors.Is(err, ErrInvalidOption) || !strings.Contains(err.Error(), "StreamHandler") {
		t.Errorf("New with a StreamHandler plugin = %v, want ErrInvalidOption naming StreamHandler", err)
	}
	ws := newTestWS(t, "ws://127.0.0.1:1/")
	if err := ws.Run(context.Background(), Compose(sink, &streamSink{})); !errors.Is(err, ErrInvalidHandler) || !strings.Contains(err.Error(), "StreamHandler") {
		t.Errorf("Run with two StreamHandlers = %v, want ErrInvalidHandler", err)
	}
	if err := ws.Run(context.Background(), Compose(badStream{})); !errors.Is(err, ErrInvalidHandler) || !strings.Contains(err.Error(), "OnStream has the signature") {
		t.Errorf("Run with a wrong OnStream = %v, want ErrInvalidHandler naming OnStream", err)
	}
}
