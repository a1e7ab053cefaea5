package lomond

import (
	"context"
	"hash/crc32"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/lomond-go/lomond/events"
)

// Messages of any size, streamed (issue 17, item 1): received through a
// StreamHandler, sent through SendBinaryStream, SendTextStream and
// MessageWriter, against coder/websocket's server (an independent
// implementation) and, for protocol violations and the exact order of
// frames, the raw-bytes server of internal/wstest.

const stTimeout = 20 * time.Second

func stRecv[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	tm := time.NewTimer(stTimeout)
	defer tm.Stop()
	select {
	case v := <-ch:
		return v
	case <-tm.C:
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

// stWS makes a WebSocket with test defaults (no proxy, no pings, a short
// close timeout).
func stWS(t *testing.T, url string, opts ...Option) *WebSocket {
	t.Helper()
	base := []Option{WithoutProxy(), WithPollInterval(time.Hour), WithPingRate(0), WithCloseTimeout(10 * time.Second)}
	ws, err := New(url, append(base, opts...)...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return ws
}

// stRun runs ws with h in the background; the channel gets Run's result.
func stRun(t *testing.T, ws *WebSocket, h EventHandler) <-chan error {
	t.Helper()
	done := make(chan error, 1)
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		done <- ws.Run(context.Background(), h)
	}()
	t.Cleanup(func() {
		select {
		case <-finished:
		case <-time.After(3 * stTimeout):
			t.Error("Run did not return by the end of the test")
		}
	})
	return done
}

// pattern yields n bytes of a fixed pseudo-random block, repeated at an odd
// period so that fragments and reads never line up with it.
type pattern struct{ n, off int64 }

var patternBlock = func() []byte {
	b := make([]byte, 65537)
	x := uint32(2463534242)
	for i := range b {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b[i] = byte(x)
	}
	return b
}()

func (p *pattern) Read(b []byte) (int, error) {
	if p.off >= p.n {
		return 0, io.EOF
	}
	b = b[:min(int64(len(b)), p.n-p.off)]
	n := 0
	for n < len(b) {
		n += copy(b[n:], patternBlock[(p.off+int64(n))%int64(len(patternBlock)):])
	}
	p.off += int64(n)
	return n, nil
}

// patternSum is the CRC of the first n bytes of the pattern.
func patternSum(n int64) uint32 {
	h := crc32.New(crc32.MakeTable(crc32.Castagnoli))
	_, _ = io.Copy(h, &pattern{n: n})
	return h.Sum32()
}

// textPattern yields n bytes of compressible UTF-8 text, multi-byte
// characters cut across every boundary.
type textPattern struct{ n, off int64 }

const textUnit = "lomond streams \u00e9\u00e8 \u4e16\u754c \U0001F30A; "

func (p *textPattern) Read(b []byte) (int, error) {
	if p.off >= p.n {
		return 0, io.EOF
	}
	b = b[:min(int64(len(b)), p.n-p.off)]
	for i := range b {
		b[i] = textUnit[(p.off+int64(i))%int64(len(textUnit))]
	}
	p.off += int64(len(b))
	return len(b), nil
}

// peakRSS resets the process's peak resident set size (Linux: writing 5 to
// /proc/self/clear_refs) and returns a function that reports how far above
// the RSS at the reset the peak went, in bytes (ok false where the kernel
// does not say).
func peakRSS(t *testing.T) func() (grew int64, peak int64, ok bool) {
	readKB := func(key string) (int64, bool) {
		b, err := os.ReadFile("/proc/self/status")
		if err != nil {
			return 0, false
		}
		for _, line := range strings.Split(string(b), "\n") {
			if v, found := strings.CutPrefix(line, key+":"); found {
				kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
				return kb << 10, err == nil
			}
		}
		return 0, false
	}
	reset := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) == nil
	start, _ := readKB("VmRSS")
	if !reset {
		t.Log("cannot reset the peak RSS: the figure is the process's peak so far")
		start = 0
	}
	return func() (int64, int64, bool) {
		hwm, ok := readKB("VmHWM")
		return hwm - start, hwm, ok
	}
}

// streamSize is the size of the big streams: 64 MiB, or 1 GiB with
// LOMOND_STREAM_GIB=1.
func streamSize() int64 {
	if os.Getenv("LOMOND_STREAM_GIB") == "1" {
		return 1 << 30
	}
	return 64 << 20
}

// maxGrowth is the most the peak RSS may grow while a stream of size bytes
// goes through: generous (buffers, the runtime), and far below what holding
// the message would take. Under -race the detector's bookkeeping grows with
// the frames (about a tenth of the message when coder/websocket sends: it
// arms a timer per frame), so a quarter of the message more is allowed.
func maxGrowth(size int64) int64 {
	if streamRace {
		return 48<<20 + size/4
	}
	return 48 << 20
}

// coderServer runs coder/websocket's server on 127.0.0.1 with script.
func coderServer(t *testing.T, opts *websocket.AcceptOptions, script func(c *websocket.Conn) error) (url string, result <-chan error) {
	t.Helper()
	res := make(chan error, 1)
	var wg sync.WaitGroup
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		wg.Add(1)
		defer wg.Done()
		c, err := websocket.Accept(w, r, opts)
		if err != nil {
			res <- err
			return
		}
		defer c.CloseNow()
		res <- script(c)
	}))
	t.Cleanup(func() {
		hs.Close()
		wg.Wait()
	})
	return "ws" + strings.TrimPrefix(hs.URL, "http") + "/", res
}

// streamSink is a StreamHandler that reads every stream to its end and
// reports what it read.
type streamSink struct {
	BaseHandler
	got chan streamRead
}

type streamRead struct {
	binary, compressed bool
	n                  int64
	sum                uint32
	err                error
}

func (h *streamSink) OnStream(_ *WebSocket, ev *events.Stream) {
	c := crc32.New(crc32.MakeTable(crc32.Castagnoli))
	n, err := io.Copy(c, ev.Reader)
	h.got <- streamRead{binary: ev.Binary, compressed: ev.Compressed, n: n, sum: c.Sum32(), err: err}
}

// TestStreamReceiveFromCoder: a message of streamSize() bytes, sent by
// coder/websocket in fragments, read by OnStream as it arrives; the peak
// RSS stays bounded by the buffers, not by the message.
func TestStreamReceiveFromCoder(t *testing.T) {
	size := streamSize()
	url, result := coderServer(t, nil, func(c *websocket.Conn) error {
		ctx := c.CloseRead(context.Background()) // answers pings, sees the close
		w, err := c.Writer(ctx, websocket.MessageBinary)
		if err != nil {
			return err
		}
		if _, err := io.Copy(w, &pattern{n: size}); err != nil {
			return err
		}
		if err := w.Close(); err != nil {
			return err
		}
		<-ctx.Done()
		return nil
	})
	ws := stWS(t, url, WithReadLimit(1<<20)) // the read limit does not bound a stream
	h := &streamSink{got: make(chan streamRead, 1)}
	rss := peakRSS(t)
	began := time.Now()
	done := stRun(t, ws, h)
	got := stRecv(t, h.got, "the stream")
	took := time.Since(began)
	grew, peak, ok := rss()
	t.Logf("received %d bytes in %v (%.0f MiB/s); peak RSS %d MiB, %d MiB above the start",
		got.n, took.Round(time.Millisecond), float64(got.n)/took.Seconds()/(1<<20), peak>>20, grew>>20)
	if got.err != nil || got.n != size || !got.binary || got.compressed {
		t.Fatalf("OnStream read %d bytes (binary %v, compressed %v), %v; want %d binary bytes", got.n, got.binary, got.compressed, got.err, size)
	}
	if want := patternSum(size); got.sum != want {
		t.Fatalf("CRC %08x, want %08x", got.sum, want)
	}
	if ok && grew > maxGrowth(size) {
		t.Errorf("peak RSS grew by %d MiB for a %d MiB message: more than %d MiB", grew>>20, size>>20, maxGrowth(size)>>20)
	}
	if err := ws.Close(StatusNormal, "done"); err != nil {
		t.Errorf("Close = %v", err)
	}
	if err := stRecv(t, done, "Run's return"); err != nil {
		t.Errorf("Run = %v", err)
	}
	if err := stRecv(t, result, "the server's end"); err != nil {
		t.Errorf("server: %v", err)
	}
}

// TestStreamSendToCoder: a message of streamSize() bytes sent by
// SendBinaryStream in fragments, read by coder/websocket as it arrives;
// the peak RSS stays bounded.
func TestStreamSendToCoder(t *testing.T) {
	size := streamSize()
	type reading struct {
		typ websocket.MessageType
		n   int64
		sum uint32
	}
	read := make(chan reading, 1)
	url, result := coderServer(t, nil, func(c *websocket.Conn) error {
		c.SetReadLimit(-1)
		typ, r, err := c.Reader(context.Background())
		if err != nil {
			return err
		}
		h := crc32.New(crc32.MakeTable(crc32.Castagnoli))
		n, err := io.Copy(h, r)
		if err != nil {
			return err
		}
		read <- reading{typ, n, h.Sum32()}
		_, _, err = c.Read(context.Background()) // the client's close
		if websocket.CloseStatus(err) != websocket.StatusNormalClosure {
			return err
		}
		return nil
	})
	ws := stWS(t, url)
	ready := make(chan struct{})
	done := stRun(t, ws, HandlerFunc(func(_ *WebSocket, ev events.Event) {
		if _, ok := ev.(*events.Ready); ok {
			close(ready)
		}
	}))
	stRecv(t, ready, "Ready")
	rss := peakRSS(t)
	began := time.Now()
	if err := ws.SendBinaryStream(context.Background(), &pattern{n: size}); err != nil {
		t.Fatalf("SendBinaryStream = %v", err)
	}
	got := stRecv(t, read, "the server's reading")
	took := time.Since(began)
	grew, peak, ok := rss()
	t.Logf("sent %d bytes in %v (%.0f MiB/s); peak RSS %d MiB, %d MiB above the start",
		got.n, took.Round(time.Millisecond), float64(got.n)/took.Seconds()/(1<<20), peak>>20, grew>>20)
	if got.typ != websocket.MessageBinary || got.n != size || got.sum != patternSum(size) {
		t.Fatalf("the server read a %v message of %d bytes, CRC %08x; want binary, %d bytes, CRC %08x", got.typ, got.n, got.sum, size, patternSum(size))
	}
	if ok && grew > maxGrowth(size) {
		t.Errorf("peak RSS grew by %d MiB for a %d MiB message: more than %d MiB", grew>>20, size>>20, maxGrowth(size)>>20)
	}
	if err := ws.Close(StatusNormal, "done"); err != nil {
		t.Errorf("Close = %v", err)
	}
	if err := stRecv(t, done, "Run's return"); err != nil {
		t.Errorf("Run = %v", err)
	}
	if err := stRecv(t, result, "the server's end"); err != nil {
		t.Errorf("server: %v", err)
	}
}
