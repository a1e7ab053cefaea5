// Package prometheus records lomond's metrics (package
// github.com/lomond-go/lomond/plugins/metrics) with Prometheus's
// client_golang. It is a module of its own, so that the library does not
// depend on client_golang.
//
//	rec, err := prometheus.New(prom.DefaultRegisterer)
//	...
//	ws, err := lomond.New(url, lomond.WithPlugins(metrics.New(rec)))
//
// Every metric of metrics.All is registered under its name (lomond_...),
// with its help text and labels; histograms use the metric's buckets. Every
// series whose label values are known in advance (metrics.Metric.Series)
// is there from registration, at 0: each state of lomond_state, each cause
// of lomond_connect_failures_total, the send queue's depth... Only
// lomond_rejections_total, whose label is an HTTP status, gets its series
// with the first rejection of each status.
//
// Several WebSockets may share a Recorder (one metrics.New per WebSocket):
// the counters and histograms add up, lomond_state counts the WebSockets in
// each state and lomond_send_queue_depth sums their queues. To tell them
// apart, give each a Recorder of its own with WithConstLabels.
//
// The module needs Go 1.23, as the library does, and requires the
// library's release that has package metrics; go get it:
//
//	go get github.com/lomond-go/lomond/plugins/metrics/prometheus
package prometheus

import (
	"fmt"

	prom "github.com/prometheus/client_golang/prometheus"

	"github.com/lomond-go/lomond/plugins/metrics"
)

// Recorder is a metrics.Recorder backed by Prometheus collectors. Its
// methods are safe for concurrent use.
type Recorder struct {
	counters   map[*metrics.Metric]*prom.CounterVec
	gauges     map[*metrics.Metric]*prom.GaugeVec
	histograms map[*metrics.Metric]*prom.HistogramVec
}

// Option configures New.
type Option func(*options)

type options struct {
	constLabels prom.Labels
}

// WithConstLabels adds labels with fixed values to every metric, for
// instance {"client": "feed"} to tell several WebSockets apart (each
// registered in its own registry, or wrapped with prom.WrapRegistererWith).
func WithConstLabels(labels prom.Labels) Option {
	return func(o *options) { o.constLabels = labels }
}

// New registers every lomond metric with reg and returns a Recorder for
// them. Registering twice in one registry is an error (from reg.Register).
func New(reg prom.Registerer, opts ...Option) (*Recorder, error) {
	var o options
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	r := &Recorder{
		counters:   map[*metrics.Metric]*prom.CounterVec{},
		gauges:     map[*metrics.Metric]*prom.GaugeVec{},
		histograms: map[*metrics.Metric]*prom.HistogramVec{},
	}
	for _, m := range metrics.All() {
		var c prom.Collector
		// Every series known in advance exists from the start, at 0, so
		// that rates and alerts work before the first event.
		switch m.Kind {
		case metrics.Counter:
			v := prom.NewCounterVec(prom.CounterOpts{Name: m.Name, Help: m.Help, ConstLabels: o.constLabels}, m.Labels)
			for _, labels := range m.Series() {
				v.WithLabelValues(labels...)
			}
			r.counters[m], c = v, v
		case metrics.Gauge:
			v := prom.NewGaugeVec(prom.GaugeOpts{Name: m.Name, Help: m.Help, ConstLabels: o.constLabels}, m.Labels)
			for _, labels := range m.Series() {
				v.WithLabelValues(labels...)
			}
			r.gauges[m], c = v, v
		case metrics.Histogram:
			v := prom.NewHistogramVec(prom.HistogramOpts{Name: m.Name, Help: m.Help, ConstLabels: o.constLabels, Buckets: m.Buckets}, m.Labels)
			for _, labels := range m.Series() {
				v.WithLabelValues(labels...)
			}
			r.histograms[m], c = v, v
		default:
			return nil, fmt.Errorf("lomond prometheus: metric %s has unknown kind %d", m.Name, m.Kind)
		}
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("lomond prometheus: registering %s: %w", m.Name, err)
		}
	}
	return r, nil
}

// Add adds delta to a counter.
func (r *Recorder) Add(m *metrics.Metric, delta float64, labels ...string) {
	if v, ok := r.counters[m]; ok {
		v.WithLabelValues(labels...).Add(delta)
	}
}

// Set sets a gauge.
func (r *Recorder) Set(m *metrics.Metric, value float64, labels ...string) {
	if v, ok := r.gauges[m]; ok {
		v.WithLabelValues(labels...).Set(value)
	}
}

// Observe records an observation of a histogram.
func (r *Recorder) Observe(m *metrics.Metric, value float64, labels ...string) {
	if v, ok := r.histograms[m]; ok {
		v.WithLabelValues(labels...).Observe(value)
	}
}
