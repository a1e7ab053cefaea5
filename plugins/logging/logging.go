// Package logging is lomond's logging plugin: it writes every event of a
// WebSocket, and every outgoing message and frame, to a log/slog logger as
// structured records, with credentials redacted.
//
//	ws, err := lomond.New(url, lomond.WithPlugins(logging.New(logger)))
//
// Levels: the lifecycle (connecting, connected, ready, closing, closed, a
// graceful disconnect, back-off) at Info; failures (connect failed,
// rejected, unresponsive, protocol error, a disconnect that was not
// graceful; a send that failed, was dropped or was left unsent) at Warn;
// messages in and out, pings, pongs and polls at Debug (WithMessageLevel),
// with their size and never their payload unless WithPayloads asks for it.
//
// Every record has "event" (the event's name, or "send") and "url"; the
// other attributes are structured fields: reason, err, status, retry_after,
// protocol, extensions, size, rtt, code, timeout, graceful, session (how
// long the session was ready), delay, attempt, cause, and for sends type,
// result, auto and from_queue. Durations are slog.Duration values, which
// slog.JSONHandler writes as nanoseconds: WithDurations(DurationSeconds)
// logs seconds instead.
//
// Redaction is guaranteed, whatever the options: URLs lose their userinfo
// and the values of query parameters whose names suggest credentials
// (token, key, secret, password, auth, sig, session, jwt, credential,
// cookie, as parts of the name; WithRedactedQuery adds names); headers
// are never logged; and those values, along with any Authorization,
// Cookie and Set-Cookie value seen in the handshake, are replaced by
// "REDACTED" in every string the plugin logs (errors and reasons quote
// URLs). Secrets shorter than four bytes are masked in URLs but not
// searched for in free text.
//
// lomond.WithLogger(l) installs this plugin with its defaults.
package logging

import (
	"log/slog"

	"github.com/lomond-go/lomond"
	"github.com/lomond-go/lomond/events"
	"github.com/lomond-go/lomond/internal/eventlog"
	"github.com/lomond-go/lomond/internal/redact"
)

// Plugin logs events and sends. It implements lomond.Observer and
// lomond.SendObserver; install it with lomond.WithPlugins or compose it with
// lomond.Compose. Its methods are safe for concurrent use. Give each
// WebSocket its own Plugin: it remembers the URL of the WebSocket's current
// attempt, to log it with every record.
type Plugin struct {
	l *eventlog.Logger
}

// Option configures New.
type Option func(*config)

// config is what the options set.
type config struct {
	eventlog.Config
	durations DurationFormat
}

// WithPayloads logs up to maxBytes of each message's payload, in and out
// (text as "payload", binary as hex in "payload_hex"), with the secrets the
// plugin knows of still redacted. Payloads may hold anything: ask for them
// only where that is acceptable. 0 (the default) logs sizes only.
func WithPayloads(maxBytes int) Option {
	return func(c *config) { c.Payload = max(maxBytes, 0) }
}

// WithRedactedQuery adds query parameter names (compared without regard to
// case) whose values are redacted in URLs and wherever else they appear; "*"
// redacts every query value.
func WithRedactedQuery(names ...string) Option {
	return func(c *config) { c.Policy.Names = append(c.Policy.Names, names...) }
}

// WithMessageLevel sets the level of the records of messages in and out,
// pings, pongs and polls (default slog.LevelDebug).
func WithMessageLevel(level slog.Level) Option {
	return func(c *config) { c.MessageLevel = level }
}

// DurationFormat is how the plugin logs durations (delay, rtt, timeout,
// session, retry_after).
type DurationFormat int

// Duration formats.
const (
	// DurationValue logs slog.Duration values, which each handler writes
	// its own way: slog.TextHandler as "1.5s", slog.JSONHandler as an
	// integer number of nanoseconds (1500000000). The default.
	DurationValue DurationFormat = iota
	// DurationSeconds logs a float64 number of seconds: 1.5 in every
	// handler, "delay":1.5 in JSON.
	DurationSeconds
	// DurationString logs Go's duration string: "1.5s" in every handler.
	DurationString
)

// WithDurations sets how durations are logged, for handlers (JSON ones
// above all) that should not write them as nanoseconds. The keys stay the
// same.
func WithDurations(f DurationFormat) Option {
	return func(c *config) { c.durations = f }
}

// New returns a plugin logging to l (slog.Default() if l is nil).
func New(l *slog.Logger, options ...Option) *Plugin {
	if l == nil {
		l = slog.Default()
	}
	cfg := config{Config: eventlog.Config{MessageLevel: slog.LevelDebug, Policy: redact.Policy{}}}
	for _, o := range options {
		if o != nil {
			o(&cfg)
		}
	}
	if cfg.durations == DurationSeconds || cfg.durations == DurationString {
		l = slog.New(&durationHandler{next: l.Handler(), format: cfg.durations})
	}
	return &Plugin{l: eventlog.New(l, cfg.Config)}
}

// OnEvent logs ev.
func (p *Plugin) OnEvent(ws *lomond.WebSocket, ev events.Event) {
	if _, ok := ev.(*events.Connecting); ok {
		p.l.LearnURL(ws.URL()) // the event's URL is redacted already
	}
	p.l.Event(ev)
}

// OnSend logs an outgoing message or frame.
func (p *Plugin) OnSend(_ *lomond.WebSocket, ev *events.Outbound) { p.l.Outbound(ev) }
