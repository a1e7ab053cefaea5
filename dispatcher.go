package lomond

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"iter"
	"net"
	"net/http"
	"net/url"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lomond-go/lomond/events"
	"github.com/lomond-go/lomond/internal/protocol"
)

// Run connects and runs one session, delivering every event to h, and
// returns when the session is over. It returns:
//   - nil when the client ended the session (Close, or ctx cancelled while
//     ready) and the close handshake completed;
//   - a *CloseError when the server closed the connection with a completed
//     close handshake;
//   - otherwise an error saying why the session ended: a *ConnectError, a
//     *RejectedError, a *ProtocolError, a *PanicError, ErrUnresponsive,
//     ErrCloseTimeout, ErrHandshakeTimeout, or a transport error.
//
// Cancelling ctx while ready starts a graceful close (code 1001, "going
// away"); Run then returns within the close timeout.
func (ws *WebSocket) Run(ctx context.Context, h EventHandler) error {
	t, err := ws.prepare(h)
	if err != nil {
		return err
	}
	if ws.persist.Load() != nil {
		return ErrAlreadyRunning
	}
	return ws.runSession(ctx, t, true)
}

// Events runs one session and yields its events, like iterating over a
// lomond WebSocket. Breaking out of the loop ends the session with a graceful
// close (code 1000), bounded by the close timeout. If the WebSocket is
// already running, the only event is a ConnectFail whose Err is
// ErrAlreadyRunning. A panic in the loop body closes the connection and
// propagates.
func (ws *WebSocket) Events(ctx context.Context) iter.Seq[events.Event] {
	return func(yield func(events.Event) bool) {
		t := &table{}
		err := ErrAlreadyRunning
		if ws.persist.Load() == nil {
			err = ws.runSessionWith(ctx, t, false, func(s *session) {
				t.observer = func(_ *WebSocket, ev events.Event) {
					if !yield(ev) {
						s.stopRequested(ErrStopped)
					}
				}
			})
		}
		if errors.Is(err, ErrAlreadyRunning) || errors.Is(err, errZeroWebSocket) {
			yield(&events.ConnectFail{Meta: events.Stamp(), URL: ws.raw, Reason: startFailReason(err), Err: err})
		}
	}
}

func (ws *WebSocket) runSession(ctx context.Context, t *table, recoverPanics bool) error {
	return ws.runSessionWith(ctx, t, recoverPanics, nil)
}

func (ws *WebSocket) runSessionWith(ctx context.Context, t *table, recoverPanics bool, prepare func(*session)) error {
	if ctx == nil {
		return fmt.Errorf("%w: nil context", ErrInvalidOption)
	}
	if err := ws.usable(); err != nil {
		return err
	}
	if !ws.busy.CompareAndSwap(false, true) {
		return ErrAlreadyRunning
	}
	defer ws.busy.Store(false)
	s := &session{ws: ws, cfg: &ws.cfg, t: t, recoverPanics: recoverPanics, target: ws.defaultTarget()}
	if prepare != nil {
		prepare(s)
	}
	defer ws.attachQueue(s)()
	s.state.Store(int32(StateConnecting))
	ws.sess.Store(s)
	defer ws.sess.Store(nil)
	err := s.run(ctx)
	if ws.persist.Load() == nil {
		ws.setErr(err)
	}
	return err
}

// target is where a session connects: the WebSocket's own URL, headers and
// subprotocols, or what Persist's per-attempt hook made of them.
type target struct {
	url       *url.URL
	raw       string
	header    http.Header
	host      string
	protocols []string
}

func (ws *WebSocket) defaultTarget() target {
	return target{url: ws.url, raw: ws.raw, header: ws.cfg.header, host: ws.cfg.host, protocols: ws.cfg.protocols}
}

// session is one run of a WebSocket: from Connecting to Disconnected. Its
// dispatcher goroutine is the caller of Run: it reads the connection through
// one buffered reader, from the first byte of the upgrade response to the
// last frame, fires the timers between reads, and calls every handler
// between I/O calls, never inside one.
type session struct {
	ws            *WebSocket
	cfg           *config
	t             *table
	recoverPanics bool
	target        target
	onReady       func() // after Ready was delivered (Persist flushes its queue)
	readyAt       time.Time

	state     atomic.Int32
	cancelled atomic.Bool // the caller's context ended
	conn      net.Conn    // set before StateHandshake is stored
	cr        *connReader
	br        *bufio.Reader
	w         frameWriter
	protocol  string      // the subprotocol; set before StateReady is stored
	pending   *closeFrame // a Close during the opening handshake, under w.mu

	// Timers, under tmu: Close, on any goroutine, arms the close timer.
	tmu           sync.Mutex
	nextPoll      time.Time
	nextPing      time.Time
	pongDue       time.Time
	closeDue      time.Time
	pingSent      time.Time
	pingPayload   [8]byte
	start         time.Time
	judging       atomic.Bool // pongDue or closeDue is armed: handler time is not counted
	armedAt       time.Time   // when the latest judging timer was armed
	closeOverdue  bool        // the close timeout was found passed, with
	closeDueBytes uint64      // cr.total then
	stalled       atomic.Bool // a write made no progress for the ping timeout
	cutSend       atomic.Bool // a send's context cut a frame short: the stream is broken

	// Dispatcher goroutine only.
	in        inMessage
	inflater  *protocol.Inflater
	zin, zout []byte // a compressed message and its inflated bytes
	ctrl      [protocol.MaxControlPayload]byte
	lastStamp time.Time      // ReceivedTime of the last event delivered
	scratch   []byte         // borrowed binary messages
	borrowed  *events.Binary // the reused event of WithBorrowedBinary
	silent    bool           // deliver no more events (the handler stopped)
	stopErr   error          // why the handler stopped: ErrStopped or a *PanicError
	failure   *ProtocolError // the client failed the connection
}

type closeFrame struct {
	code   int
	reason string
}

func (s *session) run(ctx context.Context) error {
	cfg := s.cfg
	s.emit(&events.Connecting{Meta: events.Stamp(), URL: s.target.raw})
	if s.stopErr != nil {
		return s.handlerStopped()
	}
	dr, err := cfg.dialTransport(ctx, s.target.url)
	if err != nil {
		s.state.Store(int32(StateIdle))
		reason := connectFailReason(err)
		s.emit(&events.ConnectFail{Meta: events.Stamp(), URL: s.target.raw, Reason: reason, Err: err})
		return &ConnectError{URL: s.target.raw, Reason: reason, Err: err}
	}
	s.conn = dr.conn
	defer s.conn.Close()
	if !s.recoverPanics {
		// A range loop's body panicked: close with 1011, as for a
		// handler's panic, and let the panic go on.
		defer func() {
			if v := recover(); v != nil {
				s.sendClose(StatusInternalError, "handler panic")
				panic(v)
			}
		}()
	}
	s.state.Store(int32(StateHandshake))

	// One watcher for the caller's context: a graceful close when it ends.
	cancelled := make(chan struct{})
	stopWatch := context.AfterFunc(ctx, func() {
		defer close(cancelled)
		s.cancelled.Store(true)
		if State(s.state.Load()) == StateHandshake {
			_ = s.conn.SetReadDeadline(time.Now()) // cut the handshake short
		}
		_ = s.close(StatusGoingAway, "going away")
	})
	defer func() {
		if !stopWatch() {
			s.conn.Close() // unblock a close write stuck on a dead peer
			<-cancelled
		}
	}()

	s.emit(&events.Connected{Meta: events.Stamp(), URL: s.target.raw, Proxy: shownProxy(dr.proxy)})
	if s.stopErr != nil {
		return s.handlerStopped()
	}

	res, err := s.handshake()
	if err != nil {
		return s.handshakeFailed(err)
	}
	s.setup(res)

	now := time.Now()
	ready := &events.Ready{Meta: events.Meta{Received: now}, Response: res.resp, Protocol: res.protocol}
	if res.deflate != nil {
		ready.Extensions = []string{"permessage-deflate"}
	}
	s.readyAt = now
	defer s.ws.signalReady(false)
	s.emit(ready)
	if s.onReady != nil && !s.silent {
		s.onReady()
	}
	// WaitReady returns only now: after OnReady's own messages (a
	// protocol's opening) and Persist's queue went out.
	if State(s.state.Load()) == StateReady {
		s.ws.signalReady(true)
	}
	if cfg.pollInterval > 0 {
		s.emit(&events.Poll{Meta: events.Stamp()})
	}
	return s.readLoop()
}

// setup readies the session after an accepted handshake: the writer, the
// compression agreed, the state (sending a Close made during the handshake)
// and the timers.
func (s *session) setup(res *handshakeResult) {
	cfg := s.cfg
	s.w.init(s.conn, cfg.pingTimeout, s.onStall)
	s.w.onOwedPong = func(p []byte, err error) { s.ws.observeSent(protocol.OpPong, p, outAuto, err) }
	if d := res.deflate; d != nil {
		s.inflater = protocol.NewInflater(*d)
		s.w.deflater = protocol.NewDeflater(*d, cfg.compression.level())
		s.w.threshold = cfg.compression.threshold()
	}
	s.protocol = res.protocol
	now := time.Now()
	s.w.mu.Lock()
	s.state.Store(int32(StateReady))
	pc := s.pending
	var pcErr error
	var pcPayload []byte
	if pc != nil {
		pcPayload, pcErr = s.closeFrameLocked(pc.code, pc.reason)
	}
	s.w.unlock()
	if pc != nil {
		s.ws.observeSent(protocol.OpClose, pcPayload, 0, pcErr)
	}

	s.tmu.Lock()
	s.start = now
	if cfg.pollInterval > 0 {
		s.nextPoll = now.Add(cfg.pollInterval)
	}
	if cfg.pingRate > 0 && pc == nil {
		s.nextPing = now.Add(cfg.pingRate)
	}
	if pc != nil {
		s.armedAt, s.closeDue = now, now.Add(cfg.closeTimeout)
		s.judging.Store(true)
	}
	s.rearm()
	s.tmu.Unlock()
}

// handlerStopped ends a session whose handler stopped before the connection
// was up (a panic in OnConnecting or OnConnected).
func (s *session) handlerStopped() error {
	s.state.Store(int32(StateIdle))
	if pe, ok := s.stopErr.(*PanicError); ok {
		s.silent = false
		s.disconnected("handler panic", false, pe)
		return pe
	}
	return s.stopErr
}

// sessionEnd carries Run's result out of the read loop once the session's
// last events were delivered (a completed close handshake).
type sessionEnd struct{ result error }

func (e sessionEnd) Error() string { return "session ended" }

// end turns the error that ended the read loop into the session's last
// events and Run's result.
func (s *session) end(err error) error {
	var done sessionEnd
	if errors.As(err, &done) {
		return done.result
	}
	if s.stopErr != nil && s.silent && s.failure == nil {
		// The handler stopped; its close handshake has ended one way or another.
		return s.handlerStopped()
	}
	var perr *protocol.Error
	switch {
	case errors.As(err, &perr):
		pe := s.fail(perr)
		s.disconnected("protocol error", false, pe)
		return pe
	case s.failure != nil:
		s.disconnected("protocol error", false, s.failure)
		return s.failure
	case errors.Is(err, ErrUnresponsive):
		s.disconnected("ping timeout", false, ErrUnresponsive)
		return ErrUnresponsive
	case errors.Is(err, ErrCloseTimeout):
		s.disconnected("close timeout", false, ErrCloseTimeout)
		return ErrCloseTimeout
	}
	s.disconnected("connection lost", false, err)
	return err
}

// fail fails the connection for a protocol violation: a close frame with the
// violation's code (unless one went out already), the close timer, and one
// ProtocolError event. The read loop then discards what arrives until the
// server's close reply, the close timeout or the end of the connection.
func (s *session) fail(perr *protocol.Error) *ProtocolError {
	if s.failure != nil {
		return s.failure
	}
	s.failure = &ProtocolError{Code: perr.Code, Err: perr}
	s.sendClose(perr.Code, perr.Reason)
	s.emit(&events.ProtocolError{Meta: events.Stamp(), Err: perr, Code: perr.Code})
	return s.failure
}

// sendClose sends the dispatcher's own close frame (a failure, a stopped
// handler) unless a close frame went out already.
func (s *session) sendClose(code int, reason string) {
	if State(s.state.Load()) < StateReady {
		return
	}
	s.w.lockForClose(s.cfg.closeTimeout)
	sent := false
	var err error
	var payload []byte
	if !s.w.closeSent {
		payload, err = s.closeFrameLocked(code, reason)
		sent = true
	}
	s.w.unlock()
	if sent {
		s.ws.observeSent(protocol.OpClose, payload, outAuto, err)
		s.armCloseTimer()
	}
}

// closeFrameLocked writes our close frame (the caller holds w.mu) and moves
// the session to closing. The caller reports the frame to send observers
// once w.mu is released.
func (s *session) closeFrameLocked(code int, reason string) (payload []byte, err error) {
	s.state.Store(int32(StateClosing))
	payload = protocol.AppendClosePayload(nil, code, reason)
	return payload, s.w.frameLocked(true, false, protocol.OpClose, payload)
}

func (s *session) disconnected(reason string, graceful bool, err error) {
	s.ws.signalReady(false)
	// A send from the Disconnected handler on finds no session.
	s.state.Store(int32(StateIdle))
	s.emit(&events.Disconnected{Meta: events.Stamp(), Reason: reason, Graceful: graceful, Err: err})
}

// messageMeta stamps a message with when its last bytes arrived, but never
// before the event delivered ahead of it, so ReceivedTime never goes back.
func (s *session) messageMeta() events.Meta {
	t := s.cr.lastRead
	if t.Before(s.lastStamp) {
		t = s.lastStamp
	}
	return events.Meta{Received: t}
}

// emit delivers one event to the handler, unless the handler stopped. While
// a pong or a close reply is awaited, the time the handler takes is not
// counted against it. If the handler stops now (a panic, or a range loop
// left), the session starts its close handshake.
func (s *session) emit(ev events.Event) {
	if s.silent {
		return
	}
	s.lastStamp = ev.ReceivedTime()
	if s.judging.Load() {
		began := time.Now()
		s.deliver(ev)
		s.excludeHandlerTime(began)
	} else {
		s.deliver(ev)
		if s.judging.Load() {
			// Armed during the handler (a Close from it, say): the rest
			// of the handler's time does not count either.
			s.excludeHandlerTime(time.Time{})
		}
	}
	if s.stopErr != nil {
		s.stopSession()
	}
}

func (s *session) deliver(ev events.Event) {
	if s.recoverPanics {
		defer s.recoverHandler()
	}
	s.t.deliver(s.ws, ev)
}

func (s *session) recoverHandler() {
	if v := recover(); v != nil {
		s.stopRequested(&PanicError{Value: v, Stack: debug.Stack()})
	}
}

// stopRequested records that the handler stopped (a panic, or a range loop
// left early): no event is delivered after this one.
func (s *session) stopRequested(err error) {
	if s.stopErr == nil {
		s.stopErr = err
	}
	s.silent = true
}

// stopSession closes a session whose handler stopped: 1011 after a panic,
// 1000 after a range loop was left. The read loop then drains silently
// until the close reply, the close timeout, or the connection's end.
func (s *session) stopSession() {
	code, reason := StatusNormal, "goodbye"
	if _, ok := s.stopErr.(*PanicError); ok {
		code, reason = StatusInternalError, "handler panic"
	}
	s.sendClose(code, reason)
}
