package lomond

import (
	"fmt"

	"github.com/lomond-go/lomond/events"
)

// The dispatch table as it was before one-method interfaces for the core
// events (commit 2953047): a composed handler was a chain of tables, each
// delivered through its own observer and type switch. BenchmarkDeliver
// measures the new table against it in the same run, so that a loaded
// machine cannot fake the comparison.

// legacyComposite is the old Compose's value.
type legacyComposite []any

// legacyTable is the result of discovering a handler's interfaces once per run:
// one call per event, nil where the handler does not listen.
type legacyTable struct {
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

// legacyDiscover builds the dispatch table of h. For a composite it builds the
// table of each part and chains them, so a composed handler costs one
// indirect call per part per event, with no type assertions per event.
func legacyDiscover(h any) (*legacyTable, error) {
	if c, ok := h.(legacyComposite); ok {
		parts := make([]*legacyTable, 0, len(c))
		for i, p := range c {
			t, err := legacyDiscover(p)
			if err != nil {
				return nil, fmt.Errorf("%w: Compose argument %d: %v", ErrInvalidHandler, i, err)
			}
			parts = append(parts, t)
		}
		return legacyChain(parts), nil
	}
	if h == nil {
		return nil, fmt.Errorf("%w: nil handler", ErrInvalidHandler)
	}
	t := &legacyTable{}
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

// legacyChain merges tables so that each event reaches every part in order, each
// part's Observer before its own method.
func legacyChain(parts []*legacyTable) *legacyTable {
	if len(parts) == 1 {
		return parts[0]
	}
	t := &legacyTable{}
	t.observer = func(ws *WebSocket, ev events.Event) {
		for _, p := range parts {
			p.deliver(ws, ev)
		}
	}
	return t
}

// deliver hands ev to the table's observer and then to its own method. It
// switches on the concrete type: the only per-event type test, and a cheap one.
func (t *legacyTable) deliver(ws *WebSocket, ev events.Event) {
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
