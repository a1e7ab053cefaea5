package lomond

import (
	"context"
	"fmt"
	"time"

	"github.com/coder/websocket"
)

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

// lockReady takes the send lock if the session is ready; otherwise it
// returns the error a send gets in the session's state.
func (s *session) lockReady() error {
	if st := State(s.state.Load()); st != StateReady {
		return stateErr(st)
	}
	s.sendMu.Lock()
	if st := State(s.state.Load()); st != StateReady {
		s.sendMu.Unlock()
		return stateErr(st)
	}
	return nil
}

// sendFailed explains a failed write: ErrClosing if a close frame went out
// meanwhile, the transport's error otherwise.
func (s *session) sendFailed(err error) error {
	if s.wire.sentClose() {
		return ErrClosing
	}
	return fmt.Errorf("lomond: send failed: %w", err)
}

// write sends a data message through the engine. No context: a write
// blocked on a dead peer ends when the session closes the connection.
func (s *session) write(typ websocket.MessageType, p []byte) error {
	if err := s.lockReady(); err != nil {
		return err
	}
	defer s.unlockSend()
	if s.rawWrites {
		buf, err := s.wire.writeData(byte(typ), p, uint32(s.maskRand.Uint64()), s.wbuf)
		if cap(buf) <= maxKeptWriteBuffer {
			s.wbuf = buf
		}
		if err != nil {
			return s.sendFailed(err)
		}
		return nil
	}
	if err := s.conn.Write(context.Background(), typ, p); err != nil {
		return s.sendFailed(err)
	}
	return nil
}

// maxKeptWriteBuffer bounds the frame buffer a session keeps between sends.
const maxKeptWriteBuffer = 1 << 20

// writeControl sends a ping or pong of the caller's.
func (s *session) writeControl(op byte, payload []byte) error {
	if err := s.lockReady(); err != nil {
		return err
	}
	defer s.unlockSend()
	if err := s.wire.writeFrame(op, payload); err != nil {
		return s.sendFailed(err)
	}
	return nil
}

// lockForClose takes the send lock to write a close frame of ours. A send in
// progress may be stuck on a peer that does not read: the write deadline
// bounds it, and the close frame, by the close timeout, so closing never
// hangs. After a close frame nothing more of ours is written, so the
// deadline can stay.
func (s *session) lockForClose() {
	if s.sendMu.TryLock() {
		if State(s.state.Load()) == StateReady {
			_ = s.wire.SetWriteDeadline(time.Now().Add(s.cfg.closeTimeout))
		}
		return
	}
	// The state, stored after s.wire was set, says whether there is a wire.
	if State(s.state.Load()) >= StateHandshake {
		_ = s.wire.SetWriteDeadline(time.Now().Add(s.cfg.closeTimeout))
	}
	s.sendMu.Lock()
	if State(s.state.Load()) == StateReady {
		_ = s.wire.SetWriteDeadline(time.Now().Add(s.cfg.closeTimeout))
	}
}

// unlockSend releases the send lock after sending a pong the dispatcher owed
// while the lock was busy (see onPing).
func (s *session) unlockSend() {
	if p := s.owedPong.Swap(nil); p != nil {
		_ = s.writeOwn(opPong, *p, outAuto)
	}
	s.sendMu.Unlock()
}

// close starts the client's close handshake.
func (s *session) close(code int, reason string) error {
	s.lockForClose()
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
		err := s.writeOwn(opClose, closePayload(code, reason), 0)
		s.armCloseTimer() // even if the frame did not go out: the session ends in bounded time
		if err != nil {
			return s.sendFailed(err)
		}
		return nil
	default:
		return stateErr(st)
	}
}
