package lomond

import (
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/lomond-go/lomond/events"
	"github.com/lomond-go/lomond/internal/wstest"
)

// Helpers of session_test.go and protocol_test.go: an event recorder that
// renders events as lines, server script steps, and a hermetic DNS failure.

// evLog records the events of a session, and can call a hook after each.
// It is used from the goroutine that runs the session only.
type evLog struct {
	evs  []events.Event
	hook func(ws *WebSocket, ev events.Event)
}

func (l *evLog) record(ws *WebSocket, ev events.Event) {
	l.evs = append(l.evs, ev)
	if l.hook != nil {
		l.hook(ws, ev)
	}
}

// handler returns a handler that records every event.
func (l *evLog) handler() HandlerFunc { return l.record }

// rangeEvents runs a session with a range loop over Events, recording every
// event.
func (l *evLog) rangeEvents(ctx context.Context, ws *WebSocket) {
	for ev := range ws.Events(ctx) {
		l.record(ws, ev)
	}
}

// lines returns one line per event: its Name and its key attributes.
func (l *evLog) lines() []string {
	out := make([]string, len(l.evs))
	for i, ev := range l.evs {
		out[i] = describeEvent(ev)
	}
	return out
}

// describeEvent renders ev as its Name followed by its key attributes.
func describeEvent(ev events.Event) string {
	var attrs string
	switch e := ev.(type) {
	case *events.Connecting:
		attrs = e.URL
	case *events.Connected:
		attrs = fmt.Sprintf("%s proxy=%q", e.URL, e.Proxy)
	case *events.Rejected:
		attrs = fmt.Sprint(e.StatusCode)
	case *events.Ready:
		status := 0
		if e.Response != nil {
			status = e.Response.StatusCode
		}
		attrs = fmt.Sprintf("%d protocol=%q extensions=%q", status, e.Protocol, e.Extensions)
	case *events.Ping:
		attrs = fmt.Sprintf("%q", e.Data)
	case *events.Pong:
		attrs = fmt.Sprintf("%q rtt=%v", e.Data, e.RTT)
	case *events.Text:
		attrs = payloadAttr([]byte(e.Text))
	case *events.Binary:
		attrs = payloadAttr(e.Data)
	case *events.Closing:
		attrs = fmt.Sprintf("%d %q", e.Code, e.Reason)
	case *events.Closed:
		attrs = fmt.Sprintf("%d %q", e.Code, e.Reason)
	case *events.ProtocolError:
		attrs = fmt.Sprint(e.Code)
	case *events.Disconnected:
		attrs = fmt.Sprintf("graceful=%v err=%v", e.Graceful, e.Err != nil)
	}
	if attrs == "" {
		return ev.Name()
	}
	return ev.Name() + " " + attrs
}

func payloadAttr(p []byte) string {
	if len(p) > 40 {
		return fmt.Sprintf("<%d bytes>", len(p))
	}
	return fmt.Sprintf("%q", p)
}

// opening returns the lines of a session's opening up to the Poll that
// follows Ready, for a server that chose no subprotocol.
func opening(url string) []string {
	return []string{
		"connecting " + url,
		"connected " + url + ` proxy=""`,
		`ready 101 protocol="" extensions=[]`,
		"poll",
	}
}

// seq joins line groups into one expected sequence.
func seq(groups ...[]string) []string {
	var out []string
	for _, g := range groups {
		out = append(out, g...)
	}
	return out
}

func expectLines(t *testing.T, l *evLog, want []string) {
	t.Helper()
	got := l.lines()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("events:\n\t%s\nwant:\n\t%s", strings.Join(got, "\n\t"), strings.Join(want, "\n\t"))
	}
	checkMonotone(t, l.evs)
}

// checkMonotone checks that ReceivedTime never goes backwards.
func checkMonotone(t *testing.T, evs []events.Event) {
	t.Helper()
	for i := 1; i < len(evs); i++ {
		if evs[i].ReceivedTime().Before(evs[i-1].ReceivedTime()) {
			t.Errorf("event %d (%s) received at %v, before event %d (%s) at %v", i, evs[i].Name(),
				evs[i].ReceivedTime(), i-1, evs[i-1].Name(), evs[i-1].ReceivedTime())
		}
		if evs[i].ReceivedTime().IsZero() {
			t.Errorf("event %d (%s) has a zero ReceivedTime", i, evs[i].Name())
		}
	}
}

// lastEvent returns the last event of type T in l.
func lastEvent[T events.Event](t *testing.T, l *evLog) T {
	t.Helper()
	for i := len(l.evs) - 1; i >= 0; i-- {
		if e, ok := l.evs[i].(T); ok {
			return e
		}
	}
	var zero T
	t.Fatalf("no %T event in %q", zero, l.lines())
	return zero
}

// newTestWS makes a WebSocket for url with test defaults: no proxy from the
// environment, one Poll (right after Ready), no automatic pings, and a
// close timeout that ends a stuck test quickly.
func newTestWS(t *testing.T, url string, opts ...Option) *WebSocket {
	t.Helper()
	base := []Option{WithoutProxy(), WithPollInterval(time.Hour), WithPingRate(0), WithCloseTimeout(10 * time.Second)}
	ws, err := New(url, append(base, opts...)...)
	if err != nil {
		t.Fatalf("New(%q): %v", url, err)
	}
	return ws
}

// scriptServer starts a wstest server whose script reports on done each time
// it returns, so that a test can wait for the server's checks to finish
// before it ends (the server's cleanup closes connections still open).
func scriptServer(t *testing.T, script func(c *wstest.Conn)) (srv *wstest.Server, done <-chan struct{}) {
	ch := make(chan struct{}, 16)
	srv = wstest.NewServer(t, func(c *wstest.Conn) {
		defer func() {
			select {
			case ch <- struct{}{}:
			default:
			}
		}()
		script(c)
	})
	return srv, ch
}

// waitScript waits for one run of a server script to return.
func waitScript(t *testing.T, done <-chan struct{}) {
	t.Helper()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the server script did not finish")
	}
}

// Script steps. They report failures with t.Errorf (safe from the script's
// goroutine: the server's cleanup waits for scripts) and return false when
// the script should stop.

func srvHandshake(t *testing.T, c *wstest.Conn) bool {
	t.Helper()
	if _, err := c.Handshake(); err != nil {
		t.Errorf("server: handshake: %v", err)
		return false
	}
	return true
}

func srvWrite(t *testing.T, c *wstest.Conn, frames ...wstest.Frame) bool {
	t.Helper()
	if err := c.WriteRaw(wstest.EncodeAll(frames...)); err != nil {
		t.Errorf("server: write: %v", err)
		return false
	}
	return true
}

// srvExpectClose reads until a close frame and checks its code and reason.
func srvExpectClose(t *testing.T, c *wstest.Conn, code int, reason string) bool {
	t.Helper()
	gotCode, gotReason, err := c.ExpectClose()
	if err != nil {
		t.Errorf("server: waiting for close %d: %v", code, err)
		return false
	}
	if gotCode != code || gotReason != reason {
		t.Errorf("server: got close %d %q, want %d %q", gotCode, gotReason, code, reason)
	}
	return true
}

// srvExpectMessage reads one message and checks it.
func srvExpectMessage(t *testing.T, c *wstest.Conn, op byte, payload string) bool {
	t.Helper()
	gotOp, p, err := c.ReadMessage()
	if err != nil {
		t.Errorf("server: waiting for opcode %#x %q: %v", op, payload, err)
		return false
	}
	if gotOp != op || string(p) != payload {
		t.Errorf("server: got opcode %#x %q, want %#x %q", gotOp, p, op, payload)
	}
	return true
}

// srvExpectEOF checks that the client sends nothing more and ends the TCP
// connection cleanly.
func srvExpectEOF(t *testing.T, c *wstest.Conn) {
	t.Helper()
	f, err := c.ReadFrame()
	switch {
	case err == nil:
		t.Errorf("server: client sent a frame after its close frame: opcode %#x payload %q", f.Opcode, f.Payload)
	case err != io.EOF:
		t.Errorf("server: after the close handshake: %v, want io.EOF", err)
	}
}

// srvDrain reads until the client closes the connection, failing on any
// frame.
func srvDrain(t *testing.T, c *wstest.Conn) {
	t.Helper()
	if f, err := c.ReadFrame(); err == nil {
		t.Errorf("server: unexpected frame: opcode %#x payload %q", f.Opcode, f.Payload)
	}
}

// nxdomainDialer dials through a resolver whose DNS server, reached over an
// in-memory pipe, answers NXDOMAIN to every query: a DNS failure that needs
// no network.
func nxdomainDialer() DialFunc {
	r := &net.Resolver{PreferGo: true, Dial: func(context.Context, string, string) (net.Conn, error) {
		client, server := net.Pipe()
		go serveNXDOMAIN(server)
		return client, nil
	}}
	d := &net.Dialer{Resolver: r}
	return d.DialContext
}

// serveNXDOMAIN answers length-prefixed DNS queries (the stream form the
// resolver uses on a non-packet connection) with NXDOMAIN until c closes.
func serveNXDOMAIN(c net.Conn) {
	defer c.Close()
	for {
		var n [2]byte
		if _, err := io.ReadFull(c, n[:]); err != nil {
			return
		}
		q := make([]byte, int(n[0])<<8|int(n[1]))
		if _, err := io.ReadFull(c, q); err != nil || len(q) < 12 {
			return
		}
		resp := append([]byte(nil), q...)
		resp[2] = 0x80 | 0x04 | q[2]&0x79 // response, authoritative, opcode and RD copied
		resp[3] = 0x80 | 3                // recursion available, NXDOMAIN
		if _, err := c.Write(append(n[:], resp...)); err != nil {
			return
		}
	}
}
