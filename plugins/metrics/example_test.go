package metrics_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/coder/websocket"
	"github.com/lomond-go/lomond"
	"github.com/lomond-go/lomond/events"
	"github.com/lomond-go/lomond/plugins/metrics"
)

// echoServer is a websocket echo server on 127.0.0.1.
func echoServer() (url string, stop func()) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		for {
			typ, data, err := c.Read(context.Background())
			if err != nil {
				return
			}
			if err := c.Write(context.Background(), typ, data); err != nil {
				return
			}
		}
	}))
	return "ws" + strings.TrimPrefix(srv.URL, "http"), srv.Close
}

// threeEchoes sends three messages and closes after the third echo.
type threeEchoes struct {
	lomond.BaseHandler
	n int
}

func (h *threeEchoes) OnReady(ws *lomond.WebSocket, _ *events.Ready) {
	for _, m := range []string{"one", "two", "three"} {
		_ = ws.SendText(m)
	}
}

func (h *threeEchoes) OnText(ws *lomond.WebSocket, _ *events.Text) {
	if h.n++; h.n == 3 {
		_ = ws.Close(lomond.StatusNormal, "done")
	}
}

// The plugin counts a session into expvar (served at /debug/vars, or by
// expvar.Handler on a route of your own).
func Example() {
	url, stop := echoServer()
	defer stop()

	rec, err := metrics.NewExpvar("lomond_example")
	if err != nil {
		panic(err)
	}
	ws, err := lomond.New(url, lomond.WithoutProxy(), lomond.WithPollInterval(0), lomond.WithPingRate(0),
		lomond.WithPlugins(metrics.New(rec)))
	if err != nil {
		panic(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = ws.Run(ctx, &threeEchoes{})

	fmt.Println("attempts:", rec.Value(metrics.ConnectAttempts))
	fmt.Println("sessions:", rec.Value(metrics.Sessions))
	fmt.Println("texts out:", rec.Value(metrics.MessagesSent, "text"), "bytes:", rec.Value(metrics.BytesSent, "text"))
	fmt.Println("texts in:", rec.Value(metrics.MessagesReceived, "text"), "bytes:", rec.Value(metrics.BytesReceived, "text"))
	fmt.Println("closes out:", rec.Value(metrics.MessagesSent, "close"))
	fmt.Println("graceful disconnects:", rec.Value(metrics.Disconnects, "true"))
	fmt.Println("idle:", rec.Value(metrics.State, "idle"))
	// Output:
	// attempts: 1
	// sessions: 1
	// texts out: 3 bytes: 11
	// texts in: 3 bytes: 11
	// closes out: 1
	// graceful disconnects: 1
	// idle: 1
}
