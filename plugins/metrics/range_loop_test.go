package metrics_test

import (
	"context"
	"iter"
	"sync"
	"testing"

	"github.com/lomond-go/lomond"
	"github.com/lomond-go/lomond/events"
	"github.com/lomond-go/lomond/internal/wstest"
	"github.com/lomond-go/lomond/plugins/metrics"
)

// stateGauge is a Recorder that keeps the State gauge only.
type stateGauge struct {
	mu     sync.Mutex
	states map[string]float64
}

func (g *stateGauge) Add(*metrics.Metric, float64, ...string)     {}
func (g *stateGauge) Observe(*metrics.Metric, float64, ...string) {}

func (g *stateGauge) Set(m *metrics.Metric, v float64, labels ...string) {
	if m != metrics.State {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.states == nil {
		g.states = map[string]float64{}
	}
	g.states[labels[0]] = v
}

func (g *stateGauge) get(state string) float64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.states[state]
}

// TestStateAfterARangeLoopIsLeft checks that the State gauge follows the
// session to its end when the range loop over its events is left early.
func TestStateAfterARangeLoopIsLeft(t *testing.T) {
	for _, loop := range []struct {
		name   string
		events func(ws *lomond.WebSocket) iter.Seq[events.Event]
	}{
		{"Events", func(ws *lomond.WebSocket) iter.Seq[events.Event] { return ws.Events(context.Background()) }},
		{"PersistEvents", func(ws *lomond.WebSocket) iter.Seq[events.Event] {
			return ws.PersistEvents(context.Background())
		}},
	} {
		t.Run("IsNotReadyAfterBreakOnReadyIn"+loop.name, func(t *testing.T) {
			srv := wstest.NewServer(t, func(c *wstest.Conn) {
				if _, err := c.Handshake(); err != nil {
					return
				}
				if code, reason, err := c.ExpectClose(); err == nil {
					_ = c.WriteFrame(wstest.Close(code, reason))
				}
			})
			g := &stateGauge{}
			ws, err := lomond.New(srv.URL(), lomond.WithoutProxy(), lomond.WithPlugins(metrics.New(g)))
			if err != nil {
				t.Fatal(err)
			}
			for ev := range loop.events(ws) {
				if ev.Name() == "ready" {
					break
				}
			}
			if g.get("ready") != 0 || g.get("idle") != 1 {
				t.Errorf("State gauge after the loop was left: ready=%v idle=%v, want ready=0 idle=1", g.get("ready"), g.get("idle"))
			}
		})
	}
}
