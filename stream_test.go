package lomond

import (
	"bytes"
	"context"
	"errors"
	"hash/crc32"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
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

const textUnit = "lomond streams \u00e9\u00e8 \u4e16\u754c \U0001F30A; " // 33 bytes

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

// TestStreamCompressedFromCoder: compressed messages (context takeover,
// so each refers to the ones before) streamed from coder/websocket: the
// first is abandoned half-way and must still be decompressed to its end
// for the next to decompress right; text is checked as it streams.
func TestStreamCompressedFromCoder(t *testing.T) {
	sizes := []int64{4 << 20, 1000, 8 << 20}
	url, result := coderServer(t, &websocket.AcceptOptions{CompressionMode: websocket.CompressionContextTakeover}, func(c *websocket.Conn) error {
		ctx := c.CloseRead(context.Background())
		for _, n := range sizes {
			w, err := c.Writer(ctx, websocket.MessageText)
			if err != nil {
				return err
			}
			if _, err := io.Copy(w, &textPattern{n: n}); err != nil {
				return err
			}
			if err := w.Close(); err != nil {
				return err
			}
		}
		<-ctx.Done()
		return nil
	})
	got := make(chan streamRead, len(sizes))
	calls := 0
	h := &stHandler{onStream: func(_ *WebSocket, ev *events.Stream) {
		calls++
		if calls == 1 { // abandoned half-way
			n, err := io.CopyN(io.Discard, ev.Reader, sizes[0]/2)
			got <- streamRead{binary: ev.Binary, compressed: ev.Compressed, n: n, err: err}
			return
		}
		var b bytes.Buffer
		n, err := io.Copy(&b, ev.Reader)
		want, _ := io.ReadAll(&textPattern{n: n})
		if !bytes.Equal(b.Bytes(), want) {
			err = errors.New("the text differs from what was sent")
		}
		got <- streamRead{binary: ev.Binary, compressed: ev.Compressed, n: n, err: err}
	}}
	ws := stWS(t, url, WithCompression(CompressionContextTakeover))
	done := stRun(t, ws, h)
	for i, size := range sizes {
		r := stRecv(t, got, "a stream")
		want := size
		if i == 0 {
			want = size / 2
		}
		if r.err != nil || r.n != want || r.binary || r.compressed != (size > 1000) && i != 1 {
			t.Errorf("message %d: %d bytes (binary %v, compressed %v), %v; want %d text bytes", i, r.n, r.binary, r.compressed, r.err, want)
		}
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

// TestStreamCompressedToCoder: a 16 MiB text stream and a short message
// through a MessageWriter, compressed fragment by fragment (context
// takeover), read whole and right by coder/websocket.
func TestStreamCompressedToCoder(t *testing.T) {
	const size = 33 * (16 << 20 / 33) // whole units of textPattern: no character cut
	read := make(chan []streamRead, 1)
	url, result := coderServer(t, &websocket.AcceptOptions{CompressionMode: websocket.CompressionContextTakeover}, func(c *websocket.Conn) error {
		c.SetReadLimit(-1)
		var rs []streamRead
		for i := 0; i < 3; i++ {
			typ, r, err := c.Reader(context.Background())
			if err != nil {
				return err
			}
			var b bytes.Buffer
			n, err := io.Copy(&b, r)
			if err != nil {
				return err
			}
			want, _ := io.ReadAll(&textPattern{n: n})
			if !bytes.Equal(b.Bytes(), want) {
				err = errors.New("the text differs from what was sent")
			}
			rs = append(rs, streamRead{binary: typ == websocket.MessageBinary, n: n, err: err})
		}
		read <- rs
		_, _, err := c.Read(context.Background())
		if websocket.CloseStatus(err) != websocket.StatusNormalClosure {
			return err
		}
		return nil
	})
	var wire wireCount
	var written countingDialer
	ws := stWS(t, url, WithCompression(CompressionContextTakeover), WithPlugins(&wire), WithDialer(written.dial))
	ready := make(chan struct{})
	done := stRun(t, ws, HandlerFunc(func(_ *WebSocket, ev events.Event) {
		if _, ok := ev.(*events.Ready); ok {
			close(ready)
		}
	}))
	stRecv(t, ready, "Ready")
	if err := ws.SendTextStream(context.Background(), &textPattern{n: size}); err != nil {
		t.Fatalf("SendTextStream = %v", err)
	}
	for _, n := range []int64{100, 0} {
		mw, err := ws.TextWriter(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(mw, &textPattern{n: n}); err != nil {
			t.Fatal(err)
		}
		if err := mw.Close(); err != nil {
			t.Fatal(err)
		}
	}
	rs := stRecv(t, read, "the server's reading")
	for i, want := range []int64{size, 100, 0} {
		if r := rs[i]; r.err != nil || r.n != want || r.binary {
			t.Errorf("message %d: the server read %d bytes (binary %v), %v; want %d text bytes", i, r.n, r.binary, r.err, want)
		}
	}
	if n := written.n.Load(); n > size/20 {
		t.Errorf("%d bytes went on the wire for %d of repetitive text: not compressed", n, size)
	}
	if sizes := wire.sizes(); len(sizes) != 3 || sizes[0] != size {
		t.Errorf("send observers saw %v, want the three messages with their sizes", sizes)
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

// wireCount is a SendObserver recording the sizes of the text messages
// sent.
type wireCount struct {
	mu sync.Mutex
	n  []int
}

func (w *wireCount) OnSend(_ *WebSocket, ev *events.Outbound) {
	if ev.Kind == events.KindText && ev.Result == events.Sent {
		w.mu.Lock()
		w.n = append(w.n, ev.Size)
		w.mu.Unlock()
	}
}

func (w *wireCount) sizes() []int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]int(nil), w.n...)
}

// countingDialer dials TCP and counts the bytes written.
type countingDialer struct{ n atomic.Int64 }

func (d *countingDialer) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	return &countingConn{Conn: c, n: &d.n}, nil
}

type countingConn struct {
	net.Conn
	n *atomic.Int64
}

func (c *countingConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.n.Add(int64(n))
	return n, err
}
