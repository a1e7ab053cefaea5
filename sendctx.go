package lomond

import (
	"context"
	"errors"
)

// errSendCut ends a session whose send was cut inside a frame by the end of
// its context: the stream is out of step, so the connection is dropped.
var errSendCut = errors.New("a send was cancelled in the middle of a frame")

// writeContext is write bounded by ctx (SendTextContext, SendBinaryContext);
// the plain sends pass a ctx that cannot end, and go straight to write.
//
// When ctx ends while the send waits behind another message, it returns
// ctx's error and nothing is lost. When ctx ends while its own frame is
// being written (a server that does not read), the write is cut: if no byte
// of the message went out the connection is intact; otherwise the stream is
// out of step, and the connection is dropped (the session ends with
// Disconnected, and Persist reconnects).
func (s *session) writeContext(ctx context.Context, op byte, p []byte) error {
	if err := s.ready(); err != nil {
		return err
	}
	err := s.w.writeMessageContext(ctx, op, p)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, errSendCut):
		s.dropConnection() // the dispatcher ends the session: connection lost
		return ctx.Err()
	case ctx.Err() != nil && errors.Is(err, ctx.Err()):
		return err
	}
	return s.sendFailed(err)
}
