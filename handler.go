package lomond

import (
	"fmt"

	"github.com/lomond-go/lomond/events"
)

// EventHandler is what an application implements to run a session: the four
// events nearly every client needs. Every other event has an optional
// one-method interface below (OnConnecting, OnPoll, ...); implement the ones
// you want, or embed BaseHandler and override what you need.
//
// Handler methods run one at a time, in event order, on the goroutine that
// called Run or Persist. They may call any method of ws, including sends and
// Close. The ws argument is the WebSocket being run.
type EventHandler interface {
	OnReady(ws *WebSocket, ev *events.Ready)
	OnText(ws *WebSocket, ev *events.Text)
	OnBinary(ws *WebSocket, ev *events.Binary)
	OnClosed(ws *WebSocket, ev *events.Closed)
}

// Optional per-event interfaces. The dispatcher checks which of them a
// handler implements once per run, not per event.
type (
	// ConnectingHandler receives Connecting.
	ConnectingHandler interface {
		OnConnecting(ws *WebSocket, ev *events.Connecting)
	}
	// ConnectFailHandler receives ConnectFail.
	ConnectFailHandler interface {
		OnConnectFail(ws *WebSocket, ev *events.ConnectFail)
	}
	// ConnectedHandler receives Connected.
	ConnectedHandler interface {
		OnConnected(ws *WebSocket, ev *events.Connected)
	}
	// RejectedHandler receives Rejected.
	RejectedHandler interface {
		OnRejected(ws *WebSocket, ev *events.Rejected)
	}
	// PollHandler receives Poll.
	PollHandler interface {
		OnPoll(ws *WebSocket, ev *events.Poll)
	}
	// PingHandler receives Ping.
	PingHandler interface {
		OnPing(ws *WebSocket, ev *events.Ping)
	}
	// PongHandler receives Pong.
	PongHandler interface {
		OnPong(ws *WebSocket, ev *events.Pong)
	}
	// ClosingHandler receives Closing.
	ClosingHandler interface {
		OnClosing(ws *WebSocket, ev *events.Closing)
	}
	// UnresponsiveHandler receives Unresponsive.
	UnresponsiveHandler interface {
		OnUnresponsive(ws *WebSocket, ev *events.Unresponsive)
	}
	// ProtocolErrorHandler receives ProtocolError.
	ProtocolErrorHandler interface {
		OnProtocolError(ws *WebSocket, ev *events.ProtocolError)
	}
	// DisconnectedHandler receives Disconnected.
	DisconnectedHandler interface {
		OnDisconnected(ws *WebSocket, ev *events.Disconnected)
	}
	// BackOffHandler receives BackOff (Persist only).
	BackOffHandler interface {
		OnBackOff(ws *WebSocket, ev *events.BackOff)
	}
	// Observer receives every event, before the event's own method. It is
	// the interface for logging, metrics and tracing plugins.
	Observer interface {
		OnEvent(ws *WebSocket, ev events.Event)
	}
)

// BaseHandler implements EventHandler with methods that do nothing. Embed it
// and override the methods you need.
type BaseHandler struct{}

// OnReady does nothing.
func (BaseHandler) OnReady(*WebSocket, *events.Ready) {}

// OnText does nothing.
func (BaseHandler) OnText(*WebSocket, *events.Text) {}

// OnBinary does nothing.
func (BaseHandler) OnBinary(*WebSocket, *events.Binary) {}

// OnClosed does nothing.
func (BaseHandler) OnClosed(*WebSocket, *events.Closed) {}

// HandlerFunc adapts a function to a handler that receives every event, like
// http.HandlerFunc. It is how Events delivers to a range loop.
type HandlerFunc func(ws *WebSocket, ev events.Event)

// OnEvent calls f.
func (f HandlerFunc) OnEvent(ws *WebSocket, ev events.Event) { f(ws, ev) }

// The four EventHandler methods do nothing: OnEvent already saw the event.

// OnReady does nothing; OnEvent has seen the event.
func (HandlerFunc) OnReady(*WebSocket, *events.Ready) {}

// OnText does nothing; OnEvent has seen the event.
func (HandlerFunc) OnText(*WebSocket, *events.Text) {}

// OnBinary does nothing; OnEvent has seen the event.
func (HandlerFunc) OnBinary(*WebSocket, *events.Binary) {}

// OnClosed does nothing; OnEvent has seen the event.
func (HandlerFunc) OnClosed(*WebSocket, *events.Closed) {}

// Compose returns a handler that passes every event to each of handlers in
// turn: plugins (loggers, metrics, an Observer) first, the application last,
// or in whatever order is given. Each element must implement at least one of
// the handler interfaces of this package (EventHandler, Observer, or an
// optional On* interface); otherwise Run returns ErrInvalidHandler.
func Compose(handlers ...any) EventHandler {
	return &composite{handlers: handlers}
}

type composite struct {
	BaseHandler
	handlers []any
}

// table is the result of discovering a handler's interfaces once per run:
// one call per event, nil where the handler does not listen.
type table struct {
	observer     func(*WebSocket, events.Event)
	connecting   func(*WebSocket, *events.Connecting)
	connectFail  func(*WebSocket, *events.ConnectFail)
	connected    func(*WebSocket, *events.Connected)
	rejected     func(*WebSocket, *events.Rejected)
	ready        func(*WebSocket, *events.Ready)
	poll         func(*WebSocket, *events.Poll)
	ping         func(*WebSocket, *events.Ping)
	pong         func(*WebSocket, *events.Pong)
	text         func(*WebSocket, *events.Text)
	binary       func(*WebSocket, *events.Binary)
	closing      func(*WebSocket, *events.Closing)
	closed       func(*WebSocket, *events.Closed)
	unresponsive func(*WebSocket, *events.Unresponsive)
	protoErr     func(*WebSocket, *events.ProtocolError)
	disconnected func(*WebSocket, *events.Disconnected)
	backOff      func(*WebSocket, *events.BackOff)
}

// discover builds the dispatch table of h. For a composite it builds the
// table of each part and chains them, so a composed handler costs one
// indirect call per part per event, with no type assertions per event.
func discover(h any) (*table, error) {
	if c, ok := h.(*composite); ok {
		parts := make([]*table, 0, len(c.handlers))
		for i, p := range c.handlers {
			t, err := discover(p)
			if err != nil {
				return nil, fmt.Errorf("%w: Compose argument %d: %v", ErrInvalidHandler, i, err)
			}
			parts = append(parts, t)
		}
		return chain(parts), nil
	}
	if h == nil {
		return nil, fmt.Errorf("%w: nil handler", ErrInvalidHandler)
	}
	t := &table{}
	n := 0
	if x, ok := h.(Observer); ok {
		t.observer = x.OnEvent
		n++
	}
	if x, ok := h.(EventHandler); ok {
		t.ready, t.text, t.binary, t.closed = x.OnReady, x.OnText, x.OnBinary, x.OnClosed
		n++
	}
	if x, ok := h.(ConnectingHandler); ok {
		t.connecting = x.OnConnecting
		n++
	}
	if x, ok := h.(ConnectFailHandler); ok {
		t.connectFail = x.OnConnectFail
		n++
	}
	if x, ok := h.(ConnectedHandler); ok {
		t.connected = x.OnConnected
		n++
	}
	if x, ok := h.(RejectedHandler); ok {
		t.rejected = x.OnRejected
		n++
	}
	if x, ok := h.(PollHandler); ok {
		t.poll = x.OnPoll
		n++
	}
	if x, ok := h.(PingHandler); ok {
		t.ping = x.OnPing
		n++
	}
	if x, ok := h.(PongHandler); ok {
		t.pong = x.OnPong
		n++
	}
	if x, ok := h.(ClosingHandler); ok {
		t.closing = x.OnClosing
		n++
	}
	if x, ok := h.(UnresponsiveHandler); ok {
		t.unresponsive = x.OnUnresponsive
		n++
	}
	if x, ok := h.(ProtocolErrorHandler); ok {
		t.protoErr = x.OnProtocolError
		n++
	}
	if x, ok := h.(DisconnectedHandler); ok {
		t.disconnected = x.OnDisconnected
		n++
	}
	if x, ok := h.(BackOffHandler); ok {
		t.backOff = x.OnBackOff
		n++
	}
	if n == 0 {
		return nil, fmt.Errorf("%w: %T implements no handler interface", ErrInvalidHandler, h)
	}
	return t, nil
}

// chain merges tables so that each event reaches every part in order, each
// part's Observer before its own method.
func chain(parts []*table) *table {
	if len(parts) == 1 {
		return parts[0]
	}
	t := &table{}
	t.observer = func(ws *WebSocket, ev events.Event) {
		for _, p := range parts {
			p.deliver(ws, ev)
		}
	}
	return t
}

// deliver hands ev to the table's observer and then to its own method. It
// switches on the concrete type: the only per-event type test, and a cheap one.
func (t *table) deliver(ws *WebSocket, ev events.Event) {
	if t.observer != nil {
		t.observer(ws, ev)
	}
	switch e := ev.(type) {
	case *events.Text:
		if t.text != nil {
			t.text(ws, e)
		}
	case *events.Binary:
		if t.binary != nil {
			t.binary(ws, e)
		}
	case *events.Poll:
		if t.poll != nil {
			t.poll(ws, e)
		}
	case *events.Ping:
		if t.ping != nil {
			t.ping(ws, e)
		}
	case *events.Pong:
		if t.pong != nil {
			t.pong(ws, e)
		}
	case *events.Connecting:
		if t.connecting != nil {
			t.connecting(ws, e)
		}
	case *events.ConnectFail:
		if t.connectFail != nil {
			t.connectFail(ws, e)
		}
	case *events.Connected:
		if t.connected != nil {
			t.connected(ws, e)
		}
	case *events.Rejected:
		if t.rejected != nil {
			t.rejected(ws, e)
		}
	case *events.Ready:
		if t.ready != nil {
			t.ready(ws, e)
		}
	case *events.Closing:
		if t.closing != nil {
			t.closing(ws, e)
		}
	case *events.Closed:
		if t.closed != nil {
			t.closed(ws, e)
		}
	case *events.Unresponsive:
		if t.unresponsive != nil {
			t.unresponsive(ws, e)
		}
	case *events.ProtocolError:
		if t.protoErr != nil {
			t.protoErr(ws, e)
		}
	case *events.Disconnected:
		if t.disconnected != nil {
			t.disconnected(ws, e)
		}
	case *events.BackOff:
		if t.backOff != nil {
			t.backOff(ws, e)
		}
	}
}
