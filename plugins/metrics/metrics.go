// Package metrics is lomond's metrics plugin: it counts what happens to a
// WebSocket (connection attempts, failures by cause, rejections by status,
// reconnects, sessions and their length, messages and bytes in and out by
// type, send failures, protocol errors by close code, unresponsive
// servers, pong round trips, back-off delays, the send queue's depth and
// drops, the current state) and hands the figures to a Recorder.
//
//	rec, err := metrics.NewExpvar("lomond")
//	...
//	ws, err := lomond.New(url, lomond.WithPlugins(metrics.New(rec)))
//
// A Recorder is three methods, so any backend can implement it: Expvar, in
// this package, publishes with the standard library's expvar; the modules
// github.com/lomond-go/lomond/plugins/metrics/prometheus and
// github.com/lomond-go/lomond/plugins/metrics/otel adapt Prometheus's
// client_golang and OpenTelemetry (separate modules, so that the library
// does not depend on them). All lists the metrics, with the names, labels
// and buckets a backend registers.
package metrics

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"reflect"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/lomond-go/lomond"
	"github.com/lomond-go/lomond/events"
)

// Recorder receives the figures. labels are the values of m.Labels, in
// order. Its methods are called from several goroutines (events on the
// session's, sends on the sender's) and must be safe for concurrent use and
// quick.
type Recorder interface {
	// Add adds delta (> 0) to a Counter.
	Add(m *Metric, delta float64, labels ...string)
	// Set sets a Gauge.
	Set(m *Metric, value float64, labels ...string)
	// Observe records one observation of a Histogram.
	Observe(m *Metric, value float64, labels ...string)
}

// Plugin records a WebSocket's metrics. It implements lomond.Observer and
// lomond.SendObserver: install it with lomond.WithPlugins (or compose it
// with lomond.Compose). Its methods are safe for concurrent use. Give each
// WebSocket its own Plugin: it follows one WebSocket's session and state.
//
// Plugins may share a Recorder. Counters and histograms then add up, and
// so do the gauges: State counts the WebSockets in each state and
// QueueDepth sums their queues (the plugins of one Recorder keep these sums
// together). To see WebSockets one by one, give each its own Recorder, with
// a label of its own (prometheus.WithConstLabels).
type Plugin struct {
	r Recorder
	g *gauges // shared by the plugins of r

	// This WebSocket's part of the gauges, guarded by g.mu.
	state string // "" before the first event
	depth int

	mu           sync.Mutex
	readyAt      time.Time
	ready        bool // the current session reached Ready
	rejected     bool // the current session was rejected
	afterBackOff bool
}

// New returns a plugin recording to r.
func New(r Recorder) *Plugin {
	return &Plugin{r: r, g: gaugesOf(r)}
}

// gauges holds the sums of the gauges of the plugins sharing a Recorder,
// which are what the Recorder is given.
type gauges struct {
	mu     sync.Mutex
	states map[string]int // WebSockets per state
	depth  int            // messages queued, over all the WebSockets
}

// shared maps each Recorder to its gauges. A Recorder is kept for the life
// of the process: there are a few per program.
var shared struct {
	mu sync.Mutex
	m  map[Recorder]*gauges
}

// gaugesOf returns the gauges of r, shared by every plugin of r. A Recorder
// that cannot be a map key (a struct value holding a slice, a map or a
// function) cannot be recognised: its plugins keep separate sums, and the
// last one to move a gauge sets it.
func gaugesOf(r Recorder) *gauges {
	g := &gauges{states: map[string]int{}}
	if r == nil || !reflect.ValueOf(r).Comparable() {
		return g
	}
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if old, ok := shared.m[r]; ok {
		return old
	}
	if shared.m == nil {
		shared.m = map[Recorder]*gauges{}
	}
	shared.m[r] = g
	return g
}

// OnEvent records ev.
func (p *Plugin) OnEvent(_ *lomond.WebSocket, ev events.Event) {
	r := p.r
	switch e := ev.(type) {
	case *events.Connecting:
		r.Add(ConnectAttempts, 1)
		p.mu.Lock()
		if p.afterBackOff {
			r.Add(Reconnects, 1)
		}
		p.afterBackOff, p.ready, p.rejected = false, false, false
		p.mu.Unlock()
		p.setState(lomond.StateConnecting)
	case *events.ConnectFail:
		r.Add(ConnectFailures, 1, connectCause(e.Err))
		p.setState(lomond.StateIdle)
	case *events.Connected:
		p.setState(lomond.StateHandshake)
	case *events.Rejected:
		r.Add(Rejections, 1, strconv.Itoa(e.StatusCode))
		p.mu.Lock()
		p.rejected = true
		p.mu.Unlock()
		p.setState(lomond.StateIdle)
	case *events.Ready:
		r.Add(Sessions, 1)
		p.mu.Lock()
		p.ready, p.readyAt = true, e.Received
		p.mu.Unlock()
		p.setState(lomond.StateReady)
	case *events.Text:
		r.Add(MessagesReceived, 1, "text")
		r.Add(BytesReceived, float64(len(e.Text)), "text")
	case *events.Binary:
		r.Add(MessagesReceived, 1, "binary")
		r.Add(BytesReceived, float64(len(e.Data)), "binary")
	case *events.Stream:
		// A message read as it arrives: counted, its bytes are not known
		// here.
		kind := "text"
		if e.Binary {
			kind = "binary"
		}
		r.Add(MessagesReceived, 1, kind)
	case *events.Ping:
		r.Add(MessagesReceived, 1, "ping")
		r.Add(BytesReceived, float64(len(e.Data)), "ping")
	case *events.Pong:
		r.Add(MessagesReceived, 1, "pong")
		r.Add(BytesReceived, float64(len(e.Data)), "pong")
		if e.RTT > 0 {
			r.Observe(PongRTT, e.RTT.Seconds())
		}
	case *events.Closing:
		p.setState(lomond.StateClosing)
	case *events.Closed:
		p.setState(lomond.StateClosed)
	case *events.Unresponsive:
		r.Add(Unresponsive, 1)
	case *events.ProtocolError:
		r.Add(ProtocolErrors, 1, strconv.Itoa(e.Code))
	case *events.Disconnected:
		p.mu.Lock()
		ready, rejected, readyAt := p.ready, p.rejected, p.readyAt
		p.ready = false
		p.mu.Unlock()
		if ready {
			r.Observe(SessionDuration, e.Received.Sub(readyAt).Seconds())
		} else if !rejected {
			// The handshake failed: a connection failure too.
			cause := "handshake"
			if errors.Is(e.Err, lomond.ErrHandshakeTimeout) {
				cause = "handshake_timeout"
			} else if errors.Is(e.Err, context.Canceled) {
				cause = "cancelled"
			}
			r.Add(ConnectFailures, 1, cause)
		}
		r.Add(Disconnects, 1, strconv.FormatBool(e.Graceful))
		p.setState(lomond.StateIdle)
	case *events.BackOff:
		r.Observe(BackOffDelay, e.Delay.Seconds())
		p.mu.Lock()
		p.afterBackOff = true
		p.mu.Unlock()
	}
}

// OnSend records an outgoing message or frame.
func (p *Plugin) OnSend(ws *lomond.WebSocket, ev *events.Outbound) {
	r := p.r
	kind := ev.Kind.String()
	queue := ev.FromQueue
	switch ev.Result {
	case events.Sent:
		r.Add(MessagesSent, 1, kind)
		r.Add(BytesSent, float64(ev.Size), kind)
	case events.Failed:
		r.Add(SendFailures, 1, kind)
		if errors.Is(ev.Err, lomond.ErrQueueFull) {
			r.Add(QueueDropped, 1, "full")
			queue = true
		}
	case events.Dropped:
		r.Add(QueueDropped, 1, "oldest")
		queue = true
	case events.Queued, events.Unsent:
		queue = true
	}
	if queue {
		p.setDepth(ws.Queued())
	}
}

// setDepth records this WebSocket's queue depth and sets QueueDepth to the
// sum over the plugins of the Recorder.
func (p *Plugin) setDepth(n int) {
	g := p.g
	g.mu.Lock()
	defer g.mu.Unlock()
	g.depth += n - p.depth
	p.depth = n
	p.r.Set(QueueDepth, float64(g.depth))
}

// setState moves this WebSocket from its old state to s: the State gauge
// of each is the number of the Recorder's WebSockets in it.
func (p *Plugin) setState(s lomond.State) {
	name := s.String()
	g := p.g
	g.mu.Lock()
	defer g.mu.Unlock()
	old := p.state
	if old == name {
		return
	}
	p.state = name
	if old != "" {
		g.states[old]--
		p.r.Set(State, float64(g.states[old]), old)
	}
	g.states[name]++
	p.r.Set(State, float64(g.states[name]), name)
}

// connectCause classifies why a connection could not be made.
func connectCause(err error) string {
	var proxyErr *lomond.ProxyError
	var dnsErr *net.DNSError
	var netErr net.Error
	var certErr *tls.CertificateVerificationError
	var recordErr tls.RecordHeaderError
	var alertErr tls.AlertError
	var unknownCA x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	var invalidCert x509.CertificateInvalidError
	switch {
	case err == nil:
		return "other"
	case errors.As(err, &proxyErr):
		return "proxy"
	case errors.Is(err, context.Canceled):
		return "cancelled"
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.As(err, &dnsErr):
		return "dns"
	case errors.As(err, &certErr), errors.As(err, &recordErr), errors.As(err, &alertErr),
		errors.As(err, &unknownCA), errors.As(err, &hostErr), errors.As(err, &invalidCert):
		return "tls"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "reset"
	case errors.As(err, &netErr) && netErr.Timeout():
		return "timeout"
	}
	return "other"
}
