// Package lomond is an event-driven websocket client: a port of Python's
// lomond to Go. Like lomond, it speaks the websocket protocol itself (RFC
// 6455 and permessage-deflate, RFC 7692): one goroutine per session reads
// every frame through one buffered reader.
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
// SendBinary, SendJSON, their Context forms, SendPing, SendPong, Close, Stop
// and Reconnect are safe from any goroutine.
//
// A slow handler delays the events after it, and delays reading, but it
// cannot make a live connection look dead: time spent in handlers does not
// count against the ping timeout. A send blocked on a server that stops
// reading blocks its caller, but not the read loop: the library's pings,
// pongs and close frames never wait for it. A write that makes no progress
// for the stall timeout (the ping timeout, or the close timeout when pings
// are off) ends the session as Unresponsive, and Close or a cancelled context
// bound it by the close timeout. SendTextContext and SendBinaryContext bound
// the wait for their turn by their context; a message whose first byte went
// out is written whole. docs/architecture.md in the repository describes
// who owns what inside a session.
//
// Messages of any size stream: a handler with OnStream (StreamHandler)
// reads each message as it arrives, on the session's goroutine, and
// SendBinaryStream, SendTextStream and MessageWriter send one in fragments
// while holding the write lock for the whole message.
//
// # Secrets
//
// Events, errors and log lines never show a proxy's user name or password,
// the values of sensitive query keys (WithSensitiveQueryKeys), or the values
// of the Authorization, Cookie and Set-Cookie headers; text a server
// controls (status lines, close reasons) is escaped in every String and
// Error.
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
	"errors"
	"fmt"
	"net/url"
	"sync"
	"sync/atomic"
	"unicode/utf8"
	"unsafe"
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
//
// The zero WebSocket is not usable: every way to run it returns an error
// wrapping ErrInvalidURL. Make WebSockets with New.
type WebSocket struct {
	url  *url.URL
	raw  string // the URL as shown: see WithSensitiveQueryKeys
	cfg  config
	busy atomic.Bool
	sess atomic.Pointer[session]

	readyMu sync.Mutex
	readyCh chan struct{} // closed while a session is ready
	queue   *sendQueue    // WithSendQueue; nil without
	limiter *tokenBucket  // WithSendRate; nil without
	persist atomic.Pointer[persistLoop]

	errMu   sync.Mutex
	lastErr error
}

// Err returns what Run, Events, Persist or PersistEvents returned, or would
// have returned, the last time one of them ended on ws: the way for a range
// loop over Events or PersistEvents to learn why it ended. It is nil before
// the first end and after a clean one. Leaving either range loop early
// (break, return) is a clean end: the caller chose it, as cancelling the
// context is for Run and Persist, so Err is nil after it.
func (ws *WebSocket) Err() error {
	ws.errMu.Lock()
	defer ws.errMu.Unlock()
	return ws.lastErr
}

func (ws *WebSocket) setErr(err error) {
	if errors.Is(err, ErrStopped) {
		err = nil // a range loop the caller left: see Err
	}
	ws.errMu.Lock()
	ws.lastErr = err
	ws.errMu.Unlock()
}

// New validates rawURL and options and returns a WebSocket. It does no I/O.
// The URL's scheme is ws:// or wss://; http:// and https:// are taken as
// ws:// and wss://, as browsers and coder/websocket do. Invalid input is an
// error wrapping ErrInvalidURL or ErrInvalidOption; it never shows a
// password or a sensitive query value (see WithSensitiveQueryKeys).
func New(rawURL string, options ...Option) (*WebSocket, error) {
	cfg := defaultConfig()
	for _, o := range options {
		if o == nil {
			return nil, optErr("nil option")
		}
		if err := o(&cfg); err != nil {
			return nil, err
		}
	}
	if cfg.queueBytes > 0 && cfg.queueSize == 0 {
		return nil, optErr("WithSendQueueBytes needs WithSendQueue, which makes the queue (its message bound and overflow policy)")
	}
	u, err := parseWSURL(rawURL, cfg.sensitive)
	if err != nil {
		return nil, err
	}
	ws := &WebSocket{url: u, raw: shownURL(u, cfg.sensitive), cfg: cfg, readyCh: make(chan struct{})}
	if cfg.queueSize > 0 {
		ws.queue = newSendQueue(cfg.queueSize, cfg.queueBytes, cfg.overflow)
	}
	if cfg.sendRate > 0 {
		ws.limiter = newTokenBucket(cfg.sendRate, cfg.sendBurst)
	}
	return ws, nil
}

// errZeroWebSocket is what a zero WebSocket (not made by New) gives.
var errZeroWebSocket = fmt.Errorf("%w: a zero WebSocket has no URL; make one with New", ErrInvalidURL)

// usable reports why ws cannot run, or nil.
func (ws *WebSocket) usable() error {
	if ws.url == nil || ws.readyCh == nil {
		return errZeroWebSocket
	}
	return nil
}

// prepare checks that ws can run h and finds which handler interfaces h
// implements, before any I/O.
func (ws *WebSocket) prepare(h EventHandler) (*table, error) {
	if err := ws.usable(); err != nil {
		return nil, err
	}
	if why := unusableHandler(h); why != "" {
		return nil, fmt.Errorf("%w: %s", ErrInvalidHandler, why)
	}
	return discover(h)
}

// unusableHandler says why h, which implements a handler interface, would
// fail when run: a nil HandlerFunc (it would panic at the first event), or
// a Compose of nothing (it would run a session nobody hears).
func unusableHandler(h any) string {
	switch x := h.(type) {
	case HandlerFunc:
		if x == nil {
			return "nil HandlerFunc"
		}
	case *composite:
		if len(x.handlers) == 0 {
			return "Compose of no handler"
		}
		for i, p := range x.handlers {
			if why := unusableHandler(p); why != "" {
				return fmt.Sprintf("Compose argument %d: %s", i, why)
			}
		}
	}
	return ""
}

// setReady opens or shuts the gate WaitReady waits at, for session s. The
// gate opens only while s is ready; shutting it also moves s to idle, under
// the same lock, so that the gate's state always agrees with the session's.
func (ws *WebSocket) setReady(s *session, ready bool) {
	ws.readyMu.Lock()
	defer ws.readyMu.Unlock()
	if !ready {
		s.state.Store(int32(StateIdle))
	}
	select {
	case <-ws.readyCh:
		if !ready {
			ws.readyCh = make(chan struct{})
		}
	default:
		if ready && State(s.state.Load()) == StateReady && !s.w.closing.Load() {
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

// parseWSURL parses a websocket URL; http and https become ws and wss. Its
// errors show the URL as shownURL does, without user information.
func parseWSURL(raw string, keys sensitiveKeys) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidURL, redactParseErr(err))
	}
	switch u.Scheme {
	case "ws", "wss":
	case "http":
		u.Scheme = "ws"
	case "https":
		u.Scheme = "wss"
	case "":
		return nil, fmt.Errorf("%w: %q has no scheme (want ws://, wss://, http:// or https://)", ErrInvalidURL, shownURL(u, keys))
	default:
		return nil, fmt.Errorf("%w: scheme %q is not ws, wss, http or https", ErrInvalidURL, u.Scheme)
	}
	if u.Hostname() == "" {
		return nil, fmt.Errorf("%w: %q has no host", ErrInvalidURL, shownURL(u, keys))
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

// URL returns the websocket URL as given to New (http and https turned into
// ws and wss), sensitive query values included: it is the application's
// own. Events, errors and log lines show it with those values replaced
// (see WithSensitiveQueryKeys).
func (ws *WebSocket) URL() string {
	if ws.url == nil {
		return ""
	}
	return ws.url.String()
}

// State returns the state of the current session (StateIdle when none runs).
// It is StateClosing from the moment Close is called.
func (ws *WebSocket) State() State {
	if s := ws.sess.Load(); s != nil {
		st := State(s.state.Load())
		if st == StateReady && s.w.closing.Load() {
			st = StateClosing
		}
		return st
	}
	return StateIdle
}

// Subprotocol returns the subprotocol the server chose, or "".
func (ws *WebSocket) Subprotocol() string {
	// s.protocol is written before the state becomes ready.
	if s := ws.sess.Load(); s != nil && State(s.state.Load()) >= StateReady {
		return s.protocol
	}
	return ""
}

// SendText sends a text message. text must be valid UTF-8. With a send
// queue (WithSendQueue), a message sent while no session is ready, or while
// older messages wait, is queued and SendText returns nil. With a rate limit
// (WithSendRate), SendText waits for its turn, however long that is;
// SendTextContext bounds the wait.
func (ws *WebSocket) SendText(text string) error {
	if !utf8.ValidString(text) {
		return ErrInvalidUTF8
	}
	return ws.send(context.Background(), opText, stringBytes(text))
}

// SendBinary sends a binary message, as SendText does. The library does not
// keep data after the call returns (a queued message is a copy).
func (ws *WebSocket) SendBinary(data []byte) error {
	return ws.send(context.Background(), opBinary, data)
}

// SendJSON sends v encoded as JSON in a text message, as SendText does.
func (ws *WebSocket) SendJSON(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("lomond: SendJSON: %w", err)
	}
	return ws.send(context.Background(), opText, b)
}

// SendTextContext is SendText bounded by ctx: it returns ctx's error when
// ctx ends while the send waits for its turn (the rate limit, or another
// goroutine's message being written), and then nothing of the message was
// written and the connection is as it was. Once the message's first byte
// is written, the message is written whole, whatever ctx does: a message cut
// off could not be taken back. A write that makes no progress for the ping
// timeout (the close timeout when pings are off) ends the session as
// Unresponsive, and the send returns an error. A ctx that has already ended
// sends nothing. A queued message (WithSendQueue) is not bound by ctx once
// queued.
func (ws *WebSocket) SendTextContext(ctx context.Context, text string) error {
	if ctx == nil {
		return fmt.Errorf("%w: nil context", ErrInvalidOption)
	}
	if !utf8.ValidString(text) {
		return ErrInvalidUTF8
	}
	return ws.send(ctx, opText, stringBytes(text))
}

// SendBinaryContext is SendBinary bounded by ctx, as SendTextContext is.
func (ws *WebSocket) SendBinaryContext(ctx context.Context, data []byte) error {
	if ctx == nil {
		return fmt.Errorf("%w: nil context", ErrInvalidOption)
	}
	return ws.send(ctx, opBinary, data)
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

// send sends a data message through the queue, if any. The plain sends pass
// context.Background(): no bound.
func (ws *WebSocket) send(ctx context.Context, typ byte, p []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if ws.queue != nil {
		return ws.queue.send(ctx, ws, typ, p)
	}
	_, err := ws.sendNow(ctx, typ, p)
	ws.observeSent(typ, p, 0, err)
	return err
}

// sendNow writes a data message to the current session: after its turn
// under the rate limit, if any. started reports whether any of it went out.
func (ws *WebSocket) sendNow(ctx context.Context, typ byte, p []byte) (started bool, err error) {
	s := ws.sess.Load()
	if s == nil {
		return false, ErrNotConnected
	}
	if ws.limiter != nil {
		if st := State(s.state.Load()); st != StateReady {
			return false, stateErr(st) // no turn taken for a message that cannot go
		}
		if err := ws.limiter.wait(ctx); err != nil {
			return false, err
		}
		if s = ws.sess.Load(); s == nil {
			return false, ErrNotConnected
		}
	}
	return s.write(ctx, typ, p)
}

// Close starts the close handshake with code and reason (lomond's default
// is 1000, "goodbye"). Messages the server sends until its close reply are
// still delivered; then come Closed and Disconnected. If the server does not
// reply within the close timeout, the connection is dropped.
//
// Close does not wait for its frame to be written: it returns nil once the
// close handshake started. The frame goes out at once, or after the message
// another goroutine is writing; a write stuck on a server that does not read
// is bounded by the close timeout. Close during the opening handshake sends
// the close frame as soon as the session is Ready. It returns
// ErrNotConnected when no session runs and ErrClosing if a close handshake
// already started. An invalid code or a reason over 123 bytes is an error,
// and nothing is sent.
func (ws *WebSocket) Close(code int, reason string) error {
	if err := checkClose(code, reason); err != nil {
		return err
	}
	s := ws.sess.Load()
	if s == nil {
		return ErrNotConnected
	}
	return s.close(code, reason)
}

// checkClose validates a close frame's code and reason before anything is
// sent.
func checkClose(code int, reason string) error {
	if !sendableCloseCode(code) {
		return fmt.Errorf("%w: %d", ErrInvalidCloseCode, code)
	}
	if len(reason) > maxControl-2 {
		return ErrReasonTooLong
	}
	if !utf8.ValidString(reason) {
		return ErrInvalidUTF8
	}
	return nil
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

// startFailReason is the Reason of the ConnectFail a range loop gets when
// its session cannot start.
func startFailReason(err error) string {
	if errors.Is(err, ErrAlreadyRunning) {
		return "already running"
	}
	return err.Error()
}
