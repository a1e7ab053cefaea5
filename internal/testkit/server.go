package testkit

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/lomond-go/lomond/internal/wstest"
)

// ScriptServer starts a wstest server whose script reports on done each
// time it returns, so that a test can wait for the server's checks to
// finish before it ends (the server's cleanup closes connections still
// open).
func ScriptServer(t testing.TB, script func(c *wstest.Conn)) (srv *wstest.Server, done <-chan struct{}) {
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

// WaitScript waits for one run of a ScriptServer's script to return.
func WaitScript(t testing.TB, done <-chan struct{}) {
	t.Helper()
	if _, ok := recv(done); !ok {
		t.Fatal("the server script did not finish")
	}
}

// The steps below run in a server script. They report failures with
// t.Errorf (safe from the script's goroutine: the server's cleanup waits
// for scripts) and return false when the script should stop.

// Handshake accepts the client's opening handshake.
func Handshake(t testing.TB, c *wstest.Conn) bool {
	t.Helper()
	if _, err := c.Handshake(); err != nil {
		t.Errorf("server: handshake: %v", err)
		return false
	}
	return true
}

// Write writes frames in one write.
func Write(t testing.TB, c *wstest.Conn, frames ...wstest.Frame) bool {
	t.Helper()
	if err := c.WriteRaw(wstest.EncodeAll(frames...)); err != nil {
		t.Errorf("server: write: %v", err)
		return false
	}
	return true
}

// ExpectClose reads until a close frame and checks its code and reason.
func ExpectClose(t testing.TB, c *wstest.Conn, code int, reason string) bool {
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

// ExpectMessage reads one message and checks it.
func ExpectMessage(t testing.TB, c *wstest.Conn, op byte, payload string) bool {
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

// ExpectEOF checks that the client sends nothing more and ends the TCP
// connection cleanly.
func ExpectEOF(t testing.TB, c *wstest.Conn) {
	t.Helper()
	f, err := c.ReadFrame()
	switch {
	case err == nil:
		t.Errorf("server: client sent a frame after its close frame: opcode %#x payload %q", f.Opcode, f.Payload)
	case err != io.EOF:
		t.Errorf("server: after the close handshake: %v, want io.EOF", err)
	}
}

// Drain reads until the client closes the connection, failing on any
// frame.
func Drain(t testing.TB, c *wstest.Conn) {
	t.Helper()
	if f, err := c.ReadFrame(); err == nil {
		t.Errorf("server: unexpected frame: opcode %#x payload %q", f.Opcode, f.Payload)
	}
}

// Reject is a script that answers the upgrade with status and header.
func Reject(status int, header http.Header) func(*wstest.Conn) {
	return func(c *wstest.Conn) {
		if _, err := c.ReadRequest(); err == nil {
			_ = c.Reject(status, header, http.StatusText(status))
		}
	}
}

// AnswerClose is a script that accepts the handshake, discards messages
// and answers the client's close frame with the same code and reason.
func AnswerClose(c *wstest.Conn) {
	if _, err := c.Handshake(); err != nil {
		return
	}
	if code, reason, err := c.ExpectClose(); err == nil {
		_ = c.WriteFrame(wstest.Close(code, reason))
	}
}

// AnswerClientClose is a script that accepts the handshake, expects the
// client's close frame with code and reason, answers it with a close frame
// of replyCode and replyReason, and checks that the client then ends the
// TCP connection cleanly. It reports failures with t.Errorf.
func AnswerClientClose(t testing.TB, code int, reason string, replyCode int, replyReason string) func(*wstest.Conn) {
	return func(c *wstest.Conn) {
		if Handshake(t, c) && ExpectClose(t, c, code, reason) && Write(t, c, wstest.Close(replyCode, replyReason)) {
			ExpectEOF(t, c)
		}
	}
}

// CloseCodes is AnswerClose that also reports the client's close code on
// codes.
func CloseCodes(codes chan<- int) func(*wstest.Conn) {
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

// IgnoreAll is a script that accepts the handshake and then reads and
// ignores every frame (no pong, no close reply) until the client hangs up.
func IgnoreAll(c *wstest.Conn) {
	if _, err := c.Handshake(); err != nil {
		return
	}
	_, _ = io.Copy(io.Discard, c.Reader())
}

// PortServer is a websocket server on a fixed loopback port that can be
// stopped (listener and every connection closed, like a killed process) and
// started again on the same port. Each connection completes the handshake,
// discards the client's messages and answers its close frame.
type PortServer struct {
	t        testing.TB
	addr     string
	release  func() // frees the reserved port before the first start
	accepted atomic.Int64

	mu    sync.Mutex
	ln    net.Listener
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

// NewPortServer returns a stopped server on a reserved port (refusing
// connections until started); cleanup stops it.
func NewPortServer(t testing.TB) *PortServer {
	addr, release := ReservePort(t)
	s := &PortServer{t: t, addr: addr, release: release, conns: map[net.Conn]struct{}{}}
	t.Cleanup(release)
	t.Cleanup(s.Stop)
	return s
}

// URL is the server's ws:// URL.
func (s *PortServer) URL() string { return "ws://" + s.addr + "/" }

// Accepted returns how many connections the server accepted.
func (s *PortServer) Accepted() int64 { return s.accepted.Load() }

// Start listens on the server's port.
func (s *PortServer) Start() {
	s.t.Helper()
	s.release()
	ln, err := net.Listen("tcp", s.addr)
	// Between Stop (or the reservation's release) and this Listen, the
	// port was free: once in a long while another process's socket takes
	// it. Wait for it to go away, a bounded time.
	for tries := 0; err != nil && errors.Is(err, syscall.EADDRINUSE) && tries < 100; tries++ {
		<-after(20 * time.Millisecond)
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

func (s *PortServer) acceptLoop(ln net.Listener) {
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

func (s *PortServer) serve(nc net.Conn) {
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
		op, payload, err := ReadFrame(br)
		if err != nil {
			return
		}
		if op == wstest.OpClose {
			_, _ = nc.Write(wstest.Frame{Fin: true, Opcode: wstest.OpClose, Payload: payload}.Encode())
			return
		}
	}
}

// Stop closes the listener and every connection, and waits for the
// server's goroutines. A stopped server may be started again.
func (s *PortServer) Stop() {
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

// ExpectFrame reads one frame and checks its opcode, FIN bit and length,
// and its payload if want is not nil.
func ExpectFrame(t testing.TB, c *wstest.Conn, op byte, fin bool, n int, want []byte) bool {
	t.Helper()
	f, err := c.ReadFrame()
	if err != nil {
		t.Errorf("server: waiting for opcode %#x: %v", op, err)
		return false
	}
	if f.Opcode != op || f.Fin != fin || len(f.Payload) != n || want != nil && !bytes.Equal(f.Payload, want) {
		t.Errorf("server: got opcode %#x fin %v %d bytes, want opcode %#x fin %v %d bytes", f.Opcode, f.Fin, len(f.Payload), op, fin, n)
		return false
	}
	return true
}

// HandshakeThenAwait accepts the client's opening handshake and then waits
// until ch is closed or yields. It returns false, for the script to
// return, when the handshake fails or the connection ends first.
func HandshakeThenAwait(c *wstest.Conn, ch <-chan struct{}) bool {
	if _, err := c.Handshake(); err != nil {
		return false
	}
	select {
	case <-ch:
		return true
	case <-c.Done():
		return false
	}
}

// ReadMessages is the read loop of a server script after its handshake: it
// reads the client's messages and passes each one but a close frame to
// onMessage (nil: discard them), until the client's close frame, whose
// payload it returns with closed true, or until reading fails (closed
// false).
func ReadMessages(c *wstest.Conn, onMessage func(op byte, p []byte)) (closePayload []byte, closed bool) {
	for {
		op, p, err := c.ReadMessage()
		if err != nil {
			return nil, false
		}
		if op == wstest.OpClose {
			return p, true
		}
		if onMessage != nil {
			onMessage(op, p)
		}
	}
}

// ServeMessages is ReadMessages that answers the client's close frame with
// a close frame carrying the same payload.
func ServeMessages(c *wstest.Conn, onMessage func(op byte, p []byte)) {
	if p, ok := ReadMessages(c, onMessage); ok {
		_ = c.WriteFrame(wstest.Frame{Fin: true, Opcode: wstest.OpClose, Payload: p})
	}
}
