package lomond

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/lomond-go/lomond/events"
	"go.uber.org/goleak"
)

// What WithLogger logs, as README.md and docs/guide.md ("Logging") state it:
// Debug for the milestones of a session that went well, Info for failures,
// each record with the URL and no payload or header value.

// logRecorder is a slog.Handler that keeps every record.
type logRecorder struct {
	mu   sync.Mutex
	recs []logRecord
}

type logRecord struct {
	level slog.Level
	msg   string
	attrs []slog.Attr
}

// shape is the record's level, message and keys, in the order logged.
func (r logRecord) shape() string {
	s := r.level.String() + " " + r.msg
	for _, a := range r.attrs {
		s += " " + a.Key
	}
	return s
}

func (r logRecord) String() string {
	s := r.level.String() + " " + r.msg
	for _, a := range r.attrs {
		s += " " + a.String()
	}
	return s
}

func (r *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *logRecorder) WithAttrs([]slog.Attr) slog.Handler       { return r }
func (r *logRecorder) WithGroup(string) slog.Handler            { return r }

func (r *logRecorder) Handle(_ context.Context, rec slog.Record) error {
	lr := logRecord{level: rec.Level, msg: rec.Message}
	rec.Attrs(func(a slog.Attr) bool {
		lr.attrs = append(lr.attrs, a)
		return true
	})
	r.mu.Lock()
	r.recs = append(r.recs, lr)
	r.mu.Unlock()
	return nil
}

func (r *logRecorder) all() []logRecord {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.recs)
}

func TestLoggerRecords(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })

	stop := make(chan struct{})
	var wg sync.WaitGroup
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		wg.Add(1)
		defer wg.Done()
		if r.URL.Path == "/reject" {
			http.Error(w, "no", http.StatusForbidden)
			return
		}
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		if r.URL.Path == "/hold" { // answers nothing, not even a close
			<-stop
			return
		}
		for {
			typ, p, err := c.Read(context.Background())
			if err != nil || c.Write(context.Background(), typ, p) != nil {
				return
			}
		}
	}))
	t.Cleanup(func() {
		close(stop)
		srv.Close()
		wg.Wait()
	})
	base := "ws" + strings.TrimPrefix(srv.URL, "http")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := "ws://" + ln.Addr().String() + "/"
	ln.Close()

	const secret, payload = "Bearer s3cr3t-token", "payload-never-logged"
	run := func(url string) []logRecord {
		rec := &logRecorder{}
		ws, err := New(url, WithoutProxy(), WithLogger(slog.New(rec)), WithHeader("Authorization", secret),
			WithPollInterval(0), WithPingRate(0), WithCloseTimeout(50*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = ws.Run(ctx, HandlerFunc(func(ws *WebSocket, ev events.Event) {
			switch ev := ev.(type) {
			case *events.Ready:
				_ = ws.SendText(payload)
				if strings.HasSuffix(url, "/hold") {
					_ = ws.Close(StatusNormal, "")
				}
			case *events.Text:
				_ = ws.Close(StatusNormal, ev.Text) // the payload in a close reason
			}
		}))
		recs := rec.all()
		for _, r := range recs {
			if s := r.String(); strings.Contains(s, "s3cr3t") || strings.Contains(s, payload) {
				t.Errorf("a record holds a header value or a payload: %s", s)
			}
			if !slices.ContainsFunc(r.attrs, func(a slog.Attr) bool { return a.Key == "url" && a.Value.String() == url }) {
				t.Errorf("a record without the URL %s: %s", url, r)
			}
		}
		return recs
	}

	for _, tc := range []struct {
		name, url string
		want      []string
	}{
		{"graceful session", base + "/echo", []string{
			"DEBUG lomond: ready url protocol",
			"DEBUG lomond: disconnected url reason",
		}},
		{"refused connection", refused, []string{
			"INFO lomond: connect failed url err",
		}},
		{"rejected upgrade", base + "/reject", []string{
			"DEBUG lomond: disconnected url reason",
		}},
		{"close timeout", base + "/hold", []string{
			"DEBUG lomond: ready url protocol",
			"INFO lomond: disconnected url reason err",
		}},
	} {
		recs := run(tc.url)
		var got, full []string
		for _, r := range recs {
			got = append(got, r.shape())
			full = append(full, r.String())
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s: records\n  %s\nwant (level, message, keys)\n  %s", tc.name,
				strings.Join(full, "\n  "), strings.Join(tc.want, "\n  "))
		}
	}
}
