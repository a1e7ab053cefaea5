package lomond

import (
	"context"
	"testing"
)

// BenchmarkReceiveBorrowed is BenchmarkReceive's lomond case with
// WithBorrowedBinary: binary payloads in a reused buffer, as the bare loop
// reads them. Run it together with BenchmarkReceive (same server, same run)
// to take the ratio to BenchmarkReceive/bare.
func BenchmarkReceiveBorrowed(b *testing.B) {
	srv := newBenchServer(b)
	defer srv.close()
	for _, size := range benchSizes {
		b.Run("lomond-borrowed/"+sizeName(size), func(b *testing.B) {
			b.SetBytes(int64(size))
			b.ReportAllocs()
			ws, err := New(srv.url(pushPath(size, false)), append(benchOptions(), WithBorrowedBinary())...)
			if err != nil {
				b.Fatal(err)
			}
			h := &countHandler{b: b, clock: benchClock{b: b}, want: size}
			if err := ws.Run(context.Background(), h); err != nil {
				b.Fatal(err)
			}
			if h.n < b.N {
				b.Fatalf("%d messages, want %d", h.n, b.N)
			}
		})
	}
}
