package lomond

import (
	"strconv"

	"github.com/lomond-go/lomond/events"
)

// table is a handler's interfaces, discovered once per run: for each event
// type, one call, nil where nobody listens. Several listeners (a composed
// handler, an Observer) share the slot through one closure that calls them
// in order, so delivering an event costs one type switch and one indirect
// call, plus one per listener beyond the first, whatever the nesting.
type table struct {
	// observer receives every event first. It is how Events and
	// PersistEvents hand events to a range loop.
	observer func(*WebSocket, events.Event)

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
	stream       func(*WebSocket, *events.Stream)
	other        func(*WebSocket, events.Event) // Observers, for event types with no slot

	// streams: a StreamHandler listens, so data messages come as Streams
	// (an Observer alone does not turn them on).
	streams bool

	// out are the send observers (outbound.go).
	out []SendObserver
}

// listeners collects a handler's calls per event type while it is being
// discovered; compile turns them into a table.
type listeners struct {
	connecting   []func(*WebSocket, *events.Connecting)
	connectFail  []func(*WebSocket, *events.ConnectFail)
	connected    []func(*WebSocket, *events.Connected)
	rejected     []func(*WebSocket, *events.Rejected)
	ready        []func(*WebSocket, *events.Ready)
	poll         []func(*WebSocket, *events.Poll)
	ping         []func(*WebSocket, *events.Ping)
	pong         []func(*WebSocket, *events.Pong)
	text         []func(*WebSocket, *events.Text)
	binary       []func(*WebSocket, *events.Binary)
	closing      []func(*WebSocket, *events.Closing)
	closed       []func(*WebSocket, *events.Closed)
	unresponsive []func(*WebSocket, *events.Unresponsive)
	protoErr     []func(*WebSocket, *events.ProtocolError)
	disconnected []func(*WebSocket, *events.Disconnected)
	backOff      []func(*WebSocket, *events.BackOff)
	stream       []func(*WebSocket, *events.Stream)
	other        []func(*WebSocket, events.Event)
	streams      bool
	out          []SendObserver
}

// discover builds the dispatch table of h, or says why h cannot be a
// handler (an error wrapping ErrInvalidHandler).
func discover(h any) (*table, error) {
	var l listeners
	if err := l.add(h, ""); err != nil {
		return nil, err
	}
	return l.compile(), nil
}

// compile makes the table: each slot is its only listener, or a closure
// calling its listeners in order.
func (l *listeners) compile() *table {
	return &table{
		connecting:   fanOut(l.connecting),
		connectFail:  fanOut(l.connectFail),
		connected:    fanOut(l.connected),
		rejected:     fanOut(l.rejected),
		ready:        fanOut(l.ready),
		poll:         fanOut(l.poll),
		ping:         fanOut(l.ping),
		pong:         fanOut(l.pong),
		text:         fanOut(l.text),
		binary:       fanOut(l.binary),
		closing:      fanOut(l.closing),
		closed:       fanOut(l.closed),
		unresponsive: fanOut(l.unresponsive),
		protoErr:     fanOut(l.protoErr),
		disconnected: fanOut(l.disconnected),
		backOff:      fanOut(l.backOff),
		stream:       fanOut(l.stream),
		other:        fanOut(l.other),
		streams:      l.streams,
		out:          l.out,
	}
}

// deliverFirst hands ev to the WebSocket's plugins (unless t is they) and
// to the range loop's observer.
func (t *table) deliverFirst(ws *WebSocket, ev events.Event) {
	if ws != nil && ws.cfg.plugins != nil && ws.cfg.plugins != t {
		ws.cfg.plugins.deliver(ws, ev)
	}
	if t.observer != nil {
		t.observer(ws, ev)
	}
}

// fanOut returns one function calling fs in order, or nil for none.
func fanOut[E any](fs []func(*WebSocket, E)) func(*WebSocket, E) {
	switch len(fs) {
	case 0:
		return nil
	case 1:
		return fs[0]
	}
	return func(ws *WebSocket, e E) {
		for _, f := range fs {
			f(ws, e)
		}
	}
}

// add appends h's methods to the listeners; where names h's place in a
// composition for error messages.
func (l *listeners) add(h any, where string) error {
	switch x := h.(type) {
	case *composite:
		if x == nil || len(x.handlers) == 0 {
			return invalidHandler(where, "Compose with no handlers")
		}
		for i, p := range x.handlers {
			if err := l.add(p, where+"Compose argument "+strconv.Itoa(i)+": "); err != nil {
				return err
			}
		}
		return nil
	case HandlerFunc:
		// Its EventHandler methods are placeholders: skip them.
		if x == nil {
			return invalidHandler(where, "nil HandlerFunc")
		}
		l.addObserver(x)
		return nil
	}
	if problem := checkHandler(h); problem != "" {
		return invalidHandler(where, problem)
	}
	if x, ok := h.(Observer); ok {
		l.addObserver(x.OnEvent)
	}
	if x, ok := h.(ConnectingHandler); ok {
		l.connecting = append(l.connecting, x.OnConnecting)
	}
	if x, ok := h.(ConnectFailHandler); ok {
		l.connectFail = append(l.connectFail, x.OnConnectFail)
	}
	if x, ok := h.(ConnectedHandler); ok {
		l.connected = append(l.connected, x.OnConnected)
	}
	if x, ok := h.(RejectedHandler); ok {
		l.rejected = append(l.rejected, x.OnRejected)
	}
	if x, ok := h.(ReadyHandler); ok {
		l.ready = append(l.ready, x.OnReady)
	}
	if x, ok := h.(PollHandler); ok {
		l.poll = append(l.poll, x.OnPoll)
	}
	if x, ok := h.(PingHandler); ok {
		l.ping = append(l.ping, x.OnPing)
	}
	if x, ok := h.(PongHandler); ok {
		l.pong = append(l.pong, x.OnPong)
	}
	if x, ok := h.(TextHandler); ok {
		l.text = append(l.text, x.OnText)
	}
	if x, ok := h.(BinaryHandler); ok {
		l.binary = append(l.binary, x.OnBinary)
	}
	if x, ok := h.(ClosingHandler); ok {
		l.closing = append(l.closing, x.OnClosing)
	}
	if x, ok := h.(ClosedHandler); ok {
		l.closed = append(l.closed, x.OnClosed)
	}
	if x, ok := h.(UnresponsiveHandler); ok {
		l.unresponsive = append(l.unresponsive, x.OnUnresponsive)
	}
	if x, ok := h.(ProtocolErrorHandler); ok {
		l.protoErr = append(l.protoErr, x.OnProtocolError)
	}
	if x, ok := h.(DisconnectedHandler); ok {
		l.disconnected = append(l.disconnected, x.OnDisconnected)
	}
	if x, ok := h.(BackOffHandler); ok {
		l.backOff = append(l.backOff, x.OnBackOff)
	}
	if x, ok := h.(StreamHandler); ok {
		if l.streams {
			return invalidHandler(where, "a second StreamHandler: a stream has one reader, so one part of a Compose may have OnStream")
		}
		l.stream = append(l.stream, x.OnStream)
		l.streams = true
	}
	if x, ok := h.(SendObserver); ok {
		l.out = append(l.out, x)
	}
	return nil
}

// addObserver appends f to every event slot, so that it runs in its part's
// place in the order.
func (l *listeners) addObserver(f func(*WebSocket, events.Event)) {
	l.connecting = append(l.connecting, func(ws *WebSocket, e *events.Connecting) { f(ws, e) })
	l.connectFail = append(l.connectFail, func(ws *WebSocket, e *events.ConnectFail) { f(ws, e) })
	l.connected = append(l.connected, func(ws *WebSocket, e *events.Connected) { f(ws, e) })
	l.rejected = append(l.rejected, func(ws *WebSocket, e *events.Rejected) { f(ws, e) })
	l.ready = append(l.ready, func(ws *WebSocket, e *events.Ready) { f(ws, e) })
	l.poll = append(l.poll, func(ws *WebSocket, e *events.Poll) { f(ws, e) })
	l.ping = append(l.ping, func(ws *WebSocket, e *events.Ping) { f(ws, e) })
	l.pong = append(l.pong, func(ws *WebSocket, e *events.Pong) { f(ws, e) })
	l.text = append(l.text, func(ws *WebSocket, e *events.Text) { f(ws, e) })
	l.binary = append(l.binary, func(ws *WebSocket, e *events.Binary) { f(ws, e) })
	l.closing = append(l.closing, func(ws *WebSocket, e *events.Closing) { f(ws, e) })
	l.closed = append(l.closed, func(ws *WebSocket, e *events.Closed) { f(ws, e) })
	l.unresponsive = append(l.unresponsive, func(ws *WebSocket, e *events.Unresponsive) { f(ws, e) })
	l.protoErr = append(l.protoErr, func(ws *WebSocket, e *events.ProtocolError) { f(ws, e) })
	l.disconnected = append(l.disconnected, func(ws *WebSocket, e *events.Disconnected) { f(ws, e) })
	l.backOff = append(l.backOff, func(ws *WebSocket, e *events.BackOff) { f(ws, e) })
	l.stream = append(l.stream, func(ws *WebSocket, e *events.Stream) { f(ws, e) })
	l.other = append(l.other, f)
}

// deliver hands ev to the WebSocket's own plugins (WithPlugins, WithLogger),
// then to the range loop's observer, then to the table's calls in order.
// Each is one type switch and one call.
func (t *table) deliver(ws *WebSocket, ev events.Event) {
	if t.observer != nil || (ws != nil && ws.cfg.plugins != nil) {
		t.deliverFirst(ws, ev) // out of line: the plain handler's path stays lean
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
	case *events.Stream:
		if t.stream != nil {
			t.stream(ws, e)
		}
	default:
		if t.other != nil {
			t.other(ws, ev)
		}
	}
}
