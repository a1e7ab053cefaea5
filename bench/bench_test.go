package main

import (
	"context"
	"testing"
)

// The same measurements as the command, under go test -bench: the fixture
// server in a process of its own, the client in the test process, b.N
// messages (round trips) per run. ns/op is wall time per message; the
// command's interleaved rounds and ratios are the figures to quote.
//
//	go test -run '^$' -bench . -benchtime 200000x
func BenchmarkPush(b *testing.B) { benchStream(b, "push") }

// BenchmarkEcho measures round trips, like the command's echo runs.
func BenchmarkEcho(b *testing.B) { benchStream(b, "echo") }

func benchStream(b *testing.B, mode string) {
	fx, err := startFixture(-1)
	if err != nil {
		b.Fatal(err)
	}
	defer fx.stop()
	for _, c := range clients {
		for _, size := range []int{16, 1 << 10, 64 << 10} {
			b.Run(c.name+"/"+sizeName(size), func(b *testing.B) {
				res := measure(context.Background(), spec{Client: c.name, Mode: mode, Size: size, Messages: int64(b.N), Addr: fx.addr})
				if res.Err != "" {
					b.Fatal(res.Err)
				}
				b.ReportMetric(float64(res.Wall.Nanoseconds())/float64(res.Msgs), "ns/op")
				b.ReportMetric(res.cpuPerMsg(), "cpu-ns/msg")
				b.ReportMetric(res.allocsPerMsg(), "allocs/msg")
			})
		}
	}
}
