package lomond

import (
	"context"
	"errors"
	"testing"

	"github.com/lomond-go/lomond/events"
	"github.com/lomond-go/lomond/internal/testkit"
	"github.com/lomond-go/lomond/internal/wstest"
)

// Tests of closecause.go: the cause a context carries into the close.

func TestCloseCause(t *testing.T) {
	cases := []struct {
		name       string
		cause      error
		wantCode   int
		wantReason string
	}{
		{"CloseCauseNamesTheCloseFrame", CloseCause(4000, "maintenance"), 4000, "maintenance"},
		{"PlainCancelSendsGoingAway", nil, StatusGoingAway, "going away"},
		{"InvalidCloseCauseFallsBackToGoingAway", CloseCause(1005, "reserved"), StatusGoingAway, "going away"},
		{"OtherCauseSendsGoingAway", errors.New("shutting down"), StatusGoingAway, "going away"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv, done := testkit.ScriptServer(t, func(c *wstest.Conn) {
				if !testkit.Handshake(t, c) {
					return
				}
				if testkit.ExpectClose(t, c, tc.wantCode, tc.wantReason) {
					_ = c.WriteFrame(wstest.Close(tc.wantCode, tc.wantReason))
				}
			})
			ws := newTestWS(t, srv.URL())
			ctx, cancel := context.WithCancelCause(context.Background())
			defer cancel(nil)
			err := ws.Run(ctx, HandlerFunc(func(_ *WebSocket, ev events.Event) {
				if _, ok := ev.(*events.Ready); ok {
					cancel(tc.cause)
				}
			}))
			testkit.WaitScript(t, done)
			if err != nil {
				t.Errorf("Run = %v, want nil after the close handshake the client started", err)
			}
		})
	}
	t.Run("IsACancellation", func(t *testing.T) {
		if err := CloseCause(4000, "x"); !errors.Is(err, context.Canceled) {
			t.Errorf("errors.Is(CloseCause(...), context.Canceled) = false")
		}
	})
}
