package otel_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/coder/websocket"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/lomond-go/lomond"
	"github.com/lomond-go/lomond/events"
	"github.com/lomond-go/lomond/plugins/metrics"
	"github.com/lomond-go/lomond/plugins/metrics/otel"
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

type hello struct{ lomond.BaseHandler }

func (hello) OnReady(ws *lomond.WebSocket, _ *events.Ready) { _ = ws.SendText("hello") }

func (hello) OnText(ws *lomond.WebSocket, _ *events.Text) { _ = ws.Close(lomond.StatusNormal, "") }

// Record a session's metrics with an OpenTelemetry MeterProvider (here the
// SDK's, read by hand; in production, with the exporter of your choice).
func ExampleNew() {
	url, stop := echoServer()
	defer stop()

	reader := sdkmetric.NewManualReader()
	provider := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer func() { _ = provider.Shutdown(context.Background()) }()
	rec, err := otel.New(provider.Meter("github.com/lomond-go/lomond"))
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

	var rm metricdata.ResourceMetrics
	_ = reader.Collect(context.Background(), &rm)
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != "lomond.sessions" && m.Name != "lomond.sent_bytes" {
				continue
			}
			for _, dp := range m.Data.(metricdata.Sum[float64]).DataPoints {
				if dp.Value == 0 {
					continue // every known data point is there from New, at 0
				}
				fmt.Println(m.Name, m.Unit, dp.Attributes.Encoded(attribute.DefaultEncoder()), dp.Value)
			}
		}
	}
	// Unordered output:
	// lomond.sessions {count}  1
	// lomond.sent_bytes By type=text 5
	// lomond.sent_bytes By type=close 2
}
