package metrics_test

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"expvar"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/lomond-go/lomond"
	"github.com/lomond-go/lomond/internal/plugintest"
	"github.com/lomond-go/lomond/plugins/metrics"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var expvarNames atomic.Int32

// newExpvar publishes a fresh map (expvar names live as long as the process).
func newExpvar(t *testing.T) (*metrics.Expvar, string) {
	t.Helper()
	name := fmt.Sprintf("lomond_test_%d", expvarNames.Add(1))
	e, err := metrics.NewExpvar(name)
	if err != nil {
		t.Fatal(err)
	}
	return e, name
}

// TestScenarioThroughExpvar runs the scenario (a rejection, three sessions
// ending in a close, a protocol error and a ping timeout, a queue that
// drops, a refused connection) and checks every figure in expvar.
func TestScenarioThroughExpvar(t *testing.T) {
	e, name := newExpvar(t)
	plugintest.Run(t, func() any { return metrics.New(e) })
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
		{metrics.BytesReceived, []string{"text"}, w.TextBytesIn},
		{metrics.MessagesReceived, []string{"binary"}, w.BinariesIn},
		{metrics.BytesReceived, []string{"binary"}, w.BinaryBytesIn},
		{metrics.MessagesReceived, []string{"ping"}, w.PingsIn},
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
		if got := e.Value(c.m, c.labels...); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.m.Name, c.labels, got, c.want)
		}
	}
	atLeast := []struct {
		m      *metrics.Metric
		labels []string
		want   float64
	}{
		{metrics.PongRTT, nil, w.MinPongRTTs},
		{metrics.MessagesSent, []string{"pong"}, w.MinPongsOut},
		{metrics.MessagesSent, []string{"ping"}, w.MinPingsOut},
		{metrics.MessagesSent, []string{"close"}, w.MinClosesOut},
	}
	for _, c := range atLeast {
		if got := e.Value(c.m, c.labels...); got < c.want {
			t.Errorf("%s%v = %v, want at least %v", c.m.Name, c.labels, got, c.want)
		}
	}
	// What expvar serves is JSON with an entry per recorded metric.
	var doc map[string]any
	if err := json.Unmarshal([]byte(expvar.Get(name).String()), &doc); err != nil {
		t.Fatalf("expvar output is not JSON: %v", err)
	}
	if _, ok := doc[metrics.ConnectAttempts.Name]; !ok {
		t.Errorf("expvar output lacks %s: %v", metrics.ConnectAttempts.Name, doc)
	}
	if h, ok := doc[metrics.SessionDuration.Name].(map[string]any); !ok || h["count"] != w.Sessions {
		t.Errorf("session duration histogram = %v, want count %v and a sum", doc[metrics.SessionDuration.Name], w.Sessions)
	}
}

func TestNewExpvarRejectsATakenName(t *testing.T) {
	_, name := newExpvar(t)
	if _, err := metrics.NewExpvar(name); !errors.Is(err, metrics.ErrPublished) {
		t.Errorf("NewExpvar(taken) = %v, want ErrPublished", err)
	}
	if _, err := metrics.NewExpvar(""); err == nil {
		t.Error("NewExpvar(\"\") succeeded")
	}
}

// TestAllIsConsistent: every metric is listed once, with a name, help,
// and buckets for histograms only.
func TestAllIsConsistent(t *testing.T) {
	seen := map[string]bool{}
	for _, m := range metrics.All() {
		if m.Name == "" || m.Help == "" || seen[m.Name] {
			t.Errorf("metric %+v: empty or duplicate name, or no help", m)
		}
		seen[m.Name] = true
		if (m.Kind == metrics.Histogram) != (len(m.Buckets) > 0) {
			t.Errorf("%s: buckets %v for kind %v", m.Name, m.Buckets, m.Kind)
		}
	}
}

// TestConnectFailureCauses classifies real dial errors.
func TestConnectFailureCauses(t *testing.T) {
	e, _ := newExpvar(t)
	fail := func(dial lomond.DialFunc, url string, opts ...lomond.Option) {
		t.Helper()
		opts = append(opts, lomond.WithoutProxy(), lomond.WithPlugins(metrics.New(e)), lomond.WithDialer(dial))
		ws, err := lomond.New(url, opts...)
		if err != nil {
			t.Fatal(err)
		}
		if err := ws.Run(context.Background(), lomond.BaseHandler{}); err == nil {
			t.Fatal("Run succeeded")
		}
	}
	dialErr := func(err error) lomond.DialFunc {
		return func(context.Context, string, string) (net.Conn, error) { return nil, err }
	}
	fail(dialErr(&net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}), "ws://127.0.0.1:1/")
	fail(dialErr(&net.DNSError{Err: "no such host", Name: "nowhere.invalid", IsNotFound: true}), "ws://nowhere.invalid/")
	fail(dialErr(&net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNRESET}), "ws://127.0.0.1:1/")
	fail(dialErr(context.DeadlineExceeded), "ws://127.0.0.1:1/")
	fail(dialErr(errors.New("something else")), "ws://127.0.0.1:1/")
	// A TLS handshake against a server that speaks no TLS.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := ln.Accept()
		if err == nil {
			_, _ = c.Write([]byte("HTTP/1.1 400 Bad Request\r\n\r\n"))
			c.Close()
		}
	}()
	fail((&net.Dialer{}).DialContext, "wss://"+ln.Addr().String()+"/", lomond.WithTLSConfig(&tls.Config{}))
	<-done
	for cause, want := range map[string]float64{"refused": 1, "dns": 1, "reset": 1, "timeout": 1, "other": 1, "tls": 1} {
		if got := e.Value(metrics.ConnectFailures, cause); got != want {
			t.Errorf("connect failures {cause=%q} = %v, want %v", cause, got, want)
		}
	}
}

// TestSharedRecorderGauges: the gauges of plugins sharing one Recorder are
// sums over their WebSockets (expvar).
func TestSharedRecorderGauges(t *testing.T) {
	e, _ := newExpvar(t)
	plugintest.Shared(t, func() any { return metrics.New(e) }, func(stage string, want plugintest.Gauges) {
		for _, s := range plugintest.AllStates {
			if got := e.Value(metrics.State, s); got != want.States[s] {
				t.Errorf("%s: lomond_state{state=%q} = %v, want %v", stage, s, got, want.States[s])
			}
		}
		if got := e.Value(metrics.QueueDepth); got != want.QueueDepth {
			t.Errorf("%s: lomond_send_queue_depth = %v, want %v", stage, got, want.QueueDepth)
		}
	})
}

// TestSeriesFromRegistration: every series of a known label value is in
// the published JSON, at 0, before any WebSocket runs; a label with an
// open set of values (HTTP status) starts as an empty map.
func TestSeriesFromRegistration(t *testing.T) {
	_, name := newExpvar(t)
	var doc map[string]json.RawMessage
	if err := json.Unmarshal([]byte(expvar.Get(name).String()), &doc); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, m := range metrics.All() {
		raw, ok := doc[m.Name]
		if !ok {
			t.Errorf("%s is missing", m.Name)
			continue
		}
		if len(m.Labels) == 0 {
			checkZero(t, m, raw)
			n++
			continue
		}
		var byLabel map[string]json.RawMessage
		if err := json.Unmarshal(raw, &byLabel); err != nil {
			t.Fatalf("%s: %v", m.Name, err)
		}
		if len(byLabel) != len(m.Series()) {
			t.Errorf("%s has %d series, want %d: %s", m.Name, len(byLabel), len(m.Series()), raw)
		}
		for _, labels := range m.Series() {
			checkZero(t, m, byLabel[strings.Join(labels, ",")])
			n++
		}
	}
	// The label sets the docs promise.
	for m, want := range map[*metrics.Metric]int{
		metrics.State: 6, metrics.ConnectFailures: 10, metrics.MessagesSent: 5, metrics.MessagesReceived: 4,
		metrics.ProtocolErrors: 3, metrics.QueueDropped: 2, metrics.Disconnects: 2, metrics.Rejections: 0,
		metrics.QueueDepth: 1, metrics.PongRTT: 1,
	} {
		if got := len(m.Series()); got != want {
			t.Errorf("%s: %d series known in advance, want %d", m.Name, got, want)
		}
	}
	if n < 50 {
		t.Errorf("only %d series checked", n)
	}
}

// checkZero fails unless raw is a 0 (a counter or a gauge) or an empty
// histogram.
func checkZero(t *testing.T, m *metrics.Metric, raw json.RawMessage) {
	t.Helper()
	if m.Kind == metrics.Histogram {
		var h struct{ Count, Sum *float64 }
		if err := json.Unmarshal(raw, &h); err != nil || h.Count == nil || *h.Count != 0 || h.Sum == nil || *h.Sum != 0 {
			t.Errorf("%s: %s, want {count: 0, sum: 0}", m.Name, raw)
		}
		return
	}
	if string(raw) != "0" {
		t.Errorf("%s: %q, want 0", m.Name, raw)
	}
}

func TestSeriesCombinations(t *testing.T) {
	m := &metrics.Metric{Labels: []string{"a", "b"}, Values: [][]string{{"1", "2"}, {"x", "y", "z"}}}
	got := fmt.Sprint(m.Series())
	if want := "[[1 x] [1 y] [1 z] [2 x] [2 y] [2 z]]"; got != want {
		t.Errorf("Series() = %s, want %s", got, want)
	}
	m.Values[1] = nil
	if s := m.Series(); s != nil {
		t.Errorf("Series() with an open label = %v, want none", s)
	}
	if s := (&metrics.Metric{}).Series(); len(s) != 1 || len(s[0]) != 0 {
		t.Errorf("Series() without labels = %v, want one empty combination", s)
	}
}
