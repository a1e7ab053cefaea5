package lomond

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/lomond-go/lomond/events"
	"github.com/lomond-go/lomond/internal/wstest"
	"go.uber.org/goleak"
)

// Helpers for the Persist tests: an event recorder a test can wait on,
// Persist run in the background, a server that restarts on the same port,
// and a per-test goroutine-leak check.

// rcTimeout bounds every wait of the Persist tests, so that a broken loop
// fails the test instead of hanging it.
const rcTimeout = 10 * time.Second

// rcNoLeak checks, once the test and all its other cleanups are done (call
// it first), that the test left no goroutine behind.
func rcNoLeak(t *testing.T) {
	t.Helper()
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
}

// rcNew is New with no proxy, quiet timers (no Poll, no automatic ping)
// and short close and handshake timeouts, failing the test on error.
func rcNew(t *testing.T, url string, opts ...Option) *WebSocket {
	t.Helper()
	base := []Option{WithoutProxy(), WithPollInterval(0), WithPingRate(0), WithCloseTimeout(2 * time.Second),
		WithHandshakeTimeout(5 * time.Second)}
	ws, err := New(url, append(base, opts...)...)
	if err != nil {
		t.Fatalf("New(%q): %v", url, err)
	}
	return ws
}

// rcConst is a constant backoff of d.
func rcConst(d time.Duration) PersistOption {
	return WithBackOff(func() backoff.BackOff { return &backoff.ConstantBackOff{Interval: d} })
}

// rcRec records events; one test goroutine may wait on it.
type rcRec struct {
	mu      sync.Mutex
	evs     []events.Event
	changed chan struct{}
}

func newRCRec() *rcRec { return &rcRec{changed: make(chan struct{}, 1)} }

func (r *rcRec) add(ev events.Event) {
	r.mu.Lock()
	r.evs = append(r.evs, ev)
	r.mu.Unlock()
	select {
	case r.changed <- struct{}{}:
	default:
	}
}

func (r *rcRec) all() []events.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]events.Event(nil), r.evs...)
}

func (r *rcRec) names() []string {
	var ns []string
	for _, ev := range r.all() {
		ns = append(ns, ev.Name())
	}
	return ns
}

func (r *rcRec) count(name string) int {
	n := 0
	for _, ev := range r.all() {
		if ev.Name() == name {
			n++
		}
	}
	return n
}

// waitCount blocks until at least n events named name were recorded.
func (r *rcRec) waitCount(t *testing.T, name string, n int) {
	t.Helper()
	timeout := time.NewTimer(rcTimeout)
	defer timeout.Stop()
	for r.count(name) < n {
		select {
		case <-r.changed:
		case <-timeout.C:
			t.Fatalf("timed out waiting for %d %s events; events: %v", n, name, r.names())
		}
	}
}

// rcAll returns the recorded events of type T, in order.
func rcAll[T events.Event](r *rcRec) []T {
	var out []T
	for _, ev := range r.all() {
		if e, ok := ev.(T); ok {
			out = append(out, e)
		}
	}
	return out
}

// rcFunc sees every event after it was recorded; stop cancels Persist's
// context.
type rcFunc func(ws *WebSocket, ev events.Event, stop context.CancelFunc)

// rcRun is a Persist running in its own goroutine.
type rcRun struct {
	rec      *rcRec
	cancel   context.CancelFunc
	done     chan error
	finished bool
	err      error
}

// rcGo starts ws.Persist with a handler that records every event and then
// calls fn. The test's cleanup cancels it and waits for it.
func rcGo(t *testing.T, ws *WebSocket, fn rcFunc, opts ...PersistOption) *rcRun {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*rcTimeout)
	r := &rcRun{rec: newRCRec(), cancel: cancel, done: make(chan error, 1)}
	h := HandlerFunc(func(ws *WebSocket, ev events.Event) {
		r.rec.add(ev)
		if fn != nil {
			fn(ws, ev, cancel)
		}
	})
	go func() { r.done <- ws.Persist(ctx, h, opts...) }()
	t.Cleanup(func() {
		cancel()
		if !r.join() {
			t.Errorf("Persist did not return within %v of its cancellation", rcTimeout)
		}
	})
	return r
}

// join waits for Persist to return and keeps its error in r.err; it
// reports false if Persist did not return within rcTimeout.
func (r *rcRun) join() bool {
	if r.finished {
		return true
	}
	timeout := time.NewTimer(rcTimeout)
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
func (r *rcRun) wait(t *testing.T) error {
	t.Helper()
	if !r.join() {
		t.Fatalf("Persist did not return within %v; events: %v", rcTimeout, r.rec.names())
	}
	return r.err
}

// stop cancels Persist and returns its error.
func (r *rcRun) stop(t *testing.T) error {
	t.Helper()
	r.cancel()
	return r.wait(t)
}

// rcPersist runs Persist until it returns (fn may call stop).
func rcPersist(t *testing.T, ws *WebSocket, fn rcFunc, opts ...PersistOption) (*rcRec, error) {
	t.Helper()
	r := rcGo(t, ws, fn, opts...)
	return r.rec, r.wait(t)
}

// rcRefusedAddr returns a loopback address where connections are refused,
// and that no other process can take while the test runs: the port is held
// by the client end of a connection to a throwaway listener. (A port that
// was merely closed could be reused by a concurrent test binary's server.)
func rcRefusedAddr(t *testing.T) string {
	t.Helper()
	addr, release := rcReservePort(t)
	t.Cleanup(release)
	return addr
}

// rcReservePort holds a loopback port without listening on it; release
// frees it (for a server to listen there).
func rcReservePort(t *testing.T) (addr string, release func()) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	// An explicit bind: connect() would pick a port that later outgoing
	// connections may share, and that would block a listener there.
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}}
	c, err := d.Dial("tcp", ln.Addr().String())
	if err != nil {
		ln.Close()
		t.Fatal(err)
	}
	var once sync.Once
	return c.LocalAddr().String(), func() {
		once.Do(func() {
			// Abort (RST) rather than close, so that the port is free at
			// once instead of lingering in TIME_WAIT.
			_ = c.(*net.TCPConn).SetLinger(0)
			c.Close()
			ln.Close()
		})
	}
}

// rcReject is a script that answers the upgrade with status and header.
func rcReject(status int, header http.Header) func(*wstest.Conn) {
	return func(c *wstest.Conn) {
		if _, err := c.ReadRequest(); err == nil {
			_ = c.Reject(status, header, http.StatusText(status))
		}
	}
}

// rcPortServer is a websocket server on a fixed loopback port that can be
// stopped (listener and every connection closed, like a killed process) and
// started again on the same port. Each connection completes the handshake,
// discards the client's messages and answers its close frame.
type rcPortServer struct {
	t        *testing.T
	addr     string
	release  func() // frees the reserved port before the first start
	accepted atomic.Int64

	mu    sync.Mutex
	ln    net.Listener
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

// newRCPortServer returns a stopped server on a reserved port (refusing
// connections until started); cleanup stops it.
func newRCPortServer(t *testing.T) *rcPortServer {
	addr, release := rcReservePort(t)
	s := &rcPortServer{t: t, addr: addr, release: release, conns: map[net.Conn]struct{}{}}
	t.Cleanup(release)
	t.Cleanup(s.stop)
	return s
}

func (s *rcPortServer) url() string { return "ws://" + s.addr + "/" }

// start listens on the server's port.
func (s *rcPortServer) start() {
	s.t.Helper()
	s.release()
	ln, err := net.Listen("tcp", s.addr)
	// Between stop (or the reservation's release) and this Listen, the
	// port was free: once in a long while another process's socket takes
	// it. Wait for it to go away, a bounded time.
	for tries := 0; err != nil && errors.Is(err, syscall.EADDRINUSE) && tries < 100; tries++ {
		<-time.After(20 * time.Millisecond)
		ln, err = net.Listen("tcp", s.addr)
	}
	if err != nil {
		s.t.Fatalf("listen again on %s: %v", s.addr, err)
	}
	s.mu.Lock()
	s.ln = ln
	s.mu.Unlock()
	s.wg.Add(1)
	go s.acceptLoop(ln)
}

func (s *rcPortServer) acceptLoop(ln net.Listener) {
	defer s.wg.Done()
	for {
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		s.accepted.Add(1)
		s.mu.Lock()
		if s.ln != ln {
			s.mu.Unlock()
			nc.Close()
			continue
		}
		s.conns[nc] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go s.serve(nc)
	}
}

func (s *rcPortServer) serve(nc net.Conn) {
	defer s.wg.Done()
	defer func() {
		nc.Close()
		s.mu.Lock()
		delete(s.conns, nc)
		s.mu.Unlock()
	}()
	br := bufio.NewReader(nc)
	req, err := http.ReadRequest(br)
	if err != nil {
		return
	}
	resp := "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Accept: " + wstest.AcceptKey(req.Header.Get("Sec-WebSocket-Key")) + "\r\n\r\n"
	if _, err := io.WriteString(nc, resp); err != nil {
		return
	}
	for {
		op, payload, err := rcReadFrame(br)
		if err != nil {
			return
		}
		if op == wstest.OpClose {
			_, _ = nc.Write(wstest.Frame{Fin: true, Opcode: wstest.OpClose, Payload: payload}.Encode())
			return
		}
	}
}

// stop closes the listener and every connection, and waits for the
// server's goroutines. A stopped server may be started again.
func (s *rcPortServer) stop() {
	s.mu.Lock()
	if s.ln != nil {
		s.ln.Close()
		s.ln = nil
	}
	for nc := range s.conns {
		nc.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// rcReadFrame reads one client frame, unmasked.
func rcReadFrame(br *bufio.Reader) (op byte, payload []byte, err error) {
	var h [2]byte
	if _, err = io.ReadFull(br, h[:]); err != nil {
		return 0, nil, err
	}
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		var b [2]byte
		if _, err = io.ReadFull(br, b[:]); err != nil {
			return 0, nil, err
		}
		n = uint64(binary.BigEndian.Uint16(b[:]))
	case 127:
		var b [8]byte
		if _, err = io.ReadFull(br, b[:]); err != nil {
			return 0, nil, err
		}
		n = binary.BigEndian.Uint64(b[:])
	}
	var key [4]byte
	if h[1]&0x80 != 0 {
		if _, err = io.ReadFull(br, key[:]); err != nil {
			return 0, nil, err
		}
	}
	if n > 1<<20 {
		return 0, nil, errors.New("frame too large for the test server")
	}
	payload = make([]byte, n)
	if _, err = io.ReadFull(br, payload); err != nil {
		return 0, nil, err
	}
	for i := range payload {
		payload[i] ^= key[i%4]
	}
	return h[0] & 0x0f, payload, nil
}

// rcAnswerClose is a script that accepts the handshake, discards messages
// and answers the client's close frame with the same code and reason.
func rcAnswerClose(c *wstest.Conn) {
	if _, err := c.Handshake(); err != nil {
		return
	}
	if code, reason, err := c.ExpectClose(); err == nil {
		_ = c.WriteFrame(wstest.Close(code, reason))
	}
}

// rcCloseRecorder is rcAnswerClose that also reports the client's close
// code on codes.
func rcCloseRecorder(codes chan<- int) func(*wstest.Conn) {
	return func(c *wstest.Conn) {
		if _, err := c.Handshake(); err != nil {
			return
		}
		code, reason, err := c.ExpectClose()
		if err != nil {
			return
		}
		codes <- code
		_ = c.WriteFrame(wstest.Close(code, reason))
	}
}

// rcRecv returns the next value from ch, failing the test after rcTimeout.
func rcRecv[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	timeout := time.NewTimer(rcTimeout)
	defer timeout.Stop()
	select {
	case v := <-ch:
		return v
	case <-timeout.C:
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}
