package lomond

import (
	"context"
	"errors"
	"fmt"
	"net"

	"github.com/lomond-go/lomond/internal/protocol"
)

// Message types of the send paths: the frame opcodes.
const (
	opText   = protocol.OpText
	opBinary = protocol.OpBinary
	opPing   = protocol.OpPing
	opPong   = protocol.OpPong
)

// maxControl is the largest control frame payload.
const maxControl = protocol.MaxControlPayload

// stateErr is the error a send gets in state st.
func stateErr(st State) error {
	switch st {
	case StateClosing:
		return ErrClosing
	case StateClosed:
		return ErrClosed
	}
	return ErrNotConnected
}

// ready returns nil if the session may send, else the error a send gets.
// While closing, only the writer knows whether our close frame went out: a
// Closing handler may still send before its reply (as in lomond).
func (s *session) ready() error {
	if st := State(s.state.Load()); st != StateReady && st != StateClosing {
		return stateErr(st)
	}
	return nil
}

// sendError explains a write that failed. started says whether any byte of
// the message went out.
func (s *session) sendError(err error, started bool) error {
	var be *brokenError
	switch {
	case errors.Is(err, errCloseSent):
		if st := State(s.state.Load()); st == StateClosed || st == StateIdle {
			return stateErr(st)
		}
		return ErrClosing
	case errors.As(err, &be) && !started:
		// Nothing of this message was written: it can be sent again (the
		// send queue keeps it for the next session).
		return fmt.Errorf("%w: %w", ErrConnectionLost, be.err)
	case errors.Is(err, errStalled):
		return fmt.Errorf("lomond: send failed: %w (the server stopped reading): %w", ErrUnresponsive, err)
	case errors.Is(err, net.ErrClosed):
		return fmt.Errorf("lomond: send failed: %w: the session ended while the message was being written", ErrClosed)
	}
	return fmt.Errorf("lomond: send failed: %w", err)
}

// write sends a data message; ctx (nil: none) bounds only the wait for the
// write lock. started reports whether any of it went out.
func (s *session) write(ctx context.Context, op byte, p []byte) (started bool, err error) {
	if err := s.ready(); err != nil {
		return false, err
	}
	if err := s.w.acquire(ctx); err != nil {
		return false, err
	}
	started, err = s.w.message(op, p)
	s.w.release()
	if err != nil {
		return started, s.sendError(err, started)
	}
	return true, nil
}

// writeControl sends a ping or pong of the caller's: it waits for the
// message being written, if any.
func (s *session) writeControl(op byte, payload []byte) error {
	if err := s.ready(); err != nil {
		return err
	}
	if err := s.w.acquire(context.Background()); err != nil {
		return err
	}
	err := s.w.control(op, payload)
	s.w.release()
	if err != nil {
		return s.sendError(err, true)
	}
	return nil
}

// close starts the client's close handshake (Close, Stop), or, from the
// Closing handler, chooses the reply to the server's close. The frame is
// written at once if no message is being written, else when that message
// ends; the session goroutine starts the close timer either way, so a
// writer stuck on a server that does not read is bounded by it.
func (s *session) close(code int, reason string) error {
	st := State(s.state.Load())
	switch {
	case st == StateIdle:
		return ErrNotConnected
	case st >= StateClosed:
		return ErrClosed
	}
	payload := protocol.AppendClosePayload(nil, code, reason)
	if st >= StateReady {
		// The mail first: the session goroutine starts the close timer
		// even if the reply overtakes this goroutine's write.
		s.post(func(m *mail) { m.closeAsked = true })
	}
	return s.w.postClose(payload, 0)
}
