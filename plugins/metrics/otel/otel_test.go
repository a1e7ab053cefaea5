package otel_test

import (
	"context"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.uber.org/goleak"

	"github.com/lomond-go/lomond/internal/plugintest"
	"github.com/lomond-go/lomond/plugins/metrics"
	"github.com/lomond-go/lomond/plugins/metrics/otel"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// collect reads everything the SDK's manual reader has.
func collect(t *testing.T, reader *sdkmetric.ManualReader) map[string]metricdata.Metrics {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	out := map[string]metricdata.Metrics{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			out[m.Name] = m
		}
	}
	return out
}

// value is a counter's or a gauge's value, or a histogram's count, for the
// data point whose attributes are exactly attrs.
func value(t *testing.T, got map[string]metricdata.Metrics, m *metrics.Metric, labels ...string) float64 {
	t.Helper()
	var kv []attribute.KeyValue
	for i, l := range labels {
		kv = append(kv, attribute.String(m.Labels[i], l))
	}
	want := attribute.NewSet(kv...)
	switch d := got[otel.Name(m)].Data.(type) {
	case metricdata.Sum[float64]:
		for _, dp := range d.DataPoints {
			if dp.Attributes.Equals(&want) {
				return dp.Value
			}
		}
	case metricdata.Gauge[float64]:
		for _, dp := range d.DataPoints {
			if dp.Attributes.Equals(&want) {
				return dp.Value
			}
		}
	case metricdata.Histogram[float64]:
		for _, dp := range d.DataPoints {
			if dp.Attributes.Equals(&want) {
				return float64(dp.Count)
			}
		}
	case nil:
	default:
		t.Fatalf("%s: unexpected data %T", otel.Name(m), d)
	}
	return 0
}

// TestScenario runs real sessions (plugintest) with the metrics plugin
// recording through the OpenTelemetry SDK, read back with a ManualReader.
func TestScenario(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	provider := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer func() { _ = provider.Shutdown(context.Background()) }()
	rec, err := otel.New(provider.Meter("github.com/lomond-go/lomond"))
	if err != nil {
		t.Fatal(err)
	}
	plugintest.Run(t, func() any { return metrics.New(rec) })
	got := collect(t, reader)
	w := plugintest.Want

	exact := []struct {
		m      *metrics.Metric
		labels []string
		want   float64
	}{
		{metrics.ConnectAttempts, nil, w.ConnectAttempts},
		{metrics.Reconnects, nil, w.Reconnects},
		{metrics.Sessions, nil, w.Sessions},
		{metrics.Rejections, []string{"503"}, w.Rejections503},
		{metrics.ConnectFailures, []string{"refused"}, w.RefusedFailures},
		{metrics.Disconnects, []string{"true"}, w.GracefulDisconnects},
		{metrics.Disconnects, []string{"false"}, w.AbruptDisconnects},
		{metrics.SessionDuration, nil, w.Sessions},
		{metrics.BackOffDelay, nil, w.BackOffs},
		{metrics.MessagesReceived, []string{"text"}, w.TextsIn},
		{metrics.BytesReceived, []string{"binary"}, w.BinaryBytesIn},
		{metrics.MessagesSent, []string{"text"}, w.TextsOut},
		{metrics.BytesSent, []string{"text"}, w.TextBytesOut},
		{metrics.QueueDropped, []string{"oldest"}, w.QueueDroppedOldest},
		{metrics.ProtocolErrors, []string{"1007"}, w.ProtocolErrors1007},
		{metrics.Unresponsive, nil, w.Unresponsive},
		{metrics.QueueDepth, nil, 0},
		{metrics.State, []string{"idle"}, 2}, // both WebSockets of the scenario, each stopped
		{metrics.State, []string{"ready"}, 0},
	}
	for _, c := range exact {
		if v := value(t, got, c.m, c.labels...); v != c.want {
			t.Errorf("%s%v = %v, want %v", otel.Name(c.m), c.labels, v, c.want)
		}
	}
	if v := value(t, got, metrics.PongRTT); v < w.MinPongRTTs {
		t.Errorf("pong RTT observations = %v, want at least %v", v, w.MinPongRTTs)
	}
	// Instruments carry units and the buckets of the metric.
	if u := got["lomond.pong_rtt"].Unit; u != "s" {
		t.Errorf("lomond.pong_rtt unit %q, want s", u)
	}
	if u := got["lomond.sent_bytes"].Unit; u != "By" {
		t.Errorf("lomond.sent_bytes unit %q, want By", u)
	}
	if h, ok := got["lomond.backoff_delay"].Data.(metricdata.Histogram[float64]); !ok || len(h.DataPoints) != 1 ||
		len(h.DataPoints[0].Bounds) != len(metrics.BackOffDelay.Buckets) {
		t.Errorf("lomond.backoff_delay: %+v, want one data point with the metric's %d bounds", got["lomond.backoff_delay"].Data, len(metrics.BackOffDelay.Buckets))
	}
}

func TestNames(t *testing.T) {
	for m, want := range map[*metrics.Metric]string{
		metrics.ConnectAttempts: "lomond.connect_attempts",
		metrics.PongRTT:         "lomond.pong_rtt",
		metrics.BytesReceived:   "lomond.received_bytes",
		metrics.State:           "lomond.state",
	} {
		if got := otel.Name(m); got != want {
			t.Errorf("Name(%s) = %q, want %q", m.Name, got, want)
		}
	}
}

// TestSeriesFromRegistration: right after New, before any WebSocket ran,
// every counter and gauge data point of a known attribute set is exported,
// at 0.
func TestSeriesFromRegistration(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	provider := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer func() { _ = provider.Shutdown(context.Background()) }()
	if _, err := otel.New(provider.Meter("github.com/lomond-go/lomond")); err != nil {
		t.Fatal(err)
	}
	got := collect(t, reader)
	n := 0
	for _, m := range metrics.All() {
		if m.Kind == metrics.Histogram {
			continue
		}
		for _, labels := range m.Series() {
			if !hasPoint(got[otel.Name(m)], m, labels) {
				t.Errorf("%s%v: no data point", otel.Name(m), labels)
			} else if v := value(t, got, m, labels...); v != 0 {
				t.Errorf("%s%v = %v, want 0", otel.Name(m), labels, v)
			}
			n++
		}
	}
	if n < 50 {
		t.Errorf("only %d data points checked", n)
	}
}

// hasPoint reports whether got has a data point of m with exactly labels.
func hasPoint(got metricdata.Metrics, m *metrics.Metric, labels []string) bool {
	var kv []attribute.KeyValue
	for i, l := range labels {
		kv = append(kv, attribute.String(m.Labels[i], l))
	}
	want := attribute.NewSet(kv...)
	switch d := got.Data.(type) {
	case metricdata.Sum[float64]:
		for _, dp := range d.DataPoints {
			if dp.Attributes.Equals(&want) {
				return true
			}
		}
	case metricdata.Gauge[float64]:
		for _, dp := range d.DataPoints {
			if dp.Attributes.Equals(&want) {
				return true
			}
		}
	}
	return false
}

// TestSharedRecorder: WebSockets sharing one Recorder report the number
// of them in each state and the sum of their queues.
func TestSharedRecorder(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	provider := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer func() { _ = provider.Shutdown(context.Background()) }()
	rec, err := otel.New(provider.Meter("github.com/lomond-go/lomond"))
	if err != nil {
		t.Fatal(err)
	}
	plugintest.Shared(t, func() any { return metrics.New(rec) }, func(stage string, want plugintest.Gauges) {
		got := collect(t, reader)
		for _, s := range plugintest.AllStates {
			if v := value(t, got, metrics.State, s); v != want.States[s] {
				t.Errorf("%s: lomond.state{state=%q} = %v, want %v", stage, s, v, want.States[s])
			}
		}
		if v := value(t, got, metrics.QueueDepth); v != want.QueueDepth {
			t.Errorf("%s: lomond.send_queue_depth = %v, want %v", stage, v, want.QueueDepth)
		}
	})
}
