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

func benchDeliverLoop(t *table, ev events.Event, n int) time.Duration {
	start := time.Now()
	for i := 0; i < n; i++ {
		t.deliver(nil, ev)
	}
	return time.Since(start)
}

func BenchmarkDeliver(b *testing.B) {
	var n int
	single, err := discover(benchApp{n: &n})
	if err != nil {
		b.Fatal(err)
	}
	ev := &events.Text{Text: "x"}
	cases := []struct {
		name string
		h    EventHandler
	}{
		{"single", benchApp{n: &n}},
		{"text-plugin+app", Compose(benchTextPlugin{n: &n}, benchApp{n: &n})},
		{"observer+app", Compose(benchObserver{n: &n}, benchApp{n: &n})},
		{"4-plugins+app", Compose(benchObserver{n: &n}, benchTextPlugin{n: &n}, benchObserver{n: &n}, benchTextPlugin{n: &n}, benchApp{n: &n})},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			tb, err := discover(c.h)
			if err != nil {
				b.Fatal(err)
			}
			base := benchDeliverLoop(single, ev, b.N)
			b.ResetTimer()
			d := benchDeliverLoop(tb, ev, b.N)
			b.StopTimer()
			if base > 0 {
				b.ReportMetric(float64(d)/float64(base), "x-single")
			}
		})
	}
}
