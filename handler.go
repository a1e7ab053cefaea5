package lomond

import (
	"github.com/lomond-go/lomond/events"
)

// One interface per event. A handler, or a plugin, implements the ones it
// wants, and receives exactly those events; the dispatcher finds which once
// per run (Run, Persist), not per event. Methods run one at a time, in
// event order, on the goroutine that called Run or Persist, and may call
// any method of ws (the WebSocket being run), sends and Close included.
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
	// ReadyHandler receives Ready.
	ReadyHandler interface {
		OnReady(ws *WebSocket, ev *events.Ready)
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
	// TextHandler receives Text.
	TextHandler interface {
		OnText(ws *WebSocket, ev *events.Text)
	}
	// BinaryHandler receives Binary.
	BinaryHandler interface {
		OnBinary(ws *WebSocket, ev *events.Binary)
	}
	// ClosingHandler receives Closing.
	ClosingHandler interface {
		OnClosing(ws *WebSocket, ev *events.Closing)
	}
	// ClosedHandler receives Closed.
	ClosedHandler interface {
		OnClosed(ws *WebSocket, ev *events.Closed)
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
	// StreamHandler receives every data message of its sessions as a
	// Stream, read as it arrives, instead of Text and Binary (docs/guide.md,
	// "Messages of any size"). OnStream runs on the session's goroutine and
	// reads the connection through ev.Reader: pings are answered, pongs
	// end the ping wait and the timers run while it reads; other events
	// that happen meanwhile are delivered after it returns. What it leaves
	// unread is discarded when it returns. The read limit does not bound a
	// stream; it bounds what is discarded.
	StreamHandler interface {
		OnStream(ws *WebSocket, ev *events.Stream)
	}
	// Observer receives every event, before the event's own method (if
	// the same value has one). It is the interface for logging, metrics
	// and tracing plugins.
	Observer interface {
		OnEvent(ws *WebSocket, ev events.Event)
	}
)

// EventHandler is what Run and Persist take: the four events nearly every
// client needs. It is the union of ReadyHandler, TextHandler, BinaryHandler
// and ClosedHandler; add any other one-method interface (OnConnecting,
// OnPoll, OnDisconnected, ...) and it is called too.
//
// Embed BaseHandler to implement only some of the four. A value that has
// only some methods (a plugin) runs through Compose, alone or with others.
type EventHandler interface {
	ReadyHandler
	TextHandler
	BinaryHandler
	ClosedHandler
}

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
// http.HandlerFunc. Its EventHandler methods do nothing (OnEvent has seen
// the event) and are never called by the dispatcher.
type HandlerFunc func(ws *WebSocket, ev events.Event)

// OnEvent calls f.
func (f HandlerFunc) OnEvent(ws *WebSocket, ev events.Event) { f(ws, ev) }

// OnReady does nothing; OnEvent has seen the event.
func (HandlerFunc) OnReady(*WebSocket, *events.Ready) {}

// OnText does nothing; OnEvent has seen the event.
func (HandlerFunc) OnText(*WebSocket, *events.Text) {}

// OnBinary does nothing; OnEvent has seen the event.
func (HandlerFunc) OnBinary(*WebSocket, *events.Binary) {}

// OnClosed does nothing; OnEvent has seen the event.
func (HandlerFunc) OnClosed(*WebSocket, *events.Closed) {}

// Compose returns a handler made of handlers, in order: plugins first (a
// logger, metrics), the application last, or whatever order is given. Each
// event reaches every part that has a method for it, in argument order;
// within one part its Observer method comes before the event's own method.
// No part can stop an event from reaching the parts after it.
//
// A part may be any value with at least one handler method: an
// EventHandler, an Observer, a SendObserver, or just one optional method
// (a TextHandler, a PongHandler, ...). Run and Persist check the parts
// before connecting and return an error wrapping ErrInvalidHandler for a
// part with no handler method, a method whose signature is wrong, or
// methods on the pointer type only (pass a pointer), and for Compose with
// no parts.
func Compose(handlers ...any) EventHandler {
	return &composite{handlers: handlers}
}

type composite struct {
	BaseHandler
	handlers []any
}
