package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"runtime"
	"sort"
	"sync"
	"time"

	"github.com/lomond-go/lomond"
	"github.com/lomond-go/lomond/events"
)

// stormMaxBackOff is the longest wait of the storm's clients between two
// attempts: lomond's own backoff, from 0 to 2 s (a random wait spreads
// the reconnects, as it should in production).
const stormMaxBackOff = 2 * time.Second

// measureStorm is the reconnect storm: s.Conns clients, each running
// Persist against /hold, all Ready; then the fixture drops every held
// connection at once (/drop), and the run measures how long until every
// client is Ready again, and whether the goroutines came back to their
// count before the drop.
func measureStorm(ctx context.Context, c *client, s spec, res *result) error {
	if c.name != "lomond" {
		return fmt.Errorf("%s: the storm runs lomond's Persist only", c.name)
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout()+time.Minute)
	defer cancel()
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	var (
		mu        sync.Mutex
		droppedAt time.Time
		back      []time.Duration
	)
	first := make(chan struct{}, s.Conns)
	again := make(chan struct{}, s.Conns)
	var wg sync.WaitGroup
	slots := make(chan struct{}, dialParallelism)
	for range s.Conns {
		ws, err := lomond.New("ws://"+s.Addr+"/hold", lomond.WithPingRate(0), lomond.WithPollInterval(0))
		if err != nil {
			return err
		}
		slots <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			ready := 0
			_ = ws.Persist(runCtx, lomond.HandlerFunc(func(_ *lomond.WebSocket, ev events.Event) {
				if _, ok := ev.(*events.Ready); !ok {
					return
				}
				ready++
				switch ready {
				case 1:
					<-slots
					first <- struct{}{}
				case 2:
					mu.Lock()
					back = append(back, time.Since(droppedAt))
					mu.Unlock()
					again <- struct{}{}
				}
			}), lomond.WithLomondBackOff(0, stormMaxBackOff))
		}()
	}
	defer wg.Wait()
	defer stop()
	for range s.Conns {
		select {
		case <-first:
		case <-ctx.Done():
			return fmt.Errorf("storm: not every client was Ready before the drop")
		}
	}
	runtime.GC()
	res.GoroutinesHeld = runtime.NumGoroutine()
	mu.Lock()
	droppedAt = time.Now()
	mu.Unlock()
	if err := drop(s.Addr); err != nil {
		return err
	}
	for i := range s.Conns {
		select {
		case <-again:
		case <-ctx.Done():
			return fmt.Errorf("storm: %d of %d clients Ready again before the run's timeout", i, s.Conns)
		}
	}
	mu.Lock()
	sort.Slice(back, func(i, j int) bool { return back[i] < back[j] })
	res.AllReady, res.ReadyP50 = back[len(back)-1], back[len(back)/2]
	mu.Unlock()
	// Goroutines of the lost sessions end with them; give the last a
	// moment (polling: nothing signals a goroutine's exit).
	deadline := time.Now().Add(2 * time.Second)
	for res.GoroutinesBack = runtime.NumGoroutine(); res.GoroutinesBack > res.GoroutinesHeld && time.Now().Before(deadline); res.GoroutinesBack = runtime.NumGoroutine() {
		time.Sleep(10 * time.Millisecond)
	}
	res.MaxBackOff = stormMaxBackOff
	return nil
}

// drop asks the fixture to drop every held connection.
func drop(addr string) error {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.WriteString(c, "GET /drop HTTP/1.1\r\nHost: "+addr+"\r\n\r\n"); err != nil {
		return err
	}
	b, err := io.ReadAll(c)
	if len(b) < 12 || string(b[:12]) != "HTTP/1.1 204" {
		return fmt.Errorf("drop: unexpected answer %q (%v)", b, err)
	}
	return nil
}
