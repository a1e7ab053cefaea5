package eventlog

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/lomond-go/lomond/events"
)

// TestPayloadCutNeverSplitsASecret: a secret across the cut is masked whole,
// not left half visible.
func TestPayloadCutNeverSplitsASecret(t *testing.T) {
	var out bytes.Buffer
	l := New(slog.New(slog.NewTextHandler(&out, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Config{Payload: 12, MessageLevel: slog.LevelDebug})
	l.Event(&events.Connecting{URL: "wss://h/?token=SECRETVALUE"})
	l.Event(&events.Text{Text: "token: SECRETVALUE, and more"})
	if strings.Contains(out.String(), "SECR") {
		t.Errorf("part of the secret was logged:\n%s", out.String())
	}
	if !strings.Contains(out.String(), `payload="token: REDAC"`) {
		t.Errorf("payload not cut after redaction:\n%s", out.String())
	}
}

// TestLevels: the level of each kind of record.
func TestLevels(t *testing.T) {
	var out bytes.Buffer
	l := New(slog.New(slog.NewTextHandler(&out, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Config{MessageLevel: slog.LevelDebug})
	for _, c := range []struct {
		ev    events.Event
		level string
	}{
		{&events.Ready{}, "INFO"}, {&events.Text{}, "DEBUG"}, {&events.Unresponsive{}, "WARN"},
		{&events.Disconnected{Graceful: true}, "INFO"}, {&events.Disconnected{}, "WARN"},
	} {
		out.Reset()
		l.Event(c.ev)
		if !strings.Contains(out.String(), "level="+c.level+" ") {
			t.Errorf("%s logged as %q, want level %s", c.ev.Name(), out.String(), c.level)
		}
	}
	for res, level := range map[events.OutboundResult]string{
		events.Sent: "DEBUG", events.Queued: "DEBUG", events.Failed: "WARN", events.Dropped: "WARN", events.Unsent: "WARN",
	} {
		out.Reset()
		l.Outbound(&events.Outbound{Kind: events.KindText, Result: res})
		if !strings.Contains(out.String(), "level="+level+" ") {
			t.Errorf("send %s logged as %q, want level %s", res, out.String(), level)
		}
	}
}
