package lomond

import (
	"context"
	"io"
	"strconv"
	"testing"
	"unicode/utf8"

	"github.com/coder/websocket"
	"github.com/lomond-go/lomond/events"
)

// The benchmarks measure the dispatcher's per-message cost as a ratio to a
// bare coder/websocket loop against the same loopback server, in the same
// run (docs/performance.md). b.N counts messages, so ns/op is ns/msg and
// allocs/op is allocs/msg.
//
//	go test -run '^$' -bench 'BenchmarkReceive|BenchmarkSend' -benchmem -count 6 -cpu 1 .

var benchSizes = []int{16, 1 << 10, 64 << 10}

func sizeName(n int) string {
	if n >= 1<<10 && n%(1<<10) == 0 {
		return strconv.Itoa(n>>10) + "KiB"
	}
	return strconv.Itoa(n) + "B"
}

// benchOptions turns off every timer, so nothing but messages is measured.
func benchOptions() []Option {
	return []Option{WithReadLimit(1 << 20), WithPollInterval(0), WithPingRate(0), WithPingTimeout(0)}
}

// benchClock wraps the benchmark timer and also measures the process's CPU
// time (client and in-process server together) over the timed region, as
// cpu-ns/msg: on a shared machine, wall time also counts time spent waiting
// for a CPU, CPU time does not.
type benchClock struct {
	b   *testing.B
	cpu int64
}

func (c *benchClock) start() {
	c.b.ResetTimer()
	c.cpu = processCPU()
}

func (c *benchClock) stop() {
	used := processCPU() - c.cpu
	c.b.StopTimer()
	if c.b.N > 0 && c.cpu > 0 {
		c.b.ReportMetric(float64(used)/float64(c.b.N), "cpu-ns/msg")
	}
}

func pushPath(size int, text bool) string {
	p := "/push?size=" + strconv.Itoa(size)
	if text {
		p += "&text=1"
	}
	return p
}

// BenchmarkReceive: the server pushes messages of one size; the client
// reads every byte. bare and bare-text are the floor a dispatcher built on
// coder/websocket can reach: Conn.Reader into a reused buffer (plus
// utf8.Valid for text, which the dispatcher must do too).
func BenchmarkReceive(b *testing.B) {
	srv := newBenchServer(b)
	defer srv.close()
	for _, size := range benchSizes {
		for _, c := range []struct {
			name string
			text bool
			run  func(b *testing.B, url string, size int, text bool)
		}{
			{"bare", false, receiveBare},
			{"lomond", false, receiveLomond},
			{"bare-text", true, receiveBare},
			{"lomond-text", true, receiveLomond},
		} {
			b.Run(c.name+"/"+sizeName(size), func(b *testing.B) {
				b.SetBytes(int64(size))
				b.ReportAllocs()
				c.run(b, srv.url(pushPath(size, c.text)), size, c.text)
			})
		}
	}
}

func receiveBare(b *testing.B, url string, _ int, text bool) {
	ctx := context.Background()
	c, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer c.CloseNow()
	c.SetReadLimit(1 << 20)
	buf := make([]byte, 4096)
	clock := benchClock{b: b}
	clock.start()
	for range b.N {
		typ, r, err := c.Reader(ctx)
		if err != nil {
			b.Fatal(err)
		}
		n := 0
		for {
			if n == len(buf) {
				buf = append(buf, make([]byte, len(buf))...)
			}
			m, err := r.Read(buf[n:])
			n += m
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
		}
		if text && (typ != websocket.MessageText || !utf8.Valid(buf[:n])) {
			b.Fatal("bad text message")
		}
	}
	clock.stop()
}

// countHandler stops the benchmark timer at the b.N-th message and starts
// the close handshake; the messages that arrive after it are dropped.
type countHandler struct {
	BaseHandler
	b     *testing.B
	clock benchClock
	n     int
	want  int
}

func (h *countHandler) OnReady(*WebSocket, *events.Ready) { h.clock.start() }

func (h *countHandler) OnText(ws *WebSocket, ev *events.Text) { h.count(ws, len(ev.Text)) }

func (h *countHandler) OnBinary(ws *WebSocket, ev *events.Binary) { h.count(ws, len(ev.Data)) }

func (h *countHandler) count(ws *WebSocket, n int) {
	if n != h.want {
		h.b.Errorf("message of %d bytes, want %d", n, h.want)
	}
	h.n++
	if h.n == h.b.N {
		h.clock.stop()
		if err := ws.Close(StatusNormal, ""); err != nil {
			h.b.Error(err)
		}
	}
}

func receiveLomond(b *testing.B, url string, size int, _ bool) {
	ws, err := New(url, benchOptions()...)
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
}

// BenchmarkSend: the client sends messages of one size; the server discards
// them. The timer includes the close handshake at the end, so every message
// has reached the server when it stops.
func BenchmarkSend(b *testing.B) {
	srv := newBenchServer(b)
	defer srv.close()
	for _, size := range benchSizes {
		msg := make([]byte, size)
		for _, c := range []struct {
			name string
			run  func(*testing.B, string, []byte)
		}{
			{"bare", sendBare},
			{"lomond", sendLomond},
		} {
			b.Run(c.name+"/"+sizeName(size), func(b *testing.B) {
				b.SetBytes(int64(size))
				b.ReportAllocs()
				c.run(b, srv.url("/sink"), msg)
			})
		}
	}
}

func sendBare(b *testing.B, url string, msg []byte) {
	ctx := context.Background()
	c, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer c.CloseNow()
	clock := benchClock{b: b}
	clock.start()
	for range b.N {
		if err := c.Write(ctx, websocket.MessageBinary, msg); err != nil {
			b.Fatal(err)
		}
	}
	if err := c.Close(websocket.StatusNormalClosure, ""); err != nil {
		b.Fatal(err)
	}
	clock.stop()
}

// sendHandler sends b.N messages from OnReady, then closes.
type sendHandler struct {
	BaseHandler
	b     *testing.B
	clock benchClock
	msg   []byte
}

func (h *sendHandler) OnReady(ws *WebSocket, _ *events.Ready) {
	h.clock.start()
	for range h.b.N {
		if err := ws.SendBinary(h.msg); err != nil {
			h.b.Error(err)
			return
		}
	}
	if err := ws.Close(StatusNormal, ""); err != nil {
		h.b.Error(err)
	}
}

func sendLomond(b *testing.B, url string, msg []byte) {
	ws, err := New(url, benchOptions()...)
	if err != nil {
		b.Fatal(err)
	}
	h := &sendHandler{b: b, clock: benchClock{b: b}, msg: msg}
	if err := ws.Run(context.Background(), h); err != nil {
		b.Fatal(err)
	}
	h.clock.stop()
}
