package lomond

import (
	"context"
	"runtime"
	"sync"
	"testing"

	"github.com/coder/websocket"
	"github.com/lomond-go/lomond/events"
)

// BenchmarkIdleConnections holds 1000 idle connections to an in-process
// server and reports the memory (heap in use plus goroutine stacks, after
// GC) and goroutines per connection, for the bare engine (a goroutine blocked
// in Reader, as every engine user needs) and for lomond sessions (Run on its
// own goroutine; timers take none). The server's share is in both; the
// difference is lomond's. Run with -benchtime 1x.
func BenchmarkIdleConnections(b *testing.B) {
	const conns = 1000
	b.Run("bare", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			idleConnections(b, conns, func(ctx context.Context, url string, ready func()) {
				c, _, err := websocket.Dial(ctx, url, nil)
				if err != nil {
					b.Error(err)
					ready()
					return
				}
				ready()
				_, _, _ = c.Reader(ctx)
				_ = c.CloseNow()
			})
		}
	})
	b.Run("lomond", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			idleConnections(b, conns, func(ctx context.Context, url string, ready func()) {
				ws, err := New(url, WithoutProxy())
				if err != nil {
					b.Error(err)
					ready()
					return
				}
				_ = ws.Run(ctx, HandlerFunc(func(_ *WebSocket, ev events.Event) {
					if _, ok := ev.(*events.Ready); ok {
						ready()
					}
				}))
			})
		}
	})
}

func idleConnections(b *testing.B, n int, client func(ctx context.Context, url string, ready func())) {
	srv := newRestartableServer(b, "hold")
	url := "ws://" + srv.addr + "/"
	before := memInUse()
	goroutines := runtime.NumGoroutine()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	readies := make(chan struct{}, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var once sync.Once
			client(ctx, url, func() { once.Do(func() { readies <- struct{}{} }) })
		}()
	}
	for i := 0; i < n; i++ {
		<-readies
	}
	after := memInUse()
	perConn := float64(after-before) / float64(n)
	g := float64(runtime.NumGoroutine()-goroutines) / float64(n)
	cancel()
	wg.Wait()
	srv.stop()
	b.ReportMetric(perConn, "B/conn")
	b.ReportMetric(g, "goroutines/conn")
}

func memInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse + ms.StackInuse
}
