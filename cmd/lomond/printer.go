package main

import (
	"encoding/hex"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/lomond-go/lomond/events"
)

// printer writes everything the CLI shows. Messages go to stdout; in the
// default (human) mode the other events go to stderr, one line each; with
// --json every event is one JSON line on stdout. Each event is one Write,
// straight to the file: nothing waits in a buffer when stdout is a pipe.
type printer struct {
	outMu  sync.Mutex // one lock per stream: a reader that stops reading
	errMu  sync.Mutex // stdout must not block the lines on stderr
	stdout io.Writer
	stderr io.Writer
	json   bool
	quiet  bool
	color  bool   // stderr is a terminal and colour is allowed
	ttyOut bool   // stdout is a terminal: escape control characters in messages
	binary string // --binary mode: decides how messages are written
	sc     *scrubber
}

// ANSI colours for event names on a terminal.
const (
	colReset  = "\x1b[0m"
	colRed    = "\x1b[31m"
	colGreen  = "\x1b[32m"
	colYellow = "\x1b[33m"
	colCyan   = "\x1b[36m"
	colDim    = "\x1b[2m"
)

// colorAllowed applies the NO_COLOR convention (https://no-color.org) and
// TERM=dumb to a terminal.
func colorAllowed(tty bool, getenv func(string) string) bool {
	return tty && getenv("NO_COLOR") == "" && getenv("TERM") != "dumb"
}

// event shows a non-message event.
func (p *printer) event(ev events.Event) {
	if p.quiet {
		return
	}
	if p.json {
		p.write(p.stdout, p.jsonEvent(ev))
		return
	}
	label, color, detail := p.describe(ev)
	p.line(ev.ReceivedTime(), label, color, detail)
}

// message shows a Text or Binary event: its payload in full on stdout, or
// its JSON line. It returns the write error, so that the session can stop
// when nobody reads.
func (p *printer) message(ev events.Event) error {
	if p.json {
		return p.write(p.stdout, p.jsonEvent(ev))
	}
	var out []byte
	switch e := ev.(type) {
	case *events.Text:
		text := e.Text
		if p.ttyOut {
			text = escapeControls(text)
		}
		if p.binary == binaryRaw {
			out = []byte(text)
		} else {
			out = append([]byte(text), '\n')
		}
	case *events.Binary:
		if p.binary == binaryRaw {
			out = e.Data
		} else {
			out = append([]byte(hex.EncodeToString(e.Data)), '\n')
		}
	}
	return p.write(p.stdout, out)
}

// note tells what the client itself is doing (closing at the end of input,
// interrupted), in human mode only: JSON output carries only events.
func (p *printer) note(format string, args ...any) {
	if p.quiet || p.json {
		return
	}
	p.line(time.Now(), "*", colDim, fmt.Sprintf(format, args...))
}

// warn reports a problem that does not end the session, even with --quiet.
func (p *printer) warn(format string, args ...any) {
	p.write(p.stderr, []byte(p.paint(colYellow, "lomond: ")+p.sc.scrub(fmt.Sprintf(format, args...))+"\n"))
}

// fatal reports why the session failed: the last line, even with --quiet.
func (p *printer) fatal(msg string) {
	p.write(p.stderr, []byte(p.paint(colRed, "lomond: ")+p.sc.scrub(msg)+"\n"))
}

func (p *printer) line(t time.Time, label, color, detail string) {
	var b strings.Builder
	b.WriteString(p.paint(colDim, t.Format("15:04:05.000")))
	b.WriteByte(' ')
	b.WriteString(p.paint(color, label))
	if detail != "" {
		b.WriteByte(' ')
		b.WriteString(p.sc.scrub(detail))
	}
	b.WriteByte('\n')
	p.write(p.stderr, []byte(b.String()))
}

func (p *printer) paint(color, s string) string {
	if !p.color || color == "" {
		return s
	}
	return color + s + colReset
}

func (p *printer) write(w io.Writer, b []byte) error {
	mu := &p.errMu
	if w == p.stdout {
		mu = &p.outMu
	}
	mu.Lock()
	defer mu.Unlock()
	_, err := w.Write(b)
	return err
}

// describe returns an event's label, colour and details for its line.
// Strings that come from the server are quoted, so that they cannot move
// the cursor or fake a line.
func (p *printer) describe(ev events.Event) (label, color, detail string) {
	switch e := ev.(type) {
	case *events.Connecting:
		return "connecting", colCyan, p.sc.displayURL(e.URL)
	case *events.ConnectFail:
		return "connect failed", colRed, e.Reason
	case *events.Connected:
		if e.Proxy != "" {
			return "connected", colCyan, "through proxy " + p.sc.displayURL(e.Proxy)
		}
		return "connected", colCyan, ""
	case *events.Rejected:
		d := e.Status
		if e.StatusCode == 101 {
			d += "; " + e.Reason
		}
		if e.HasRetryAfter {
			d += fmt.Sprintf("; retry after %v", e.RetryAfter)
		}
		if body := firstLine(e.Body, 200); body != "" {
			d += "; " + body
		}
		return "rejected", colRed, d
	case *events.Ready:
		var parts []string
		if e.Protocol != "" {
			parts = append(parts, fmt.Sprintf("protocol %q", e.Protocol))
		}
		if len(e.Extensions) > 0 {
			parts = append(parts, "extensions "+strings.Join(e.Extensions, ", "))
		}
		return "ready", colGreen, strings.Join(parts, "; ")
	case *events.Poll:
		return "poll", colDim, ""
	case *events.Ping:
		return "ping", colDim, payloadSummary(e.Data)
	case *events.Pong:
		if e.RTT > 0 {
			// The answer to an automatic ping: its payload is the client's
			// own token, of no interest.
			return "pong", colDim, "rtt " + roundRTT(e.RTT).String()
		}
		return "pong", colDim, payloadSummary(e.Data)
	case *events.Closing:
		return "closing", colYellow, fmt.Sprintf("%d %q (the server is closing)", e.Code, e.Reason)
	case *events.Closed:
		return "closed", colGreen, fmt.Sprintf("%d %q", e.Code, e.Reason)
	case *events.Unresponsive:
		return "unresponsive", colRed, fmt.Sprintf("no pong within %v", e.Timeout)
	case *events.ProtocolError:
		return "protocol error", colRed, fmt.Sprintf("%v (sent close %d)", e.Err, e.Code)
	case *events.Disconnected:
		if e.Graceful {
			return "disconnected", colDim, e.Reason + " (graceful)"
		}
		return "disconnected", colRed, e.Reason
	case *events.BackOff:
		return "back-off", colYellow, fmt.Sprintf("reconnecting in %v (attempt %d)", e.Delay.Round(time.Millisecond), e.Attempt)
	}
	return ev.Name(), "", ev.String()
}

// roundRTT keeps three significant figures or so.
func roundRTT(d time.Duration) time.Duration {
	switch {
	case d >= time.Second:
		return d.Round(time.Millisecond)
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond)
	}
	return d.Round(time.Microsecond)
}

// payloadSummary shows a control payload: quoted when it is text, in hex
// otherwise.
func payloadSummary(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	if utf8.Valid(b) {
		return fmt.Sprintf("%q", b)
	}
	return "0x" + hex.EncodeToString(b)
}

// firstLine is the start of a response body, quoted, for a Rejected line.
func firstLine(body []byte, max int) string {
	s := strings.TrimSpace(string(body))
	if i := strings.IndexAny(s, "\r\n"); i >= 0 {
		s = s[:i]
	}
	if s == "" {
		return ""
	}
	if len(s) > max {
		s = strings.ToValidUTF8(s[:max], "") + "…"
	}
	return fmt.Sprintf("%q", s)
}

// escapeControls makes a message safe to print on a terminal: control
// characters other than tab and newline (escape sequences, carriage
// returns, C1 controls) are shown as \x.. or \u.... rather than obeyed.
func escapeControls(s string) string {
	clean := true
	for _, r := range s {
		if isControl(r) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		switch {
		case !isControl(r):
			b.WriteRune(r)
		case r < 0x80:
			fmt.Fprintf(&b, `\x%02x`, r)
		default:
			fmt.Fprintf(&b, `\u%04x`, r)
		}
	}
	return b.String()
}

func isControl(r rune) bool {
	return (r < 0x20 && r != '\t' && r != '\n') || r == 0x7f || (r >= 0x80 && r < 0xa0)
}
