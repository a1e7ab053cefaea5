package plugintest

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/lomond-go/lomond"
	"github.com/lomond-go/lomond/events"
)

// Gauges is what the gauges of a Recorder shared by several WebSockets
// should read at one point of Shared: the number of WebSockets in each
// state (every state not listed is 0) and the messages queued in all.
type Gauges struct {
	States     map[string]float64
	QueueDepth float64
}

// AllStates are the values of the state label.
var AllStates = []string{"idle", "connecting", "handshake", "ready", "closing", "closed"}

// Shared runs several WebSockets whose plugins, each made by newPlugin,
// share one Recorder, and calls check with what the gauges should read:
//
//  1. A is ready (its session held open by a coder/websocket server), B's
//     session is over (it closed, Run returned), C and D never ran and
//     have 2 and 3 messages in their send queues: 1 ready, 1 idle, 5
//     queued.
//  2. C's messages are taken back (Unsent) and A closes: 2 idle, 3 queued.
func Shared(t testing.TB, newPlugin func() any, check func(stage string, want Gauges)) {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		for { // until the client's close, which Read answers
			if _, _, err := c.Read(r.Context()); err != nil {
				return
			}
		}
	}))
	defer srv.Close()
	url := "ws" + strings.TrimPrefix(srv.URL, "http")
	newWS := func(opts ...lomond.Option) *lomond.WebSocket {
		t.Helper()
		opts = append(opts, lomond.WithoutProxy(), lomond.WithPollInterval(0), lomond.WithPingRate(0),
			lomond.WithPlugins(newPlugin()))
		ws, err := lomond.New(url, opts...)
		if err != nil {
			t.Fatal(err)
		}
		return ws
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	a := newWS()
	ready := make(chan struct{})
	ranA := make(chan error, 1)
	go func() { ranA <- a.Run(ctx, &signalReady{ready: ready}) }()
	select {
	case <-ready:
	case err := <-ranA:
		t.Fatalf("A's Run returned before Ready: %v", err)
	}

	b := newWS()
	if err := b.Run(ctx, closeAtReady{}); err != nil {
		t.Fatalf("B's Run = %v, want nil after its own close", err)
	}

	c := newWS(lomond.WithSendQueue(10, lomond.RejectNewest))
	d := newWS(lomond.WithSendQueue(10, lomond.RejectNewest))
	for i, ws := range []*lomond.WebSocket{c, c, d, d, d} {
		if err := ws.SendText("queued"); err != nil {
			t.Fatalf("send %d: %v, want it queued", i, err)
		}
	}
	check("A ready, B over, 5 queued in C and D", Gauges{
		States:     map[string]float64{"ready": 1, "idle": 1},
		QueueDepth: 5,
	})

	if n := len(c.Unsent()); n != 2 {
		t.Fatalf("C's Unsent returned %d messages, want 2", n)
	}
	if err := a.Close(lomond.StatusNormal, "done"); err != nil {
		t.Fatal(err)
	}
	if err := <-ranA; err != nil {
		t.Fatalf("A's Run = %v, want nil after its own close", err)
	}
	check("A and B over, 3 queued in D", Gauges{
		States:     map[string]float64{"idle": 2},
		QueueDepth: 3,
	})
}

// signalReady closes ready at Ready (after the WebSocket's plugins saw it).
type signalReady struct {
	lomond.BaseHandler
	ready chan struct{}
}

func (s *signalReady) OnReady(*lomond.WebSocket, *events.Ready) { close(s.ready) }

// closeAtReady closes the session as soon as it is ready.
type closeAtReady struct{ lomond.BaseHandler }

func (closeAtReady) OnReady(ws *lomond.WebSocket, _ *events.Ready) {
	_ = ws.Close(lomond.StatusNormal, "done")
}
