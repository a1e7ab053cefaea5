package metrics

import (
	"errors"
	"expvar"
	"fmt"
	"strings"
	"sync"
)

// Expvar is a Recorder that publishes the metrics with the standard
// library's expvar, served as JSON by expvar.Handler (and at /debug/vars of
// http.DefaultServeMux). Everything is in one map, published under the
// name given to NewExpvar, with an entry per metric (every series known in
// advance is there from the start, at 0):
//
//   - a Counter or a Gauge without labels is a number;
//   - with labels, a map from the label values (joined by ",") to numbers;
//   - a Histogram is {"count": n, "sum": s}, or a map of those by labels.
//
// Its methods are safe for concurrent use.
type Expvar struct {
	root *expvar.Map
	mu   sync.Mutex // creating entries
}

// ErrPublished is returned by NewExpvar for a name expvar already has.
var ErrPublished = errors.New("metrics: expvar name already published")

// NewExpvar publishes a map named name and returns a Recorder writing to it.
// expvar names are global to the process: a name already published is an
// error wrapping ErrPublished.
func NewExpvar(name string) (*Expvar, error) {
	if name == "" {
		return nil, errors.New("metrics: empty expvar name")
	}
	if expvar.Get(name) != nil {
		return nil, fmt.Errorf("%w: %q", ErrPublished, name)
	}
	e := &Expvar{root: new(expvar.Map).Init()}
	// Every series known in advance is there from the start, at 0; a
	// metric whose label values are an open set starts as an empty map.
	for _, m := range All() {
		series := m.Series()
		if len(series) == 0 {
			e.slot(m, nil)
		}
		for _, labels := range series {
			if m.Kind == Histogram {
				e.histogram(m, labels)
			} else {
				e.number(m, labels)
			}
		}
	}
	expvar.Publish(name, e.root)
	return e, nil
}

// Map returns the published map.
func (e *Expvar) Map() *expvar.Map { return e.root }

// Add adds delta to a counter.
func (e *Expvar) Add(m *Metric, delta float64, labels ...string) {
	if f := e.number(m, labels); f != nil {
		f.Add(delta)
	}
}

// Set sets a gauge.
func (e *Expvar) Set(m *Metric, value float64, labels ...string) {
	if f := e.number(m, labels); f != nil {
		f.Set(value)
	}
}

// Observe counts an observation of a histogram and adds it to its sum.
func (e *Expvar) Observe(m *Metric, value float64, labels ...string) {
	h := e.histogram(m, labels)
	h.Add("count", 1)
	h.AddFloat("sum", value)
}

// Value returns the current value of a counter or a gauge, or the count of
// a histogram, for the given label values (0 if nothing was recorded).
func (e *Expvar) Value(m *Metric, labels ...string) float64 {
	v := e.root.Get(m.Name)
	if len(m.Labels) > 0 {
		mm, ok := v.(*expvar.Map)
		if !ok {
			return 0
		}
		v = mm.Get(strings.Join(labels, ","))
	}
	switch v := v.(type) {
	case *expvar.Float:
		return v.Value()
	case *expvar.Map:
		if c, ok := v.Get("count").(*expvar.Int); ok {
			return float64(c.Value())
		}
	}
	return 0
}

// number returns the *expvar.Float of a counter or gauge, creating it.
func (e *Expvar) number(m *Metric, labels []string) *expvar.Float {
	parent, key := e.slot(m, labels)
	if f, ok := parent.Get(key).(*expvar.Float); ok {
		return f
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if f, ok := parent.Get(key).(*expvar.Float); ok {
		return f
	}
	f := new(expvar.Float)
	parent.Set(key, f)
	return f
}

// histogram returns the {count, sum} map of a histogram, creating it.
func (e *Expvar) histogram(m *Metric, labels []string) *expvar.Map {
	parent, key := e.slot(m, labels)
	if h, ok := parent.Get(key).(*expvar.Map); ok {
		return h
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if h, ok := parent.Get(key).(*expvar.Map); ok {
		return h
	}
	h := new(expvar.Map).Init()
	h.Add("count", 0)
	h.AddFloat("sum", 0)
	parent.Set(key, h)
	return h
}

// slot returns the map holding m's value for labels, and its key there.
func (e *Expvar) slot(m *Metric, labels []string) (*expvar.Map, string) {
	if len(m.Labels) == 0 {
		return e.root, m.Name
	}
	byLabel, ok := e.root.Get(m.Name).(*expvar.Map)
	if !ok {
		e.mu.Lock()
		if byLabel, ok = e.root.Get(m.Name).(*expvar.Map); !ok {
			byLabel = new(expvar.Map).Init()
			e.root.Set(m.Name, byLabel)
		}
		e.mu.Unlock()
	}
	return byLabel, strings.Join(labels, ",")
}
