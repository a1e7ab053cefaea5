package lomond

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/lomond-go/lomond/events"
	"github.com/lomond-go/lomond/internal/protocol"
)

// Receiving a message as a stream (StreamHandler). The session goroutine
// owns the stream, as it owns the rest of the read side: OnStream runs on
// it, and its reads of ev.Reader pull the message's frames from the
// connection with the session's own read path (s.read, so the timers and
// the mail run while it waits). Control frames between fragments are
// handled as the read loop handles them; events that happen while OnStream
// runs wait in s.pending and are delivered when it returns; a close frame
// ends the stream, and the close handshake proceeds once OnStream
// returned. Then what is left of the message is discarded: read through
// (and decompressed, if the compressor keeps context across messages, for
// the next message to decompress right), at most the read limit of it.

// streamIn is the message being delivered as a Stream.
type streamIn struct {
	s          *session
	left       uint64 // payload bytes left in the current frame
	fin        bool   // the current frame is the message's last
	text       bool
	utf8       protocol.UTF8
	z          *protocol.InflateStream // nil: not compressed
	readAt     time.Time               // when the handler's last read returned
	eof        bool                    // the message was read to its end
	over       bool                    // OnStream returned: the reader is dead
	fatal      error                   // ends the session (the read loop returns it)
	shown      error                   // what the reader returns from now on
	closeFrame []byte                  // the server's close, received inside the message
}

// streamReader is the io.Reader OnStream gets.
type streamReader streamIn

// rawStream reads the message's payload as it came (compressed or not).
type rawStream streamIn

// errStreamClosed ends a stream whose server closed inside the message.
var errStreamClosed = fmt.Errorf("lomond: the server closed the connection inside the message: %w", io.ErrUnexpectedEOF)

// errStreamDone is a read of a stream after its OnStream returned.
var errStreamDone = errors.New("lomond: a Stream's Reader was read after OnStream returned (it is valid only during the call)")

// maxPendingControl bounds the Ping and Pong events kept for delivery after
// OnStream returns: a server that pings a long stream all the time cannot
// make them pile up. Pings are answered and pongs end the wait all the same.
const maxPendingControl = 16

// readStream delivers a data message as a Stream; h is its first frame.
func (s *session) readStream(h protocol.Header) error {
	in := &s.in
	st := &streamIn{s: s, left: h.Length, fin: h.Fin, text: in.text}
	if in.compressed {
		st.z = s.z.inflater.Stream((*rawStream)(st))
		defer st.z.Close()
	}
	ev := &events.Stream{Meta: s.messageMeta(), Binary: !in.text, Compressed: in.compressed, Reader: (*streamReader)(st)}
	s.stream = st
	st.readAt = time.Now()
	s.lastStamp = ev.Received
	s.deliverTo(s.t, ev)
	if s.tm.judging() {
		s.excludeHandlerTime(st.readAt) // the time since its last read
	}
	st.over = true
	s.stream = nil
	if s.stopNow {
		s.stopNow = false
		s.stopSession()
	}
	for _, p := range s.pending {
		s.emit(p)
	}
	clear(s.pending)
	s.pending, s.pendingControl = s.pending[:0], 0
	return s.endStream(st)
}

// endStream finishes a stream after OnStream returned: the close handshake
// if the server closed inside it, else the rest of the message discarded.
func (s *session) endStream(st *streamIn) error {
	in := &s.in
	for {
		switch {
		case st.closeFrame != nil:
			in.active = false
			return s.closeReceived(st.closeFrame)
		case st.fatal != nil:
			return st.fatal
		case st.eof:
			in.active = false
			return nil
		case s.failure != nil:
			// Failed: the read loop drops the rest until the close reply.
			if err := s.skip(st.left); err != nil {
				return insideFrame(err)
			}
			in.active, in.discard, in.size = !st.fin, true, 0
			return nil
		}
		s.discardStream(st)
	}
}

// drainSize is the buffer that discards what OnStream left unread.
const drainSize = 32 << 10

// discardStream reads the rest of an abandoned stream, at most the read
// limit of it, and returns when it ended or the session failed.
func (s *session) discardStream(st *streamIn) {
	if s.drain == nil {
		s.drain = new([drainSize]byte)
	}
	inflate := st.z != nil && s.z.inflater.Takeover()
	var dropped uint64
	for {
		var n int
		var err error
		if inflate {
			n, err = st.z.Read(s.drain[:])
		} else {
			n, err = (*rawStream)(st).Read(s.drain[:])
		}
		dropped += uint64(n)
		switch {
		case err == io.EOF:
			st.eof = true
			return
		case errors.Is(err, protocol.ErrInflateCorrupt):
			s.fail(&protocol.Error{Code: protocol.CloseInvalidPayload, Reason: "invalid compressed data", Err: err})
			return
		case err != nil:
			return // st.fatal or st.closeFrame says what follows
		}
		if lim := s.cfg.readLimit; lim >= 0 && dropped > uint64(lim) {
			s.fail(&protocol.Error{Code: protocol.CloseMessageTooBig,
				Reason: fmt.Sprintf("the unread rest of a stream is larger than the read limit (%d bytes)", lim)})
			return
		}
	}
}

// Read reads the message's payload, decompressed and checked.
func (r *streamReader) Read(p []byte) (int, error) {
	st := (*streamIn)(r)
	if st.over {
		return 0, errStreamDone
	}
	if st.shown != nil {
		return 0, st.shown
	}
	if st.eof {
		return 0, io.EOF
	}
	s := st.s
	if s.tm.judging() {
		s.excludeHandlerTime(st.readAt) // the handler's time between reads
	}
	var n int
	var err error
	if st.z != nil {
		n, err = st.z.Read(p)
		if errors.Is(err, protocol.ErrInflateCorrupt) {
			err = s.fail(&protocol.Error{Code: protocol.CloseInvalidPayload, Reason: "invalid compressed data", Err: err})
		}
	} else {
		n, err = (*rawStream)(st).Read(p)
	}
	if st.text && n > 0 && !st.utf8.Write(p[:n]) || st.text && err == io.EOF && !st.utf8.Done() {
		n, err = 0, s.fail(&protocol.Error{Code: protocol.CloseInvalidPayload, Reason: "invalid UTF-8 in text"})
	}
	switch {
	case err == io.EOF:
		st.eof = true
	case err != nil && st.shown == nil:
		st.shown = err
	}
	st.readAt = time.Now()
	return n, err
}

// Read reads the message's payload bytes as they came, frame after frame,
// handling the control frames between them.
func (r *rawStream) Read(p []byte) (int, error) {
	st := (*streamIn)(r)
	if st.shown != nil {
		return 0, st.shown
	}
	for st.left == 0 {
		if st.fin {
			return 0, io.EOF
		}
		if err := st.nextFrame(); err != nil {
			return 0, err
		}
	}
	if len(p) == 0 {
		return 0, nil
	}
	n, err := st.s.read(p[:min(uint64(len(p)), st.left)])
	if err != nil {
		st.fatal = insideFrame(err)
		st.shown = st.fatal
		return 0, st.fatal
	}
	st.left -= uint64(n)
	return n, nil
}

// nextFrame reads frames until the message's next fragment starts.
func (st *streamIn) nextFrame() error {
	s := st.s
	h, err := s.readHeader()
	if err == nil && h.IsControl() {
		if h.Opcode == protocol.OpClose {
			var buf [protocol.MaxControlPayload]byte
			p := buf[:h.Length]
			if err = s.readFull(p); err == nil {
				st.closeFrame = bytes.Clone(p)
				st.shown = errStreamClosed
				return errStreamClosed
			}
		} else if err = s.readControl(h); err == nil {
			return nil
		}
	}
	if err == nil {
		switch {
		case h.Opcode != protocol.OpContinuation:
			err = &protocol.Error{Code: protocol.CloseProtocolError, Reason: "expected a continuation frame"}
		case h.Rsv1:
			err = &protocol.Error{Code: protocol.CloseProtocolError, Reason: "reserved bits set"}
		default:
			st.left, st.fin = h.Length, h.Fin
			return nil
		}
	}
	st.fatal, st.shown = err, err
	var perr *protocol.Error
	if errors.As(err, &perr) {
		st.shown = s.fail(perr) // the reader shows a *ProtocolError
	}
	return st.shown
}

// deferEvent keeps an event that happened while OnStream runs, for
// delivery when it returns (handler methods run one at a time). Pings and
// pongs beyond maxPendingControl, and a Poll while one waits, are dropped.
func (s *session) deferEvent(ev events.Event) {
	switch ev.(type) {
	case *events.Ping, *events.Pong:
		if s.pendingControl >= maxPendingControl {
			return
		}
		s.pendingControl++
	case *events.Poll:
		for _, p := range s.pending {
			if _, ok := p.(*events.Poll); ok {
				return
			}
		}
	}
	s.pending = append(s.pending, ev)
}
