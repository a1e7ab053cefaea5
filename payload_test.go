package lomond

import (
	"context"
	"runtime"
	"testing"

	"github.com/lomond-go/lomond/events"
)

// Tests of payload.go: what a message event keeps alive.

// keepFirst keeps the first Binary event and drops every other one.
type keepFirst struct {
	BaseHandler
	kept *events.Binary
	n    int
}

func (h *keepFirst) OnBinary(ws *WebSocket, ev *events.Binary) {
	if h.kept == nil {
		h.kept = ev
	}
	h.n++
	if h.n == 64 {
		_ = ws.Close(StatusNormal, "")
	}
}

// TestKeptEventDoesNotRetainOthers: a handler that keeps one message event
// must not keep the payloads of the messages it dropped. Events are
// allocated in blocks (eventSlab in dispatcher.go); a kept event keeps its
// block alive, and the block's other events still point at their payloads,
// so one kept event can pin up to 63 more payloads (up to the read limit
// each).
func TestKeptEventDoesNotRetainOthers(t *testing.T) {
	srv := newBenchServer(t)
	defer srv.close()
	const size = 1 << 20
	ws, err := New(srv.url(pushPath(size, false)), benchOptions()...)
	if err != nil {
		t.Fatal(err)
	}
	h := &keepFirst{}
	if err := ws.Run(context.Background(), h); err != nil {
		t.Fatal(err)
	}
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	t.Logf("delivered %d messages of %d bytes; heap in use after GC: %.1f MiB", h.n, size, float64(ms.HeapAlloc)/(1<<20))
	if ms.HeapAlloc > 16<<20 {
		t.Errorf("heap %.1f MiB: the one kept event retains the payloads of the dropped ones", float64(ms.HeapAlloc)/(1<<20))
	}
	runtime.KeepAlive(h.kept)
}
