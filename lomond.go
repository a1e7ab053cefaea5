// Package lomond is an event-driven websocket client: a port of Python's
// lomond to Go, built on github.com/coder/websocket.
//
// A WebSocket is made by New, which validates the URL and options and does no
// I/O. Run connects and runs one session, turning everything that happens
// into events (package events) delivered to a handler; Events does the same
// for a range loop; Persist reconnects with backoff for as long as the
// context lives.
//
//	ws, err := lomond.New("wss://example.com/feed")
//	if err != nil { ... }
//	err = ws.Run(ctx, &myHandler{})
//
// # Events
//
// A session produces Connecting, then ConnectFail (the end) or Connected;
// then Rejected or Ready; after Ready, Poll, Ping, Pong, Text and Binary in
// the order things happen; then Closing (server-initiated) and Closed, or
// Unresponsive, or ProtocolError; and Disconnected last. docs/events.md in the
// repository has the whole contract.
//
// # Concurrency
//
// Handler methods run one at a time, in event order, on the goroutine that
// called Run (or ranges over Events). A handler may call any method of the
// WebSocket, including SendText and Close, without deadlock. SendText,
// SendBinary, SendJSON, SendPing, SendPong and Close are safe from any
// goroutine.
//
// A slow handler delays the events after it, and delays reading, but it
// cannot make a live connection look dead: time spent in handlers does not
// count against the ping timeout. A send blocked on a server that stops
// reading blocks its caller (sends have no deadline of their own), but not
// the read loop: pings and pongs never wait for it, and Close or a cancelled
// context bound it by the close timeout.
//
// A panic in a handler ends the session with close code 1011 and Run returns
// a *PanicError holding the stack. When Run, Persist or an Events loop
// returns, every goroutine it started has exited and the connection is
// closed. Leaving an Events loop early closes the session gracefully (close
// code 1000, bounded by the close timeout).
package lomond

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"sync"
	"sync/atomic"
	"unicode/utf8"
	"unsafe"

	"github.com/coder/websocket"
)

// Version is the library's version, sent in the default User-Agent.
const Version = "0.1.0"

// Close codes (RFC 6455 section 7.4), as in lomond's Status.
const (
	StatusNormal             = 1000
	StatusGoingAway          = 1001
	StatusProtocolError      = 1002
	StatusUnsupportedData    = 1003
	StatusNoStatus           = 1005
	StatusInvalidPayload     = 1007
	StatusPolicyViolation    = 1008
	StatusMessageTooBig      = 1009
	StatusMandatoryExtension = 1010
	StatusInternalError      = 1011
	StatusServiceRestart     = 1012
	StatusTryAgainLater      = 1013
)

// State is where a WebSocket is in its session.
type State int32

// States, in the order a session passes through them.
const (
	StateIdle       State = iota // no session running
	StateConnecting              // dialing the transport
	StateHandshake               // transport up, upgrade request sent
	StateReady                   // messages may be sent
	StateClosing                 // a close handshake started
	StateClosed                  // the close handshake completed
)

var stateNames = [...]string{"idle", "connecting", "handshake", "ready", "closing", "closed"}

// String returns the state's name, such as "ready".
func (s State) String() string {
	if s >= 0 && int(s) < len(stateNames) {
		return stateNames[s]
	}
	return fmt.Sprintf("State(%d)", int32(s))
}

// WebSocket is a websocket client. Its configuration is fixed by New; it can
// run one session at a time, and be run again after a session ends (with a
// fresh key and state).
type WebSocket struct {
	url  *url.URL
	raw  string
	cfg  config
	busy atomic.Bool
	sess atomic.Pointer[session]

	readyMu sync.Mutex
	readyCh chan struct{} // closed while a session is ready
	queue   atomic.Pointer[sendQueue]
	persist atomic.Pointer[persistLoop]

	unsentMu sync.Mutex
	unsent   []Message

	errMu   sync.Mutex
	lastErr error
}

// Err returns what Run, Events, Persist or PersistEvents returned, or would
// have returned, the last time one of them ended on ws: the way for a range
// loop over Events or PersistEvents to learn why it ended. It is nil before
// the first end and after a clean one.
func (ws *WebSocket) Err() error {
	ws.errMu.Lock()
	defer ws.errMu.Unlock()
	return ws.lastErr
}

func (ws *WebSocket) setErr(err error) {
	ws.errMu.Lock()
	ws.lastErr = err
	ws.errMu.Unlock()
}

// New validates url (ws:// or wss://) and options and returns a WebSocket. It
// does no I/O. Invalid input is an error wrapping ErrInvalidURL or
// ErrInvalidOption.
func New(rawURL string, options ...Option) (*WebSocket, error) {
	u, err := parseWSURL(rawURL)
	if err != nil {
		return nil, err
	}
	cfg := defaultConfig()
	for _, o := range options {
		if o == nil {
			return nil, optErr("nil option")
		}
		if err := o(&cfg); err != nil {
			return nil, err
		}
	}
	return &WebSocket{url: u, raw: u.String(), cfg: cfg, readyCh: make(chan struct{})}, nil
}

// signalReady opens or shuts the gate WaitReady waits at.
func (ws *WebSocket) signalReady(ready bool) {
	ws.readyMu.Lock()
	defer ws.readyMu.Unlock()
	select {
	case <-ws.readyCh:
		if !ready {
			ws.readyCh = make(chan struct{})
		}
	default:
		if ready {
			close(ws.readyCh)
		}
	}
}

// WaitReady blocks until a session of ws is ready (messages can be sent), or
// ctx ends (returning ctx.Err()). It returns at once if a session is ready
// now. It suits Persist: wait for the (re)connection before sending.
func (ws *WebSocket) WaitReady(ctx context.Context) error {
	ws.readyMu.Lock()
	ch := ws.readyCh
	ws.readyMu.Unlock()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func parseWSURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidURL, redactErr(err))
	}
	switch u.Scheme {
	case "ws", "wss":
	case "":
		return nil, fmt.Errorf("%w: %q has no scheme (want ws:// or wss://)", ErrInvalidURL, raw)
	default:
		return nil, fmt.Errorf("%w: scheme %q is not ws or wss", ErrInvalidURL, u.Scheme)
	}
	if u.Hostname() == "" {
		return nil, fmt.Errorf("%w: %q has no host", ErrInvalidURL, redact(u))
	}
	if p := u.Port(); p != "" {
		var n int
		if _, err := fmt.Sscanf(p, "%d", &n); err != nil || n < 1 || n > 65535 || fmt.Sprint(n) != p {
			return nil, fmt.Errorf("%w: port %q out of range", ErrInvalidURL, p)
		}
	}
	if u.User != nil {
		return nil, fmt.Errorf("%w: credentials in a websocket URL are not sent; use WithHeader(\"Authorization\", ...)", ErrInvalidURL)
	}
	u.Fragment, u.RawFragment = "", ""
	if u.Path == "" {
		u.Path = "/"
	}
	return u, nil
}

// URL returns the websocket URL.
func (ws *WebSocket) URL() string { return ws.raw }

// State returns the state of the current session (StateIdle when none runs).
func (ws *WebSocket) State() State {
	if s := ws.sess.Load(); s != nil {
		return State(s.state.Load())
	}
	return StateIdle
}

// Subprotocol returns the subprotocol the server chose, or "".
func (ws *WebSocket) Subprotocol() string {
	if s := ws.sess.Load(); s != nil && s.conn != nil {
		return s.conn.Subprotocol()
	}
	return ""
}

// SendText sends a text message. text must be valid UTF-8.
func (ws *WebSocket) SendText(text string) error {
	if !utf8.ValidString(text) {
		return ErrInvalidUTF8
	}
	return ws.send(websocket.MessageText, stringBytes(text))
}

// SendBinary sends a binary message. The library does not keep data after
// the call returns.
func (ws *WebSocket) SendBinary(data []byte) error {
	return ws.send(websocket.MessageBinary, data)
}

// SendJSON sends v encoded as JSON in a text message.
func (ws *WebSocket) SendJSON(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("lomond: SendJSON: %w", err)
	}
	return ws.send(websocket.MessageText, b)
}

// SendPing sends a ping with data as payload (at most 125 bytes). The
// server's pong arrives as a Pong event.
func (ws *WebSocket) SendPing(data []byte) error {
	return ws.sendControl(opPing, data)
}

// SendPong sends an unsolicited pong (a one-way heartbeat) with data as
// payload (at most 125 bytes).
func (ws *WebSocket) SendPong(data []byte) error {
	return ws.sendControl(opPong, data)
}

func (ws *WebSocket) sendControl(op byte, data []byte) error {
	if len(data) > maxControl {
		return ErrControlTooLarge
	}
	err := ErrNotConnected
	if s := ws.sess.Load(); s != nil {
		err = s.writeControl(op, data)
	}
	ws.observeSent(op, data, 0, err)
	return err
}

func (ws *WebSocket) send(typ websocket.MessageType, p []byte) error {
	if q := ws.queue.Load(); q != nil {
		return q.send(ws, typ, p)
	}
	err := ws.sendNow(typ, p)
	ws.observeSent(byte(typ), p, 0, err)
	return err
}

func (ws *WebSocket) sendNow(typ websocket.MessageType, p []byte) error {
	s := ws.sess.Load()
	if s == nil {
		return ErrNotConnected
	}
	return s.write(typ, p)
}

// Close starts the close handshake with code and reason (lomond's default
// is 1000, "goodbye"). Messages the server sends until its close reply are
// still delivered; then come Closed and Disconnected. If the server does not
// reply within the close timeout, the connection is dropped.
//
// Close during the opening handshake sends the close frame as soon as the
// session is Ready. It returns ErrNotConnected when no session runs and
// ErrClosing if a close handshake already started. An invalid code or a
// reason over 123 bytes is an error, and nothing is sent.
func (ws *WebSocket) Close(code int, reason string) error {
	if !sendableCloseCode(code) {
		return fmt.Errorf("%w: %d", ErrInvalidCloseCode, code)
	}
	if len(reason) > maxControl-2 {
		return ErrReasonTooLong
	}
	if !utf8.ValidString(reason) {
		return ErrInvalidUTF8
	}
	s := ws.sess.Load()
	if s == nil {
		return ErrNotConnected
	}
	return s.close(code, reason)
}

// sendableCloseCode reports whether code may appear in a close frame we send.
func sendableCloseCode(code int) bool {
	switch {
	case code >= 1000 && code <= 1003, code >= 1007 && code <= 1014:
		return true
	case code >= 3000 && code <= 4999:
		return true
	}
	return false
}

// stringBytes views s as bytes without copying; the engine only reads them.
func stringBytes(s string) []byte {
	return unsafe.Slice(unsafe.StringData(s), len(s))
}
