package prometheus_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	prom "github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/goleak"

	"github.com/lomond-go/lomond/internal/plugintest"
	"github.com/lomond-go/lomond/plugins/metrics"
	"github.com/lomond-go/lomond/plugins/metrics/prometheus"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestScenario runs real sessions (plugintest) with the metrics plugin
// recording into a Prometheus registry, and reads the figures back with
// client_golang's testutil.
func TestScenario(t *testing.T) {
	reg := prom.NewPedanticRegistry()
	rec, err := prometheus.New(reg)
	if err != nil {
		t.Fatal(err)
	}
	plugintest.Run(t, func() any { return metrics.New(rec) })
	w := plugintest.Want

	// Registered metrics are valid for a pedantic registry's Gather.
	if _, err := reg.Gather(); err != nil {
		t.Fatalf("Gather: %v", err)
	}

	// Counters without labels, and histograms' counts, in the exposition
	// format.
	want := `
# HELP lomond_connect_attempts_total Connection attempts (Connecting events).
# TYPE lomond_connect_attempts_total counter
lomond_connect_attempts_total 5
# HELP lomond_reconnects_total Connection attempts made after a back-off (Persist).
# TYPE lomond_reconnects_total counter
lomond_reconnects_total 3
# HELP lomond_sessions_total Sessions that became ready (Ready events).
# TYPE lomond_sessions_total counter
lomond_sessions_total 3
# HELP lomond_unresponsive_total Sessions ended because no pong came within the ping timeout.
# TYPE lomond_unresponsive_total counter
lomond_unresponsive_total 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
		"lomond_connect_attempts_total", "lomond_reconnects_total", "lomond_sessions_total", "lomond_unresponsive_total"); err != nil {
		t.Error(err)
	}

	// value reads one series from the registry: a counter's or a gauge's
	// value, a histogram's count.
	value := func(name string, labels ...string) float64 {
		t.Helper()
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() != name {
				continue
			}
			for _, m := range mf.GetMetric() {
				if !labelsAre(m.GetLabel(), labels) {
					continue
				}
				switch {
				case m.Counter != nil:
					return m.Counter.GetValue()
				case m.Gauge != nil:
					return m.Gauge.GetValue()
				case m.Histogram != nil:
					return float64(m.Histogram.GetSampleCount())
				}
			}
		}
		return 0
	}
	exact := []struct {
		name   string
		labels []string
		want   float64
	}{
		{"lomond_rejections_total", []string{"503"}, w.Rejections503},
		{"lomond_connect_failures_total", []string{"refused"}, w.RefusedFailures},
		{"lomond_disconnects_total", []string{"true"}, w.GracefulDisconnects},
		{"lomond_disconnects_total", []string{"false"}, w.AbruptDisconnects},
		{"lomond_session_duration_seconds", nil, w.Sessions},
		{"lomond_backoff_delay_seconds", nil, w.BackOffs},
		{"lomond_messages_received_total", []string{"text"}, w.TextsIn},
		{"lomond_received_bytes_total", []string{"binary"}, w.BinaryBytesIn},
		{"lomond_messages_sent_total", []string{"text"}, w.TextsOut},
		{"lomond_sent_bytes_total", []string{"text"}, w.TextBytesOut},
		{"lomond_send_queue_dropped_total", []string{"oldest"}, w.QueueDroppedOldest},
		{"lomond_protocol_errors_total", []string{"1007"}, w.ProtocolErrors1007},
		{"lomond_send_queue_depth", nil, 0},
		{"lomond_state", []string{"idle"}, 2}, // both WebSockets of the scenario, each stopped
		{"lomond_state", []string{"ready"}, 0},
	}
	for _, c := range exact {
		if got := value(c.name, c.labels...); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	if got := value("lomond_pong_rtt_seconds"); got < w.MinPongRTTs {
		t.Errorf("pong RTT observations = %v, want at least %v", got, w.MinPongRTTs)
	}
	if n := testutil.CollectAndCount(reg, "lomond_messages_sent_total"); n < 4 {
		t.Errorf("lomond_messages_sent_total has %d series, want text, ping, pong and close at least", n)
	}
}

// labelsAre reports whether a series has exactly the label values values
// (lomond's metrics have at most one label).
func labelsAre(got []*dto.LabelPair, values []string) bool {
	if len(got) != len(values) {
		return false
	}
	for i, lp := range got {
		if lp.GetValue() != values[i] {
			return false
		}
	}
	return true
}

func TestRegisteringTwiceIsAnError(t *testing.T) {
	reg := prom.NewRegistry()
	if _, err := prometheus.New(reg); err != nil {
		t.Fatal(err)
	}
	if _, err := prometheus.New(reg); err == nil || !strings.HasPrefix(err.Error(), "lomond prometheus: registering ") {
		t.Errorf("second New = %v, want a registration error", err)
	}
	// Const labels tell two WebSockets apart in one registry.
	reg = prom.NewRegistry()
	for _, name := range []string{"a", "b"} {
		if _, err := prometheus.New(reg, prometheus.WithConstLabels(prom.Labels{"client": name})); err != nil {
			t.Fatalf("New for client %s: %v", name, err)
		}
	}
}

// scrape serves reg with promhttp on 127.0.0.1 and reads what a Prometheus
// server would: the text exposition format, as a map from each sample's
// name and labels ("lomond_state{state=\"idle\"}") to its value.
func scrape(t *testing.T, reg *prom.Registry) map[string]float64 {
	t.Helper()
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.HTTPErrorOnError}))
	defer srv.Close()
	req, err := http.NewRequest(http.MethodGet, srv.URL+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "text/plain; version=0.0.4")
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape: %s, %v\n%s", resp.Status, err, body)
	}
	samples := map[string]float64{}
	for _, line := range strings.Split(string(body), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if i < 0 || err != nil {
			t.Fatalf("scrape: cannot read %q", line)
		}
		samples[line[:i]] = v
	}
	return samples
}

// sample names one series of m as the exposition format writes it.
func sample(m *metrics.Metric, suffix string, labels []string) string {
	var b strings.Builder
	b.WriteString(m.Name + suffix)
	if len(labels) > 0 {
		b.WriteByte('{')
		for i, v := range labels {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, "%s=%q", m.Labels[i], v)
		}
		b.WriteByte('}')
	}
	return b.String()
}

// TestSeriesFromRegistration scrapes a registry before any WebSocket ran:
// every series of a known label set is there, at 0 (histograms with a
// count of 0), so that rates and alerts work from the start.
func TestSeriesFromRegistration(t *testing.T) {
	reg := prom.NewPedanticRegistry()
	if _, err := prometheus.New(reg); err != nil {
		t.Fatal(err)
	}
	got := scrape(t, reg)
	n := 0
	for _, m := range metrics.All() {
		suffix := ""
		if m.Kind == metrics.Histogram {
			suffix = "_count"
		}
		for _, labels := range m.Series() {
			name := sample(m, suffix, labels)
			if v, ok := got[name]; !ok || v != 0 {
				t.Errorf("%s: %v (present: %v), want 0 from registration", name, v, ok)
			}
			n++
		}
	}
	for _, name := range []string{
		`lomond_state{state="closing"}`, `lomond_state{state="closed"}`, `lomond_send_queue_depth`,
		`lomond_connect_failures_total{cause="tls"}`, `lomond_unresponsive_total`, `lomond_reconnects_total`,
		`lomond_messages_sent_total{type="close"}`, `lomond_protocol_errors_total{code="1009"}`,
		`lomond_send_queue_dropped_total{reason="full"}`, `lomond_pong_rtt_seconds_count`,
	} {
		if v, ok := got[name]; !ok || v != 0 {
			t.Errorf("%s: %v (present: %v), want 0", name, v, ok)
		}
	}
	if n < 50 {
		t.Errorf("only %d series checked", n)
	}
}

// TestSharedRecorderScrape: WebSockets sharing one Recorder scrape as the
// number of them in each state and the sum of their queues.
func TestSharedRecorderScrape(t *testing.T) {
	reg := prom.NewPedanticRegistry()
	rec, err := prometheus.New(reg)
	if err != nil {
		t.Fatal(err)
	}
	plugintest.Shared(t, func() any { return metrics.New(rec) }, func(stage string, want plugintest.Gauges) {
		got := scrape(t, reg)
		for _, s := range plugintest.AllStates {
			name := sample(metrics.State, "", []string{s})
			if got[name] != want.States[s] {
				t.Errorf("%s: %s = %v, want %v", stage, name, got[name], want.States[s])
			}
		}
		if v := got["lomond_send_queue_depth"]; v != want.QueueDepth {
			t.Errorf("%s: lomond_send_queue_depth = %v, want %v", stage, v, want.QueueDepth)
		}
	})
}
