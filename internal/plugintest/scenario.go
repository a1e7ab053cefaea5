// Package plugintest runs one scripted scenario through real sessions, for
// the tests of the metrics plugin and of its backends: each checks its own
// backend for the figures listed in Want.
package plugintest

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/lomond-go/lomond"
	"github.com/lomond-go/lomond/events"
	"github.com/lomond-go/lomond/internal/wstest"
)

// Want holds the figures the scenario produces. "At least" figures depend
// on timing (keep-alive pings); the others are exact.
var Want = struct {
	ConnectAttempts, Reconnects, Sessions, Rejections503, RefusedFailures float64
	GracefulDisconnects, AbruptDisconnects, BackOffs                      float64
	TextsIn, TextBytesIn, BinariesIn, BinaryBytesIn, PingsIn              float64
	TextsOut, TextBytesOut, QueueDroppedOldest, ProtocolErrors1007        float64
	Unresponsive                                                          float64
	MinPongRTTs, MinPongsOut, MinPingsOut, MinClosesOut                   float64
}{
	ConnectAttempts: 5, Reconnects: 3, Sessions: 3, Rejections503: 1, RefusedFailures: 1,
	GracefulDisconnects: 2, AbruptDisconnects: 2, BackOffs: 4,
	TextsIn: 1, TextBytesIn: 3, BinariesIn: 1, BinaryBytesIn: 4, PingsIn: 1,
	TextsOut: 1, TextBytesOut: 5, QueueDroppedOldest: 2, ProtocolErrors1007: 1,
	Unresponsive: 1,
	MinPongRTTs:  1, MinPongsOut: 1, MinPingsOut: 1, MinClosesOut: 1,
}

// server answers, connection after connection: a 503; a session that sends
// a text ("abc"), a binary (4 bytes) and a ping, answers keep-alive pings,
// and closes (1000) once it has a pong's worth of ping and the client's
// "hello"; a session that sends invalid UTF-8 (close 1007); a session that
// never answers pings.
func server(t testing.TB) *wstest.Server {
	var conns atomic.Int32
	return wstest.NewServer(t, func(c *wstest.Conn) {
		n := conns.Add(1)
		if n == 1 {
			if _, err := c.ReadRequest(); err == nil {
				_ = c.Reject(http.StatusServiceUnavailable, nil, "busy")
			}
			return
		}
		if _, err := c.Handshake(); err != nil {
			return
		}
		switch n {
		case 2:
			_ = c.WriteRaw(wstest.EncodeAll(wstest.Text("abc"), wstest.Binary([]byte{1, 2, 3, 4}), wstest.Ping([]byte("pi"))))
			hello, pinged := false, false
			for {
				f, err := c.ReadFrame()
				if err != nil {
					return
				}
				switch f.Opcode {
				case wstest.OpPing:
					_ = c.WriteFrame(wstest.Pong(f.Payload))
					pinged = true
				case wstest.OpText:
					hello = hello || string(f.Payload) == "hello"
				case wstest.OpClose:
					return
				}
				if hello && pinged {
					_ = c.WriteFrame(wstest.Close(lomond.StatusNormal, "done"))
					hello = false
				}
			}
		case 3:
			_ = c.WriteFrame(wstest.Frame{Fin: true, Opcode: wstest.OpText, Payload: []byte{0xff}})
			if code, reason, err := c.ExpectClose(); err == nil {
				_ = c.WriteFrame(wstest.Close(code, reason))
			}
		default:
			for { // never answer
				if _, err := c.ReadFrame(); err != nil {
					return
				}
			}
		}
	})
}

// app sends two messages while disconnected (a queue of one drops the
// first), says hello once ready (sends keep their order, so "hello" joins
// the queue behind "q2" and drops it: only "hello" goes out) and stops
// after the fourth back-off.
type app struct {
	lomond.BaseHandler
	backOffs int
	stop     context.CancelFunc
}

func (a *app) OnReady(ws *lomond.WebSocket, _ *events.Ready) {
	if a.backOffs == 1 {
		_ = ws.SendText("hello")
	}
}

func (a *app) OnBackOff(ws *lomond.WebSocket, _ *events.BackOff) {
	switch a.backOffs++; a.backOffs {
	case 1:
		_ = ws.SendText("q1")
		_ = ws.SendText("q2") // drops q1
	case 4:
		a.stop()
	}
}

// Run runs the scenario: a Persist through the server's four connections
// with newPlugin() installed, then a Run against a refused port with
// another newPlugin(). It fails t if the sessions do not go as planned.
func Run(t testing.TB, newPlugin func() any) {
	t.Helper()
	srv := server(t)
	ws, err := lomond.New(srv.URL(), lomond.WithoutProxy(), lomond.WithPlugins(newPlugin()),
		lomond.WithPollInterval(0), lomond.WithPingRate(20*time.Millisecond),
		lomond.WithPingTimeout(time.Second), lomond.WithCloseTimeout(2*time.Second),
		lomond.WithSendQueue(1, lomond.DropOldest))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	a := &app{stop: cancel}
	err = ws.Persist(ctx, a,
		lomond.WithBackOff(func() backoff.BackOff { return &backoff.ConstantBackOff{Interval: time.Millisecond} }))
	if err != nil || a.backOffs != 4 {
		t.Fatalf("Persist = %v after %d back-offs, want nil after 4", err, a.backOffs)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := "ws://" + ln.Addr().String() + "/"
	ln.Close()
	ws2, err := lomond.New(refused, lomond.WithoutProxy(), lomond.WithPlugins(newPlugin()))
	if err != nil {
		t.Fatal(err)
	}
	var ce *lomond.ConnectError
	if err := ws2.Run(context.Background(), lomond.BaseHandler{}); !errors.As(err, &ce) {
		t.Fatalf("Run to a refused port = %v, want a *ConnectError", err)
	}
}
