package lomond

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/lomond-go/lomond/events"
	"github.com/lomond-go/lomond/internal/wstest"
)

// Tests of Stop (issue 8, item 13): ending Persist from a handler or
// another goroutine without cancelling its context.

// TestStopFromHandler: Stop in OnReady closes the connection with the
// given code and Persist returns nil, with no reconnection. (ws.Close in
// the same place reconnects: TestCloseReconnects.)
func TestStopFromHandler(t *testing.T) {
	rcNoLeak(t)
	codes := make(chan int, 4)
	srv := wstest.NewServer(t, rcCloseRecorder(codes))
	ws := rcNew(t, srv.URL())
	var stopErr error
	rec, err := rcPersist(t, ws, func(ws *WebSocket, ev events.Event, _ context.CancelFunc) {
		if ev.Name() == events.NameReady {
			stopErr = ws.Stop(StatusNormal, "done")
		}
	}, rcConst(time.Millisecond))
	if err != nil || stopErr != nil {
		t.Fatalf("Persist = %v, Stop = %v; want nil, nil", err, stopErr)
	}
	if code := rcRecv(t, codes, "the close code"); code != StatusNormal {
		t.Errorf("server got close %d, want 1000", code)
	}
	rcWantNames(t, rec, "connecting", "connected", "ready", "closed", "disconnected")
	if n := srv.Conns(); n != 1 {
		t.Errorf("%d connections, want 1", n)
	}
	if err := ws.Stop(StatusNormal, ""); !errors.Is(err, ErrNotConnected) {
		t.Errorf("Stop after Persist = %v, want ErrNotConnected", err)
	}
}

// TestCloseReconnects documents the difference: ws.Close ends the
// connection, and Persist connects again.
func TestCloseReconnects(t *testing.T) {
	rcNoLeak(t)
	srv := wstest.NewServer(t, rcAnswerClose)
	ws := rcNew(t, srv.URL())
	readies := 0
	rec, err := rcPersist(t, ws, func(ws *WebSocket, ev events.Event, stop context.CancelFunc) {
		if ev.Name() != events.NameReady {
			return
		}
		if readies++; readies == 2 {
			stop()
			return
		}
		_ = ws.Close(StatusNormal, "again")
	}, rcConst(time.Millisecond))
	if err != nil {
		t.Fatalf("Persist = %v", err)
	}
	if n := rec.count("ready"); n < 2 {
		t.Errorf("%d Ready, want at least 2 (Close does not stop Persist)", n)
	}
}

// TestStopFromAnotherGoroutine: Stop during the backoff wait, during a
// dial, and from the before-dial hook ends Persist at once with nil.
func TestStopFromAnotherGoroutine(t *testing.T) {
	rcNoLeak(t)
	t.Run("backoff wait", func(t *testing.T) {
		ws := rcNew(t, "ws://"+rcRefusedAddr(t)+"/")
		run := rcGo(t, ws, nil, rcConst(time.Hour))
		run.rec.waitCount(t, "back_off", 1)
		if err := ws.Stop(StatusNormal, ""); err != nil {
			t.Fatalf("Stop = %v", err)
		}
		if err := run.wait(t); err != nil {
			t.Errorf("Persist = %v, want nil", err)
		}
		rcWantNames(t, run.rec, "connecting", "connect_fail", "back_off")
	})
	t.Run("dial", func(t *testing.T) {
		dialing := make(chan struct{}, 1)
		block := func(ctx context.Context, _, _ string) (net.Conn, error) {
			dialing <- struct{}{}
			<-ctx.Done()
			return nil, ctx.Err()
		}
		ws := rcNew(t, "ws://127.0.0.1:9/", WithDialer(block))
		run := rcGo(t, ws, nil, rcConst(time.Millisecond))
		rcRecv(t, dialing, "the dial")
		start := time.Now()
		if err := ws.Stop(StatusGoingAway, ""); err != nil {
			t.Fatalf("Stop = %v", err)
		}
		if err := run.wait(t); err != nil {
			t.Errorf("Persist = %v, want nil", err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("Persist returned %v after Stop, want at once (the dial timeout is 30 s)", d)
		}
		rcWantNames(t, run.rec, "connecting", "connect_fail")
	})
	t.Run("before-dial hook", func(t *testing.T) {
		srv := wstest.NewServer(t, rcAnswerClose)
		ws := rcNew(t, srv.URL())
		hook := func(context.Context, *Attempt) error { return ws.Stop(StatusNormal, "") }
		rec, err := rcPersist(t, ws, nil, WithBeforeDial(hook))
		if err != nil {
			t.Errorf("Persist = %v, want nil", err)
		}
		if n := len(rec.all()); n != 0 || srv.Conns() != 0 {
			t.Errorf("events %v, %d connections; want nothing after Stop", rec.names(), srv.Conns())
		}
	})
}

// TestStopPersistEventsAndRun: Stop ends a PersistEvents loop the same way,
// and on a Run session it is Close.
func TestStopPersistEventsAndRun(t *testing.T) {
	rcNoLeak(t)
	codes := make(chan int, 4)
	srv := wstest.NewServer(t, rcCloseRecorder(codes))
	ws := rcNew(t, srv.URL())
	var names []string
	for ev := range ws.PersistEvents(context.Background(), rcConst(time.Millisecond)) {
		names = append(names, ev.Name())
		if ev.Name() == events.NameReady {
			if err := ws.Stop(4000, "bye"); err != nil {
				t.Errorf("Stop = %v", err)
			}
		}
	}
	if ws.Err() != nil {
		t.Errorf("ws.Err() = %v, want nil", ws.Err())
	}
	if code := rcRecv(t, codes, "the close code"); code != 4000 {
		t.Errorf("server got close %d, want 4000", code)
	}
	if got := names[len(names)-1]; got != events.NameDisconnected {
		t.Errorf("events %v, want Disconnected last and no reconnection", names)
	}

	err := ws.Run(context.Background(), HandlerFunc(func(ws *WebSocket, ev events.Event) {
		if ev.Name() == events.NameReady {
			_ = ws.Stop(StatusNormal, "run")
		}
	}))
	if err != nil {
		t.Errorf("Run = %v, want nil (Stop is Close)", err)
	}
	if code := rcRecv(t, codes, "the close code"); code != StatusNormal {
		t.Errorf("server got close %d, want 1000", code)
	}
	for _, bad := range []struct {
		code   int
		reason string
		want   error
	}{{999, "", ErrInvalidCloseCode}, {StatusNormal, string(make([]byte, 124)), ErrReasonTooLong}} {
		if err := ws.Stop(bad.code, bad.reason); !errors.Is(err, bad.want) {
			t.Errorf("Stop(%d, %d bytes) = %v, want %v", bad.code, len(bad.reason), err, bad.want)
		}
	}
}
