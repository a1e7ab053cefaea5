package lomond

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/lomond-go/lomond/events"
	"github.com/lomond-go/lomond/internal/protocol"
)

// The read side of the dispatcher: frames are read once, through the
// session's buffered reader, checked as their bytes arrive, and turned into
// events. A message is delivered only when its last frame arrived whole: a
// connection that ends inside a frame is a lost connection, never a message.

// inMessage is the data message being received.
type inMessage struct {
	active     bool
	text       bool
	compressed bool
	discard    bool   // the session failed or the handler stopped: drop it
	size       uint64 // payload bytes announced so far
	msg        message
	n          int // bytes in msg.buf (or scratch, for a borrowed binary)
	utf8       protocol.UTF8
}

// readLoop reads frames until the session ends.
func (s *session) readLoop() error {
	for {
		h, err := s.readHeader()
		if err == nil {
			if h.IsControl() {
				err = s.readControl(h)
			} else {
				err = s.readData(h)
			}
		}
		if err != nil {
			return s.end(err)
		}
	}
}

// read reads what is buffered or arrives next into p (never empty). A passed
// deadline runs the timers and reading goes on.
func (s *session) read(p []byte) (int, error) {
	for {
		n, err := s.br.Read(p)
		if n > 0 {
			return n, nil
		}
		if err == nil {
			continue
		}
		if !isTimeout(err) {
			return 0, err
		}
		if err := s.onDeadline(); err != nil {
			return 0, err
		}
	}
}

// readFull fills p; a connection that ends first ends inside a frame.
func (s *session) readFull(p []byte) error {
	for off := 0; off < len(p); {
		n, err := s.read(p[off:])
		if err != nil {
			return insideFrame(err)
		}
		off += n
	}
	return nil
}

func insideFrame(err error) error {
	if errors.Is(err, io.EOF) {
		return fmt.Errorf("connection closed inside a frame: %w", io.ErrUnexpectedEOF)
	}
	return err
}

// readHeader reads and checks the next frame header.
func (s *session) readHeader() (protocol.Header, error) {
	if s.cr.full && s.br.Buffered() == 0 && s.br.Size() < busyReadBufferSize {
		// Nothing buffered: the reader can be swapped without losing a byte.
		s.br = bufio.NewReaderSize(s.cr, busyReadBufferSize)
	}
	b, err := s.peek(2)
	if err != nil {
		return protocol.Header{}, err
	}
	n := protocol.HeaderSize(b)
	if n > 2 {
		if b, err = s.peek(n); err != nil {
			return protocol.Header{}, insideFrame(err)
		}
	}
	h, perr := protocol.ParseHeader(b[:n], s.inflater != nil)
	_, _ = s.br.Discard(n)
	if perr != nil {
		return h, perr
	}
	return h, nil
}

// peek returns the next n bytes without consuming them.
func (s *session) peek(n int) ([]byte, error) {
	for {
		b, err := s.br.Peek(n)
		if err == nil {
			return b, nil
		}
		if !isTimeout(err) {
			if len(b) > 0 {
				return nil, insideFrame(err)
			}
			return nil, err
		}
		if err := s.onDeadline(); err != nil {
			return nil, err
		}
	}
}

// skip discards n payload bytes.
func (s *session) skip(n uint64) error {
	for n > 0 {
		if s.br.Buffered() == 0 {
			if _, err := s.peek(1); err != nil {
				return insideFrame(err)
			}
		}
		d, _ := s.br.Discard(int(min(n, uint64(s.br.Buffered()))))
		n -= uint64(d)
	}
	return nil
}

// readData reads a text, binary or continuation frame.
func (s *session) readData(h protocol.Header) error {
	in := &s.in
	if h.Opcode == protocol.OpContinuation {
		if !in.active {
			return &protocol.Error{Code: protocol.CloseProtocolError, Reason: "unexpected continuation frame"}
		}
		if h.Rsv1 {
			return &protocol.Error{Code: protocol.CloseProtocolError, Reason: "reserved bits set"}
		}
	} else {
		if in.active {
			return &protocol.Error{Code: protocol.CloseProtocolError, Reason: "expected a continuation frame"}
		}
		// Field by field: a whole-struct copy would cost a bulk write
		// barrier per message while the GC runs. msg is empty here (taken
		// by the last message) and utf8 ended clean.
		in.active, in.text, in.compressed = true, h.Opcode == protocol.OpText, h.Rsv1
		in.discard = s.failure != nil || s.silent
		in.size, in.n = 0, 0
	}
	in.size += h.Length
	if !in.discard && s.cfg.readLimit >= 0 && in.size > uint64(s.cfg.readLimit) {
		// The frames stay in step: fail, and drop the rest of the message.
		s.fail(&protocol.Error{Code: protocol.CloseMessageTooBig,
			Reason: fmt.Sprintf("message larger than the read limit (%d bytes)", s.cfg.readLimit)})
		in.discard = true
	}
	var err error
	switch {
	case in.discard:
		err = s.skip(h.Length)
	case in.compressed:
		err = s.readCompressed(h)
	case !in.text && s.cfg.borrowBinary:
		err = s.readBorrowed(h)
	case h.Fin && in.msg.buf == nil:
		return s.readWhole(h)
	default:
		err = s.readOwned(h)
	}
	if err != nil {
		return err
	}
	if !h.Fin {
		return nil
	}
	in.active = false
	if in.discard || s.failure != nil {
		in.msg, in.utf8 = message{}, protocol.UTF8{}
		return nil
	}
	if in.compressed {
		return s.inflate()
	}
	if in.text && !in.utf8.Done() {
		s.fail(&protocol.Error{Code: protocol.CloseInvalidPayload, Reason: "invalid UTF-8 in text"})
		return nil
	}
	if !in.text && s.cfg.borrowBinary {
		s.emitBorrowed(s.scratch[:in.n])
		return nil
	}
	msg := in.msg
	if len(msg.buf)-in.n > maxMessageSlack {
		// A kept event must not pin a mostly empty buffer.
		exact := newMessage(in.text, in.n)
		copy(exact.buf, msg.buf[:in.n])
		msg = exact
	}
	in.msg = message{}
	s.emit(msg.finish(s.messageMeta(), in.n))
	return nil
}

// maxMessageSlack is the unused room a delivered payload may keep.
const maxMessageSlack = 4096

// readWhole reads a message of one frame (the common case) into a buffer
// sized exactly from its header, and delivers it. The message stays in
// locals: storing it in the session would cost write barriers per message
// while the GC runs.
func (s *session) readWhole(h protocol.Header) error {
	in := &s.in
	msg := newMessage(in.text, int(h.Length))
	if err := s.readPayload(msg.buf[:h.Length]); err != nil {
		return err
	}
	in.active = false
	if s.failure != nil {
		in.utf8 = protocol.UTF8{}
		return nil
	}
	if in.text && !in.utf8.Done() {
		s.fail(&protocol.Error{Code: protocol.CloseInvalidPayload, Reason: "invalid UTF-8 in text"})
		return nil
	}
	s.emit(msg.finish(s.messageMeta(), in.n))
	return nil
}

// readOwned reads a fragment's payload into the message's own buffer,
// grown as fragments arrive. Text is checked as it arrives.
func (s *session) readOwned(h protocol.Header) error {
	in := &s.in
	need := in.n + int(h.Length)
	if in.msg.buf == nil {
		in.msg = newMessage(in.text, need)
	} else if need > len(in.msg.buf) {
		grown := newMessage(in.text, max(need, 2*len(in.msg.buf)))
		copy(grown.buf, in.msg.buf[:in.n])
		in.msg = grown
	}
	return s.readPayload(in.msg.buf[in.n:need])
}

// readPayload reads a frame's payload into p, checking text as it arrives
// so that invalid UTF-8 fails at once, even inside a frame.
func (s *session) readPayload(p []byte) error {
	in := &s.in
	for off := 0; off < len(p); {
		n, err := s.read(p[off:])
		if err != nil {
			return insideFrame(err)
		}
		if in.text && !in.compressed && s.failure == nil && !in.utf8.Write(p[off:off+n]) {
			s.fail(&protocol.Error{Code: protocol.CloseInvalidPayload, Reason: "invalid UTF-8 in text"})
		}
		off += n
		in.n += n
	}
	return nil
}

// readBorrowed reads a binary frame into the session's reused buffer
// (WithBorrowedBinary): no allocation per message.
func (s *session) readBorrowed(h protocol.Header) error {
	in := &s.in
	need := in.n + int(h.Length)
	if need > len(s.scratch) {
		grown := make([]byte, max(need, 2*len(s.scratch), 4096))
		copy(grown, s.scratch[:in.n])
		s.scratch = grown
	}
	return s.readPayload(s.scratch[in.n:need])
}

func (s *session) emitBorrowed(data []byte) {
	if s.borrowed == nil {
		s.borrowed = &events.Binary{}
	}
	ev := s.borrowed
	ev.Meta, ev.Data = s.messageMeta(), data[:len(data):len(data)]
	s.emit(ev)
	if cap(s.scratch) > maxKeptBuffer { // a huge one is not kept for the session
		s.scratch = nil
	}
}

// readCompressed collects a compressed message's frames.
func (s *session) readCompressed(h protocol.Header) error {
	start := len(s.zin)
	s.zin = append(s.zin, make([]byte, h.Length)...)
	if err := s.readFull(s.zin[start:]); err != nil {
		return err
	}
	s.in.n += int(h.Length)
	return nil
}

// inflate decompresses a whole compressed message, bounded by the read
// limit, and delivers it.
func (s *session) inflate() error {
	in := &s.in
	limit := -1
	if s.cfg.readLimit >= 0 {
		limit = int(s.cfg.readLimit)
	}
	out, err := s.inflater.Inflate(s.zout[:0], s.zin, limit)
	s.zin = keep(s.zin)
	if err != nil {
		if errors.Is(err, protocol.ErrInflateLimit) {
			s.fail(&protocol.Error{Code: protocol.CloseMessageTooBig,
				Reason: fmt.Sprintf("message larger than the read limit (%d bytes)", s.cfg.readLimit)})
		} else {
			s.fail(&protocol.Error{Code: protocol.CloseInvalidPayload, Reason: "invalid compressed data", Err: err})
		}
		return nil
	}
	s.zout = keep(out)
	if in.text && !in.utf8.Write(out) || in.text && !in.utf8.Done() {
		s.fail(&protocol.Error{Code: protocol.CloseInvalidPayload, Reason: "invalid UTF-8 in text"})
		return nil
	}
	if !in.text && s.cfg.borrowBinary {
		s.emitBorrowed(out)
		return nil
	}
	msg := newMessage(in.text, len(out))
	copy(msg.buf, out)
	s.emit(msg.finish(s.messageMeta(), len(out)))
	return nil
}

// keep empties a reused buffer, dropping a huge one.
func keep(b []byte) []byte {
	if cap(b) > maxKeptBuffer {
		return nil
	}
	return b[:0]
}

// readControl reads a ping, pong or close frame.
func (s *session) readControl(h protocol.Header) error {
	p := s.ctrl[:h.Length]
	if err := s.readFull(p); err != nil {
		return err
	}
	switch h.Opcode {
	case protocol.OpPing:
		// The pong goes out before the handler sees the Ping, as in lomond.
		if s.cfg.autoPong && State(s.state.Load()) == StateReady {
			s.w.pong(p)
		}
		if s.failure == nil {
			s.emit(&events.Ping{Meta: s.messageMeta(), Data: bytes.Clone(p)})
		}
	case protocol.OpPong:
		ev := &events.Pong{Meta: s.messageMeta(), Data: bytes.Clone(p)}
		s.tmu.Lock()
		if !s.pingSent.IsZero() && bytes.Equal(p, s.pingPayload[:]) {
			ev.RTT = s.cr.lastRead.Sub(s.pingSent)
			s.pongDue = time.Time{}
			s.setJudging()
		}
		s.tmu.Unlock()
		if s.failure == nil {
			s.emit(ev)
		}
	case protocol.OpClose:
		return s.closeReceived(p)
	}
	return nil
}

// closeReceived handles the server's close frame: the reply to ours, or the
// server's own close, which the Closing handler sees before the reply goes
// out (it may send last messages, or Close with a code of its own).
func (s *session) closeReceived(p []byte) error {
	code, reason, perr := protocol.ParseClose(p)
	if perr != nil {
		return perr
	}
	if s.failure != nil {
		return s.failure // the reply to our failing close
	}
	if !s.w.sentClose() {
		s.state.Store(int32(StateClosing))
		s.emit(&events.Closing{Meta: events.Stamp(), Code: code, Reason: reason})
		if code == protocol.CloseNoStatus {
			code, reason = 0, "" // an empty close is answered with an empty close
		}
		s.sendClose(code, reason)
		if code == 0 {
			code = protocol.CloseNoStatus
		}
		s.state.Store(int32(StateClosed))
		s.emit(&events.Closed{Meta: events.Stamp(), Code: code, Reason: reason})
		s.disconnected("closed", true, nil)
		return sessionEnd{&CloseError{Code: code, Reason: reason}}
	}
	s.state.Store(int32(StateClosed))
	if s.stopErr != nil {
		return sessionEnd{s.handlerStopped()}
	}
	s.emit(&events.Closed{Meta: events.Stamp(), Code: code, Reason: reason})
	s.disconnected("closed", true, nil)
	return sessionEnd{nil}
}
