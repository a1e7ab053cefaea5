package lomond

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/lomond-go/lomond/events"
	"github.com/lomond-go/lomond/internal/protocol"
)

// memConn is a connection to an in-memory server: it answers the upgrade
// request with a 101, then serves the frames of frames over and over (each
// read takes as much as it asks for, so large payloads are read directly),
// until the client's close frame; then the close reply and EOF. No
// goroutine and no socket: whatever the test process allocates meanwhile is
// the client's.
type memConn struct {
	mu      sync.Mutex
	frames  []byte
	pending []byte // what Read returns next
	off     int    // position in frames once pending is drained
	closing bool
	done    bool
}

func (c *memConn) Read(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case len(c.pending) > 0:
		n := copy(p, c.pending)
		c.pending = c.pending[n:]
		return n, nil
	case c.done:
		return 0, io.EOF
	case c.closing && c.off == 0: // at a frame boundary
		c.done = true
		c.pending = appendServerFrame(nil, protocol.OpClose, []byte{0x03, 0xe8})
		n := copy(p, c.pending)
		c.pending = c.pending[n:]
		return n, nil
	case c.frames == nil:
		return 0, errors.New("memConn: no upgrade request")
	}
	n := copy(p, c.frames[c.off:])
	c.off = (c.off + n) % len(c.frames)
	return n, nil // after the close frame, until the end of frames: a frame boundary
}

func (c *memConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if bytes.HasPrefix(p, []byte("GET ")) {
		_, rest, _ := strings.Cut(string(p), "Sec-WebSocket-Key: ")
		key, _, _ := strings.Cut(rest, "\r\n")
		c.pending = []byte("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
			"Sec-WebSocket-Accept: " + protocol.AcceptKey(key) + "\r\n\r\n")
		return len(p), nil
	}
	if len(p) > 0 && p[0]&0x0f == protocol.OpClose {
		c.closing = true
	}
	return len(p), nil
}

func (c *memConn) Close() error                                           { return nil }
func (c *memConn) LocalAddr() net.Addr                                    { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)} }
func (c *memConn) RemoteAddr() net.Addr                                   { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1} }
func (c *memConn) SetDeadline(time.Time) error                            { return nil }
func (c *memConn) SetReadDeadline(time.Time) error                        { return nil }
func (c *memConn) SetWriteDeadline(time.Time) error                       { return nil }
func (c *memConn) setFrames(frames []byte) *memConn                       { c.frames = frames; return c }
func (c *memConn) dial(context.Context, string, string) (net.Conn, error) { return c, nil }

// numberedFrames encodes count messages of size bytes, each starting with
// its number, as the server sends them.
func numberedFrames(op byte, size, count int) []byte {
	var b []byte
	for i := range count {
		b = appendServerFrame(b, op, numberedPayload(i, size))
	}
	return b
}

func numberedPayload(i, size int) []byte {
	p := bytes.Repeat([]byte{'a' + byte(i%26)}, size)
	copy(p, fmt.Sprintf("%08d", i))
	return p[:size]
}

// allocCounter counts the process's allocations between message warm and
// message warm+n, then closes.
type allocCounter struct {
	BaseHandler
	warm, n, seen int
	before, after runtime.MemStats
}

func (h *allocCounter) message(ws *WebSocket) {
	h.seen++
	switch h.seen {
	case h.warm:
		runtime.ReadMemStats(&h.before)
	case h.warm + h.n:
		runtime.ReadMemStats(&h.after)
		_ = ws.Close(StatusNormal, "")
	}
}

func (h *allocCounter) OnBinary(ws *WebSocket, _ *events.Binary) { h.message(ws) }
func (h *allocCounter) OnText(ws *WebSocket, _ *events.Text)     { h.message(ws) }

// TestAllocationsPerMessage holds the allocation budget of a received
// message: at most one for an owned payload (a small one carved out of a
// block costs a fraction of one), none for a borrowed binary.
func TestAllocationsPerMessage(t *testing.T) {
	for _, c := range []struct {
		name     string
		op       byte
		size     int
		borrowed bool
		max      float64
	}{
		{"owned binary 16 B", protocol.OpBinary, 16, false, 0.1},
		{"owned binary 1 KiB", protocol.OpBinary, 1 << 10, false, 0.25},
		{"owned binary 16 KiB", protocol.OpBinary, 16 << 10, false, 0.2},
		{"owned binary 64 KiB", protocol.OpBinary, 64 << 10, false, 0.6},
		{"owned binary 1 MiB", protocol.OpBinary, 1 << 20, false, 1},
		{"owned text 16 B", protocol.OpText, 16, false, 0.1},
		{"owned text 64 KiB", protocol.OpText, 64 << 10, false, 0.6},
		{"owned text 100 KiB", protocol.OpText, 100 << 10, false, 1},
		{"borrowed binary 16 B", protocol.OpBinary, 16, true, 0},
		{"borrowed binary 1 KiB", protocol.OpBinary, 1 << 10, true, 0},
		{"borrowed binary 64 KiB", protocol.OpBinary, 64 << 10, true, 0},
		{"borrowed binary 1 MiB", protocol.OpBinary, 1 << 20, true, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			n := 20000
			if c.size >= 64<<10 {
				n = 200
			}
			conn := (&memConn{}).setFrames(numberedFrames(c.op, c.size, 8))
			opts := []Option{WithDialer(conn.dial), WithoutProxy(), WithPingRate(0), WithPollInterval(0), WithReadLimit(4 << 20)}
			if c.borrowed {
				opts = append(opts, WithBorrowedBinary())
			}
			ws, err := New("ws://127.0.0.1:1/", opts...)
			if err != nil {
				t.Fatal(err)
			}
			h := &allocCounter{warm: 50, n: n}
			if err := ws.Run(context.Background(), h); err != nil {
				t.Fatal(err)
			}
			if h.seen < h.warm+h.n {
				t.Fatalf("%d messages, want %d", h.seen, h.warm+h.n)
			}
			per := float64(h.after.Mallocs-h.before.Mallocs) / float64(n)
			t.Logf("%.3f allocations per message", per)
			// A few allocations a run makes that are not per message
			// (the runtime's, a timer's) must not fail a budget of 0.
			if per > c.max+2.0/float64(n) {
				t.Errorf("%.3f allocations per message, want at most %g", per, c.max)
			}
		})
	}
}

// keepAll keeps every owned message.
type keepAll struct {
	BaseHandler
	limit int
	bins  []*events.Binary
	texts []*events.Text
}

func (h *keepAll) OnBinary(ws *WebSocket, ev *events.Binary) {
	h.bins = append(h.bins, ev)
	if len(h.bins)+len(h.texts) == h.limit {
		_ = ws.Close(StatusNormal, "")
	}
}

func (h *keepAll) OnText(ws *WebSocket, ev *events.Text) {
	h.texts = append(h.texts, ev)
	if len(h.bins)+len(h.texts) == h.limit {
		_ = ws.Close(StatusNormal, "")
	}
}

// Carved payloads and events are the handler's: every kept message still
// holds its own bytes after thousands of later messages were carved from
// the same blocks, each event is distinct, and no payload can be grown
// into its neighbour's bytes.
func TestCarvedMessagesStayIntact(t *testing.T) {
	for _, size := range []int{9, 16, 100, 1 << 10, carveMax, carveMax + 1} {
		for _, op := range []byte{protocol.OpBinary, protocol.OpText} {
			t.Run(fmt.Sprintf("%s/op%d", sizeName(size), op), func(t *testing.T) {
				const distinct, total = 997, 3000
				conn := (&memConn{}).setFrames(numberedFrames(op, size, distinct))
				ws, err := New("ws://127.0.0.1:1/", WithDialer(conn.dial), WithoutProxy(), WithPingRate(0), WithPollInterval(0))
				if err != nil {
					t.Fatal(err)
				}
				h := &keepAll{limit: total}
				if err := ws.Run(context.Background(), h); err != nil {
					t.Fatal(err)
				}
				seen := map[any]bool{}
				for i := range total {
					want := numberedPayload(i%distinct, size)
					var got []byte
					if op == protocol.OpText {
						if i >= len(h.texts) {
							t.Fatalf("%d texts, want %d", len(h.texts), total)
						}
						got = []byte(h.texts[i].Text)
						seen[h.texts[i]] = true
					} else {
						if i >= len(h.bins) {
							t.Fatalf("%d binaries, want %d", len(h.bins), total)
						}
						got = h.bins[i].Data
						if cap(got) != len(got) {
							t.Fatalf("message %d: capacity %d beyond its length %d: appending would write into another payload", i, cap(got), len(got))
						}
						seen[h.bins[i]] = true
					}
					if !bytes.Equal(got, want) {
						t.Fatalf("message %d: %q..., want %q...", i, got[:min(len(got), 12)], want[:min(len(want), 12)])
					}
				}
				if len(seen) != total {
					t.Errorf("%d distinct events for %d messages", len(seen), total)
				}
			})
		}
	}
}

// keepSome keeps every every-th message.
type keepSome struct {
	BaseHandler
	every, limit, n int
	kept            []*events.Binary
}

func (h *keepSome) OnBinary(ws *WebSocket, ev *events.Binary) {
	if h.n%h.every == 0 {
		h.kept = append(h.kept, ev)
	}
	h.n++
	if h.n == h.limit {
		_ = ws.Close(StatusNormal, "")
	}
}

// What a kept message retains is bounded by its blocks: a small one its
// payload block and its event block, a medium one its medium block (16
// times its size, at most 256 KiB) and its event block, however many
// messages were carved after it; and a kept message's bytes stay its own.
func TestKeptMessageRetainsBoundedBlock(t *testing.T) {
	for _, c := range []struct {
		name               string
		size, every, limit int
		block, events      int
	}{
		{"small 16 B", 16, 5000, 500000, payloadBlock, eventBlockMax},
		{"medium 3 KiB", 3 << 10, 500, 50000, mediumBlock(3 << 10), 17},
		{"medium 16 KiB", 16 << 10, 50, 5000, mediumBlock(16 << 10), 17},
		{"medium 64 KiB", 64 << 10, 20, 2000, mediumBlock(64 << 10), 17},
	} {
		t.Run(c.name, func(t *testing.T) {
			conn := (&memConn{}).setFrames(numberedFrames(protocol.OpBinary, c.size, 64))
			ws, err := New("ws://127.0.0.1:1/", WithDialer(conn.dial), WithoutProxy(), WithPingRate(0), WithPollInterval(0))
			if err != nil {
				t.Fatal(err)
			}
			runtime.GC()
			var before runtime.MemStats
			runtime.ReadMemStats(&before)
			h := &keepSome{every: c.every, limit: c.limit}
			if err := ws.Run(context.Background(), h); err != nil {
				t.Fatal(err)
			}
			runtime.GC()
			runtime.GC()
			var after runtime.MemStats
			runtime.ReadMemStats(&after)
			kept := len(h.kept)
			bound := kept * (c.block + c.events*int(unsafeSizeofBinary) + 1024)
			grew := int(after.HeapAlloc) - int(before.HeapAlloc)
			t.Logf("%d kept messages of %d: heap grew %d bytes (%d per kept message; bound %d)", kept, c.limit, grew, grew/kept, bound/kept)
			if grew > bound {
				t.Errorf("heap grew %d bytes for %d kept messages, more than their blocks (%d)", grew, kept, bound)
			}
			for i, ev := range h.kept {
				if want := numberedPayload(i*c.every%64, c.size); !bytes.Equal(ev.Data, want) || cap(ev.Data) != c.size {
					t.Fatalf("kept message %d: %d bytes (cap %d) starting %q, want its own %d starting %q",
						i, len(ev.Data), cap(ev.Data), ev.Data[:min(8, len(ev.Data))], c.size, want[:8])
				}
			}
			runtime.KeepAlive(h.kept)
		})
	}
}

// A medium block holds at least four payloads and at most 256 KiB, in
// whole 8 KiB pages.
func TestMediumBlock(t *testing.T) {
	for _, n := range []int{carveMax + 1, 3 << 10, 10000, 16 << 10, 16<<10 + 1, mediumMax} {
		b := mediumBlock(n)
		if b%(8<<10) != 0 || b > mediumBlockMax || b < 4*n {
			t.Errorf("mediumBlock(%d) = %d: want whole 8 KiB pages, at most %d, room for 4", n, b, mediumBlockMax)
		}
	}
	if b := mediumBlock(3 << 10); b != 48<<10 {
		t.Errorf("mediumBlock(3 KiB) = %d, want 16 times it (48 KiB)", b)
	}
}

func TestMakeNoZero(t *testing.T) {
	for _, n := range []int{1, 16, 4096, 100000} {
		b := makeNoZero(n)
		if len(b) != n {
			t.Fatalf("len %d, want %d", len(b), n)
		}
		for i := range b {
			b[i] = byte(i)
		}
		if b[n-1] != byte(n-1) {
			t.Fatalf("last byte not written")
		}
	}
}

// unsafeSizeofBinary is the size of a binary event, an element of an
// event block.
var unsafeSizeofBinary = unsafe.Sizeof(events.Binary{})

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
// must not keep the payloads of the messages it dropped. A payload larger
// than a carved block shares one allocation with its event (payload.go), so
// keeping one 1 MiB message keeps that message only, never the 63 that came
// after it.
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
