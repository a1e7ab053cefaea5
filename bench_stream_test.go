package lomond

import (
	"bytes"
	"context"
	"io"
	"testing"

	"github.com/lomond-go/lomond/events"
)

// Streams against whole messages, in the same run (benchServer, in
// process): the cost of the stream reader and of the fragmenting writer
// beside the whole-message paths. Compare the ratios, not the figures.

var streamBenchSizes = []int{1 << 10, 64 << 10, 1 << 20}

// streamCountHandler reads each stream through a reused buffer and counts
// it as countHandler counts whole messages.
type streamCountHandler struct {
	countHandler
	buf []byte
}

func (h *streamCountHandler) OnStream(ws *WebSocket, ev *events.Stream) {
	n := 0
	for {
		m, err := ev.Reader.Read(h.buf)
		n += m
		if err == io.EOF {
			break
		}
		if err != nil {
			h.b.Error(err)
			return
		}
	}
	h.count(ws, n)
}

// BenchmarkStreamReceive: the server pushes binary messages; "whole" is
// OnBinary, "stream" reads each through OnStream's Reader into a 32 KiB
// buffer.
func BenchmarkStreamReceive(b *testing.B) {
	srv := newBenchServer(b)
	defer srv.close()
	for _, size := range streamBenchSizes {
		for _, stream := range []bool{false, true} {
			name := "whole/"
			if stream {
				name = "stream/"
			}
			b.Run(name+sizeName(size), func(b *testing.B) {
				b.SetBytes(int64(size))
				b.ReportAllocs()
				ws, err := New(srv.url(pushPath(size, false)), append(benchOptions(), WithReadLimit(2<<20))...)
				if err != nil {
					b.Fatal(err)
				}
				ch := countHandler{b: b, clock: benchClock{b: b}, want: size}
				var h EventHandler = &ch
				sh := &streamCountHandler{buf: make([]byte, 32<<10)}
				if stream {
					sh.countHandler = ch
					h = sh
				}
				if err := ws.Run(context.Background(), h); err != nil {
					b.Fatal(err)
				}
			})
		}
	}
}

// BenchmarkStreamSend: the client sends binary messages to a server that
// discards them; "whole" is SendBinary, "stream" SendBinaryStream from a
// bytes.Reader.
func BenchmarkStreamSend(b *testing.B) {
	srv := newBenchServer(b)
	defer srv.close()
	for _, size := range streamBenchSizes {
		msg := make([]byte, size)
		for _, stream := range []bool{false, true} {
			name := "whole/"
			if stream {
				name = "stream/"
			}
			b.Run(name+sizeName(size), func(b *testing.B) {
				b.SetBytes(int64(size))
				b.ReportAllocs()
				ws, err := New(srv.url("/sink"), benchOptions()...)
				if err != nil {
					b.Fatal(err)
				}
				clock := benchClock{b: b}
				h := HandlerFunc(func(ws *WebSocket, ev events.Event) {
					if _, ok := ev.(*events.Ready); !ok {
						return
					}
					clock.start()
					r := bytes.NewReader(msg)
					for range b.N {
						var err error
						if stream {
							r.Reset(msg)
							err = ws.SendBinaryStream(context.Background(), r)
						} else {
							err = ws.SendBinary(msg)
						}
						if err != nil {
							b.Error(err)
							return
						}
					}
					if err := ws.Close(StatusNormal, ""); err != nil {
						b.Error(err)
					}
				})
				if err := ws.Run(context.Background(), h); err != nil {
					b.Fatal(err)
				}
				clock.stop()
			})
		}
	}
}
