package logging_test

import (
	"context"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/lomond-go/lomond"
	"github.com/lomond-go/lomond/events"
	"github.com/lomond-go/lomond/plugins/logging"
)

// TestDurations logs a back-off of 20 ms through slog's JSON handler, in a
// group: nanoseconds by default (slog's way), seconds or a duration string
// with WithDurations.
func TestDurations(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := "ws://" + ln.Addr().String() + "/"
	ln.Close()
	for _, c := range []struct {
		opts []logging.Option
		want any
	}{
		{nil, float64(20 * time.Millisecond)},
		{[]logging.Option{logging.WithDurations(logging.DurationValue)}, float64(20 * time.Millisecond)},
		{[]logging.Option{logging.WithDurations(logging.DurationSeconds)}, 0.02},
		{[]logging.Option{logging.WithDurations(logging.DurationString)}, "20ms"},
	} {
		var out syncBuffer
		logger := slog.New(slog.NewJSONHandler(&out, nil)).With("app", "feed").WithGroup("ws")
		ws, err := lomond.New(refused, lomond.WithoutProxy(), lomond.WithPlugins(logging.New(logger, c.opts...)))
		if err != nil {
			t.Fatal(err)
		}
		err = ws.Persist(context.Background(), lomond.BaseHandler{}, lomond.WithMaxAttempts(2),
			lomond.WithBackOff(func() backoff.BackOff { return &backoff.ConstantBackOff{Interval: 20 * time.Millisecond} }))
		if err == nil {
			t.Fatal("Persist to a refused port succeeded")
		}
		found := false
		for _, r := range records(t, out.String()) {
			group, _ := r["ws"].(map[string]any)
			if r["app"] != "feed" || group == nil {
				t.Fatalf("record without the logger's attribute and group: %v", r)
			}
			if group["event"] != events.NameBackOff {
				continue
			}
			found = true
			if group["delay"] != c.want {
				t.Errorf("WithDurations %v: delay %#v, want %#v", c.opts, group["delay"], c.want)
			}
		}
		if !found {
			t.Fatalf("no back-off record:\n%s", out.String())
		}
	}
}
