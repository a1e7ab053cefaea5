package lomond

import (
	"context"
	cryptorand "crypto/rand"
	"errors"
	"fmt"
	"io"
	"iter"
	"math/rand/v2"
	"net/http"
	"net/url"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/coder/websocket"
	"github.com/lomond-go/lomond/events"
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
	t, err := discover(h)
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
		if errors.Is(err, ErrAlreadyRunning) {
			yield(&events.ConnectFail{Meta: events.Stamp(), URL: ws.raw, Reason: "already running", Err: err})
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
	if !ws.busy.CompareAndSwap(false, true) {
		return ErrAlreadyRunning
	}
	defer ws.busy.Store(false)
	s := &session{ws: ws, cfg: &ws.cfg, t: t, recoverPanics: recoverPanics, target: ws.defaultTarget()}
	if prepare != nil {
		prepare(s)
	}
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
// dispatcher goroutine is the caller of Run; all handler calls happen there.
type session struct {
	ws            *WebSocket
	cfg           *config
	t             *table
	recoverPanics bool
	target        target
	onReady       func() // after Ready was delivered (Persist flushes its queue)
	readyAt       time.Time

	state atomic.Int32
	wire  *wire
	conn  *websocket.Conn

	// sendMu serializes writes: the engine's data frames and our own
	// frames. It is held for a whole engine Write, so our frames always
	// start at a frame boundary.
	sendMu       sync.Mutex
	pendingClose *closeFrame            // Close during the opening handshake
	owedPong     atomic.Pointer[[]byte] // a pong to send when the send lock frees
	rawWrites    bool                   // no compression: data frames are written by the wire
	wbuf         []byte                 // frame buffer for raw writes, under sendMu
	maskRand     *rand.ChaCha8

	// Timers. Guarded by tmu, since Close (any goroutine) arms the close
	// timer; the rest is touched by the dispatcher goroutine.
	tmu           sync.Mutex
	nextPoll      time.Time
	nextPing      time.Time
	pongDeadline  time.Time
	closeDeadline time.Time
	closeGrace    bool // a late close deadline was extended once
	pingSent      time.Time
	pingPayload   [8]byte
	start         time.Time

	// Dispatcher goroutine only.
	lastStamp time.Time      // ReceivedTime of the last event delivered
	sizeHint  int            // the last message's size: the next one's buffer
	scratch   []byte         // for discarded and borrowed messages
	borrowed  *events.Binary // the reused event of WithBorrowedBinary
	silent    bool           // deliver no more events (the handler stopped)
	stopErr   error          // why the handler stopped: ErrStopped or a *PanicError
	timerErr  error          // a timer ended the session
	failure   *ProtocolError
}

const lateWake = 100 * time.Millisecond

func (s *session) run(ctx context.Context) error {
	cfg := s.cfg
	s.emit(&events.Connecting{Meta: events.Stamp(), URL: s.target.raw})
	if s.stopErr != nil {
		return s.stopErr
	}
	dr, err := cfg.dialTransport(ctx, s.target.url)
	if err != nil {
		s.state.Store(int32(StateIdle))
		reason := connectFailReason(err)
		s.emit(&events.ConnectFail{Meta: events.Stamp(), URL: s.target.raw, Reason: reason, Err: err})
		return &ConnectError{URL: s.target.raw, Reason: reason, Err: err}
	}
	s.wire = newWire(dr.conn)
	defer s.wire.Close()
	s.state.Store(int32(StateHandshake))

	// One watcher for the caller's context: a graceful close when it ends.
	cancelled := make(chan struct{})
	stopWatch := context.AfterFunc(ctx, func() {
		defer close(cancelled)
		_ = s.close(StatusGoingAway, "going away")
	})
	defer func() {
		if !stopWatch() {
			s.wire.Close() // unblock a close write stuck on a dead peer
			<-cancelled
		}
	}()

	s.emit(&events.Connected{Meta: events.Stamp(), URL: s.target.raw, Proxy: redact(dr.proxy)})
	if s.stopErr != nil {
		return s.stopErr
	}

	conn, resp, err := s.handshake(ctx)
	if err != nil {
		return s.handshakeFailed(ctx, resp, err)
	}
	s.conn = conn
	defer conn.CloseNow()
	if cfg.readLimit == NoReadLimit {
		conn.SetReadLimit(-1)
	} else {
		conn.SetReadLimit(cfg.readLimit)
	}

	s.sendMu.Lock()
	// Uncompressed sessions write their data frames themselves, whole.
	s.rawWrites = !strings.Contains(resp.Header.Get("Sec-WebSocket-Extensions"), "permessage-deflate")
	if s.rawWrites {
		var seed [32]byte
		_, _ = cryptorand.Read(seed[:])
		s.maskRand = rand.NewChaCha8(seed)
	}
	s.state.Store(int32(StateReady))
	if pc := s.pendingClose; pc != nil {
		s.state.Store(int32(StateClosing))
		_ = s.writeOwn(opClose, closePayload(pc.code, pc.reason), 0)
	}
	s.sendMu.Unlock()

	now := time.Now()
	s.tmu.Lock()
	s.start = now
	if cfg.pollInterval > 0 {
		s.nextPoll = now.Add(cfg.pollInterval)
	}
	if cfg.pingRate > 0 {
		s.nextPing = now.Add(cfg.pingRate)
	}
	if s.pendingClose != nil {
		s.closeDeadline = now.Add(cfg.closeTimeout)
	}
	s.wire.onTimeout = s.tick
	s.rearm()
	s.tmu.Unlock()

	ready := &events.Ready{Meta: events.Meta{Received: now}, Response: resp, Protocol: conn.Subprotocol()}
	if ext := resp.Header.Get("Sec-WebSocket-Extensions"); ext != "" && strings.Contains(ext, "permessage-deflate") {
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

// readLoop reads messages until the session ends, delivering each one.
func (s *session) readLoop() error {
	ctx := context.Background() // one long-lived context: no per-read cost
	for {
		typ, r, err := s.conn.Reader(ctx)
		if err != nil {
			return s.finish(err)
		}
		ev, err := s.readMessage(r, typ == websocket.MessageText)
		if err != nil {
			return s.finish(err)
		}
		if ev != nil {
			s.emit(ev)
		}
	}
}

// readMessage reads a whole message straight into the payload buffer of its
// event (see payload.go), so nothing is copied: the buffer is sized from the
// previous message, grown 2x when short, and moved to a smaller one when
// much too large. Text is validated as it arrives, so invalid UTF-8 fails at
// once (1007), not at the end. A failing or stopped session discards
// messages instead (nil event).
func (s *session) readMessage(r io.Reader, text bool) (events.Event, error) {
	if s.failure != nil || s.silent {
		return nil, s.discard(r)
	}
	if !text && s.cfg.borrowBinary {
		return s.readBorrowed(r)
	}
	msg := newMessage(text, max(s.sizeHint, minMessageBuffer))
	buf := msg.buf
	n, checked := 0, 0
	for {
		if n == len(buf) {
			// Full: an empty read tells whether the message ends here.
			if _, err := r.Read(buf[n:]); err == io.EOF {
				break
			} else if err != nil {
				return nil, err
			}
			grown := newMessage(text, 2*len(buf))
			copy(grown.buf, buf[:n])
			msg, buf = grown, grown.buf
		}
		m, err := r.Read(buf[n:])
		n += m
		if text && err == nil && s.failure == nil {
			end := checked + completeRunes(buf[checked:n])
			if !utf8.Valid(buf[checked:end]) || !validUTF8Prefix(buf[end:n]) {
				s.fail(StatusInvalidPayload, errors.New("invalid UTF-8 in text message"))
			}
			checked = end
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
	}
	if text && s.failure == nil && !utf8.Valid(buf[checked:n]) {
		s.fail(StatusInvalidPayload, errors.New("invalid UTF-8 in text message"))
	}
	if s.failure != nil {
		return nil, nil
	}
	s.sizeHint = n
	if len(buf)-n > maxMessageSlack {
		// A kept event must not pin a mostly empty buffer.
		exact := newMessage(text, n)
		copy(exact.buf, buf[:n])
		msg = exact
	}
	return msg.finish(s.messageMeta(), n), nil
}

const (
	minMessageBuffer = 16
	maxMessageSlack  = 4096
)

// readBorrowed reads a binary message into the session's reused buffer and
// delivers it in the session's reused event (WithBorrowedBinary): no
// allocation per message.
func (s *session) readBorrowed(r io.Reader) (events.Event, error) {
	if s.borrowed == nil {
		s.borrowed = &events.Binary{}
		s.scratch = make([]byte, max(4096, len(s.scratch)))
	}
	buf, n := s.scratch, 0
	for {
		if n == len(buf) {
			buf = append(buf, make([]byte, len(buf))...)
		}
		m, err := r.Read(buf[n:])
		n += m
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
	}
	if len(buf) <= maxKeptWriteBuffer { // a huge one is not kept for the session
		s.scratch = buf
	}
	ev := s.borrowed
	ev.Meta, ev.Data = s.messageMeta(), buf[:n:n]
	return ev, nil
}

// discard reads and drops a message.
func (s *session) discard(r io.Reader) error {
	if s.scratch == nil {
		s.scratch = make([]byte, 4096)
	}
	for {
		_, err := r.Read(s.scratch)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// fail fails the connection for a protocol violation the dispatcher found:
// ProtocolError now, a close frame with code, and the session drains until
// the server's close reply or the close timeout.
func (s *session) fail(code int, err error) {
	s.failure = &ProtocolError{Code: code, Err: err}
	s.lockForClose()
	if State(s.state.Load()) == StateReady {
		s.state.Store(int32(StateClosing))
		_ = s.writeOwn(opClose, closePayload(code, err.Error()), outAuto)
		s.armCloseTimer()
	}
	s.sendMu.Unlock()
	s.emit(&events.ProtocolError{Meta: events.Stamp(), Err: err, Code: code})
}

// finish turns the error that ended the read loop into the session's last
// events and Run's result.
func (s *session) finish(err error) error {
	if s.stopErr != nil && s.silent && s.failure == nil {
		// The handler stopped; its close handshake has ended one way or another.
		if pe, ok := s.stopErr.(*PanicError); ok {
			s.silent = false
			s.disconnected("handler panic", false, pe)
			return pe
		}
		return s.stopErr
	}
	if s.timerErr != nil {
		if errors.Is(s.timerErr, ErrCloseTimeout) {
			s.disconnected(fmt.Sprintf("server didn't respond to close within %v", s.cfg.closeTimeout), false, s.timerErr)
		} else {
			s.disconnected(fmt.Sprintf("no pong within %v", s.cfg.pingTimeout), false, s.timerErr)
		}
		return s.timerErr
	}
	var ce websocket.CloseError
	if errors.As(err, &ce) {
		return s.closeReceived(int(ce.Code), ce.Reason)
	}
	if s.failure != nil {
		return s.endWithProtocolError(s.failure)
	}
	if s.wire.violation != nil {
		pe := &ProtocolError{Code: StatusProtocolError, Err: s.wire.violation}
		s.lockForClose()
		_ = s.writeOwn(opClose, closePayload(StatusProtocolError, s.wire.violation.Error()), outAuto)
		s.sendMu.Unlock()
		return s.endWithProtocolError(pe)
	}
	if ec := s.engineClose(); ec != nil {
		// The engine found a violation (or an oversized message), sent its
		// close frame and stopped reading.
		pe := &ProtocolError{Code: ec.code, Err: errors.New(ec.reason)}
		if errors.Is(err, websocket.ErrMessageTooBig) {
			pe.Err = fmt.Errorf("message larger than the read limit (%d bytes)", s.cfg.readLimit)
		}
		return s.endWithProtocolError(pe)
	}
	if State(s.state.Load()) == StateClosing {
		s.disconnected("connection lost before the close reply; "+err.Error(), false, err)
		return err
	}
	s.disconnected("socket fail; "+err.Error(), false, err)
	return err
}

// endWithProtocolError ends the session after a violation: ProtocolError
// (unless fail delivered it already) and Disconnected.
func (s *session) endWithProtocolError(pe *ProtocolError) error {
	if pe != s.failure {
		s.emit(&events.ProtocolError{Meta: events.Stamp(), Err: pe.Err, Code: pe.Code})
	}
	s.disconnected("protocol error; "+pe.Err.Error(), false, pe)
	return pe
}

func (s *session) engineClose() *closeFrame {
	s.wire.wmu.Lock()
	defer s.wire.wmu.Unlock()
	if s.wire.ourClose {
		return nil
	}
	return s.wire.engineClosed
}

// closeReceived handles the server's close frame: the reply to ours, or the
// server's own close (which the engine has already answered).
func (s *session) closeReceived(code int, reason string) error {
	if s.failure != nil {
		return s.endWithProtocolError(s.failure)
	}
	if !utf8.ValidString(reason) {
		return s.endWithProtocolError(&ProtocolError{Code: StatusInvalidPayload, Err: errors.New("invalid UTF-8 in close reason")})
	}
	s.wire.wmu.Lock()
	ours := s.wire.ourClose
	s.wire.wmu.Unlock()
	if !ours {
		s.state.Store(int32(StateClosing))
		s.emit(&events.Closing{Meta: events.Stamp(), Code: code, Reason: reason})
	}
	s.state.Store(int32(StateClosed))
	s.emit(&events.Closed{Meta: events.Stamp(), Code: code, Reason: reason})
	s.disconnected("closed", true, nil)
	if ours {
		return nil
	}
	return &CloseError{Code: code, Reason: reason}
}

func (s *session) disconnected(reason string, graceful bool, err error) {
	s.ws.signalReady(false)
	if State(s.state.Load()) != StateClosed {
		s.state.Store(int32(StateIdle))
	}
	s.emit(&events.Disconnected{Meta: events.Stamp(), Reason: reason, Graceful: graceful, Err: err})
}

// messageMeta stamps a message with when its last bytes arrived, but never
// before the event delivered ahead of it, so ReceivedTime never goes back.
func (s *session) messageMeta() events.Meta {
	t := s.wire.lastRead
	if t.Before(s.lastStamp) {
		t = s.lastStamp
	}
	return events.Meta{Received: t}
}

// emit delivers one event to the handler, unless the handler stopped. If
// the handler stops now (a panic, or a range loop left), the session starts
// its close handshake.
func (s *session) emit(ev events.Event) {
	if s.silent {
		return
	}
	s.lastStamp = ev.ReceivedTime()
	s.deliver(ev)
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
	s.lockForClose()
	if State(s.state.Load()) == StateReady {
		s.state.Store(int32(StateClosing))
		_ = s.writeOwn(opClose, closePayload(code, reason), outAuto)
		s.armCloseTimer()
	}
	s.sendMu.Unlock()
}
