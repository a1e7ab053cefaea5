package lomond

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/coder/websocket"
	"github.com/lomond-go/lomond/events"
	"go.uber.org/goleak"
)

// The two range-loop forms agree: leaving Events or PersistEvents early is a
// clean end (Err is nil), and a loop that ends by itself reports why.

// greetServer is a coder/websocket server that sends "hi" on every
// connection and then echoes until the client closes. It returns the ws://
// URL; the server is stopped when the test ends.
func greetServer(t *testing.T) string {
	t.Helper()
	var wg sync.WaitGroup
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		wg.Add(1)
		defer wg.Done()
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		ctx := context.Background()
		if c.Write(ctx, websocket.MessageText, []byte("hi")) != nil {
			return
		}
		for {
			typ, p, err := c.Read(ctx)
			if err != nil || c.Write(ctx, typ, p) != nil {
				return
			}
		}
	}))
	t.Cleanup(func() {
		srv.Close()
		wg.Wait()
	})
	return "ws" + strings.TrimPrefix(srv.URL, "http")
}

func loopWS(t *testing.T, url string) *WebSocket {
	t.Helper()
	ws, err := New(url, WithoutProxy(), WithPollInterval(0), WithPingRate(0), WithCloseTimeout(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	return ws
}

func TestLoopsAgreeOnBreak(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) }) // after the server's cleanup
	url := greetServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	fast := WithBackOff(func() backoff.BackOff { return &backoff.ConstantBackOff{Interval: time.Millisecond} })

	loops := map[string]func(ws *WebSocket) func(func(events.Event) bool){
		"Events":        func(ws *WebSocket) func(func(events.Event) bool) { return ws.Events(ctx) },
		"PersistEvents": func(ws *WebSocket) func(func(events.Event) bool) { return ws.PersistEvents(ctx, fast) },
	}
	for name, loop := range loops {
		t.Run(name, func(t *testing.T) {
			ws := loopWS(t, url)
			ws.setErr(errors.New("an earlier session's failure")) // must not survive the loop
			var got string
			for ev := range loop(ws) {
				if txt, ok := ev.(*events.Text); ok {
					got = txt.Text
					break
				}
			}
			if got != "hi" {
				t.Fatalf("the loop ended before the server's message (got %q); Err = %v", got, ws.Err())
			}
			if err := ws.Err(); err != nil {
				t.Errorf("Err after leaving the %s loop = %v, want nil", name, err)
			}
			if st := ws.State(); st != StateIdle {
				t.Errorf("State after the loop = %v, want idle", st)
			}
		})
	}
}

// TestLoopsReportTheirOwnEnd: a loop that ends by itself still reports why,
// so the nil after a break is not a lost error.
func TestLoopsReportTheirOwnEnd(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) }) // after the server's cleanup
	url := greetServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	ws := loopWS(t, url)
	for ev := range ws.Events(ctx) {
		if _, ok := ev.(*events.Text); ok {
			_ = ws.Close(4000, "") // the server echoes the code: a clean client close
		}
	}
	if err := ws.Err(); err != nil {
		t.Errorf("Err after a client close = %v, want nil", err)
	}

	// PersistEvents stopped by its retry policy: Err says so.
	for ev := range ws.PersistEvents(ctx, WithMaxAttempts(1)) {
		if _, ok := ev.(*events.Text); ok {
			_ = ws.Close(StatusNormal, "")
		}
	}
	if err := ws.Err(); !errors.Is(err, ErrMaxAttempts) {
		t.Errorf("Err after PersistEvents hit its attempt limit = %v, want ErrMaxAttempts", err)
	}
}
