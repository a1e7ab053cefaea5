// Package eventlog writes lomond's events and outgoing messages to a
// log/slog logger, redacted. It is the code behind lomond.WithLogger and the
// plugins/logging package, kept here so that both use it without an import
// cycle.
package eventlog

import (
	"context"
	"encoding/hex"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/lomond-go/lomond/events"
	"github.com/lomond-go/lomond/internal/redact"
)

// Config is what can be tuned.
type Config struct {
	// Policy says which query parameters hold secrets.
	Policy redact.Policy
	// Payload is how many bytes of each message's payload to log, at the
	// message level; 0 logs sizes only.
	Payload int
	// MessageLevel is the level of messages in and out, pings, pongs and
	// polls (Debug by default).
	MessageLevel slog.Level
}

// Logger logs events. Its methods are safe for concurrent use.
type Logger struct {
	l   *slog.Logger
	cfg Config

	mu      sync.Mutex
	url     string    // the current attempt's URL, redacted
	secrets []string  // recent secrets, newest last
	readyAt time.Time // the current session's Ready
}

// maxSecrets bounds how many secrets a Logger remembers: those of the last
// few attempts, whose URLs errors and causes may still quote.
const maxSecrets = 32

// New returns a Logger writing to l.
func New(l *slog.Logger, cfg Config) *Logger {
	return &Logger{l: l, cfg: cfg}
}

// Levels of the records.
const (
	lifecycle = slog.LevelInfo
	failure   = slog.LevelWarn
)

var ctx = context.Background()

// Event logs ev: lifecycle at Info, failures at Warn, messages, pings,
// pongs and polls at the message level (Debug).
func (x *Logger) Event(ev events.Event) {
	x.track(ev) // even when not logged: later records need the URL and secrets
	level := x.levelOf(ev)
	if !x.l.Enabled(ctx, level) {
		return
	}
	attrs := make([]slog.Attr, 0, 8)
	attrs = append(attrs, slog.String("event", ev.Name()))
	url, secrets := x.state()
	if url != "" {
		attrs = append(attrs, slog.String("url", url))
	}
	scrub := func(s string) string { return x.cfg.Policy.Text(s, secrets) }
	msg := "websocket " + ev.Name()
	switch e := ev.(type) {
	case *events.Connecting:
		msg = "websocket connecting"
	case *events.ConnectFail:
		msg = "websocket connect failed"
		attrs = append(attrs, slog.String("reason", scrub(e.Reason)))
		attrs = appendErr(attrs, "err", e.Err, scrub)
	case *events.Connected:
		msg = "websocket connected"
		if e.Proxy != "" {
			p, _ := x.cfg.Policy.URL(e.Proxy)
			attrs = append(attrs, slog.String("proxy", p))
		}
	case *events.Rejected:
		msg = "websocket upgrade rejected"
		attrs = append(attrs, slog.Int("status", e.StatusCode), slog.String("reason", scrub(e.Reason)))
		if e.HasRetryAfter {
			attrs = append(attrs, slog.Duration("retry_after", e.RetryAfter))
		}
	case *events.Ready:
		msg = "websocket ready"
		if e.Protocol != "" {
			attrs = append(attrs, slog.String("protocol", e.Protocol))
		}
		if len(e.Extensions) > 0 {
			attrs = append(attrs, slog.Any("extensions", e.Extensions))
		}
	case *events.Poll:
		msg = "websocket poll"
	case *events.Ping:
		msg = "websocket ping received"
		attrs = append(attrs, slog.Int("size", len(e.Data)))
	case *events.Pong:
		msg = "websocket pong received"
		attrs = append(attrs, slog.Int("size", len(e.Data)))
		if e.RTT > 0 {
			attrs = append(attrs, slog.Duration("rtt", e.RTT))
		}
	case *events.Text:
		msg = "websocket text received"
		attrs = append(attrs, slog.Int("size", len(e.Text)))
		attrs = x.appendPayload(attrs, []byte(e.Text), true, scrub)
	case *events.Binary:
		msg = "websocket binary received"
		attrs = append(attrs, slog.Int("size", len(e.Data)))
		attrs = x.appendPayload(attrs, e.Data, false, scrub)
	case *events.Stream:
		// Its size is not known yet: the handler reads it as it arrives.
		msg = "websocket stream received"
		attrs = append(attrs, slog.Bool("binary", e.Binary), slog.Bool("compressed", e.Compressed))
	case *events.Closing:
		msg = "websocket closing"
		attrs = append(attrs, slog.Int("code", e.Code), slog.String("reason", scrub(e.Reason)))
	case *events.Closed:
		msg = "websocket closed"
		attrs = append(attrs, slog.Int("code", e.Code), slog.String("reason", scrub(e.Reason)))
	case *events.Unresponsive:
		msg = "websocket unresponsive"
		attrs = append(attrs, slog.Duration("timeout", e.Timeout))
	case *events.ProtocolError:
		msg = "websocket protocol error"
		attrs = append(attrs, slog.Int("code", e.Code))
		attrs = appendErr(attrs, "err", e.Err, scrub)
	case *events.Disconnected:
		msg = "websocket disconnected"
		attrs = append(attrs, slog.String("reason", scrub(e.Reason)), slog.Bool("graceful", e.Graceful))
		attrs = appendErr(attrs, "err", e.Err, scrub)
		if d := x.sessionLength(e.Received); d > 0 {
			attrs = append(attrs, slog.Duration("session", d))
		}
	case *events.BackOff:
		msg = "websocket back-off"
		attrs = append(attrs, slog.Duration("delay", e.Delay), slog.Int("attempt", e.Attempt))
		attrs = appendErr(attrs, "cause", e.Cause, scrub)
	}
	x.l.LogAttrs(ctx, level, msg, attrs...)
}

func (x *Logger) levelOf(ev events.Event) slog.Level {
	switch e := ev.(type) {
	case *events.ConnectFail, *events.Rejected, *events.Unresponsive, *events.ProtocolError:
		return failure
	case *events.Disconnected:
		if !e.Graceful {
			return failure
		}
	case *events.Poll, *events.Ping, *events.Pong, *events.Text, *events.Binary, *events.Stream:
		return x.cfg.MessageLevel
	}
	return lifecycle
}

// LearnURL remembers the secrets of the URL a session dials (events show it
// redacted), so that payloads quoting them are scrubbed too.
func (x *Logger) LearnURL(raw string) {
	_, secrets := x.cfg.Policy.URL(raw)
	x.mu.Lock()
	defer x.mu.Unlock()
	for _, s := range secrets {
		if !contains(x.secrets, s) {
			x.secrets = append(x.secrets, s)
		}
	}
}

// track remembers what later records need: the attempt's URL (redacted)
// and its secrets, secrets from the handshake's headers, and Ready's time.
func (x *Logger) track(ev events.Event) {
	var secrets []string
	switch e := ev.(type) {
	case *events.Connecting:
		url, sec := x.cfg.Policy.URL(e.URL)
		x.mu.Lock()
		x.url, x.readyAt = url, time.Time{}
		x.mu.Unlock()
		secrets = sec
	case *events.Connected:
		_, secrets = x.cfg.Policy.URL(e.Proxy)
	case *events.Ready:
		x.mu.Lock()
		x.readyAt = e.Received
		x.mu.Unlock()
		if e.Response != nil {
			secrets = headerSecrets(e.Response.Header)
			if e.Response.Request != nil {
				secrets = append(secrets, headerSecrets(e.Response.Request.Header)...)
			}
		}
	case *events.Rejected:
		secrets = headerSecrets(e.Header)
	default:
		return
	}
	if len(secrets) == 0 {
		return
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	for _, s := range secrets {
		if !contains(x.secrets, s) {
			x.secrets = append(x.secrets, s)
		}
	}
	if n := len(x.secrets) - maxSecrets; n > 0 {
		x.secrets = append(x.secrets[:0:0], x.secrets[n:]...)
	}
}

func contains(ss []string, s string) bool {
	for _, v := range ss {
		if v == s {
			return true
		}
	}
	return false
}

// headerSecrets returns the credentials in h: Authorization values (and
// the credentials after their scheme), cookie values, and the value of each
// Set-Cookie. Headers themselves are never logged; these are scrubbed from
// text that might quote them.
func headerSecrets(h http.Header) []string {
	var out []string
	for _, name := range []string{"Authorization", "Proxy-Authorization"} {
		for _, v := range h.Values(name) {
			out = append(out, v)
			if _, cred, ok := strings.Cut(v, " "); ok {
				out = append(out, strings.TrimSpace(cred))
			}
		}
	}
	for _, v := range h.Values("Cookie") {
		for _, pair := range strings.Split(v, ";") {
			if _, val, ok := strings.Cut(pair, "="); ok {
				out = append(out, strings.TrimSpace(val))
			}
		}
	}
	for _, v := range h.Values("Set-Cookie") {
		pair, _, _ := strings.Cut(v, ";")
		if _, val, ok := strings.Cut(pair, "="); ok {
			out = append(out, strings.TrimSpace(val))
		}
	}
	var kept []string
	for _, s := range out {
		if len(s) >= 4 {
			kept = append(kept, s)
		}
	}
	return kept
}

func (x *Logger) state() (string, []string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.url, x.secrets
}

func (x *Logger) sessionLength(end time.Time) time.Duration {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.readyAt.IsZero() {
		return 0
	}
	return end.Sub(x.readyAt)
}

func appendErr(attrs []slog.Attr, key string, err error, scrub func(string) string) []slog.Attr {
	if err == nil {
		return attrs
	}
	return append(attrs, slog.String(key, scrub(err.Error())))
}

// appendPayload adds the first cfg.Payload bytes of a payload, when asked
// for: text as text (scrubbed before it is cut, so that a secret across
// the cut is masked whole), binary as hex.
func (x *Logger) appendPayload(attrs []slog.Attr, p []byte, text bool, scrub func(string) string) []slog.Attr {
	n := x.cfg.Payload
	if n <= 0 || len(p) == 0 {
		return attrs
	}
	if !text {
		return append(attrs, slog.String("payload_hex", hex.EncodeToString(p[:min(n, len(p))])))
	}
	s := scrub(string(p[:min(n+scrubWindow, len(p))]))
	if len(s) > n {
		s = s[:n]
		for len(s) > 0 && !utf8.ValidString(s) {
			s = s[:len(s)-1] // do not split a character
		}
	}
	return append(attrs, slog.String("payload", s))
}

// scrubWindow is how far past the cut a payload is scrubbed: longer than
// any credential.
const scrubWindow = 512

// sendMessages are the records' messages by result.
var sendMessages = map[events.OutboundResult]string{
	events.Sent:    "websocket sent",
	events.Failed:  "websocket send failed",
	events.Queued:  "websocket send queued",
	events.Dropped: "websocket send dropped",
	events.Unsent:  "websocket send left unsent",
}

// Outbound logs an outgoing message or frame: sent and queued ones at the
// message level, failed, dropped and unsent ones at Warn.
func (x *Logger) Outbound(ev *events.Outbound) {
	level := x.cfg.MessageLevel
	switch ev.Result {
	case events.Failed, events.Dropped, events.Unsent:
		level = failure
	}
	if !x.l.Enabled(ctx, level) {
		return
	}
	url, secrets := x.state()
	scrub := func(s string) string { return x.cfg.Policy.Text(s, secrets) }
	attrs := make([]slog.Attr, 0, 10)
	attrs = append(attrs, slog.String("event", "send"))
	if url != "" {
		attrs = append(attrs, slog.String("url", url))
	}
	attrs = append(attrs,
		slog.String("type", ev.Kind.String()),
		slog.Int("size", ev.Size),
		slog.String("result", ev.Result.String()))
	if ev.Kind == events.KindClose {
		attrs = append(attrs, slog.Int("code", ev.Code), slog.String("reason", scrub(ev.Reason)))
	}
	if ev.Auto {
		attrs = append(attrs, slog.Bool("auto", true))
	}
	if ev.FromQueue {
		attrs = append(attrs, slog.Bool("from_queue", true))
	}
	attrs = appendErr(attrs, "err", ev.Err, scrub)
	if ev.Kind == events.KindText || ev.Kind == events.KindBinary {
		attrs = x.appendPayload(attrs, ev.Data, ev.Kind == events.KindText, scrub)
	}
	x.l.LogAttrs(ctx, level, sendMessages[ev.Result], attrs...)
}
