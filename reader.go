package lomond

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"time"
	"unicode/utf8"

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

// readLoop reads frames until the session ends. A panic in a handler that
// deliverMessage called is recovered here (once per panic, not a defer per
// message), and reading goes on.
func (s *session) readLoop() *ending {
	for {
		if e := s.readFrames(); e != nil {
			return e
		}
	}
}

// readFrames reads frames until the session ends (the ending) or a handler
// called by deliverMessage panics (nil).
func (s *session) readFrames() (e *ending) {
	defer func() {
		if s.inHandler {
			// Only a handler's panic is recovered: the library's own
			// go on.
			if v := recover(); v != nil {
				s.handlerPanicked(v)
				e = nil
			}
		}
	}()
	for {
		s.readFast()
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

// readFast delivers the data messages that are buffered whole, each in one
// unfragmented, uncompressed frame of at most 64 KiB: the common case,
// read with no call per frame and no copy for a borrowed binary (its Data
// is the frame's payload in the read buffer, valid during the call as
// WithBorrowedBinary says). It returns at the first frame it does not
// take, for readHeader and the general path; or when the session is not
// in the plain state (a judgement awaited, a failure, a fragmented
// message being read, listeners other than the handler).
func (s *session) readFast() {
	rb := &s.rb
	limit := uint64(s.cfg.readLimit) // a negative limit (none) is huge
	for s.direct && !s.silent && !s.tm.awaiting && !s.in.active && s.failure == nil {
		b := rb.buf[rb.pos:rb.end]
		if len(b) < 2 {
			return
		}
		hl, n := 2, int(b[1]) // b[1] < 126: a 7-bit length, unmasked
		if n >= 126 {
			if n != 126 || len(b) < 4 {
				return // masked, 64-bit length, or not buffered
			}
			hl, n = 4, int(b[2])<<8|int(b[3])
		}
		if len(b) < hl+n || uint64(n) > limit {
			return
		}
		p := b[hl : hl+n : hl+n]
		switch b[0] {
		case 0x82: // FIN, binary
			rb.pos += hl + n
			if c := &s.pay; n <= carveMax && n <= len(c.block)-c.used && c.nbin < len(c.bins) && !s.cfg.borrowBinary {
				// newMessage's common case, inline.
				buf := c.block[c.used : c.used+n : c.used+n]
				c.used += n
				c.nbin++
				copy(buf, p)
				s.deliverMessage(message{binary: &c.bins[c.nbin-1], buf: buf}, s.messageMeta(), n)
				continue
			}
			if s.cfg.borrowBinary {
				if s.borrowed == nil {
					s.borrowed = &events.Binary{}
				}
				s.deliverMessage(message{binary: s.borrowed, buf: p}, s.messageMeta(), n)
				continue
			}
		case 0x81: // FIN, text
			if !utf8.Valid(p) {
				return // the general path fails the session
			}
			rb.pos += hl + n
		default:
			return
		}
		m := s.pay.newMessage(b[0] == 0x81, n)
		copy(m.buf, p)
		s.deliverMessage(m, s.messageMeta(), n)
	}
}

// readHeader reads and checks the next frame header.
func (s *session) readHeader() (protocol.Header, error) {
	if s.rb.end-s.rb.pos < 2 {
		if err := s.fill(2); err != nil {
			return protocol.Header{}, err
		}
	}
	b := s.buffered()
	n := protocol.HeaderSize(b)
	if len(b) < n {
		if err := s.fill(n); err != nil {
			return protocol.Header{}, insideFrame(err)
		}
		b = s.buffered()
	}
	h, perr := protocol.ParseHeader(b[:n], s.z != nil)
	s.rb.pos += n
	if perr != nil {
		return h, perr
	}
	if h.Length < windowAfter {
		s.rb.window = 0 // small and medium frames: read as much as the buffer holds
	}
	return h, nil
}

// skip discards n payload bytes.
func (s *session) skip(n uint64) error {
	for n > 0 {
		if s.rb.pos == s.rb.end {
			if err := s.fill(1); err != nil {
				return insideFrame(err)
			}
		}
		d := int(min(n, uint64(s.rb.end-s.rb.pos)))
		s.rb.pos += d
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
		if s.t.streams && !in.discard {
			return s.readStream(h) // StreamHandler: stream_reader.go
		}
	}
	if h.Length > maxMessageSize-in.size {
		// Sizes from the wire are checked before anything is allocated:
		// without a read limit, no message may outgrow what an int counts.
		in.size = maxMessageSize
		if !in.discard {
			s.fail(&protocol.Error{Code: protocol.CloseMessageTooBig, Reason: "message larger than the client can hold"})
			in.discard = true
		}
	} else {
		in.size += h.Length
	}
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
	case h.Fin && in.msg.buf == nil && h.Length <= maxUpfront:
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
		exact := s.pay.newMessage(in.text, in.n)
		copy(exact.buf, msg.buf[:in.n])
		msg = exact
	}
	in.msg = message{}
	s.deliverMessage(msg, s.messageMeta(), in.n)
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
	msg := s.pay.newMessage(in.text, int(h.Length))
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
	s.deliverMessage(msg, s.messageMeta(), in.n)
	return nil
}

// readOwned reads a fragment's payload into the message's own buffer. The
// buffer grows with the bytes that actually arrive, never ahead of them by
// more than maxUpfront: a header announcing a huge length costs nothing
// until its bytes come.
func (s *session) readOwned(h protocol.Header) error {
	in := &s.in
	for left := h.Length; left > 0; {
		if in.n == len(in.msg.buf) {
			size := grownSize(len(in.msg.buf), in.n, left, h.Fin)
			grown := s.pay.newGrowing(in.text, size)
			copy(grown.buf, in.msg.buf[:in.n])
			in.msg = grown
		}
		n := min(left, uint64(len(in.msg.buf)-in.n))
		if err := s.readPayload(in.msg.buf[in.n : in.n+int(n)]); err != nil {
			return err
		}
		left -= n
	}
	return nil
}

// maxUpfront is the most allocated for a message ahead of its bytes.
const maxUpfront = 1 << 20

// maxMessageSize bounds the size of any message (an int must count it).
const maxMessageSize = uint64(math.MaxInt >> 1)

// grownSize is a message buffer's next size: double the current one (so
// that a message of many small fragments costs amortised linear time), at
// least what the next maxUpfront bytes need, and, in the message's final
// frame, never more than it announced.
func grownSize(cur, n int, left uint64, final bool) int {
	size := max(2*cur, 4096)
	if need := uint64(n) + left; final && uint64(size) > need {
		size = int(need)
	}
	return max(size, n+int(min(left, maxUpfront)))
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
// (WithBorrowedBinary): no allocation per message. It grows as readOwned's.
func (s *session) readBorrowed(h protocol.Header) error {
	in := &s.in
	if h.Length <= uint64(len(s.scratch)-in.n) { // it fits: the common case
		return s.readPayload(s.scratch[in.n : in.n+int(h.Length)])
	}
	for left := h.Length; left > 0; {
		if in.n == len(s.scratch) {
			grown := make([]byte, grownSize(len(s.scratch), in.n, left, h.Fin))
			copy(grown, s.scratch[:in.n])
			s.scratch = grown
		}
		n := min(left, uint64(len(s.scratch)-in.n))
		if err := s.readPayload(s.scratch[in.n : in.n+int(n)]); err != nil {
			return err
		}
		left -= n
	}
	return nil
}

func (s *session) emitBorrowed(data []byte) {
	if s.borrowed == nil {
		s.borrowed = &events.Binary{}
	}
	s.deliverMessage(message{binary: s.borrowed, buf: data}, s.messageMeta(), len(data))
	if cap(s.scratch) > maxKeptBuffer { // a huge one is not kept for the session
		s.scratch = nil
	}
}

// readCompressed collects a compressed message's frames, growing with the
// bytes that arrive.
func (s *session) readCompressed(h protocol.Header) error {
	for left := h.Length; left > 0; {
		if len(s.z.zin) == cap(s.z.zin) {
			s.z.zin = append(s.z.zin, 0)[:len(s.z.zin)]
		}
		n := min(left, uint64(cap(s.z.zin)-len(s.z.zin)), maxUpfront)
		start := len(s.z.zin)
		s.z.zin = s.z.zin[:start+int(n)]
		if err := s.readFull(s.z.zin[start:]); err != nil {
			return err
		}
		left -= n
	}
	s.in.n += int(h.Length)
	return nil
}

// inflate decompresses a whole compressed message, bounded by the read
// limit, and delivers it.
func (s *session) inflate() error {
	in := &s.in
	limit := -1
	if s.cfg.readLimit >= 0 && uint64(s.cfg.readLimit) < maxMessageSize {
		limit = int(s.cfg.readLimit)
	}
	out, err := s.z.inflater.Inflate(s.z.zout[:0], s.z.zin, limit)
	s.z.zin = keep(s.z.zin)
	if err != nil {
		if errors.Is(err, protocol.ErrInflateLimit) {
			s.fail(&protocol.Error{Code: protocol.CloseMessageTooBig,
				Reason: fmt.Sprintf("message larger than the read limit (%d bytes)", s.cfg.readLimit)})
		} else {
			s.fail(&protocol.Error{Code: protocol.CloseInvalidPayload, Reason: "invalid compressed data", Err: err})
		}
		return nil
	}
	s.z.zout = keep(out)
	if in.text && !in.utf8.Write(out) || in.text && !in.utf8.Done() {
		s.fail(&protocol.Error{Code: protocol.CloseInvalidPayload, Reason: "invalid UTF-8 in text"})
		return nil
	}
	if !in.text && s.cfg.borrowBinary {
		s.emitBorrowed(out)
		return nil
	}
	msg := s.pay.newMessage(in.text, len(out))
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
	// The payload (at most 125 bytes) is read into the read buffer and
	// used there: nothing reads the connection until this frame is done,
	// and whatever is kept of it is copied.
	n := int(h.Length)
	if err := s.fill(n); err != nil {
		return insideFrame(err)
	}
	p := s.buffered()[:n:n]
	s.rb.pos += n
	switch h.Opcode {
	case protocol.OpPing:
		// The pong goes out before the handler sees the Ping, as in lomond.
		// Every ping is answered (Autobahn 2.10 expects it, though RFC 6455
		// section 5.5.3 would allow only the latest): a server that floods
		// pings and does not read is caught by the stall timeout.
		if s.cfg.autoPong && State(s.state.Load()) == StateReady && !s.w.closing.Load() {
			s.w.postPong(p, outAuto)
		}
		if s.failure == nil {
			s.emit(&events.Ping{Meta: s.messageMeta(), Data: bytes.Clone(p)})
		}
	case protocol.OpPong:
		ev := &events.Pong{Meta: s.messageMeta(), Data: bytes.Clone(p)}
		if at, ok := s.tm.pingSentAt(p); ok {
			ev.RTT = s.cr.lastRead.Sub(at)
		}
		s.tm.pongReceived()
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
// out (it may send last messages, or Close with a code of its own). The
// session ends once our close frame is written, or at the close timeout.
func (s *session) closeReceived(p []byte) error {
	code, reason, perr := protocol.ParseClose(p)
	if perr != nil {
		return perr
	}
	if s.failure != nil {
		return s.failure // the reply to our failing close
	}
	serverStarted := !s.w.closeAsked()
	if serverStarted {
		s.state.Store(int32(StateClosing))
		s.emit(&events.Closing{Meta: events.Stamp(), Code: code, Reason: reason})
		if code == protocol.CloseNoStatus {
			s.startClose(0, "") // an empty close is answered with an empty close
		} else {
			s.startClose(code, reason)
		}
	}
	if !serverStarted {
		s.closeStarted() // the close timer, if its mail is not read yet
	}
	if !s.awaitCloseWritten() {
		return ErrCloseTimeout
	}
	s.state.Store(int32(StateClosed))
	s.emit(&events.Closed{Meta: events.Stamp(), Code: code, Reason: reason})
	e := &ending{reason: "closed", graceful: true}
	if serverStarted {
		e.result = &CloseError{Code: code, Reason: reason}
	}
	return e
}

// awaitCloseWritten waits for our close frame to be written, at most until
// the close timeout: a send stuck on a server that does not read holds the
// write lock, and the frame goes out only when that send's frame ends.
func (s *session) awaitCloseWritten() bool {
	select {
	case <-s.w.closeDone:
		return true
	default:
	}
	t := time.NewTimer(time.Until(s.tm.closeDue))
	defer t.Stop()
	select {
	case <-s.w.closeDone:
		return true
	case <-t.C:
		return false
	}
}
