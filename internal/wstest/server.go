package wstest

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"sync"
	"sync/atomic"
	"testing"
)

// Server is a WebSocket test server listening on 127.0.0.1 that runs a
// script for every accepted connection. Create it with NewServer or
// NewTLSServer; it is closed automatically by t.Cleanup.
type Server struct {
	t         testing.TB
	ln        net.Listener
	script    func(c *Conn)
	tr        *tracker
	accepted  atomic.Int64
	closeOnce sync.Once

	// TLS only (nil for plain servers).
	tlsConfig *tls.Config
	certPEM   []byte
	certPool  *x509.CertPool
}

// NewServer starts a plain-TCP server on 127.0.0.1:0 that runs script in
// its own goroutine for each accepted connection. The connection is closed
// when script returns. t.Cleanup(s.Close) is registered.
func NewServer(t testing.TB, script func(c *Conn)) *Server {
	t.Helper()
	return startServer(t, script, nil)
}

func startServer(t testing.TB, script func(c *Conn), s *Server) *Server {
	t.Helper()
	if script == nil {
		t.Fatal("wstest: nil script")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("wstest: listen: %v", err)
	}
	if s == nil {
		s = &Server{}
	}
	s.t, s.ln, s.script, s.tr = t, ln, script, newTracker(t)
	s.tr.wg.Add(1)
	go s.acceptLoop()
	t.Cleanup(s.Close)
	return s
}

func (s *Server) acceptLoop() {
	defer s.tr.wg.Done()
	for {
		nc, err := s.ln.Accept()
		if err != nil {
			return // listener closed (or unusable)
		}
		s.accepted.Add(1)
		if !s.tr.add(nc) {
			continue
		}
		s.tr.wg.Add(1)
		go s.serve(nc)
	}
}

func (s *Server) serve(nc net.Conn) {
	defer s.tr.wg.Done()
	defer s.tr.remove(nc)
	conn := nc
	if s.tlsConfig != nil {
		conn = tls.Server(nc, s.tlsConfig)
	}
	c := newConn(conn, s.tr.ctx.Done())
	defer c.Close()
	s.script(c)
}

// URL returns "ws://127.0.0.1:PORT/" (or "wss://..." for a TLS server).
func (s *Server) URL() string {
	scheme := "ws"
	if s.tlsConfig != nil {
		scheme = "wss"
	}
	return scheme + "://" + s.Addr() + "/"
}

// Addr returns the listening address, "127.0.0.1:PORT".
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Conns returns how many connections have been accepted so far.
func (s *Server) Conns() int { return int(s.accepted.Load()) }

// Close stops accepting, closes every open connection (so blocked script
// reads and writes fail) and waits for all script goroutines to return. It
// is safe to call more than once and from several goroutines.
func (s *Server) Close() {
	s.closeOnce.Do(func() { s.tr.shutdown(s.ln, "Server") })
}
