package lomondtest_test

import (
	"testing"

	"github.com/lomond-go/lomond"
	"github.com/lomond-go/lomond/events"
	"github.com/lomond-go/lomond/lomondtest"
	"github.com/lomond-go/lomond/lomondtest/fault"
)

// endPanicker panics in one of the handler methods of a session's end.
type endPanicker struct{ method string }

func (h endPanicker) hit(method string) {
	if method == h.method {
		panic("boom in " + method)
	}
}

func (h endPanicker) OnConnectFail(*lomond.WebSocket, *events.ConnectFail) { h.hit("OnConnectFail") }
func (h endPanicker) OnRejected(*lomond.WebSocket, *events.Rejected)       { h.hit("OnRejected") }
func (h endPanicker) OnClosing(*lomond.WebSocket, *events.Closing)         { h.hit("OnClosing") }
func (h endPanicker) OnClosed(*lomond.WebSocket, *events.Closed)           { h.hit("OnClosed") }
func (h endPanicker) OnProtocolError(*lomond.WebSocket, *events.ProtocolError) {
	h.hit("OnProtocolError")
}
func (h endPanicker) OnDisconnected(*lomond.WebSocket, *events.Disconnected) { h.hit("OnDisconnected") }

func TestRunFailsOnAPanicAtTheEnd(t *testing.T) {
	serverCloses := func(t *testing.T) *lomond.WebSocket {
		return lomondtest.NewServer(t, lomondtest.Script(lomondtest.Accept(), lomondtest.CloseWith(1000, "bye"))).Client()
	}
	for _, tc := range []struct {
		method string
		client func(t *testing.T) *lomond.WebSocket
	}{
		{"OnConnectFail", func(t *testing.T) *lomond.WebSocket {
			srv := lomondtest.NewServer(t)
			ws := srv.Client()
			srv.Stop() // connections are refused from now on
			return ws
		}},
		{"OnRejected", func(t *testing.T) *lomond.WebSocket {
			return lomondtest.NewServer(t, fault.Reject(403)).Client()
		}},
		{"OnClosing", serverCloses},
		{"OnClosed", serverCloses},
		{"OnProtocolError", func(t *testing.T) *lomond.WebSocket {
			return lomondtest.NewServer(t, lomondtest.Script(lomondtest.Accept(), fault.ProtocolViolation())).Client()
		}},
		{"OnDisconnected", serverCloses},
	} {
		t.Run("FailsTheTestOnAPanicIn"+tc.method, func(t *testing.T) {
			ws := tc.client(t)
			ft := newFakeT(t)
			msg := ft.fatalOf(func(tb testing.TB) { lomondtest.Run(tb, ws, endPanicker{tc.method}) })
			if msg == "" {
				t.Fatalf("lomondtest.Run passed a handler that panicked in %s (Err() = %v)", tc.method, ws.Err())
			}
			mustContain(t, msg, "lomondtest: Run: lomond: handler panicked: boom in "+tc.method)
		})
	}
}
