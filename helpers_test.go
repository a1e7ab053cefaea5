package lomond

import (
	"context"
	"fmt"
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

	"github.com/cenkalti/backoff/v4"
	"github.com/coder/websocket"
	"github.com/lomond-go/lomond/events"
	"github.com/lomond-go/lomond/internal/testkit"
	"github.com/lomond-go/lomond/internal/wstest"
)

// Helpers of the package's tests that need the package itself (a
// WebSocket, a handler). Everything else a test needs (the event recorder,
// waits, servers, frame reading) is in internal/testkit.

// newQuietWS is New with no proxy, quiet timers (no Poll, no automatic ping)
// and short close and handshake timeouts, failing the test on error.
func newQuietWS(t *testing.T, url string, opts ...Option) *WebSocket {
	t.Helper()
	base := []Option{WithoutProxy(), WithPollInterval(0), WithPingRate(0), WithCloseTimeout(2 * time.Second),
		WithHandshakeTimeout(5 * time.Second)}
	ws, err := New(url, append(base, opts...)...)
	if err != nil {
		t.Fatalf("New(%q): %v", url, err)
	}
	return ws
}

// constantBackOff is a constant backoff of d.
func constantBackOff(d time.Duration) PersistOption {
	return WithBackOff(func() backoff.BackOff { return &backoff.ConstantBackOff{Interval: d} })
}

// persistFunc sees every event after it was recorded; stop cancels Persist's
// context.
type persistFunc func(ws *WebSocket, ev events.Event, stop context.CancelFunc)

// persistRun is a Persist running in its own goroutine.
type persistRun struct {
	rec      *testkit.EventRecorder
	cancel   context.CancelFunc
	done     chan error
	finished bool
	err      error
}

// goPersist starts ws.Persist with a handler that records every event and
// then calls fn. The test's cleanup cancels it and waits for it.
func goPersist(t *testing.T, ws *WebSocket, fn persistFunc, opts ...PersistOption) *persistRun {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*testkit.Timeout)
	r := &persistRun{rec: new(testkit.EventRecorder), cancel: cancel, done: make(chan error, 1)}
	h := HandlerFunc(func(ws *WebSocket, ev events.Event) {
		r.rec.Add(ev)
		if fn != nil {
			fn(ws, ev, cancel)
		}
	})
	go func() { r.done <- ws.Persist(ctx, h, opts...) }()
	t.Cleanup(func() {
		cancel()
		if !r.join() {
			t.Errorf("Persist did not return within %v of its cancellation", testkit.Timeout)
		}
	})
	return r
}

// join waits for Persist to return and keeps its error in r.err; it
// reports false if Persist did not return within testkit.Timeout.
func (r *persistRun) join() bool {
	if r.finished {
		return true
	}
	timeout := time.NewTimer(testkit.Timeout)
	defer timeout.Stop()
	select {
	case r.err = <-r.done:
		r.finished = true
		return true
	case <-timeout.C:
		return false
	}
}

// wait returns Persist's error, failing the test if it does not return.
func (r *persistRun) wait(t *testing.T) error {
	t.Helper()
	if !r.join() {
		t.Fatalf("Persist did not return within %v; events: %v", testkit.Timeout, r.rec.Names())
	}
	return r.err
}

// stop cancels Persist and returns its error.
func (r *persistRun) stop(t *testing.T) error {
	t.Helper()
	r.cancel()
	return r.wait(t)
}

// runPersist runs Persist until it returns (fn may call stop).
func runPersist(t *testing.T, ws *WebSocket, fn persistFunc, opts ...PersistOption) (*testkit.EventRecorder, error) {
	t.Helper()
	r := goPersist(t, ws, fn, opts...)
	return r.rec, r.wait(t)
}

// newTestWS makes a WebSocket for url with test defaults: no proxy from the
// environment, one Poll (right after Ready), no automatic pings, and a
// close timeout that ends a stuck test quickly.
func newTestWS(t *testing.T, url string, opts ...Option) *WebSocket {
	t.Helper()
	base := []Option{WithoutProxy(), WithPollInterval(time.Hour), WithPingRate(0), WithCloseTimeout(10 * time.Second)}
	ws, err := New(url, append(base, opts...)...)
	if err != nil {
		t.Fatalf("New(%q): %v", url, err)
	}
	return ws
}

// mustNew is New that fails the test on error.
func mustNew(t *testing.T, url string, opts ...Option) *WebSocket {
	t.Helper()
	ws, err := New(url, opts...)
	if err != nil {
		t.Fatalf("New(%q): %v", url, err)
	}
	return ws
}

// runRecorded runs one session, recording every event and then passing it
// to fn (if not nil). A 30 s context guards against a hung test.
func runRecorded(t *testing.T, ws *WebSocket, fn func(ws *WebSocket, ev events.Event)) (*testkit.EventRecorder, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rec := new(testkit.EventRecorder)
	err := ws.Run(ctx, recording(rec, fn))
	return rec, err
}

// runAgainstScript runs one session of newTestWS(t, srv.URL(), opts...) with
// context.Background, recording every event and then passing it to fn (if
// not nil), and waits for the server's script to finish (done is the
// channel testkit.ScriptServer returned with srv). It returns the events
// and Run's error.
func runAgainstScript(t *testing.T, srv *wstest.Server, done <-chan struct{}, fn func(ws *WebSocket, ev events.Event),
	opts ...Option) (*testkit.EventRecorder, error) {
	t.Helper()
	ws := newTestWS(t, srv.URL(), opts...)
	rec := new(testkit.EventRecorder)
	err := ws.Run(context.Background(), recording(rec, fn))
	testkit.WaitScript(t, done)
	return rec, err
}

// recording returns a handler that records every event in rec and then
// passes it to also, if not nil.
func recording(rec *testkit.EventRecorder, also func(ws *WebSocket, ev events.Event)) HandlerFunc {
	return func(ws *WebSocket, ev events.Event) {
		rec.Add(ev)
		if also != nil {
			also(ws, ev)
		}
	}
}

// rangeEvents runs a session with a range loop over Events, recording every
// event in rec and then passing it to also, if not nil.
func rangeEvents(ctx context.Context, ws *WebSocket, rec *testkit.EventRecorder, also func(ws *WebSocket, ev events.Event)) {
	h := recording(rec, also)
	for ev := range ws.Events(ctx) {
		h(ws, ev)
	}
}

// goRun runs ws with h in the background; the channel gets Run's result.
func goRun(t *testing.T, ws *WebSocket, h EventHandler) <-chan error {
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
		case <-time.After(3 * testkit.Timeout):
			t.Error("Run did not return by the end of the test")
		}
	})
	return done
}

// The stream tests' helpers: generated payloads, a coder/websocket server
// that reads or writes one, and the memory bound.

// streamTimeout bounds the waits of the stream tests, which move up to
// hundreds of MiB.
const streamTimeout = 20 * time.Second

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
	if raceEnabled {
		return 48<<20 + size/4
	}
	return 48 << 20
}

// coderWriteMessages is a coderServer script that sends each of msgs, read
// to its end, as a message of type typ (coder/websocket fragments it),
// and then waits for the client's close; reading in the background answers
// pings and sees the close.
func coderWriteMessages(typ websocket.MessageType, msgs ...io.Reader) func(c *websocket.Conn) error {
	return func(c *websocket.Conn) error {
		ctx := c.CloseRead(context.Background())
		for _, m := range msgs {
			w, err := c.Writer(ctx, typ)
			if err != nil {
				return err
			}
			if _, err := io.Copy(w, m); err != nil {
				return err
			}
			if err := w.Close(); err != nil {
				return err
			}
		}
		<-ctx.Done()
		return nil
	}
}

// closeStreamSession closes ws with 1000 "done" and checks, waiting up to
// streamTimeout for each, that Run (reporting on done) and the
// coderServer's script (reporting on result) both end without error.
func closeStreamSession(t *testing.T, ws *WebSocket, done, result <-chan error) {
	t.Helper()
	if err := ws.Close(StatusNormal, "done"); err != nil {
		t.Errorf("Close = %v", err)
	}
	if err := testkit.RecvWithin(t, streamTimeout, done, "Run's return"); err != nil {
		t.Errorf("Run = %v", err)
	}
	if err := testkit.RecvWithin(t, streamTimeout, result, "the server's end"); err != nil {
		t.Errorf("server: %v", err)
	}
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
	return countingConn{Conn: c, read: new(atomic.Int64), written: &d.n}, nil
}

// coderReading is what a coder/websocket server (a queueServer, a
// pausedCoderServer) read: the text messages, and the error that ended
// reading (a close 1000 from the client is the clean end).
type coderReading struct {
	texts []string
	err   error
}

// readCoderTexts reads every message on the server's end c until reading
// fails or a message is not text, and returns the texts and the error that
// ended reading.
func readCoderTexts(c *websocket.Conn) coderReading {
	var rd coderReading
	for {
		typ, b, err := c.Read(context.Background())
		if err != nil {
			rd.err = err
			return rd
		}
		if typ != websocket.MessageText {
			rd.err = fmt.Errorf("a %v message", typ)
			return rd
		}
		rd.texts = append(rd.texts, string(b))
	}
}

// closeAndRead closes ws with 1000 "done", checks that Run (reporting on
// runDone) returns nil, waits for the coder/websocket server's reading on
// reading, checks that it ended at the client's close 1000, and returns it.
func closeAndRead(t *testing.T, ws *WebSocket, runDone <-chan error, reading <-chan coderReading) coderReading {
	t.Helper()
	if err := ws.Close(StatusNormal, "done"); err != nil {
		t.Errorf("Close = %v", err)
	}
	if err := testkit.Recv(t, runDone, "Run's return"); err != nil {
		t.Errorf("Run = %v, want nil (the client's close completed)", err)
	}
	rd := testkit.Recv(t, reading, "the server's reading")
	rd.checkCleanEnd(t)
	return rd
}

// coderEcho is the loop of a coder/websocket echo server: it sends each
// message read on c back with its type, until reading or writing fails
// (Read answers the client's close).
func coderEcho(c *websocket.Conn) {
	for {
		typ, b, err := c.Read(context.Background())
		if err != nil {
			return
		}
		if err := c.Write(context.Background(), typ, b); err != nil {
			return
		}
	}
}

// checkCleanEnd checks that the server read until the client's close 1000.
func (r coderReading) checkCleanEnd(t *testing.T) {
	t.Helper()
	if websocket.CloseStatus(r.err) != websocket.StatusNormalClosure {
		t.Errorf("server: reading ended with %v, want the client's close 1000", r.err)
	}
}
