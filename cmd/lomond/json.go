package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"time"

	"github.com/lomond-go/lomond/events"
)

// The --json schema (docs/cli.md): one object per event, on one line, with
// "name" (lomond's event name) and "time" (RFC 3339, nanoseconds, UTC)
// first, then every attribute of the event. Binary data is base64
// (standard, padded); durations are seconds (a JSON number); errors are
// strings or null. Every key is always present.

// jsonObject writes a JSON object with its keys in the order added.
type jsonObject struct {
	buf bytes.Buffer
	enc *json.Encoder
}

func newJSONObject() *jsonObject {
	o := &jsonObject{}
	o.enc = json.NewEncoder(&o.buf)
	o.enc.SetEscapeHTML(false)
	o.buf.WriteByte('{')
	return o
}

func (o *jsonObject) add(key string, value any) {
	if o.buf.Len() > 1 {
		o.buf.WriteByte(',')
	}
	_ = o.enc.Encode(key)
	o.buf.Truncate(o.buf.Len() - 1) // Encode's newline
	o.buf.WriteByte(':')
	if err := o.enc.Encode(value); err != nil {
		o.buf.WriteString("null\n")
	}
	o.buf.Truncate(o.buf.Len() - 1)
}

// line ends the object and returns it with a newline.
func (o *jsonObject) line() []byte {
	o.buf.WriteString("}\n")
	return o.buf.Bytes()
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

func seconds(d time.Duration) float64 { return d.Seconds() }

// jsonEvent renders ev as one line of the --json schema.
func (p *printer) jsonEvent(ev events.Event) []byte {
	o := newJSONObject()
	o.add("name", ev.Name())
	o.add("time", ev.ReceivedTime().UTC().Format(time.RFC3339Nano))
	errText := func(err error) any {
		if err == nil {
			return nil
		}
		return p.sc.scrub(err.Error())
	}
	switch e := ev.(type) {
	case *events.Connecting:
		o.add("url", p.sc.displayURL(e.URL))
	case *events.ConnectFail:
		o.add("url", p.sc.displayURL(e.URL))
		o.add("reason", p.sc.scrub(e.Reason))
		o.add("error", errText(e.Err))
	case *events.Connected:
		o.add("url", p.sc.displayURL(e.URL))
		o.add("proxy", p.sc.displayURL(e.Proxy))
	case *events.Rejected:
		o.add("status", e.StatusCode)
		o.add("status_text", e.Status)
		o.add("reason", p.sc.scrub(e.Reason))
		o.add("headers", p.headers(e.Header))
		o.add("body", b64(e.Body))
		if e.HasRetryAfter {
			o.add("retry_after", seconds(e.RetryAfter))
		} else {
			o.add("retry_after", nil)
		}
		o.add("error", errText(e.Err))
	case *events.Ready:
		status, header := 101, http.Header(nil)
		if e.Response != nil {
			status, header = e.Response.StatusCode, e.Response.Header
		}
		exts := e.Extensions
		if exts == nil {
			exts = []string{}
		}
		o.add("status", status)
		o.add("protocol", e.Protocol)
		o.add("extensions", exts)
		o.add("headers", p.headers(header))
	case *events.Poll:
	case *events.Ping:
		o.add("data", b64(e.Data))
	case *events.Pong:
		o.add("data", b64(e.Data))
		o.add("rtt", seconds(e.RTT))
	case *events.Text:
		o.add("text", e.Text)
	case *events.Binary:
		o.add("data", b64(e.Data))
	case *events.Closing:
		o.add("code", e.Code)
		o.add("reason", p.sc.scrub(e.Reason))
	case *events.Closed:
		o.add("code", e.Code)
		o.add("reason", p.sc.scrub(e.Reason))
	case *events.Unresponsive:
		o.add("timeout", seconds(e.Timeout))
	case *events.ProtocolError:
		o.add("error", errText(e.Err))
		o.add("code", e.Code)
		o.add("critical", e.Critical)
	case *events.Disconnected:
		o.add("reason", p.sc.scrub(e.Reason))
		o.add("graceful", e.Graceful)
		o.add("error", errText(e.Err))
	case *events.BackOff:
		o.add("delay", seconds(e.Delay))
		o.add("attempt", e.Attempt)
		o.add("cause", errText(e.Cause))
	default:
		o.add("repr", p.sc.scrub(ev.String()))
	}
	return o.line()
}

// headers copies response headers for JSON, scrubbed, never null.
func (p *printer) headers(h http.Header) map[string][]string {
	out := make(map[string][]string, len(h))
	for name, values := range h {
		vs := make([]string, len(values))
		for i, v := range values {
			vs[i] = p.sc.scrub(v)
		}
		out[name] = vs
	}
	return out
}
