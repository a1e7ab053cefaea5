package main

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/lomond-go/lomond/bench/fixture"
)

// startServer runs a fixture server in the test process.
func startServer(t *testing.T) string {
	t.Helper()
	s, err := fixture.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s.Addr()
}

// countFor keeps the counted runs small: a 64 KiB message is 4000 times a
// 16 B one.
func countFor(size int) int64 {
	if size >= 64<<10 {
		return 40
	}
	return 300
}

// Every client receives exactly the n messages the server pushes, with the
// right payload, and ends cleanly on the server's close frame.
func TestClientsPushCounted(t *testing.T) {
	addr := startServer(t)
	for _, c := range clients {
		for _, size := range []int{16, 1 << 10, 64 << 10} {
			t.Run(fmt.Sprintf("%s/%s", c.name, sizeName(size)), func(t *testing.T) {
				n := countFor(size)
				res := measure(context.Background(), spec{Client: c.name, Mode: "push", Size: size, Messages: n, Addr: addr})
				if res.Err != "" {
					t.Fatal(res.Err)
				}
				if res.Msgs != n || res.Wall <= 0 {
					t.Fatalf("timed %d messages in %s, want %d in a positive time", res.Msgs, res.Wall, n)
				}
			})
		}
	}
}

// In duration mode the server pushes until the client closes: every client
// closes cleanly in the middle of the stream, after a warm-up and a timed
// region that both saw messages.
func TestClientsPushTimed(t *testing.T) {
	addr := startServer(t)
	for _, c := range clients {
		t.Run(c.name, func(t *testing.T) {
			res := measure(context.Background(), spec{Client: c.name, Mode: "push", Size: 1 << 10,
				Warmup: 5 * time.Millisecond, Duration: 20 * time.Millisecond, Addr: addr})
			if res.Err != "" {
				t.Fatal(res.Err)
			}
			if res.Msgs <= 0 || res.Wall < 20*time.Millisecond {
				t.Fatalf("timed %d messages in %s, want some in at least 20ms", res.Msgs, res.Wall)
			}
		})
	}
}

// Every client completes n round trips at every size and then closes.
func TestClientsEcho(t *testing.T) {
	addr := startServer(t)
	for _, c := range clients {
		for _, size := range []int{16, 1 << 10, 64 << 10} {
			t.Run(fmt.Sprintf("%s/%s", c.name, sizeName(size)), func(t *testing.T) {
				const n = 50
				res := measure(context.Background(), spec{Client: c.name, Mode: "echo", Size: size, Messages: n, Addr: addr})
				if res.Err != "" {
					t.Fatal(res.Err)
				}
				if res.Msgs != n {
					t.Fatalf("timed %d round trips, want %d", res.Msgs, n)
				}
			})
		}
	}
}

// Every idle client holds its connections with at least one goroutine and
// some memory each, and releases them all (goleak in TestMain).
func TestClientsIdle(t *testing.T) {
	addr := startServer(t)
	for _, c := range clients {
		if !c.idle {
			continue
		}
		t.Run(c.name, func(t *testing.T) {
			res := measure(context.Background(), spec{Client: c.name, Mode: "idle", Conns: 20, Addr: addr})
			if res.Err != "" {
				t.Fatal(res.Err)
			}
			if res.GoroutinesPerConn < 1 || res.MemPerConn <= 0 || res.AllocsPerDial <= 0 {
				t.Fatalf("%.2f goroutines, %.0f B and %.0f allocations per connection: want ≥ 1, > 0, > 0",
					res.GoroutinesPerConn, res.MemPerConn, res.AllocsPerDial)
			}
		})
	}
}

// A run whose upgrade the server refuses fails with an error, for every
// client, instead of hanging or panicking.
func TestClientsRefused(t *testing.T) {
	addr := startServer(t)
	// A fixture path that does not exist: the upgrade is refused with 404.
	for _, c := range clients {
		t.Run(c.name, func(t *testing.T) {
			res := measure(context.Background(), spec{Client: c.name, Mode: "push", Size: 16, Messages: 10, Addr: addr + "/nowhere"})
			if res.Err == "" {
				t.Fatal("no error against a refused upgrade")
			}
		})
	}
}
