package lomond

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/coder/websocket"
	"github.com/lomond-go/lomond/events"
)

// restartableServer is a websocket server on a fixed 127.0.0.1 port that can
// be stopped (listener and every connection closed) and started again.
type restartableServer struct {
	addr string
	mode string // "hold": keep connections open; "drop": close each at once

	mu    sync.Mutex
	ln    net.Listener
	srv   *http.Server
	conns map[*websocket.Conn]struct{}
	wg    sync.WaitGroup
}

func newRestartableServer(tb testing.TB, mode string) *restartableServer {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	s := &restartableServer{addr: ln.Addr().String(), mode: mode, conns: map[*websocket.Conn]struct{}{}}
	s.serve(ln)
	tb.Cleanup(s.stop)
	return s
}

func (s *restartableServer) serve(ln net.Listener) {
	s.ln = ln
	s.srv = &http.Server{Handler: http.HandlerFunc(s.handle)}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		_ = s.srv.Serve(ln)
	}()
}

func (s *restartableServer) handle(w http.ResponseWriter, r *http.Request) {
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	if s.mode == "drop" {
		_ = c.CloseNow()
		return
	}
	s.mu.Lock()
	s.conns[c] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		_ = c.CloseNow()
	}()
	for {
		if _, _, err := c.Read(context.Background()); err != nil {
			return
		}
	}
}

// stop closes the listener and drops every connection without a close frame,
// as a crashed server would.
func (s *restartableServer) stop() {
	s.mu.Lock()
	srv := s.srv
	s.srv = nil
	for c := range s.conns {
		_ = c.CloseNow()
	}
	s.mu.Unlock()
	if srv != nil {
		_ = srv.Close()
	}
	s.wg.Wait()
}

func (s *restartableServer) start(tb testing.TB) {
	ln, err := net.Listen("tcp", s.addr)
	if err != nil {
		tb.Fatal(err)
	}
	s.mu.Lock()
	s.serve(ln)
	s.mu.Unlock()
}

// BenchmarkReconnectCycle measures one Persist cycle against an in-process
// server that accepts the handshake and drops the connection at once:
// Connecting, Connected, Ready, Disconnected, BackOff (zero delay), per op.
// The bare sub-benchmark is the engine alone (Dial, read until the drop) on
// the same server: the server's own costs are in both, so the difference is
// the cycle's cost in lomond.
func BenchmarkReconnectCycle(b *testing.B) {
	b.Run("bare", benchmarkReconnectBare)
	b.Run("lomond", benchmarkReconnectLomond)
}

func benchmarkReconnectBare(b *testing.B) {
	srv := newRestartableServer(b, "drop")
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c, _, err := websocket.Dial(ctx, "ws://"+srv.addr+"/", nil)
		if err != nil {
			b.Fatal(err)
		}
		_, _, _ = c.Reader(ctx)
		_ = c.CloseNow()
	}
}

func benchmarkReconnectLomond(b *testing.B) {
	srv := newRestartableServer(b, "drop")
	ws, err := New("ws://"+srv.addr+"/", WithPollInterval(0), WithPingRate(0), WithoutProxy())
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var readies atomic.Int64
	h := HandlerFunc(func(_ *WebSocket, ev events.Event) {
		if _, ok := ev.(*events.Ready); ok {
			if readies.Add(1) == int64(b.N) {
				cancel()
			}
		}
	})
	b.ReportAllocs()
	b.ResetTimer()
	_ = ws.Persist(ctx, h, WithBackOff(func() backoff.BackOff { return &backoff.ZeroBackOff{} }))
	b.StopTimer()
	if readies.Load() < int64(b.N) {
		b.Fatalf("only %d of %d cycles reached Ready", readies.Load(), b.N)
	}
}

// BenchmarkReconnectStorm connects 1000 persistent clients with the default
// backoff, restarts their server, and measures how long until every client
// is Ready again and when they came back (a storm shows as a spike). Run it
// with -benchtime 1x -v to see the histogram.
func BenchmarkReconnectStorm(b *testing.B) {
	const clients = 1000
	for i := 0; i < b.N; i++ {
		reconnectStorm(b, clients)
	}
}

func reconnectStorm(b *testing.B, clients int) {
	srv := newRestartableServer(b, "hold")
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var restartAt atomic.Int64 // unix nanos; 0 until the restart
	backTimes := make(chan time.Duration, clients)
	firstReady := make(chan struct{}, clients)
	for i := 0; i < clients; i++ {
		ws, err := New("ws://"+srv.addr+"/", WithPollInterval(0), WithPingRate(0), WithoutProxy())
		if err != nil {
			b.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			first := true
			_ = ws.Persist(ctx, HandlerFunc(func(_ *WebSocket, ev events.Event) {
				if _, ok := ev.(*events.Ready); !ok {
					return
				}
				if first {
					first = false
					firstReady <- struct{}{}
					return
				}
				if at := restartAt.Load(); at != 0 {
					backTimes <- time.Since(time.Unix(0, at))
				}
			}))
		}()
	}
	for i := 0; i < clients; i++ {
		<-firstReady
	}
	b.ResetTimer()
	restartAt.Store(time.Now().UnixNano())
	srv.stop()
	srv.start(b)
	var times []time.Duration
	timeout := time.After(2 * time.Minute)
	for len(times) < clients {
		select {
		case d := <-backTimes:
			times = append(times, d)
		case <-timeout:
			b.Fatalf("only %d of %d clients came back within 2 minutes", len(times), clients)
		}
	}
	b.StopTimer()
	cancel()
	wg.Wait()
	srv.stop()

	sort.Slice(times, func(i, j int) bool { return times[i] < times[j] })
	all := times[len(times)-1]
	b.ReportMetric(all.Seconds(), "s-all-ready")
	b.ReportMetric(times[len(times)/2].Seconds(), "s-p50")
	b.ReportMetric(times[len(times)*99/100].Seconds(), "s-p99")
	b.Log(reconnectHistogram(times, 100*time.Millisecond))
}

// reconnectHistogram renders how many clients were Ready again in each
// bucket after the restart.
func reconnectHistogram(times []time.Duration, bucket time.Duration) string {
	counts := map[int]int{}
	maxBucket, peak := 0, 0
	for _, t := range times {
		k := int(t / bucket)
		counts[k]++
		maxBucket = max(maxBucket, k)
		peak = max(peak, counts[k])
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "clients Ready again after the restart, per %v (n=%d):\n", bucket, len(times))
	for k := 0; k <= maxBucket; k++ {
		bar := strings.Repeat("#", counts[k]*50/max(peak, 1))
		fmt.Fprintf(&sb, "%5.1fs %4d %s\n", (time.Duration(k) * bucket).Seconds(), counts[k], bar)
	}
	return sb.String()
}
