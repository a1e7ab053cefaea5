package lomond

import (
	"bufio"
	"time"
)

// The session's read buffer, owned by the session goroutine. Frame headers,
// control frames and small payloads are read through it; a payload's bytes
// past what is buffered are read from the connection straight into their
// destination when the rest is large (one copy, by the kernel, as the
// fastest clients do).
//
// An idle connection reads into a small buffer inside the session (no
// allocation of its own); a read that fills it means the kernel holds more,
// and the session switches to a busy buffer (one read(2) per 64 KiB instead
// of per 128 bytes is most of the cost of a stream of small messages). The
// busy buffer is given back once the connection has been idle for
// idleAfter (a timer of the session goroutine checks).
const (
	idleReadBufferSize = 128 // a control frame fits (2 + 125 bytes)
	busyReadBufferSize = 64 << 10

	// directReadMin is the smallest remainder of a payload read straight
	// into its destination; smaller ones go through the buffer, with the
	// frames that follow them.
	directReadMin = 4 << 10

	// headerWindow bounds the reads for the next frame headers once a large
	// remainder (at least windowAfter) was read directly: the bytes after
	// a header are likely the next large payload, better read directly too
	// than copied. A header announcing less than windowAfter ends the
	// window (readHeader), and reads fill the buffer again: a window over
	// medium frames would cost a read(2) per message (at 16 KiB, four
	// times the reads of a full buffer, and a third of the speed).
	headerWindow = 4 << 10
	windowAfter  = busyReadBufferSize / 2
)

// readBuffer is the state of the session's read buffer.
type readBuffer struct {
	buf    []byte // small[:] or the busy buffer
	pos    int    // next byte to consume
	end    int    // end of the buffered bytes
	window int    // >0: read at most this much into the buffer (after a direct read)
	small  [idleReadBufferSize]byte
}

// buffered returns the bytes read and not yet consumed.
func (s *session) buffered() []byte { return s.rb.buf[s.rb.pos:s.rb.end] }

// adoptHandshakeReader takes over what the handshake's reader buffered
// after the response (the first frames), and reads through the session's
// own buffer from now on.
func (s *session) adoptHandshakeReader(br *bufio.Reader) {
	rb := &s.rb
	rb.buf = rb.small[:]
	rest, _ := br.Peek(br.Buffered())
	if len(rest) > len(rb.buf) {
		rb.buf = make([]byte, max(busyReadBufferSize, len(rest)))
	}
	rb.pos, rb.end = 0, copy(rb.buf, rest)
}

// fill reads until at least n bytes are buffered (n is at most the small
// buffer's size). A passed deadline runs the timers and reading goes on.
// A connection that ends with part of the n bytes read ends inside a frame.
func (s *session) fill(n int) error {
	for s.rb.end-s.rb.pos < n {
		if _, err := s.readMore(); err != nil {
			if isTimeout(err) {
				if err := s.onDeadline(); err != nil {
					return err
				}
				continue
			}
			if s.rb.end > s.rb.pos {
				return insideFrame(err)
			}
			return err
		}
	}
	return nil
}

// readMore reads once into the buffer, after making room.
func (s *session) readMore() (int, error) {
	rb := &s.rb
	if rb.pos == rb.end {
		rb.pos, rb.end = 0, 0
	} else if rb.pos > 0 && len(rb.buf)-rb.end < len(rb.buf)/2 {
		rb.end = copy(rb.buf, rb.buf[rb.pos:rb.end])
		rb.pos = 0
	}
	room := rb.buf[rb.end:]
	windowed := rb.window > 0 && len(room) > rb.window
	if windowed {
		room = room[:rb.window]
	}
	n, err := s.cr.Read(room)
	rb.end += n
	if n > 0 {
		if s.cr.full && !windowed && len(rb.buf) < busyReadBufferSize {
			s.growReadBuffer()
		}
		return n, nil
	}
	return 0, err
}

// growReadBuffer switches to the busy buffer, and arms the timer that gives
// it back when the connection falls idle.
func (s *session) growReadBuffer() {
	rb := &s.rb
	busy := make([]byte, busyReadBufferSize)
	rb.end = copy(busy, rb.buf[rb.pos:rb.end])
	rb.pos, rb.buf = 0, busy
	s.rearm(s.cr.lastRead)
}

// shrinkReadBuffer gives the busy buffer back if the connection has been
// idle for idleAfter and nothing is buffered.
func (s *session) shrinkReadBuffer(now time.Time) {
	rb := &s.rb
	if len(rb.buf) > idleReadBufferSize && rb.pos == rb.end && now.Sub(s.cr.lastRead) >= idleAfter {
		rb.buf, rb.pos, rb.end = rb.small[:], 0, 0
		s.cr.full = false
	}
}

// shrinkDue is when the busy buffer is given back if nothing arrives
// (zero: no busy buffer).
func (s *session) shrinkDue(now time.Time) time.Time {
	if len(s.rb.buf) <= idleReadBufferSize {
		return time.Time{}
	}
	t := s.cr.lastRead.Add(idleAfter)
	if !t.After(now) {
		t = now.Add(idleAfter) // bytes are buffered: check again later
	}
	return t
}

// read reads what is buffered or arrives next into p (never empty): the
// buffered bytes first; then, when at least directReadMin bytes are wanted,
// straight from the connection into p. A passed deadline runs the timers
// and reading goes on.
func (s *session) read(p []byte) (int, error) {
	rb := &s.rb
	for {
		if rb.pos < rb.end {
			n := copy(p, rb.buf[rb.pos:rb.end])
			rb.pos += n
			return n, nil
		}
		var n int
		var err error
		if len(p) >= directReadMin {
			n, err = s.cr.Read(p)
			if n > 0 {
				if len(p) >= windowAfter {
					// Until a frame header says the next payload is
					// smaller (readHeader), past the payload's last
					// pieces.
					rb.window = headerWindow
				}
				return n, nil
			}
		} else {
			n, err = s.readMore()
			if n > 0 {
				continue
			}
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
