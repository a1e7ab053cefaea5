package lomond

import (
	"errors"
	"fmt"

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

// sendFailed explains a failed write: ErrClosing (or ErrClosed) if a close
// frame went out meanwhile, the transport's error otherwise.
func (s *session) sendFailed(err error) error {
	if errors.Is(err, errCloseSent) {
		if st := State(s.state.Load()); st == StateClosed || st == StateIdle {
			return stateErr(st)
		}
		return ErrClosing
	}
	return fmt.Errorf("lomond: send failed: %w", err)
}

// write sends a data message. A write blocked on a peer that does not read
// ends at the ping timeout (the session is then Unresponsive), or when the
// session closes the connection.
func (s *session) write(op byte, p []byte) error {
	if err := s.ready(); err != nil {
		return err
	}
	if err := s.w.writeMessage(op, p); err != nil {
		return s.sendFailed(err)
	}
	return nil
}

// writeControl sends a ping or pong of the caller's.
func (s *session) writeControl(op byte, payload []byte) error {
	if err := s.ready(); err != nil {
		return err
	}
	if err := s.w.control(op, payload); err != nil {
		return s.sendFailed(err)
	}
	return nil
}

// close starts the client's close handshake, or, from the Closing handler,
// chooses the reply to the server's close.
func (s *session) close(code int, reason string) error {
	if State(s.state.Load()) < StateReady {
		s.w.mu.Lock()
		if st := State(s.state.Load()); st < StateReady {
			defer s.w.mu.Unlock()
			if st == StateIdle {
				return ErrNotConnected
			}
			if s.pending != nil {
				return ErrClosing
			}
			s.pending = &closeFrame{code: code, reason: reason}
			return nil
		}
		s.w.mu.Unlock()
	}
	s.w.lockForClose(s.cfg.closeTimeout)
	st := State(s.state.Load())
	if (st != StateReady && st != StateClosing) || s.w.closeSent {
		s.w.unlock()
		if st == StateReady {
			st = StateClosing
		}
		return stateErr(st)
	}
	payload, err := s.closeFrameLocked(code, reason)
	s.w.unlock()
	s.ws.observeSent(protocol.OpClose, payload, 0, err)
	s.armCloseTimer() // even if the frame did not go out: the session ends in bounded time
	if err != nil {
		return s.sendFailed(err)
	}
	return nil
}
