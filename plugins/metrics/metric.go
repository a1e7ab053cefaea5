package metrics

// Kind is how a metric's values combine.
type Kind int

// Kinds.
const (
	// Counter only goes up: Recorder.Add.
	Counter Kind = iota
	// Gauge is set to the current value: Recorder.Set.
	Gauge
	// Histogram records a distribution of observations: Recorder.Observe.
	Histogram
)

// Metric describes one metric the plugin records. Backends that must
// declare metrics ahead (Prometheus, OpenTelemetry) read All.
type Metric struct {
	// Name is the metric's name in Prometheus style (lomond_..., counters
	// ending in _total, units as a suffix).
	Name string
	// Help says what is counted.
	Help string
	// Kind is Counter, Gauge or Histogram.
	Kind Kind
	// Unit is "seconds", "bytes" or "" (a count).
	Unit string
	// Labels are the label names; Recorder calls pass their values in
	// this order.
	Labels []string
	// Values lists, for each label, the values it can take when they are
	// known in advance (Values[i] for Labels[i]), or nil for an open set
	// (an HTTP status). Backends create the series of Series at
	// registration, so that they exist, at 0, before anything happens.
	Values [][]string
	// Buckets are suggested histogram bucket upper bounds, in Unit.
	Buckets []float64
}

// Series returns every label-value combination of m known in advance, in
// the order of Labels: one empty combination for a metric without labels,
// none when a label's values are an open set.
func (m *Metric) Series() [][]string {
	series := [][]string{{}}
	for i := range m.Labels {
		if i >= len(m.Values) || len(m.Values[i]) == 0 {
			return nil
		}
		var next [][]string
		for _, s := range series {
			for _, v := range m.Values[i] {
				next = append(next, append(s[:len(s):len(s)], v))
			}
		}
		series = next
	}
	return series
}

// Label values known in advance.
var (
	connectCauses = []string{"dns", "refused", "reset", "timeout", "tls", "proxy", "cancelled", "handshake", "handshake_timeout", "other"}
	typesIn       = []string{"text", "binary", "ping", "pong"}
	typesOut      = []string{"text", "binary", "ping", "pong", "close"}
	booleans      = []string{"true", "false"}
	protocolCodes = []string{"1002", "1007", "1009"}
	dropReasons   = []string{"oldest", "full"}
	states        = []string{"idle", "connecting", "handshake", "ready", "closing", "closed"}
)

// The metrics. Label values are short, bounded sets: type is "text",
// "binary", "ping", "pong" or "close"; cause is one of the ConnectFailure
// causes; status is an HTTP status code; code is a close code (1002, 1007
// or 1009); state is a lomond.State name; reason is "oldest" or "full".
// Every series of a known label value exists from registration (Values);
// those of rejections appear with their first status.
//
// The gauges (State and QueueDepth) are summed over the WebSockets whose
// plugins share a Recorder: State counts the WebSockets in each state,
// QueueDepth the messages waiting in all their queues.
var (
	ConnectAttempts = &Metric{Name: "lomond_connect_attempts_total", Kind: Counter,
		Help: "Connection attempts (Connecting events)."}
	ConnectFailures = &Metric{Name: "lomond_connect_failures_total", Kind: Counter, Labels: []string{"cause"}, Values: [][]string{connectCauses},
		Help: "Connection attempts that failed before the upgrade was answered, by cause: dns, refused, reset, timeout, tls, proxy, cancelled, handshake, handshake_timeout, other."}
	Rejections = &Metric{Name: "lomond_rejections_total", Kind: Counter, Labels: []string{"status"},
		Help: "Upgrades the server rejected, by HTTP status (0 for a 101 response that failed its checks)."}
	Reconnects = &Metric{Name: "lomond_reconnects_total", Kind: Counter,
		Help: "Connection attempts made after a back-off (Persist)."}
	Sessions = &Metric{Name: "lomond_sessions_total", Kind: Counter,
		Help: "Sessions that became ready (Ready events)."}
	SessionDuration = &Metric{Name: "lomond_session_duration_seconds", Kind: Histogram, Unit: "seconds",
		Help:    "How long sessions stayed up, from Ready to Disconnected.",
		Buckets: []float64{1, 10, 60, 300, 1800, 3600, 6 * 3600, 24 * 3600, 7 * 24 * 3600}}
	Disconnects = &Metric{Name: "lomond_disconnects_total", Kind: Counter, Labels: []string{"graceful"}, Values: [][]string{booleans},
		Help: "Sessions that ended after Connected, by whether a close handshake (or an orderly rejection) ended them."}
	MessagesReceived = &Metric{Name: "lomond_messages_received_total", Kind: Counter, Labels: []string{"type"}, Values: [][]string{typesIn},
		Help: "Messages and control frames received, by type (text, binary, ping, pong)."}
	BytesReceived = &Metric{Name: "lomond_received_bytes_total", Kind: Counter, Unit: "bytes", Labels: []string{"type"}, Values: [][]string{typesIn},
		Help: "Payload bytes received, by type."}
	MessagesSent = &Metric{Name: "lomond_messages_sent_total", Kind: Counter, Labels: []string{"type"}, Values: [][]string{typesOut},
		Help: "Messages and control frames written, by type (text, binary, ping, pong, close), the library's own included."}
	BytesSent = &Metric{Name: "lomond_sent_bytes_total", Kind: Counter, Unit: "bytes", Labels: []string{"type"}, Values: [][]string{typesOut},
		Help: "Payload bytes written, by type."}
	SendFailures = &Metric{Name: "lomond_send_failures_total", Kind: Counter, Labels: []string{"type"}, Values: [][]string{typesOut},
		Help: "Sends that failed (not connected, closing, a full queue, a transport error), by type."}
	ProtocolErrors = &Metric{Name: "lomond_protocol_errors_total", Kind: Counter, Labels: []string{"code"}, Values: [][]string{protocolCodes},
		Help: "Protocol violations by the server, by the close code sent for them."}
	Unresponsive = &Metric{Name: "lomond_unresponsive_total", Kind: Counter,
		Help: "Sessions ended because no pong came within the ping timeout."}
	PongRTT = &Metric{Name: "lomond_pong_rtt_seconds", Kind: Histogram, Unit: "seconds",
		Help:    "Round-trip time of the automatic pings.",
		Buckets: []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}}
	BackOffDelay = &Metric{Name: "lomond_backoff_delay_seconds", Kind: Histogram, Unit: "seconds",
		Help:    "Waits before reconnecting (BackOff events).",
		Buckets: []float64{0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60, 120, 300}}
	QueueDepth = &Metric{Name: "lomond_send_queue_depth", Kind: Gauge,
		Help: "Messages waiting in the send queues of the WebSockets sharing the Recorder."}
	QueueDropped = &Metric{Name: "lomond_send_queue_dropped_total", Kind: Counter, Labels: []string{"reason"}, Values: [][]string{dropReasons},
		Help: "Messages the send queue lost: the oldest dropped for a newer one (oldest), or a new one refused (full)."}
	State = &Metric{Name: "lomond_state", Kind: Gauge, Labels: []string{"state"}, Values: [][]string{states},
		Help: "WebSockets sharing the Recorder in each state (idle, connecting, handshake, ready, closing, closed): with one WebSocket, 1 for its current state and 0 for the others."}
)

// All returns every metric the plugin records.
func All() []*Metric {
	return []*Metric{
		ConnectAttempts, ConnectFailures, Rejections, Reconnects, Sessions, SessionDuration, Disconnects,
		MessagesReceived, BytesReceived, MessagesSent, BytesSent, SendFailures, ProtocolErrors,
		Unresponsive, PongRTT, BackOffDelay, QueueDepth, QueueDropped, State,
	}
}
