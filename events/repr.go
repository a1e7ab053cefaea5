package events

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// truncateAt is how many characters or bytes of a payload String shows,
// as in lomond's reprs.
const truncateAt = 24

// pyQuoteChar is the quote Python's repr picks: ' unless s holds ' and no ".
func pyQuoteChar(s string) byte {
	if strings.IndexByte(s, '\'') >= 0 && strings.IndexByte(s, '"') < 0 {
		return '"'
	}
	return '\''
}

// pyEscape writes the escape Python's repr uses for c (\t, \n, \r or
// \xNN) and reports whether c needed one.
func pyEscape(b *strings.Builder, c rune) bool {
	switch {
	case c == '\t':
		b.WriteString(`\t`)
	case c == '\n':
		b.WriteString(`\n`)
	case c == '\r':
		b.WriteString(`\r`)
	case c < 0x20 || c == 0x7f:
		fmt.Fprintf(b, `\x%02x`, c)
	default:
		return false
	}
	return true
}

// quote renders s the way Python's repr renders a str.
func quote(s string) string {
	q := pyQuoteChar(s)
	var b strings.Builder
	b.WriteByte(q)
	writeEscaped(&b, s, q)
	b.WriteByte(q)
	return b.String()
}

// escape renders s as quote does, without the quotes: for text that is
// shown bare, such as an HTTP status line, but that a server controls.
func escape(s string) string {
	var b strings.Builder
	writeEscaped(&b, s, 0)
	return b.String()
}

// writeEscaped writes s with Python repr's escapes; q is the quote to
// escape, or 0 for none.
func writeEscaped(b *strings.Builder, s string, q byte) {
	for i, w := 0, 0; i < len(s); i += w {
		var r rune
		r, w = utf8.DecodeRuneInString(s[i:])
		switch {
		case q != 0 && r == rune(q) || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case pyEscape(b, r):
		case r == utf8.RuneError && w == 1: // invalid UTF-8
			b.WriteString(`\ufffd`)
		case r < 0x7f || strconv.IsPrint(r):
			b.WriteRune(r)
		case r <= 0xff:
			fmt.Fprintf(b, `\x%02x`, r)
		case r <= 0xffff:
			fmt.Fprintf(b, `\u%04x`, r)
		default:
			fmt.Fprintf(b, `\U%08x`, r)
		}
	}
}

// quoteBytes renders p like Python's repr of bytes: b'...'.
func quoteBytes(p []byte) string {
	q := pyQuoteChar(string(p))
	var b strings.Builder
	b.WriteString("b")
	b.WriteByte(q)
	for _, c := range p {
		switch {
		case c == q || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case pyEscape(&b, rune(c)):
		case c < 0x7f:
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, `\x%02x`, c)
		}
	}
	b.WriteByte(q)
	return b.String()
}

func truncText(s string) string {
	n := utf8.RuneCountInString(s)
	if n <= truncateAt {
		return quote(s)
	}
	i, k := 0, 0
	for k < truncateAt {
		_, w := utf8.DecodeRuneInString(s[i:])
		i += w
		k++
	}
	return fmt.Sprintf("%s + %d chars", quote(s[:i]+"…"), n-truncateAt)
}

func truncBytes(p []byte) string {
	if len(p) <= truncateAt {
		return quoteBytes(p)
	}
	q := quoteBytes(p[:truncateAt])
	return fmt.Sprintf("%s…%s + %d bytes", q[:len(q)-1], q[len(q)-1:], len(p)-truncateAt)
}

func pyBool(b bool) string {
	if b {
		return "True"
	}
	return "False"
}

func errText(err error) string {
	if err == nil {
		return "None"
	}
	return quote(err.Error())
}

// seconds renders d as lomond's BackOff does ("{:0.1f}"), except that a
// delay one decimal would show as 0.0 gets the digits it needs: 1 ms is
// "0.001", not "0.0".
func seconds(d time.Duration) string {
	if d > 0 && d < 50*time.Millisecond {
		return strconv.FormatFloat(d.Seconds(), 'f', -1, 64)
	}
	return strconv.FormatFloat(d.Seconds(), 'f', 1, 64)
}

// String reads like lomond's repr of the event.
func (e *Connecting) String() string { return fmt.Sprintf("Connecting(url=%s)", quote(e.URL)) }

// String reads like lomond's repr of the event.
func (e *ConnectFail) String() string {
	return fmt.Sprintf("ConnectFail(reason=%s)", quote(e.Reason))
}

// String reads like lomond's repr of the event.
func (e *Connected) String() string {
	if e.Proxy == "" {
		return fmt.Sprintf("Connected(url=%s)", quote(e.URL))
	}
	return fmt.Sprintf("Connected(url=%s, proxy=%s)", quote(e.URL), quote(e.Proxy))
}

// String reads like lomond's repr of the event. The status text is the
// server's: it is escaped, as every server-controlled text in a String.
func (e *Rejected) String() string {
	return fmt.Sprintf("Rejected(response=<response HTTP/1.1 %s>, reason=%s)", escape(e.Status), quote(e.Reason))
}

// String reads like lomond's repr of the event.
func (e *Ready) String() string {
	status := "101 Switching Protocols"
	if e.Response != nil && e.Response.Status != "" {
		status = escape(e.Response.Status)
	}
	proto := "None"
	if e.Protocol != "" {
		proto = quote(e.Protocol)
	}
	exts := "set()"
	if len(e.Extensions) > 0 {
		q := make([]string, len(e.Extensions))
		for i, x := range e.Extensions {
			q[i] = quote(x)
		}
		exts = "{" + strings.Join(q, ", ") + "}"
	}
	return fmt.Sprintf("Ready(response=<response HTTP/1.1 %s>, protocol=%s, extensions=%s)", status, proto, exts)
}

// String reads like lomond's repr of the event.
func (e *Poll) String() string { return "Poll()" }

// String reads like lomond's repr of the event.
func (e *Ping) String() string { return fmt.Sprintf("Ping(data=%s)", truncBytes(e.Data)) }

// String reads like lomond's repr of the event.
func (e *Pong) String() string { return fmt.Sprintf("Pong(data=%s)", truncBytes(e.Data)) }

// String reads like lomond's repr of the event.
func (e *Text) String() string { return fmt.Sprintf("Text(text=%s)", truncText(e.Text)) }

// String reads like lomond's repr of the event.
func (e *Binary) String() string { return fmt.Sprintf("Binary(data=%s)", truncBytes(e.Data)) }

func closeRepr(name string, code int, reason string) string {
	c := "None"
	if code != 0 && code != 1005 {
		c = strconv.Itoa(code)
	}
	return fmt.Sprintf("%s(code=%s, reason=%s)", name, c, quote(reason))
}

// String reads like lomond's repr of the event.
func (e *Closing) String() string { return closeRepr("Closing", e.Code, e.Reason) }

// String reads like lomond's repr of the event.
func (e *Closed) String() string { return closeRepr("Closed", e.Code, e.Reason) }

// String reads like lomond's repr of the event.
func (e *Unresponsive) String() string { return "Unresponsive()" }

// String reads like lomond's repr of the event.
func (e *ProtocolError) String() string {
	return fmt.Sprintf("ProtocolError(error=%s, critical=%s)", errText(e.Err), pyBool(e.Critical))
}

// String reads like lomond's repr of the event.
func (e *Disconnected) String() string {
	return fmt.Sprintf("Disconnected(reason=%s, graceful=%s)", quote(e.Reason), pyBool(e.Graceful))
}

// String reads like lomond's repr of the event.
func (e *BackOff) String() string { return fmt.Sprintf("BackOff(delay=%s)", seconds(e.Delay)) }
