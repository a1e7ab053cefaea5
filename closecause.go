package lomond

import (
	"context"
	"errors"
	"fmt"
)

// CloseCause returns an error to cancel a Run or Persist context with
// (context.WithCancelCause, or context.WithDeadlineCause's cause): when the
// context ends with it, the session closes with code and reason instead of
// 1001 "going away". An invalid code or reason (see Close) falls back to
// 1001. Run and Persist return nil after such a cancellation, as after any
// other.
//
//	ctx, cancel := context.WithCancelCause(ctx)
//	...
//	cancel(lomond.CloseCause(4000, "shutting down for maintenance"))
func CloseCause(code int, reason string) error {
	return &closeCause{code: code, reason: reason}
}

type closeCause struct {
	code   int
	reason string
}

func (c *closeCause) Error() string {
	return fmt.Sprintf("lomond: context cancelled with close %d %q", c.code, c.reason)
}

// Unwrap makes a CloseCause a cancellation: errors.Is(err, context.Canceled).
func (c *closeCause) Unwrap() error { return context.Canceled }

// closeForContext is the close frame a session sends when ctx ends: the
// cause's, if it is a valid CloseCause, else 1001 "going away".
func closeForContext(ctx context.Context) (code int, reason string) {
	var cc *closeCause
	if errors.As(context.Cause(ctx), &cc) && checkClose(cc.code, cc.reason) == nil {
		return cc.code, cc.reason
	}
	return StatusGoingAway, "going away"
}
