package lomond

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"net"
	"net/http"
	"net/url"
	"runtime"
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
		if errors.Is(err, ErrAlreadyRunning) || errors.Is(err, errZeroWebSocket) || errors.Is(err, ErrInvalidOption) {
			yield(&events.ConnectFail{Meta: events.Stamp(), URL: ws.raw, Reason: startFailReason(err), Err: err})
		}
	}
}

func (ws *WebSocket) runSession(ctx context.Context, t *table, recoverPanics bool) error {
	return ws.runSessionWith(ctx, t, recoverPanics, nil)
}

func (ws *WebSocket) runSessionWith(ctx context.Context, t *table, recoverPanics bool, prepare func(*session)) (err error) {
	if ws.persist.Load() == nil {
		defer func() {
			if !errors.Is(err, ErrAlreadyRunning) {
				ws.setErr(err)
			}
		}()
	}
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
	s.w.init(nil, ws.cfg.stallTimeout())
	if prepare != nil {
		prepare(s)
	}
	s.direct = recoverPanics && ws.cfg.plugins == nil && t.observer == nil && !t.streams
	defer ws.attachQueue(s)()
	s.state.Store(int32(StateConnecting))
	ws.sess.Store(s)
	defer ws.sess.Store(nil)
	return s.run(ctx)
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

// session is one run of a WebSocket: from Connecting to Disconnected.
// docs/architecture.md describes its goroutines and owners. The session
// goroutine is the caller of Run: it alone reads the connection (through
// one buffered reader, from the first byte of the upgrade response to the
// last frame), runs the timers, calls the handlers (between I/O calls,
// never inside one), changes the state, and decides, in finish, how the
// session ends. Other goroutines write through the writer (w), and tell the
// session goroutine what it must know through its mailbox (post).
type session struct {
	ws            *WebSocket
	cfg           *config
	t             *table
	recoverPanics bool
	target        target
	ctx           context.Context // the caller's: its cause may name the close code
	onReady       func()          // after Ready was delivered (the send queue's flush)
	readyAt       time.Time

	// Published: written by the session goroutine, read by any.
	state    atomic.Int32
	protocol string // the subprotocol; written before StateReady is stored

	w writer // the write side, with its own lock and mailbox

	// The mailbox, under mu (never held during I/O): what other goroutines
	// tell the session goroutine, the connection (set once, after the dial),
	// and the read deadline, which is set only here: by the session
	// goroutine for its timers (setReadDeadline), and in the past by post
	// to wake it, so that neither undoes the other.
	mu           sync.Mutex
	conn         net.Conn
	mail         mail
	woken        bool      // the read deadline is in the past: mail waits
	readDeadline time.Time // the session goroutine's deadline

	// Session goroutine only.
	cr        *connReader
	rb        readBuffer // readbuf.go
	pay       carver     // owned payloads (payload.go)
	in        inMessage
	z         *inflateState  // permessage-deflate agreed: the inflater and its buffers
	lastStamp time.Time      // ReceivedTime of the last event emit delivered
	scratch   []byte         // borrowed binary messages
	borrowed  *events.Binary // the reused event of WithBorrowedBinary
	tm        timers
	stopErr   error          // why the handler stopped: ErrStopped or a *PanicError
	failure   *ProtocolError // the client failed the connection
	ahead     bool           // lastStamp is after cr.lastRead: messageMeta must compare
	direct    bool           // only the handler listens: deliverMessage may call it directly
	cancelled bool           // the caller's context ended
	silent    bool           // the handler stopped: events go to plugins only
	stopNow   bool           // the handler just stopped: close the session
	inHandler bool           // deliverMessage is in the handler: readLoop recovers its panic

	// A message delivered as a stream (stream_reader.go): non-nil while
	// OnStream runs; the events that happen meanwhile wait in pending.
	stream         *streamIn
	pending        []events.Event
	pendingControl int              // Pings and Pongs in pending
	drain          *[drainSize]byte // reads the unread rest of a stream
}

// inflateState is the read side of permessage-deflate, allocated when it
// is agreed: most sessions do without it, and their struct stays small.
type inflateState struct {
	inflater  *protocol.Inflater
	zin, zout []byte // a compressed message and its inflated bytes
}

// mail is what other goroutines tell the session goroutine.
type mail struct {
	cancelled  bool  // the caller's context ended
	closeAsked bool  // Close was called: start the close timer
	broken     error // the write stream broke
}

// post hands mail to the session goroutine and wakes it: its read (or the
// handshake's) returns at once, and onDeadline reads the mail.
func (s *session) post(f func(*mail)) {
	s.mu.Lock()
	f(&s.mail)
	s.woken = true
	if s.conn != nil {
		_ = s.conn.SetReadDeadline(time.Unix(1, 0))
	}
	s.mu.Unlock()
}

// takeMail empties the mailbox. Session goroutine.
func (s *session) takeMail() mail {
	s.mu.Lock()
	m := s.mail
	s.mail = mail{}
	if s.woken {
		s.woken = false
		_ = s.conn.SetReadDeadline(s.readDeadline)
	}
	s.mu.Unlock()
	if m.cancelled {
		s.cancelled = true
	}
	return m
}

// setReadDeadline sets the session goroutine's read deadline, unless mail
// waits (then the deadline stays in the past until takeMail).
func (s *session) setReadDeadline(t time.Time) {
	s.mu.Lock()
	s.readDeadline = t
	if !s.woken {
		_ = s.conn.SetReadDeadline(t)
	}
	s.mu.Unlock()
}

// setConn records the dialled connection; a wake posted before stays.
func (s *session) setConn(c net.Conn) {
	s.mu.Lock()
	s.conn = c
	if s.woken {
		_ = c.SetReadDeadline(time.Unix(1, 0))
	}
	s.mu.Unlock()
}

// ending is how a session ended: what Run returns, and its Disconnected
// event (none when reason is empty: a ConnectFail). It travels as an error
// out of the read loop to finish.
type ending struct {
	result   error  // what Run returns
	reason   string // Disconnected's Reason; "": no Disconnected
	graceful bool
	err      error // Disconnected's Err

	connectFailed bool // ConnectFail ended it: no Disconnected, even after a panic
}

func (e *ending) Error() string { return "session ended: " + e.reason }

func (s *session) run(ctx context.Context) error {
	cfg := s.cfg
	s.ctx = ctx
	s.emit(&events.Connecting{Meta: events.Stamp(), URL: s.target.raw})
	if s.stopErr != nil {
		s.state.Store(int32(StateIdle))
		return s.finish(&ending{result: s.stopErr})
	}
	var dr dialResult
	var err error
	offload(func() { dr, err = cfg.dialTransport(ctx, s.target.url) })
	if err != nil {
		s.state.Store(int32(StateIdle))
		reason := connectFailReason(err)
		s.emit(&events.ConnectFail{Meta: events.Stamp(), URL: s.target.raw, Reason: reason, Err: err})
		return s.finish(&ending{result: &ConnectError{URL: s.target.raw, Reason: reason, Err: err}, connectFailed: true})
	}
	s.setConn(dr.conn)
	s.w.conn = dr.conn
	defer dr.conn.Close()
	defer s.w.abandon()
	if !s.recoverPanics {
		// A range loop's body panicked: close with 1011, as for a
		// handler's panic (before the connection closes), and let the
		// panic go on.
		defer func() {
			if v := recover(); v != nil {
				if State(s.state.Load()) >= StateReady {
					_ = s.w.postClose(protocol.AppendClosePayload(nil, StatusInternalError, "handler panic"), outAuto)
				}
				s.ws.setReady(s, false)
				panic(v)
			}
		}()
	}
	s.state.Store(int32(StateHandshake))

	// The caller's context: mail for the session goroutine, which starts
	// the close (or abandons the handshake). The watcher does no I/O.
	watched := make(chan struct{})
	stopWatch := context.AfterFunc(ctx, func() {
		defer close(watched)
		s.post(func(m *mail) { m.cancelled = true })
	})
	defer func() {
		if !stopWatch() {
			<-watched
		}
	}()

	s.emit(&events.Connected{Meta: events.Stamp(), URL: s.target.raw, Proxy: shownProxy(dr.proxy)})
	if s.stopErr != nil || s.takeMail().cancelled {
		hc := &handshakeCancelled{err: context.Canceled}
		return s.finish(&ending{result: hc, reason: "cancelled during the handshake", err: hc})
	}

	var res *handshakeResult
	offload(func() { res, err = s.handshake() })
	if err != nil {
		return s.finish(s.handshakeFailed(err))
	}
	s.setup(res)

	now := time.Now()
	ready := &events.Ready{Meta: events.Meta{Received: now}, Response: res.resp, Protocol: res.protocol}
	if res.deflate != nil {
		ready.Extensions = []string{"permessage-deflate"}
	}
	s.readyAt = now
	s.emit(ready)
	// WaitReady returns once OnReady's own messages (a protocol's opening)
	// went out. The send queue's flush runs on (later sends keep their
	// order behind it).
	s.ws.setReady(s, true)
	if s.onReady != nil && !s.silent {
		s.onReady()
	}
	if cfg.pollInterval > 0 {
		s.emit(&events.Poll{Meta: events.Stamp()})
	}
	return s.finish(s.readLoop())
}

// offload runs f on a goroutine of its own and waits for it (f's panic
// goes on here). Dialling and the handshake need a deep stack (name
// resolution, TLS, HTTP parsing); run on the session goroutine they would
// grow its stack for the whole session, since a stack is halved only when
// a quarter of it is used, and the session goroutine spends its life
// parked in a read a few frames deep. So its stack stays at the size the
// read loop needs (2-4 KiB), most of an idle connection's cost.
func offload(f func()) {
	done := make(chan any, 1)
	finished := false
	go func() {
		defer func() { done <- recover() }()
		f()
		finished = true
	}()
	if v := <-done; v != nil {
		panic(v)
	}
	if !finished {
		runtime.Goexit() // f called it: so does its caller
	}
}

// setup readies the session after an accepted handshake: the writer, the
// compression agreed, the state (sending a Close made during the handshake)
// and the timers.
func (s *session) setup(res *handshakeResult) {
	cfg := s.cfg
	s.w.report = func(op byte, p []byte, flags outFlags, err error) { s.ws.observeSent(op, p, flags, err) }
	s.w.broke = func(err error) { s.post(func(m *mail) { m.broken = err }) }
	if d := res.deflate; d != nil {
		s.z = &inflateState{inflater: protocol.NewInflater(*d)}
		s.w.deflater = protocol.NewDeflater(*d, cfg.compression.level())
		s.w.threshold = cfg.compression.threshold()
	}
	s.protocol = res.protocol
	// The writer opens first: a Close made during the handshake goes out
	// before any message can.
	closing := s.w.start()
	if closing {
		s.state.Store(int32(StateClosing))
	} else {
		s.state.Store(int32(StateReady))
	}
	s.tm.start = time.Now()
	if cfg.pollInterval > 0 {
		s.tm.nextPoll = s.tm.start.Add(cfg.pollInterval)
	}
	if closing {
		s.closeStarted()
	} else if cfg.pingRate > 0 {
		s.tm.nextPing = s.tm.start.Add(cfg.pingRate)
	}
	s.rearm(s.tm.start)
}

// finish is where every session ends, once: it delivers the last event
// (Disconnected, for a session that did not end with ConnectFail) to the
// handler and to the plugins, whatever the handler or range loop did, and
// returns what Run returns. A handler's panic overrides every other
// outcome: Disconnected then says "handler panic".
func (s *session) finish(e *ending) error {
	pe, panicked := s.stopErr.(*PanicError)
	if panicked && !e.connectFailed {
		e = &ending{result: pe, reason: "handler panic", err: pe}
		s.silent = false // every listener hears how the session ended
	}
	s.ws.setReady(s, false) // and the state is Idle: a send from OnDisconnected finds no session
	if e.reason != "" {
		s.emit(&events.Disconnected{Meta: events.Stamp(), Reason: e.reason, Graceful: e.graceful, Err: e.err})
	}
	if pe, ok := s.stopErr.(*PanicError); ok {
		return pe // a panic in OnDisconnected too
	}
	if s.stopErr != nil {
		return s.stopErr // ErrStopped: the range loop was left
	}
	return e.result
}

// end turns the error that ended the read loop into the session's ending.
func (s *session) end(err error) *ending {
	var e *ending
	if errors.As(err, &e) {
		return e
	}
	var perr *protocol.Error
	switch {
	case errors.As(err, &perr):
		pe := s.fail(perr)
		return &ending{result: pe, reason: "protocol error", err: pe}
	case s.failure != nil:
		return &ending{result: s.failure, reason: "protocol error", err: s.failure}
	case errors.Is(err, ErrUnresponsive):
		return &ending{result: ErrUnresponsive, reason: "ping timeout", err: ErrUnresponsive}
	case errors.Is(err, ErrCloseTimeout):
		return &ending{result: ErrCloseTimeout, reason: "close timeout", err: ErrCloseTimeout}
	}
	return &ending{result: err, reason: "connection lost", err: err}
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
	s.startClose(perr.Code, perr.Reason)
	s.emit(&events.ProtocolError{Meta: events.Stamp(), Err: perr, Code: perr.Code})
	return s.failure
}

// startClose posts the session's own close frame (a failure, a stopped
// handler, the caller's context, the reply to the server's close) unless
// one was asked for already, and starts the close timer. It never waits
// for the write lock: the frame goes out when the message being written
// ends, or the close timer ends the session.
func (s *session) startClose(code int, reason string) {
	if State(s.state.Load()) < StateReady {
		return
	}
	var payload []byte
	if code != 0 {
		payload = protocol.AppendClosePayload(nil, code, reason)
	} else {
		payload = []byte{} // an empty close answers an empty close
	}
	_ = s.w.postClose(payload, outAuto)
	s.closeStarted()
}

// closeStarted moves the session to closing once a close frame was asked
// for: the close timer runs, pings stop. Session goroutine.
func (s *session) closeStarted() {
	if State(s.state.Load()) == StateReady {
		s.state.Store(int32(StateClosing))
	}
	s.armCloseTimer(time.Now())
}

// messageMeta stamps a message with when its last bytes arrived, but never
// before the event delivered ahead of it, so ReceivedTime never goes back.
func (s *session) messageMeta() events.Meta {
	t := s.cr.lastRead
	if s.ahead {
		if t.Before(s.lastStamp) {
			t = s.lastStamp
		} else {
			s.ahead = false
		}
	}
	return events.Meta{Received: t}
}

// emit delivers one event to the handler and the plugins; once the handler
// stopped, to the plugins only. While a pong or a close reply is awaited,
// the time the handlers take is not counted against the server. If the
// handler stops now (a panic, or a range loop left), the session starts its
// close handshake.
func (s *session) emit(ev events.Event) {
	if s.stream != nil {
		s.deferEvent(ev) // OnStream runs: after it returns
		return
	}
	s.lastStamp = ev.ReceivedTime()
	// Messages are stamped with the time of the read that brought their
	// last bytes; only an event stamped later than that read (a poll, say)
	// makes messageMeta compare.
	s.ahead = s.cr != nil && s.lastStamp.After(s.cr.lastRead)
	if s.silent {
		if p := s.ws.cfg.plugins; p != nil {
			s.deliverTo(p, ev)
		}
		return
	}
	if s.tm.judging() {
		began := time.Now()
		s.deliverTo(s.t, ev)
		s.excludeHandlerTime(began)
	} else {
		s.deliverTo(s.t, ev)
		if s.tm.judging() {
			// Armed during the handler (a Close from it, say): the rest
			// of the handler's time does not count either.
			s.excludeHandlerTime(time.Time{})
		}
	}
	if s.stopNow {
		s.stopNow = false
		s.stopSession()
	}
}

// deliverMessage delivers a Text or Binary message. When only the handler
// listens and no judging timer runs (the common case), it calls the
// handler's slot directly: no type switch, and no defer per message (a
// panic is recovered once, in readLoop). Otherwise it goes through emit.
func (s *session) deliverMessage(m message, meta events.Meta, n int) {
	if !s.direct || s.silent || s.tm.awaiting {
		s.emit(m.finish(meta, n))
		return
	}
	// lastStamp is not written: meta is never before it (messageMeta).
	s.inHandler = true
	if m.text != nil {
		m.text.Meta, m.text.Text = meta, bytesString(m.buf[:n])
		if f := s.t.text; f != nil {
			f(s.ws, m.text)
		}
	} else {
		m.binary.Meta, m.binary.Data = meta, m.buf[:n:n]
		if h := s.t.binaryH; h != nil {
			h.OnBinary(s.ws, m.binary)
		} else if f := s.t.binary; f != nil {
			f(s.ws, m.binary)
		}
	}
	s.inHandler = false
	if s.tm.awaiting {
		// Armed during the handler (a Close from it, say): the rest of
		// the handler's time does not count.
		s.excludeHandlerTime(time.Time{})
	}
}

// handlerPanicked turns a panic of a handler called by deliverMessage into
// what emit makes of one: the handler stops, the session closes with 1011.
// Called from readLoop's deferred function, with the panic's value.
func (s *session) handlerPanicked(v any) {
	s.inHandler = false
	s.stopRequested(&PanicError{Value: v, Stack: debug.Stack()})
	if s.tm.awaiting {
		s.excludeHandlerTime(time.Time{})
	}
	s.stopNow = false
	s.stopSession()
}

func (s *session) deliverTo(t *table, ev events.Event) {
	if s.recoverPanics {
		defer s.recoverHandler()
	}
	t.deliver(s.ws, ev)
}

func (s *session) recoverHandler() {
	if v := recover(); v != nil {
		s.stopRequested(&PanicError{Value: v, Stack: debug.Stack()})
	}
}

// stopRequested records that the handler stopped (a panic, or a range loop
// left early): from now on events go to the plugins only.
func (s *session) stopRequested(err error) {
	if s.stopErr == nil {
		s.stopErr = err
		s.stopNow = true
	}
	s.silent = true
}

// stopSession closes a session whose handler stopped: 1011 after a panic,
// 1000 after a range loop was left. The read loop then goes on, delivering
// to plugins only, until the close reply, the close timeout, or the
// connection's end.
func (s *session) stopSession() {
	code, reason := StatusNormal, "goodbye"
	if _, ok := s.stopErr.(*PanicError); ok {
		code, reason = StatusInternalError, "handler panic"
	}
	s.startClose(code, reason)
}
