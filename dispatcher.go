package lomond

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"iter"
	"math"
	"net"
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
		ws.yieldSession(ctx, yield, nil)
	}
}

// yieldSession runs a session whose handler is a range loop's yield.
func (ws *WebSocket) yieldSession(ctx context.Context, yield func(events.Event) bool, prepare func(*session)) error {
	t := &table{}
	err := ErrAlreadyRunning
	if ws.persist.Load() == nil {
		err = ws.runSessionWith(ctx, t, false, func(s *session) {
			t.observer = func(_ *WebSocket, ev events.Event) {
				if !yield(ev) {
					s.stopRequested(ErrStopped)
				}
			}
			if prepare != nil {
				prepare(s)
			}
		})
	}
	if errors.Is(err, ErrAlreadyRunning) {
		yield(&events.ConnectFail{Meta: events.Stamp(), URL: ws.raw, Reason: "already running", Err: err})
	}
	return err
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
	pendingClose *closeFrame // Close during the opening handshake

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
	slab     eventSlab
	buf      []byte
	silent   bool  // deliver no more events (the handler stopped)
	stopErr  error // why the handler stopped: ErrStopped or a *PanicError
	timerErr error // a timer ended the session
	failure  *ProtocolError
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
		cfg.logger.Info("lomond: connect failed", "url", s.target.raw, "err", err)
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
	s.state.Store(int32(StateReady))
	if pc := s.pendingClose; pc != nil {
		s.state.Store(int32(StateClosing))
		_ = s.wire.writeFrame(opClose, closePayload(pc.code, pc.reason))
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
	cfg.logger.Debug("lomond: ready", "url", s.target.raw, "protocol", ready.Protocol)
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

// handshake sends the upgrade request over the session's transport and
// validates the response, bounded by the handshake timeout.
func (s *session) handshake(ctx context.Context) (*websocket.Conn, *http.Response, error) {
	cfg := s.cfg
	hctx, cancel := context.WithTimeoutCause(ctx, cfg.handshakeTimeout, ErrHandshakeTimeout)
	defer cancel()
	_ = s.wire.SetDeadline(time.Now().Add(cfg.handshakeTimeout))

	var given atomic.Bool
	give := func(context.Context, string, string) (net.Conn, error) {
		if given.Swap(true) {
			return nil, errors.New("lomond: the handshake needs a second connection (redirects are not followed)")
		}
		return s.wire, nil
	}
	tr := &http.Transport{
		DialContext:            give,
		DialTLSContext:         give,
		DisableCompression:     true,
		MaxResponseHeaderBytes: 1 << 20,
	}
	defer tr.CloseIdleConnections()
	rt := upgradeRoundTripper{rt: tr, wire: s.wire}
	client := &http.Client{
		Transport: rt,
		// A redirect is reported as Rejected with its Location header.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	header := s.target.header.Clone()
	header.Set("User-Agent", cfg.userAgent)
	opts := &websocket.DialOptions{
		HTTPClient:     client,
		HTTPHeader:     header,
		Host:           s.target.host,
		Subprotocols:   s.target.protocols,
		OnPingReceived: s.onPing,
		OnPongReceived: s.onPong,
	}
	switch cfg.compression {
	case CompressionContextTakeover:
		opts.CompressionMode = websocket.CompressionContextTakeover
	case CompressionNoContextTakeover:
		// The engine keeps its own no-takeover offer even when the server
		// answers without server_no_context_takeover (tornado does), and
		// then resets its decompressor while the server keeps its context:
		// corrupt input from the second message on. Dialing in takeover mode
		// makes the engine follow the server's answer; the offer itself is
		// rewritten to ask for no context takeover.
		opts.CompressionMode = websocket.CompressionContextTakeover
		rt.extensions = "permessage-deflate; client_no_context_takeover; server_no_context_takeover"
	}
	client.Transport = rt
	conn, resp, err := websocket.Dial(hctx, s.target.raw, opts)
	if err == nil {
		_ = s.wire.SetDeadline(noDeadline)
		return conn, resp, nil
	}
	if context.Cause(hctx) == ErrHandshakeTimeout || (isTimeout(err) && ctx.Err() == nil) {
		err = fmt.Errorf("%w after %v: %v", ErrHandshakeTimeout, cfg.handshakeTimeout, err)
	}
	return nil, resp, err
}

// upgradeRoundTripper expires the read deadline once a 101 arrives. When the
// engine refuses a 101 (a bad Sec-WebSocket-Accept, say) it reads up to 1 KiB
// of the response body for its error, under a 3 s timer; for a 101 that body
// is the raw connection. The expired deadline makes that read return at once;
// an accepted handshake clears the deadline before anything else is read.
//
// It also replaces the extension offer when extensions is set.
type upgradeRoundTripper struct {
	rt         http.RoundTripper
	wire       *wire
	extensions string
}

func (u upgradeRoundTripper) RoundTrip(req *http.Request) (*http.Response, error) {
	if u.extensions != "" {
		req = req.Clone(req.Context())
		req.Header.Set("Sec-WebSocket-Extensions", u.extensions)
	}
	resp, err := u.rt.RoundTrip(req)
	if err == nil && resp.StatusCode == http.StatusSwitchingProtocols {
		_ = u.wire.SetReadDeadline(time.Now())
	}
	return resp, err
}

// handshakeFailed reports a failed opening handshake: Rejected when the
// server answered, then Disconnected.
func (s *session) handshakeFailed(ctx context.Context, resp *http.Response, err error) error {
	s.wire.Close()
	if resp != nil {
		rej := rejection(resp, err)
		s.state.Store(int32(StateIdle))
		s.emit(&events.Rejected{Meta: events.Stamp(), StatusCode: rej.StatusCode, Status: rej.Status,
			Header: rej.Header, Body: readBody(resp), Reason: rej.Reason, RetryAfter: rej.RetryAfter,
			HasRetryAfter: rej.HasRetryAfter, Err: err})
		s.disconnected("closed", true, nil)
		return rej
	}
	reason := "handshake failed; " + err.Error()
	switch {
	case errors.Is(err, ErrHandshakeTimeout):
		reason = "handshake timeout; no response within " + s.cfg.handshakeTimeout.String()
	case ctx.Err() != nil:
		reason = "cancelled during the handshake"
		err = fmt.Errorf("%w: %v", ctx.Err(), err)
	}
	s.disconnected(reason, false, err)
	return err
}

func readBody(resp *http.Response) []byte {
	if resp.Body == nil {
		return nil
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	return b
}

func rejection(resp *http.Response, err error) *RejectedError {
	rej := &RejectedError{StatusCode: resp.StatusCode, Status: resp.Status, Header: resp.Header, Err: err}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		rej.Reason = fmt.Sprintf("websocket upgrade failed (code=%d)", resp.StatusCode)
	} else {
		rej.Reason = strings.TrimPrefix(err.Error(), "failed to WebSocket dial: ")
	}
	rej.RetryAfter, rej.HasRetryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
	return rej
}

// parseRetryAfter reads a Retry-After value: delay-seconds or an HTTP date
// (a past date means 0).
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	var secs int64
	if _, err := fmt.Sscanf(v, "%d", &secs); err == nil && fmt.Sprint(secs) == v {
		if secs < 0 {
			return 0, false
		}
		if secs > int64(math.MaxInt64/time.Second) {
			return time.Duration(math.MaxInt64), true // Persist bounds it
		}
		return time.Duration(secs) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}

// readLoop reads messages until the session ends, delivering each one.
func (s *session) readLoop() error {
	ctx := context.Background() // one long-lived context: no per-read cost
	for {
		typ, r, err := s.conn.Reader(ctx)
		if err != nil {
			return s.finish(err)
		}
		n, err := s.readMessage(r, typ == websocket.MessageText)
		if err != nil {
			return s.finish(err)
		}
		if s.failure != nil || s.silent {
			continue // failing or stopped: drain until the close reply
		}
		if typ == websocket.MessageText {
			ev := s.slab.text()
			ev.Meta, ev.Text = events.Stamp(), string(s.buf[:n])
			s.emit(ev)
		} else {
			ev := s.slab.binary()
			ev.Meta, ev.Data = events.Stamp(), bytes.Clone(s.buf[:n])
			s.emit(ev)
		}
		if len(s.buf) > 1<<20 {
			s.buf = nil // do not hold a huge buffer for the rest of the session
		}
	}
}

// readMessage reads a whole message into s.buf, validating text as it
// arrives so invalid UTF-8 fails at once (1007), not at the end.
func (s *session) readMessage(r io.Reader, text bool) (int, error) {
	if cap(s.buf) < 512 {
		s.buf = make([]byte, 4096)
	}
	buf := s.buf[:cap(s.buf)]
	n, checked := 0, 0
	for {
		if n == len(buf) {
			grown := make([]byte, 2*len(buf))
			copy(grown, buf)
			buf = grown
			s.buf = buf
		}
		m, err := r.Read(buf[n:])
		n += m
		if text && s.failure == nil && !s.silent {
			end := n
			if err == nil {
				end = completeRunes(buf[checked:n]) + checked
			}
			if !utf8.Valid(buf[checked:end]) || !validUTF8Prefix(buf[end:n]) {
				s.fail(StatusInvalidPayload, errors.New("invalid UTF-8 in text message"))
			}
			checked = end
		}
		if err == io.EOF {
			s.buf = buf
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}

// completeRunes returns the length of b without a trailing incomplete UTF-8
// sequence (which the next read may complete).
func completeRunes(b []byte) int {
	for k := 1; k <= 3 && k <= len(b); k++ {
		c := b[len(b)-k]
		if c < 0x80 {
			return len(b)
		}
		if c >= 0xC0 {
			need := 2
			if c >= 0xF0 {
				need = 4
			} else if c >= 0xE0 {
				need = 3
			}
			if need > k {
				return len(b) - k
			}
			return len(b)
		}
	}
	return len(b)
}

// validUTF8Prefix reports whether b, an incomplete trailing sequence, can
// still become a valid UTF-8 character (RFC 3629 section 4), so that an
// invalid message fails as soon as its first bad byte arrives.
func validUTF8Prefix(b []byte) bool {
	if len(b) == 0 {
		return true
	}
	lo, hi := byte(0x80), byte(0xBF)
	switch c := b[0]; {
	case c >= 0xC2 && c <= 0xDF:
	case c == 0xE0:
		lo = 0xA0
	case c == 0xED:
		hi = 0x9F
	case c >= 0xE1 && c <= 0xEF:
	case c == 0xF0:
		lo = 0x90
	case c == 0xF4:
		hi = 0x8F
	case c >= 0xF1 && c <= 0xF3:
	default:
		return false
	}
	for i, c := range b[1:] {
		if i == 0 && (c < lo || c > hi) || i > 0 && (c < 0x80 || c > 0xBF) {
			return false
		}
	}
	return true
}

// fail fails the connection for a protocol violation the dispatcher found:
// ProtocolError now, a close frame with code, and the session drains until
// the server's close reply or the close timeout.
func (s *session) fail(code int, err error) {
	s.failure = &ProtocolError{Code: code, Err: err}
	s.sendMu.Lock()
	if State(s.state.Load()) == StateReady {
		s.state.Store(int32(StateClosing))
		_ = s.wire.writeFrame(opClose, closePayload(code, err.Error()))
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
		s.disconnected("protocol error; "+s.failure.Err.Error(), false, s.failure)
		return s.failure
	}
	if s.wire.violation != nil {
		pe := &ProtocolError{Code: StatusProtocolError, Err: s.wire.violation}
		s.sendMu.Lock()
		_ = s.wire.writeFrame(opClose, closePayload(StatusProtocolError, s.wire.violation.Error()))
		s.sendMu.Unlock()
		s.emit(&events.ProtocolError{Meta: events.Stamp(), Err: pe.Err, Code: pe.Code})
		s.disconnected("protocol error; "+pe.Err.Error(), false, pe)
		return pe
	}
	if ec := s.engineClose(); ec != nil {
		// The engine found a violation (or an oversized message), sent its
		// close frame and stopped reading.
		pe := &ProtocolError{Code: ec.code, Err: errors.New(ec.reason)}
		if errors.Is(err, websocket.ErrMessageTooBig) {
			pe.Err = fmt.Errorf("message larger than the read limit (%d bytes)", s.cfg.readLimit)
		}
		s.emit(&events.ProtocolError{Meta: events.Stamp(), Err: pe.Err, Code: pe.Code})
		s.disconnected("protocol error; "+pe.Err.Error(), false, pe)
		return pe
	}
	if State(s.state.Load()) == StateClosing {
		s.disconnected("connection lost before the close reply; "+err.Error(), false, err)
		return err
	}
	s.disconnected("socket fail; "+err.Error(), false, err)
	return err
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
		s.disconnected("protocol error; "+s.failure.Err.Error(), false, s.failure)
		return s.failure
	}
	if !utf8.ValidString(reason) {
		pe := &ProtocolError{Code: StatusInvalidPayload, Err: errors.New("invalid UTF-8 in close reason")}
		s.emit(&events.ProtocolError{Meta: events.Stamp(), Err: pe.Err, Code: pe.Code})
		s.disconnected("protocol error; "+pe.Err.Error(), false, pe)
		return pe
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
	if graceful {
		s.cfg.logger.Debug("lomond: disconnected", "url", s.target.raw, "reason", reason)
	} else {
		s.cfg.logger.Info("lomond: disconnected", "url", s.target.raw, "reason", reason, "err", err)
	}
	s.emit(&events.Disconnected{Meta: events.Stamp(), Reason: reason, Graceful: graceful, Err: err})
}

// emit delivers one event to the handler, unless the handler stopped. If
// the handler stops now (a panic, or a range loop left), the session starts
// its close handshake.
func (s *session) emit(ev events.Event) {
	if s.silent {
		return
	}
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
	s.sendMu.Lock()
	if State(s.state.Load()) == StateReady {
		s.state.Store(int32(StateClosing))
		_ = s.wire.writeFrame(opClose, closePayload(code, reason))
		s.armCloseTimer()
	}
	s.sendMu.Unlock()
}

// tick runs the timers that are due. It is called on the dispatcher
// goroutine, from inside a read, when the read deadline passes.
func (s *session) tick() error {
	now := time.Now()
	s.tmu.Lock()
	defer s.tmu.Unlock()
	if !s.closeDeadline.IsZero() && !now.Before(s.closeDeadline) {
		if now.Sub(s.closeDeadline) > lateWake && !s.closeGrace {
			// The dispatcher was busy in a handler: the reply may be
			// waiting unread. Read once more before judging.
			s.closeGrace = true
			s.closeDeadline = now.Add(lateWake)
		} else {
			s.timerErr = ErrCloseTimeout
			return s.timerErr
		}
	}
	if !s.pongDeadline.IsZero() && !now.Before(s.pongDeadline) {
		if now.Sub(s.pongDeadline) > min(lateWake, s.cfg.pingTimeout/4) {
			// The dispatcher was busy in a handler, not reading: a pong may
			// be waiting unread. Read for one more timeout before judging.
			s.pongDeadline = now.Add(s.cfg.pingTimeout)
		} else {
			s.tmu.Unlock()
			s.emit(&events.Unresponsive{Meta: events.Stamp(), Timeout: s.cfg.pingTimeout})
			s.tmu.Lock()
			s.timerErr = ErrUnresponsive
			return s.timerErr
		}
	}
	if !s.nextPing.IsZero() && !now.Before(s.nextPing) {
		s.nextPing = nextTick(s.nextPing, s.cfg.pingRate, now)
		if State(s.state.Load()) == StateReady {
			binary.BigEndian.PutUint64(s.pingPayload[:], uint64(now.Sub(s.start)))
			s.pingSent = now
			s.tmu.Unlock()
			s.sendMu.Lock()
			_ = s.wire.writeFrame(opPing, s.pingPayload[:])
			s.sendMu.Unlock()
			s.tmu.Lock()
			if s.cfg.pingTimeout > 0 && s.pongDeadline.IsZero() {
				s.pongDeadline = now.Add(s.cfg.pingTimeout)
			}
		}
	}
	if !s.nextPoll.IsZero() && !now.Before(s.nextPoll) {
		s.nextPoll = nextTick(s.nextPoll, s.cfg.pollInterval, now)
		s.tmu.Unlock()
		s.emit(&events.Poll{Meta: events.Stamp()})
		s.tmu.Lock()
	}
	s.rearm()
	return nil
}

// nextTick schedules a periodic timer after it fired at now, skipping missed
// periods instead of firing in a burst.
func nextTick(prev time.Time, period time.Duration, now time.Time) time.Time {
	next := prev.Add(period)
	if !next.After(now) {
		next = now.Add(period)
	}
	return next
}

// rearm sets the read deadline to the earliest timer. Caller holds tmu.
func (s *session) rearm() {
	var next time.Time
	for _, t := range [...]time.Time{s.nextPoll, s.nextPing, s.pongDeadline, s.closeDeadline} {
		if !t.IsZero() && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	s.wire.wakeAt(next)
}

func (s *session) armCloseTimer() {
	s.tmu.Lock()
	s.closeDeadline = time.Now().Add(s.cfg.closeTimeout)
	s.nextPing, s.pongDeadline = time.Time{}, time.Time{}
	if s.wire.onTimeout != nil {
		s.rearm()
	} else {
		s.wire.wakeAt(s.closeDeadline)
	}
	s.tmu.Unlock()
}

// onPing runs inside the engine's read, on the dispatcher goroutine. The
// pong goes out before the handler sees the Ping, as in lomond.
func (s *session) onPing(_ context.Context, payload []byte) bool {
	if s.cfg.autoPong {
		s.sendMu.Lock()
		_ = s.wire.writeFrame(opPong, payload)
		s.sendMu.Unlock()
	}
	if s.failure == nil { // a failing session delivers no more messages
		s.emit(&events.Ping{Meta: events.Stamp(), Data: bytes.Clone(payload)})
	}
	return false // answered above, or not at all
}

// onPong runs inside the engine's read, on the dispatcher goroutine.
func (s *session) onPong(_ context.Context, payload []byte) {
	now := time.Now()
	ev := &events.Pong{Meta: events.Meta{Received: now}, Data: bytes.Clone(payload)}
	s.tmu.Lock()
	s.pongDeadline = time.Time{}
	if !s.pingSent.IsZero() && bytes.Equal(payload, s.pingPayload[:]) {
		ev.RTT = now.Sub(s.pingSent)
	}
	s.tmu.Unlock()
	if s.failure == nil {
		s.emit(ev)
	}
}

func stateErr(st State) error {
	switch st {
	case StateClosing:
		return ErrClosing
	case StateClosed:
		return ErrClosed
	}
	return ErrNotConnected
}

// write sends a data message through the engine.
func (s *session) write(typ websocket.MessageType, p []byte) error {
	if st := State(s.state.Load()); st != StateReady {
		return stateErr(st)
	}
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	if st := State(s.state.Load()); st != StateReady {
		return stateErr(st)
	}
	if err := s.conn.Write(context.Background(), typ, p); err != nil {
		if s.wire.sentClose() {
			return ErrClosing
		}
		return fmt.Errorf("lomond: send failed: %w", err)
	}
	return nil
}

// writeControl sends a ping or pong of the caller's.
func (s *session) writeControl(op byte, payload []byte) error {
	if st := State(s.state.Load()); st != StateReady {
		return stateErr(st)
	}
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	if st := State(s.state.Load()); st != StateReady {
		return stateErr(st)
	}
	if err := s.wire.writeFrame(op, payload); err != nil {
		if s.wire.sentClose() {
			return ErrClosing
		}
		return fmt.Errorf("lomond: send failed: %w", err)
	}
	return nil
}

// close starts the client's close handshake.
func (s *session) close(code int, reason string) error {
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	switch st := State(s.state.Load()); st {
	case StateConnecting, StateHandshake:
		if s.pendingClose != nil {
			return ErrClosing
		}
		s.pendingClose = &closeFrame{code: code, reason: reason}
		return nil
	case StateReady:
		s.state.Store(int32(StateClosing))
		err := s.wire.writeFrame(opClose, closePayload(code, reason))
		if err != nil {
			if s.wire.sentClose() {
				return ErrClosing
			}
			return fmt.Errorf("lomond: close failed: %w", err)
		}
		s.armCloseTimer()
		return nil
	default:
		return stateErr(st)
	}
}

// eventSlab hands out message events allocated in blocks, so a message costs
// one allocation (its payload) plus 1/slabSize of an event. Events are never
// reused: a handler may keep one; a kept event keeps its block alive.
type eventSlab struct {
	texts    []events.Text
	binaries []events.Binary
}

const slabSize = 64

func (e *eventSlab) text() *events.Text {
	if len(e.texts) == 0 {
		e.texts = make([]events.Text, slabSize)
	}
	ev := &e.texts[0]
	e.texts = e.texts[1:]
	return ev
}

func (e *eventSlab) binary() *events.Binary {
	if len(e.binaries) == 0 {
		e.binaries = make([]events.Binary, slabSize)
	}
	ev := &e.binaries[0]
	e.binaries = e.binaries[1:]
	return ev
}
