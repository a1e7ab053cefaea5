// Package otel records lomond's metrics (package
// github.com/lomond-go/lomond/plugins/metrics) with OpenTelemetry. It is a
// module of its own, so that the library does not depend on OpenTelemetry.
//
//	rec, err := otel.New(provider.Meter("github.com/lomond-go/lomond"))
//	...
//	ws, err := lomond.New(url, lomond.WithPlugins(metrics.New(rec)))
//
// Every metric of metrics.All becomes an instrument: counters are
// Float64Counter, gauges Float64Gauge, histograms Float64Histogram with the
// metric's buckets as explicit boundaries. Names follow OpenTelemetry's
// style: the Prometheus name without its "_total" and "_seconds" suffixes,
// "lomond." for "lomond_" (lomond_connect_attempts_total becomes
// lomond.connect_attempts, lomond_pong_rtt_seconds lomond.pong_rtt), with
// the unit ("s", "By" or "{count}") set on the instrument. Labels become
// attributes of the same names.
//
// Every counter and gauge data point whose attributes are known in advance
// (metrics.Metric.Series) is recorded at 0 by New, so that it is exported
// before anything happens; histograms get their first data point with
// their first observation, and lomond.rejections with the first rejection
// of each status. Several WebSockets may share a Recorder (one metrics.New
// per WebSocket): lomond.state counts the WebSockets in each state and
// lomond.send_queue_depth sums their queues.
//
// The module needs Go 1.23, as the library does, and requires the
// library's release that has package metrics; go get it:
//
//	go get github.com/lomond-go/lomond/plugins/metrics/otel
package otel

import (
	"context"
	"fmt"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/lomond-go/lomond/plugins/metrics"
)

// Recorder is a metrics.Recorder backed by OpenTelemetry instruments. Its
// methods are safe for concurrent use.
type Recorder struct {
	counters   map[*metrics.Metric]metric.Float64Counter
	gauges     map[*metrics.Metric]metric.Float64Gauge
	histograms map[*metrics.Metric]metric.Float64Histogram
}

// Name returns the OpenTelemetry instrument name of m.
func Name(m *metrics.Metric) string {
	n := strings.TrimSuffix(m.Name, "_total")
	n = strings.TrimSuffix(n, "_seconds")
	return "lomond." + strings.TrimPrefix(n, "lomond_")
}

func unit(m *metrics.Metric) string {
	switch m.Unit {
	case "seconds":
		return "s"
	case "bytes":
		return "By"
	}
	return "{count}"
}

// New creates an instrument for every lomond metric with meter and returns
// a Recorder for them.
func New(meter metric.Meter) (*Recorder, error) {
	r := &Recorder{
		counters:   map[*metrics.Metric]metric.Float64Counter{},
		gauges:     map[*metrics.Metric]metric.Float64Gauge{},
		histograms: map[*metrics.Metric]metric.Float64Histogram{},
	}
	for _, m := range metrics.All() {
		var err error
		switch m.Kind {
		case metrics.Counter:
			r.counters[m], err = meter.Float64Counter(Name(m), metric.WithDescription(m.Help), metric.WithUnit(unit(m)))
		case metrics.Gauge:
			r.gauges[m], err = meter.Float64Gauge(Name(m), metric.WithDescription(m.Help), metric.WithUnit(unit(m)))
		case metrics.Histogram:
			r.histograms[m], err = meter.Float64Histogram(Name(m), metric.WithDescription(m.Help), metric.WithUnit(unit(m)),
				metric.WithExplicitBucketBoundaries(m.Buckets...))
		default:
			err = fmt.Errorf("unknown kind %d", m.Kind)
		}
		if err != nil {
			return nil, fmt.Errorf("lomond otel: instrument %s: %w", Name(m), err)
		}
	}
	// Every series known in advance exists from the start, at 0 (a
	// histogram cannot be given a data point without an observation).
	ctx := context.Background()
	for _, m := range metrics.All() {
		for _, labels := range m.Series() {
			switch m.Kind {
			case metrics.Counter:
				r.counters[m].Add(ctx, 0, attrs(m, labels))
			case metrics.Gauge:
				r.gauges[m].Record(ctx, 0, attrs(m, labels))
			}
		}
	}
	return r, nil
}

// attrs turns label values into attributes, for m's label names.
func attrs(m *metrics.Metric, labels []string) metric.MeasurementOption {
	kv := make([]attribute.KeyValue, 0, len(labels))
	for i, v := range labels {
		if i < len(m.Labels) {
			kv = append(kv, attribute.String(m.Labels[i], v))
		}
	}
	return metric.WithAttributes(kv...)
}

// Add adds delta to a counter.
func (r *Recorder) Add(m *metrics.Metric, delta float64, labels ...string) {
	if c, ok := r.counters[m]; ok {
		c.Add(context.Background(), delta, attrs(m, labels))
	}
}

// Set records a gauge's value.
func (r *Recorder) Set(m *metrics.Metric, value float64, labels ...string) {
	if g, ok := r.gauges[m]; ok {
		g.Record(context.Background(), value, attrs(m, labels))
	}
}

// Observe records an observation of a histogram.
func (r *Recorder) Observe(m *metrics.Metric, value float64, labels ...string) {
	if h, ok := r.histograms[m]; ok {
		h.Record(context.Background(), value, attrs(m, labels))
	}
}
