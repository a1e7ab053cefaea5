package lomond

import (
	"testing"
	"time"

	"github.com/lomond-go/lomond/events"
)

// The dispatch benchmarks measure what composition costs per event: the
// time to deliver one Text event through a discovered table, as ns/op and
// as a ratio to a single application handler measured in the same run
// (x-single). No I/O: this is the handler layer alone.
//
//	go test -run '^$' -bench BenchmarkDeliver -count 6 -cpu 1 .

// benchApp is an application handler: the four core methods.
type benchApp struct {
	BaseHandler
	n *int
}

func (a benchApp) OnText(*WebSocket, *events.Text) { *a.n++ }

// benchTextPlugin receives texts only (embedding BaseHandler, so that the
// benchmark also builds against a library without TextHandler).
type benchTextPlugin struct {
	BaseHandler
	n *int
}

func (p benchTextPlugin) OnText(*WebSocket, *events.Text) { *p.n++ }

// benchObserver sees every event.
type benchObserver struct{ n *int }

func (o benchObserver) OnEvent(*WebSocket, events.Event) { *o.n++ }

func benchDeliverLoop(t *table, ws *WebSocket, ev events.Event, n int) time.Duration {
	start := time.Now()
	for i := 0; i < n; i++ {
		t.deliver(ws, ev)
	}
	return time.Since(start)
}

// BenchmarkDeliver delivers one Text event per op through each shape of
// handler. Metric x-single is the time over a single application
// handler's, measured in the same run. (The table this replaced cost 2.7x a
// single handler for a plugin and the application, 5.4x for four plugins:
// docs/plugins.md.)
func BenchmarkDeliver(b *testing.B) {
	var n int
	single, err := discover(benchApp{n: &n})
	if err != nil {
		b.Fatal(err)
	}
	ev := &events.Text{Text: "x"}
	ws, err := New("ws://127.0.0.1:1/") // a WebSocket without plugins, as deliver gets it
	if err != nil {
		b.Fatal(err)
	}
	cases := []struct {
		name  string
		parts []any
	}{
		{"single", []any{benchApp{n: &n}}},
		{"text-plugin+app", []any{benchTextPlugin{n: &n}, benchApp{n: &n}}},
		{"observer+app", []any{benchObserver{n: &n}, benchApp{n: &n}}},
		{"4-plugins+app", []any{benchObserver{n: &n}, benchTextPlugin{n: &n}, benchObserver{n: &n}, benchTextPlugin{n: &n}, benchApp{n: &n}}},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			var h any = c.parts[0]
			if len(c.parts) > 1 {
				h = Compose(c.parts...)
			}
			tb, err := discover(h)
			if err != nil {
				b.Fatal(err)
			}
			// Rounds of single and composed, so that a change of load on
			// the machine weighs on both alike.
			var base, d time.Duration
			b.ResetTimer()
			for done := 0; done < b.N; {
				k := min(b.N-done, 10000)
				b.StopTimer()
				base += benchDeliverLoop(single, ws, ev, k)
				b.StartTimer()
				d += benchDeliverLoop(tb, ws, ev, k)
				done += k
			}
			b.StopTimer()
			if base > 0 {
				b.ReportMetric(float64(d)/float64(base), "x-single")
			}
		})
	}
}

// BenchmarkObserveSent is the report a send makes: with no send observer
// (the cost every send pays), and with one.
//
//	go test -run '^$' -bench BenchmarkObserveSent -benchmem .
func BenchmarkObserveSent(b *testing.B) {
	p := []byte("payload")
	b.Run("unobserved", func(b *testing.B) {
		ws, err := New("ws://127.0.0.1:1/")
		if err != nil {
			b.Fatal(err)
		}
		for i := 0; i < b.N; i++ {
			ws.observeSent(opText, p, 0, nil)
		}
	})
	b.Run("observed", func(b *testing.B) {
		var n int
		ws, err := New("ws://127.0.0.1:1/", WithPlugins(sendCounter(func(*events.Outbound) { n++ })))
		if err != nil {
			b.Fatal(err)
		}
		for i := 0; i < b.N; i++ {
			ws.observeSent(opText, p, 0, nil)
		}
	})
}
