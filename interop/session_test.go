package interop

import (
	"context"
	"fmt"
	"math/rand"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lomond-go/lomond"
	"github.com/lomond-go/lomond/events"
)

// sessionTimeout bounds one session; every session here ends long before.
const sessionTimeout = 60 * time.Second

// record is what one lomond session produced.
type record struct {
	evs   []events.Event
	err   error // Run's result
	names []string
}

// baseOptions make a session's events deterministic: no Poll, no automatic
// pings, no proxy from the environment. Options given to runSession come
// after them and override them.
func baseOptions() []lomond.Option {
	return []lomond.Option{
		lomond.WithPollInterval(0),
		lomond.WithPingRate(0),
		lomond.WithoutProxy(),
		lomond.WithDialTimeout(10 * time.Second),
		lomond.WithHandshakeTimeout(10 * time.Second),
		lomond.WithCloseTimeout(10 * time.Second),
	}
}

// runSession runs one session to rawURL on the test goroutine, recording
// every event and then passing it to on (which may be nil).
func runSession(t *testing.T, rawURL string, on func(*lomond.WebSocket, events.Event), opts ...lomond.Option) *record {
	t.Helper()
	ws, err := lomond.New(rawURL, append(baseOptions(), opts...)...)
	if err != nil {
		t.Fatalf("New(%q): %v", rawURL, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), sessionTimeout)
	defer cancel()
	rec := &record{}
	rec.err = ws.Run(ctx, lomond.HandlerFunc(func(ws *lomond.WebSocket, ev events.Event) {
		rec.evs = append(rec.evs, ev)
		rec.names = append(rec.names, ev.Name())
		if on != nil {
			on(ws, ev)
		}
	}))
	if ctx.Err() != nil {
		t.Errorf("session to %s still running after %v; events: %v", rawURL, sessionTimeout, rec.names)
	}
	return rec
}

// wantNames fails the test unless the session's events had exactly these
// names, in this order.
func (r *record) wantNames(t *testing.T, want ...string) {
	t.Helper()
	if !slices.Equal(r.names, want) {
		t.Errorf("events:\n got  %v\n want %v\n(Run returned %v)\n%s", r.names, want, r.err, r.dump())
	}
}

// dump renders the events for a failure message.
func (r *record) dump() string {
	var b strings.Builder
	for _, ev := range r.evs {
		fmt.Fprintf(&b, "  %s", ev)
		if d, ok := ev.(*events.Disconnected); ok {
			fmt.Fprintf(&b, " reason=%q graceful=%v err=%v", d.Reason, d.Graceful, d.Err)
		}
		if c, ok := ev.(*events.ConnectFail); ok {
			fmt.Fprintf(&b, " err=%v", c.Err)
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// first returns the session's first event of type T, failing the test if
// there is none.
func first[T events.Event](t *testing.T, r *record) T {
	t.Helper()
	for _, ev := range r.evs {
		if e, ok := ev.(T); ok {
			return e
		}
	}
	var zero T
	t.Fatalf("no %T event; events: %v", zero, r.names)
	return zero
}

// all returns the session's events of type T.
func all[T events.Event](r *record) []T {
	var out []T
	for _, ev := range r.evs {
		if e, ok := ev.(T); ok {
			out = append(out, e)
		}
	}
	return out
}

// wantGracefulEnd checks the last event is a graceful Disconnected.
func (r *record) wantGracefulEnd(t *testing.T) {
	t.Helper()
	d := first[*events.Disconnected](t, r)
	if !d.Graceful || d.Err != nil {
		t.Errorf("Disconnected graceful=%v err=%v reason=%q, want graceful with no error", d.Graceful, d.Err, d.Reason)
	}
}

// wantAbruptEnd checks the session ended with a non-graceful Disconnected
// carrying an error, and returns that error.
func (r *record) wantAbruptEnd(t *testing.T) error {
	t.Helper()
	d := first[*events.Disconnected](t, r)
	if d.Graceful || d.Err == nil {
		t.Errorf("Disconnected graceful=%v err=%v reason=%q, want not graceful, with an error", d.Graceful, d.Err, d.Reason)
	}
	if r.err == nil {
		t.Errorf("Run returned nil after an abrupt end")
	}
	return d.Err
}

// msg is one step of an echo exchange: a message or a ping the client sends,
// and the reply it expects.
type msg struct {
	kind string // "text", "binary" or "ping"
	data []byte
}

func (m msg) String() string { return fmt.Sprintf("%s(%d bytes)", m.kind, len(m.data)) }

// reply is the name of the event the server's answer produces.
func (m msg) reply() string {
	if m.kind == "ping" {
		return "pong"
	}
	return m.kind
}

func (m msg) send(ws *lomond.WebSocket) error {
	switch m.kind {
	case "text":
		return ws.SendText(string(m.data))
	case "binary":
		return ws.SendBinary(m.data)
	case "ping":
		return ws.SendPing(m.data)
	}
	panic("unknown message kind " + m.kind)
}

// Payloads of the standard exchange.
var (
	smallText   = []byte("hello, lomond ✓")
	smallBinary = func() []byte {
		b := make([]byte, 256)
		for i := range b {
			b[i] = byte(i)
		}
		return b
	}()
	text70000  = makeText(70000)
	binary1MiB = makeBinary(1<<20, 1)
)

// makeText returns exactly n bytes of valid UTF-8 text with multi-byte
// runes, varied enough that compression does not make it trivial.
func makeText(n int) []byte {
	rng := rand.New(rand.NewSource(int64(n)))
	words := []string{"lomond", "websocket", "ĥéllo", "→", "日本語", "frame", "😀", "close", "ping", "deflate"}
	var b strings.Builder
	for b.Len() < n-8 {
		b.WriteString(words[rng.Intn(len(words))])
		b.WriteByte(" \n"[rng.Intn(2)])
	}
	for b.Len() < n {
		b.WriteByte('.')
	}
	return []byte(b.String())
}

// makeBinary returns n pseudo-random bytes.
func makeBinary(n int, seed int64) []byte {
	b := make([]byte, n)
	rand.New(rand.NewSource(seed)).Read(b)
	return b
}

// standardExchange is what every echo peer is put through: text, binary,
// empty text, a 70 000-byte text, a 1 MiB binary, and a ping.
func standardExchange() []msg {
	return []msg{
		{"text", smallText},
		{"binary", smallBinary},
		{"text", []byte{}},
		{"text", text70000},
		{"binary", binary1MiB},
		{"ping", []byte("are you there?")},
	}
}

// replyNames lists the event names the exchange's replies produce.
func replyNames(msgs []msg) []string {
	var names []string
	for _, m := range msgs {
		names = append(names, m.reply())
	}
	return names
}

// echoer drives an echo exchange from a session's events: it sends each
// message after the reply to the previous one arrived, checks every reply,
// and closes with 1000 after the last one (or calls after, if set).
type echoer struct {
	t     *testing.T
	msgs  []msg
	next  int // index of the message whose reply is awaited
	after func(ws *lomond.WebSocket)

	sentAt             time.Time     // when the awaited message was sent
	minReply, maxReply time.Duration // fastest and slowest reply
}

// onEvent is an event callback for runSession: it sends the first message
// on Ready and checks every Text, Binary and (when a ping's reply is
// awaited) Pong against the expected reply.
func (e *echoer) onEvent(ws *lomond.WebSocket, ev events.Event) {
	e.t.Helper()
	var kind string
	var got []byte
	switch ev := ev.(type) {
	case *events.Ready:
		e.sendNext(ws)
		return
	case *events.Text:
		kind, got = "text", []byte(ev.Text)
	case *events.Binary:
		kind, got = "binary", ev.Data
	case *events.Pong:
		if e.next >= len(e.msgs) || e.msgs[e.next].kind != "ping" {
			return // an automatic ping's pong
		}
		kind, got = "ping", ev.Data
	default:
		return
	}
	if e.next >= len(e.msgs) {
		e.t.Errorf("unexpected %s after the exchange: %v", kind, ev)
		return
	}
	took := ev.ReceivedTime().Sub(e.sentAt)
	if e.next == 0 || took < e.minReply {
		e.minReply = took
	}
	e.maxReply = max(e.maxReply, took)
	want := e.msgs[e.next]
	if kind != want.kind {
		e.t.Errorf("reply %d: got a %s, want the reply to %v", e.next, ev.Name(), want)
	} else if err := sameBytes(got, want.data); err != nil {
		e.t.Errorf("reply %d to %v: %v", e.next, want, err)
	}
	e.next++
	e.sendNext(ws)
}

func (e *echoer) sendNext(ws *lomond.WebSocket) {
	e.t.Helper()
	if e.next < len(e.msgs) {
		e.sentAt = time.Now()
		if err := e.msgs[e.next].send(ws); err != nil {
			e.t.Errorf("sending %v: %v", e.msgs[e.next], err)
		}
		return
	}
	if e.after != nil {
		e.after(ws)
		return
	}
	if err := ws.Close(lomond.StatusNormal, "done"); err != nil {
		e.t.Errorf("Close: %v", err)
	}
}

// done checks that every reply arrived.
func (e *echoer) done(t *testing.T) {
	t.Helper()
	if e.next != len(e.msgs) {
		t.Errorf("%d of %d replies arrived", e.next, len(e.msgs))
	}
}

// sameBytes compares payloads without printing large ones.
func sameBytes(got, want []byte) error {
	if len(got) != len(want) {
		return fmt.Errorf("got %d bytes, want %d", len(got), len(want))
	}
	for i := range got {
		if got[i] != want[i] {
			return fmt.Errorf("payloads differ at byte %d of %d", i, len(got))
		}
	}
	return nil
}

// echoSession runs the exchange against rawURL, closing with 1000 after it,
// and checks the whole event sequence, the replies, and the graceful end.
func echoSession(t *testing.T, rawURL string, msgs []msg, opts ...lomond.Option) *record {
	t.Helper()
	e := &echoer{t: t, msgs: msgs}
	rec := runSession(t, rawURL, e.onEvent, opts...)
	e.done(t)
	want := append([]string{"connecting", "connected", "ready"}, replyNames(msgs)...)
	rec.wantNames(t, append(want, "closed", "disconnected")...)
	if rec.err != nil {
		t.Errorf("Run returned %v after a client close, want nil", rec.err)
	}
	if c := all[*events.Closed](rec); len(c) == 1 && c[0].Code != lomond.StatusNormal {
		t.Errorf("Closed code %d, want the server's reply to our 1000", c[0].Code)
	}
	rec.wantGracefulEnd(t)
	return rec
}
