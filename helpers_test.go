package lomond

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
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

// Helpers of the package's tests that need the package itself (a
// WebSocket, a handler). Everything else a test needs (the event recorder,
// waits, servers, frame reading) is in internal/testkit.

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

// evLog records the events of a session, and can call a hook after each.
// It is used from the goroutine that runs the session only.
type evLog struct {
	evs  []events.Event
	hook func(ws *WebSocket, ev events.Event)
}

func (l *evLog) record(ws *WebSocket, ev events.Event) {
	l.evs = append(l.evs, ev)
	if l.hook != nil {
		l.hook(ws, ev)
	}
}

// handler returns a handler that records every event.
func (l *evLog) handler() HandlerFunc { return l.record }

// rangeEvents runs a session with a range loop over Events, recording every
// event.
func (l *evLog) rangeEvents(ctx context.Context, ws *WebSocket) {
	for ev := range ws.Events(ctx) {
		l.record(ws, ev)
	}
}

// lines returns one line per event: its Name and its key attributes.
func (l *evLog) lines() []string {
	out := make([]string, len(l.evs))
	for i, ev := range l.evs {
		out[i] = describeEvent(ev)
	}
	return out
}

// describeEvent renders ev as its Name followed by its key attributes.
func describeEvent(ev events.Event) string {
	var attrs string
	switch e := ev.(type) {
	case *events.Connecting:
		attrs = e.URL
	case *events.Connected:
		attrs = fmt.Sprintf("%s proxy=%q", e.URL, e.Proxy)
	case *events.Rejected:
		attrs = fmt.Sprint(e.StatusCode)
	case *events.Ready:
		status := 0
		if e.Response != nil {
			status = e.Response.StatusCode
		}
		attrs = fmt.Sprintf("%d protocol=%q extensions=%q", status, e.Protocol, e.Extensions)
	case *events.Ping:
		attrs = fmt.Sprintf("%q", e.Data)
	case *events.Pong:
		attrs = fmt.Sprintf("%q rtt=%v", e.Data, e.RTT)
	case *events.Text:
		attrs = payloadAttr([]byte(e.Text))
	case *events.Binary:
		attrs = payloadAttr(e.Data)
	case *events.Closing:
		attrs = fmt.Sprintf("%d %q", e.Code, e.Reason)
	case *events.Closed:
		attrs = fmt.Sprintf("%d %q", e.Code, e.Reason)
	case *events.ProtocolError:
		attrs = fmt.Sprint(e.Code)
	case *events.Disconnected:
		attrs = fmt.Sprintf("graceful=%v err=%v", e.Graceful, e.Err != nil)
	}
	if attrs == "" {
		return ev.Name()
	}
	return ev.Name() + " " + attrs
}

func payloadAttr(p []byte) string {
	if len(p) > 40 {
		return fmt.Sprintf("<%d bytes>", len(p))
	}
	return fmt.Sprintf("%q", p)
}

// opening returns the lines of a session's opening up to the Poll that
// follows Ready, for a server that chose no subprotocol.
func opening(url string) []string {
	return []string{
		"connecting " + url,
		"connected " + url + ` proxy=""`,
		`ready 101 protocol="" extensions=[]`,
		"poll",
	}
}

// seq joins line groups into one expected sequence.
func seq(groups ...[]string) []string {
	var out []string
	for _, g := range groups {
		out = append(out, g...)
	}
	return out
}

func expectLines(t *testing.T, l *evLog, want []string) {
	t.Helper()
	got := l.lines()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("events:\n\t%s\nwant:\n\t%s", strings.Join(got, "\n\t"), strings.Join(want, "\n\t"))
	}
	checkMonotone(t, l.evs)
}

// checkMonotone checks that ReceivedTime never goes backwards.
func checkMonotone(t *testing.T, evs []events.Event) {
	t.Helper()
	for i := 1; i < len(evs); i++ {
		if evs[i].ReceivedTime().Before(evs[i-1].ReceivedTime()) {
			t.Errorf("event %d (%s) received at %v, before event %d (%s) at %v", i, evs[i].Name(),
				evs[i].ReceivedTime(), i-1, evs[i-1].Name(), evs[i-1].ReceivedTime())
		}
		if evs[i].ReceivedTime().IsZero() {
			t.Errorf("event %d (%s) has a zero ReceivedTime", i, evs[i].Name())
		}
	}
}

// lastEvent returns the last event of type T in l.
func lastEvent[T events.Event](t *testing.T, l *evLog) T {
	t.Helper()
	for i := len(l.evs) - 1; i >= 0; i-- {
		if e, ok := l.evs[i].(T); ok {
			return e
		}
	}
	var zero T
	t.Fatalf("no %T event in %q", zero, l.lines())
	return zero
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

// scriptServer starts a wstest server whose script reports on done each time
// it returns, so that a test can wait for the server's checks to finish
// before it ends (the server's cleanup closes connections still open).
func scriptServer(t *testing.T, script func(c *wstest.Conn)) (srv *wstest.Server, done <-chan struct{}) {
	ch := make(chan struct{}, 16)
	srv = wstest.NewServer(t, func(c *wstest.Conn) {
		defer func() {
			select {
			case ch <- struct{}{}:
			default:
			}
		}()
		script(c)
	})
	return srv, ch
}

// waitScript waits for one run of a server script to return.
func waitScript(t *testing.T, done <-chan struct{}) {
	t.Helper()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the server script did not finish")
	}
}

func srvHandshake(t *testing.T, c *wstest.Conn) bool {
	t.Helper()
	if _, err := c.Handshake(); err != nil {
		t.Errorf("server: handshake: %v", err)
		return false
	}
	return true
}

func srvWrite(t *testing.T, c *wstest.Conn, frames ...wstest.Frame) bool {
	t.Helper()
	if err := c.WriteRaw(wstest.EncodeAll(frames...)); err != nil {
		t.Errorf("server: write: %v", err)
		return false
	}
	return true
}

// srvExpectClose reads until a close frame and checks its code and reason.
func srvExpectClose(t *testing.T, c *wstest.Conn, code int, reason string) bool {
	t.Helper()
	gotCode, gotReason, err := c.ExpectClose()
	if err != nil {
		t.Errorf("server: waiting for close %d: %v", code, err)
		return false
	}
	if gotCode != code || gotReason != reason {
		t.Errorf("server: got close %d %q, want %d %q", gotCode, gotReason, code, reason)
	}
	return true
}

// srvExpectMessage reads one message and checks it.
func srvExpectMessage(t *testing.T, c *wstest.Conn, op byte, payload string) bool {
	t.Helper()
	gotOp, p, err := c.ReadMessage()
	if err != nil {
		t.Errorf("server: waiting for opcode %#x %q: %v", op, payload, err)
		return false
	}
	if gotOp != op || string(p) != payload {
		t.Errorf("server: got opcode %#x %q, want %#x %q", gotOp, p, op, payload)
	}
	return true
}

// srvExpectEOF checks that the client sends nothing more and ends the TCP
// connection cleanly.
func srvExpectEOF(t *testing.T, c *wstest.Conn) {
	t.Helper()
	f, err := c.ReadFrame()
	switch {
	case err == nil:
		t.Errorf("server: client sent a frame after its close frame: opcode %#x payload %q", f.Opcode, f.Payload)
	case err != io.EOF:
		t.Errorf("server: after the close handshake: %v, want io.EOF", err)
	}
}

// srvDrain reads until the client closes the connection, failing on any
// frame.
func srvDrain(t *testing.T, c *wstest.Conn) {
	t.Helper()
	if f, err := c.ReadFrame(); err == nil {
		t.Errorf("server: unexpected frame: opcode %#x payload %q", f.Opcode, f.Payload)
	}
}

// nxdomainDialer dials through a resolver whose DNS server, reached over an
// in-memory pipe, answers NXDOMAIN to every query: a DNS failure that needs
// no network.
func nxdomainDialer() DialFunc {
	r := &net.Resolver{PreferGo: true, Dial: func(context.Context, string, string) (net.Conn, error) {
		client, server := net.Pipe()
		go serveNXDOMAIN(server)
		return client, nil
	}}
	d := &net.Dialer{Resolver: r}
	return d.DialContext
}

// serveNXDOMAIN answers length-prefixed DNS queries (the stream form the
// resolver uses on a non-packet connection) with NXDOMAIN until c closes.
func serveNXDOMAIN(c net.Conn) {
	defer c.Close()
	for {
		var n [2]byte
		if _, err := io.ReadFull(c, n[:]); err != nil {
			return
		}
		q := make([]byte, int(n[0])<<8|int(n[1]))
		if _, err := io.ReadFull(c, q); err != nil || len(q) < 12 {
			return
		}
		resp := append([]byte(nil), q...)
		resp[2] = 0x80 | 0x04 | q[2]&0x79 // response, authoritative, opcode and RD copied
		resp[3] = 0x80 | 3                // recursion available, NXDOMAIN
		if _, err := c.Write(append(n[:], resp...)); err != nil {
			return
		}
	}
}

// tdRec records the events of one session. Anything delivered after the
// session's last event (Disconnected or ConnectFail) is also kept in late.
type tdRec struct {
	mu   sync.Mutex
	evs  []events.Event
	late []events.Event
	done bool
}

func (r *tdRec) add(ev events.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.done {
		r.late = append(r.late, ev)
	}
	r.evs = append(r.evs, ev)
	switch ev.(type) {
	case *events.Disconnected, *events.ConnectFail:
		r.done = true
	}
}

func (r *tdRec) all() []events.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.evs)
}

// lateCount returns how many events arrived after the session's last event.
func (r *tdRec) lateCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.late)
}

func (r *tdRec) names() []string {
	var ns []string
	for _, ev := range r.all() {
		ns = append(ns, ev.Name())
	}
	return ns
}

// tdAll returns the recorded events of type T, in order.
func tdAll[T events.Event](r *tdRec) []T {
	var out []T
	for _, ev := range r.all() {
		if e, ok := ev.(T); ok {
			out = append(out, e)
		}
	}
	return out
}

// tdOne returns the first recorded event of type T, failing the test if
// there is none.
func tdOne[T events.Event](t *testing.T, r *tdRec) T {
	t.Helper()
	all := tdAll[T](r)
	if len(all) == 0 {
		var zero T
		t.Fatalf("no %T event; events: %v", zero, r.names())
	}
	return all[0]
}

// tdNew is New that fails the test on error.
func tdNew(t *testing.T, url string, opts ...Option) *WebSocket {
	t.Helper()
	ws, err := New(url, opts...)
	if err != nil {
		t.Fatalf("New(%q): %v", url, err)
	}
	return ws
}

// tdRun runs one session, recording every event and then passing it to fn
// (if not nil). A 30 s context guards against a hung test.
func tdRun(t *testing.T, ws *WebSocket, fn func(ws *WebSocket, ev events.Event)) (*tdRec, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rec := &tdRec{}
	err := ws.Run(ctx, HandlerFunc(func(ws *WebSocket, ev events.Event) {
		rec.add(ev)
		if fn != nil {
			fn(ws, ev)
		}
	}))
	return rec, err
}
