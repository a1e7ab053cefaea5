package lomond

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lomond-go/lomond/events"
	"github.com/lomond-go/lomond/internal/testkit"
	"github.com/lomond-go/lomond/internal/wstest"
)

// Plugins over real sessions: a plugin with only OnText receives every
// text, composed with Compose (Run, Persist) or installed with WithPlugins
// (also for range loops), in order, before the handler.

// textPlugin is a plugin with OnText only, no BaseHandler.
type textPlugin struct {
	texts testkit.Recorder[string]
	log   *[]string // shared order log, if set
}

func (p *textPlugin) OnText(_ *WebSocket, ev *events.Text) {
	p.texts.Add(ev.Text)
	if p.log != nil {
		*p.log = append(*p.log, "plugin "+ev.Text)
	}
}

func (p *textPlugin) got() []string { return p.texts.All() }

// mixedStream is a server script: n texts, mixed with binaries, pings and
// pongs, then a close it starts (1000) and the client's reply.
func mixedStream(t *testing.T, n int) func(c *wstest.Conn) {
	return func(c *wstest.Conn) {
		if !testkit.Handshake(t, c) {
			return
		}
		var frames []wstest.Frame
		for i := 0; i < n; i++ {
			frames = append(frames, wstest.Text(fmt.Sprint("t", i)), wstest.Binary([]byte{byte(i)}))
			if i%7 == 0 {
				frames = append(frames, wstest.Ping([]byte("p")), wstest.Pong([]byte("u")))
			}
		}
		frames = append(frames, wstest.Close(StatusNormal, "done"))
		if !testkit.Write(t, c, frames...) {
			return
		}
		// The client's pongs and its close reply.
		for {
			f, err := c.ReadFrame()
			if err != nil || f.Opcode == wstest.OpClose {
				return
			}
		}
	}
}

func wantTexts(n int) []string {
	var want []string
	for i := 0; i < n; i++ {
		want = append(want, fmt.Sprint("t", i))
	}
	return want
}

// pluginApp is an application that records texts in the shared order log.
type pluginApp struct {
	BaseHandler
	log *[]string
}

func (a pluginApp) OnText(_ *WebSocket, ev *events.Text) { *a.log = append(*a.log, "app "+ev.Text) }

func TestTextOnlyPluginReceivesEveryTextThroughCompose(t *testing.T) {
	const n = 40
	srv, done := testkit.ScriptServer(t, mixedStream(t, n))
	ws := newTestWS(t, srv.URL())
	var order []string
	plugin := &textPlugin{log: &order}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := ws.Run(ctx, Compose(plugin, pluginApp{log: &order}))
	if CloseStatus(err) != StatusNormal {
		t.Fatalf("Run = %v, want the server's close 1000", err)
	}
	testkit.WaitScript(t, done)
	if got := plugin.got(); !reflect.DeepEqual(got, wantTexts(n)) {
		t.Fatalf("the OnText-only plugin got %d texts %q, want %d", len(got), got, n)
	}
	// Each text reached the plugin, then the application.
	for i := 0; i < n; i++ {
		want := []string{fmt.Sprint("plugin t", i), fmt.Sprint("app t", i)}
		if !reflect.DeepEqual(order[2*i:2*i+2], want) {
			t.Fatalf("order at text %d: %q, want %q", i, order[2*i:2*i+2], want)
		}
	}
}

func TestWithPluginsSeesEveryTextOfARangeLoop(t *testing.T) {
	const n = 25
	srv, done := testkit.ScriptServer(t, mixedStream(t, n))
	var order []string
	plugin := &textPlugin{log: &order}
	ws := newTestWS(t, srv.URL(), WithPlugins(plugin))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for ev := range ws.Events(ctx) {
		if ev, ok := ev.(*events.Text); ok {
			order = append(order, "loop "+ev.Text)
		}
	}
	testkit.WaitScript(t, done)
	if got := plugin.got(); !reflect.DeepEqual(got, wantTexts(n)) {
		t.Fatalf("the WithPlugins plugin got %q, want %d texts", got, n)
	}
	for i := 0; i < n; i++ {
		want := []string{fmt.Sprint("plugin t", i), fmt.Sprint("loop t", i)}
		if !reflect.DeepEqual(order[2*i:2*i+2], want) {
			t.Fatalf("order at text %d: %q, want %q (plugins before the loop)", i, order[2*i:2*i+2], want)
		}
	}
}

// backOffCounter is a plugin with only OnBackOff and OnReady.
type backOffCounter struct{ backOffs, readies atomic.Int32 }

func (p *backOffCounter) OnBackOff(*WebSocket, *events.BackOff) { p.backOffs.Add(1) }
func (p *backOffCounter) OnReady(*WebSocket, *events.Ready)     { p.readies.Add(1) }

// TestPluginsAcrossPersistSessions: plugins composed with the Persist
// handler and installed with WithPlugins see every session's texts and
// every BackOff.
func TestPluginsAcrossPersistSessions(t *testing.T) {
	testkit.NoLeak(t)
	const n, sessions = 10, 3
	srv, _ := testkit.ScriptServer(t, mixedStream(t, n))
	composed, installed := &textPlugin{}, &textPlugin{}
	lifecycle := &backOffCounter{}
	ws := newQuietWS(t, srv.URL(), WithPlugins(installed, lifecycle))
	ctx, cancel := context.WithTimeout(context.Background(), testkit.Timeout)
	defer cancel()
	readies := 0
	app := HandlerFunc(func(_ *WebSocket, ev events.Event) {
		if _, ok := ev.(*events.Disconnected); ok {
			if readies++; readies == sessions {
				cancel()
			}
		}
	})
	if err := ws.Persist(ctx, Compose(composed, app), constantBackOff(time.Millisecond)); err != nil {
		t.Fatalf("Persist = %v", err)
	}
	var want []string
	for i := 0; i < sessions; i++ {
		want = append(want, wantTexts(n)...)
	}
	for name, p := range map[string]*textPlugin{"composed": composed, "installed": installed} {
		if got := p.got(); !reflect.DeepEqual(got, want) {
			t.Errorf("%s plugin got %d texts, want %d over %d sessions", name, len(got), len(want), sessions)
		}
	}
	if r, b := lifecycle.readies.Load(), lifecycle.backOffs.Load(); r != sessions || b < sessions-1 {
		t.Errorf("OnReady/OnBackOff plugin saw %d readies and %d back-offs, want %d and at least %d", r, b, sessions, sessions-1)
	}
}

func TestWithPluginsRejectsMistakesInNew(t *testing.T) {
	_, err := New("ws://127.0.0.1:1/", WithPlugins(&textPlugin{}, textPlugin{}))
	if !errors.Is(err, ErrInvalidOption) || !errors.Is(err, ErrInvalidHandler) {
		t.Fatalf("New(WithPlugins(value with pointer methods)) = %v, want ErrInvalidOption and ErrInvalidHandler", err)
	}
	for _, want := range []string{"WithPlugins argument 1", "pass a pointer (&lomond.textPlugin{})"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
	if n := strings.Count(err.Error(), "lomond:"); n != 1 {
		t.Errorf("error %q says \"lomond:\" %d times", err, n)
	}
	if _, err := New("ws://127.0.0.1:1/", WithPlugins(nil)); !errors.Is(err, ErrInvalidOption) {
		t.Errorf("WithPlugins(nil) = %v, want ErrInvalidOption", err)
	}
}

// TestWithLoggerInstallsTheLoggingPlugin: WithLogger logs every event and
// every send of a session, redacted, through slog.NewJSONHandler, and the
// three records the dispatcher used to write itself are gone.
func TestWithLoggerInstallsTheLoggingPlugin(t *testing.T) {
	srv, done := testkit.ScriptServer(t, func(c *wstest.Conn) {
		if !testkit.Handshake(t, c) || !testkit.Write(t, c, wstest.Text("hi")) {
			return
		}
		if code, reason, err := c.ExpectClose(); err == nil {
			_ = c.WriteFrame(wstest.Close(code, reason))
		}
	})
	var out strings.Builder
	var mu sync.Mutex
	logger := slog.New(slog.NewJSONHandler(lockedWriter{&mu, &out}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ws := newTestWS(t, srv.URL()+"?token=SECRET-T0KEN", WithLogger(logger))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	app := HandlerFunc(func(ws *WebSocket, ev events.Event) {
		if _, ok := ev.(*events.Text); ok {
			_ = ws.Close(StatusNormal, "bye")
		}
	})
	if err := ws.Run(ctx, app); err != nil {
		t.Fatalf("Run = %v", err)
	}
	testkit.WaitScript(t, done)
	mu.Lock()
	text := out.String()
	mu.Unlock()
	var got []string
	for _, line := range strings.Split(strings.TrimSpace(text), "\n") {
		var r struct{ Level, Msg, Event, URL string }
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("record %q: %v", line, err)
		}
		got = append(got, r.Level+" "+r.Event)
		if !strings.HasSuffix(r.URL, "/?token=REDACTED") {
			t.Errorf("record %q: url not redacted", line)
		}
	}
	want := []string{"INFO connecting", "INFO connected", "INFO ready", "DEBUG poll", "DEBUG text",
		"DEBUG send", "INFO closed", "INFO disconnected"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("records %q, want %q", got, want)
	}
	if strings.Contains(text, "SECRET-T0KEN") || strings.Contains(text, `"lomond: `) {
		t.Errorf("log leaks the token or has the dispatcher's old records:\n%s", text)
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
