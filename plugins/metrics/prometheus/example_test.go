package prometheus_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/coder/websocket"
	prom "github.com/prometheus/client_golang/prometheus"

	"github.com/lomond-go/lomond"
	"github.com/lomond-go/lomond/events"
	"github.com/lomond-go/lomond/plugins/metrics"
	"github.com/lomond-go/lomond/plugins/metrics/prometheus"
)

// echoOnce is a websocket server on 127.0.0.1 that echoes messages.
func echoOnce() (url string, stop func()) {
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

type hello struct{ lomond.BaseHandler }

func (hello) OnReady(ws *lomond.WebSocket, _ *events.Ready) { _ = ws.SendText("hello") }

func (hello) OnText(ws *lomond.WebSocket, _ *events.Text) { _ = ws.Close(lomond.StatusNormal, "") }

// Record a session's metrics in a Prometheus registry (serve it with
// promhttp.HandlerFor on /metrics).
func ExampleNew() {
	url, stop := echoOnce()
	defer stop()

	reg := prom.NewRegistry()
	rec, err := prometheus.New(reg)
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
	_ = ws.Run(ctx, hello{})

	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		switch mf.GetName() {
		case "lomond_sessions_total", "lomond_messages_sent_total", "lomond_messages_received_total":
			for _, m := range mf.GetMetric() {
				if m.GetCounter().GetValue() == 0 {
					continue // every known series is there from registration, at 0
				}
				var labels []string
				for _, l := range m.GetLabel() {
					labels = append(labels, l.GetName()+"="+l.GetValue())
				}
				fmt.Println(mf.GetName(), labels, m.GetCounter().GetValue())
			}
		}
	}
	// Output:
	// lomond_messages_received_total [type=text] 1
	// lomond_messages_sent_total [type=close] 1
	// lomond_messages_sent_total [type=text] 1
	// lomond_sessions_total [] 1
}
