package lomond

import (
	"context"
	"sync"

	"github.com/coder/websocket"
)

// writeContext is write bounded by ctx (SendTextContext, SendBinaryContext);
// the plain sends pass a ctx that cannot end, and go straight to write.
//
// This version is built on write: when ctx ends before write returns, the
// connection is closed, which ends a write blocked on a server that does not
// read (or a wait for the send lock behind such a write) at once. A frame
// cut in the middle cannot be recovered, so the connection is lost either
// way; the session then ends with Disconnected. The protocol rewrite can do
// better for a send that waits for the lock and has written nothing.
func (s *session) writeContext(ctx context.Context, typ websocket.MessageType, p []byte) error {
	if ctx.Done() == nil {
		return s.write(typ, p)
	}
	var mu sync.Mutex
	finished, cut := false, false
	stop := context.AfterFunc(ctx, func() {
		mu.Lock()
		defer mu.Unlock()
		if !finished {
			cut = true
			_ = s.wire.Close()
		}
	})
	err := s.write(typ, p)
	mu.Lock()
	finished = true
	wasCut := cut
	mu.Unlock()
	stop()
	if err != nil && wasCut {
		return ctx.Err()
	}
	return err
}
