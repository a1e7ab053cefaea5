package lomondtest

import (
	"context"
	"crypto/x509"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/lomond-go/lomond"
)

// Timeout bounds every wait of the kit: a step waiting for a message or a
// pong, Server.Conn, Conn.WaitDone, Recorder.AssertSequence, and the
// sessions of Run and Persist. A test that goes wrong fails with a message
// after at most this long; it never hangs.
const Timeout = 10 * time.Second

// waitLimit is Timeout, except in the kit's own tests of its timeouts.
var waitLimit = Timeout

// Server is a websocket server on 127.0.0.1 that plays scripts, made by
// NewServer or NewTLSServer. Its methods are safe for concurrent use;
// Stop, Start, Restart, Shutdown and Close are serialised.
type Server struct {
	// URL is "ws://127.0.0.1:PORT" ("wss://..." for a TLS server), with no
	// trailing slash: every path reaches the same scripts, and
	// Conn.Request().URL.Path tells which one the client asked for.
	URL string

	t       testing.TB
	scripts []Step
	pki     *testPKI
	addr    string

	life sync.Mutex // serialises Start, Stop, Shutdown and Close

	mu        sync.Mutex
	changed   chan struct{} // closed and replaced when conns grows
	up        bool
	closed    bool
	ln        net.Listener  // nil while stopped
	served    chan struct{} // closed when the http.Server's Serve returns
	netConns  map[*netConn]struct{}
	conns     []*Conn
	handlers  sync.WaitGroup
	broadcast map[*Conn]struct{}
	// repeats holds, for each script failure reported, the connections
	// that failed the same way after it: reported once, at Close.
	repeats map[string]*repeat
	order   []string // the failures reported, in order
}

// repeat is a script failure seen again on later connections.
type repeat struct {
	first, last, count int
}

// NewServer starts a websocket server on 127.0.0.1 with a new port.
// Connection n (from 1) plays scripts[n-1]; connections after the last
// script play the last one; with no script, every connection echoes (see
// Echo). The server is closed by t.Cleanup. If t is nil (outside a test),
// script failures are logged with log/slog and the caller must call Close.
// It panics if it cannot listen, like httptest.NewServer.
func NewServer(t testing.TB, scripts ...Step) *Server {
	if t != nil {
		t.Helper()
	}
	return newServer(t, nil, scripts)
}

// NewTLSServer is NewServer serving wss:// with a certificate for
// 127.0.0.1, ::1 and localhost signed by a CA generated for this server.
// Clients trust the CA through ClientOptions (or Certificate).
func NewTLSServer(t testing.TB, scripts ...Step) *Server {
	if t != nil {
		t.Helper()
	}
	pki, err := newTestPKI()
	if err != nil {
		failSetup(t, fmt.Sprintf("lomondtest: generating the test certificate: %v", err))
	}
	return newServer(t, pki, scripts)
}

func newServer(t testing.TB, pki *testPKI, scripts []Step) *Server {
	if t != nil {
		t.Helper()
	}
	for i, s := range scripts {
		if s == nil {
			failSetup(t, fmt.Sprintf("lomondtest: script %d is nil", i+1))
		}
	}
	if len(scripts) == 0 {
		scripts = []Step{Echo()}
	}
	s := &Server{
		t:         t,
		scripts:   scripts,
		pki:       pki,
		addr:      "127.0.0.1:0",
		changed:   make(chan struct{}),
		netConns:  map[*netConn]struct{}{},
		broadcast: map[*Conn]struct{}{},
	}
	if err := s.listen(); err != nil {
		failSetup(t, fmt.Sprintf("lomondtest: listen: %v", err))
	}
	scheme := "ws"
	if pki != nil {
		scheme = "wss"
	}
	s.URL = scheme + "://" + s.addr
	if t != nil {
		t.Cleanup(s.Close)
	}
	return s
}

// failSetup ends the test (or, outside one, panics): the server could not
// be made at all.
func failSetup(t testing.TB, msg string) {
	if t != nil {
		t.Helper()
		t.Fatal(msg)
	}
	panic(msg)
}

// ClientOptions returns what a lomond client needs to reach this server:
// no proxy, and for a TLS server the CA as its only root
// (lomond.WithRootCAs). Append your own options after them.
func (s *Server) ClientOptions() []lomond.Option {
	opts := []lomond.Option{lomond.WithoutProxy()}
	if s.pki != nil {
		opts = append(opts, lomond.WithRootCAs(s.pki.roots()))
	}
	return opts
}

// Client returns a new lomond client for s.URL with ClientOptions, Poll and
// automatic pings off (so a test sees only the events it causes), handshake
// and close timeouts of half Timeout (so the client's own timeouts fire
// before the kit's waits give up), and then opts, which may change any of
// these. It fails the test if lomond.New rejects an option (it panics when
// s was made with a nil testing.TB).
func (s *Server) Client(opts ...lomond.Option) *lomond.WebSocket {
	if s.t != nil {
		s.t.Helper()
	}
	all := append(s.ClientOptions(), lomond.WithPollInterval(0), lomond.WithPingRate(0),
		lomond.WithHandshakeTimeout(Timeout/2), lomond.WithCloseTimeout(Timeout/2))
	ws, err := lomond.New(s.URL, append(all, opts...)...)
	if err != nil {
		failSetup(s.t, fmt.Sprintf("lomondtest: Client: %v", err))
	}
	return ws
}

// Certificate returns the CA certificate that signed a TLS server's
// certificate (the one a client must trust), or nil for a plain server.
func (s *Server) Certificate() *x509.Certificate {
	if s.pki == nil {
		return nil
	}
	return s.pki.ca
}

// Conns returns the record of every connection so far, in the order their
// upgrade requests arrived.
func (s *Server) Conns() []*Conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*Conn(nil), s.conns...)
}

// Conn returns connection n (from 1), waiting up to Timeout for it to
// arrive; it fails the test if it does not.
func (s *Server) Conn(t testing.TB, n int) *Conn {
	t.Helper()
	if n < 1 {
		t.Fatalf("lomondtest: Conn(%d): connections are numbered from 1", n)
	}
	deadline := time.NewTimer(waitLimit)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		if len(s.conns) >= n {
			c := s.conns[n-1]
			s.mu.Unlock()
			return c
		}
		have, changed := len(s.conns), s.changed
		s.mu.Unlock()
		select {
		case <-changed:
		case <-deadline.C:
			t.Fatalf("lomondtest: connection %d did not arrive within %v (%d so far)", n, waitLimit, have)
		}
	}
}

// Stop stops listening and drops every connection, as a crashed server
// would (no close frame). Until Start, connections are refused. It waits
// for every script to return.
func (s *Server) Stop() {
	s.life.Lock()
	defer s.life.Unlock()
	s.stop()
}

// Shutdown stops listening, closes every websocket with a close frame
// carrying code and reason (1001 "going away" and 1012 "service restart"
// are the usual ones) and waits for the clients' replies (at most 5 s,
// the engine's limit), then drops what is left, like Stop.
func (s *Server) Shutdown(code int, reason string) {
	s.life.Lock()
	defer s.life.Unlock()
	live := s.closeListener()
	var wg sync.WaitGroup
	for _, c := range live {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.shutdown(code, reason)
		}()
	}
	wg.Wait()
	s.stop()
}

// Start listens again on the same port after Stop or Shutdown (and does
// nothing if s is listening). It fails the test if the port cannot be
// bound again.
func (s *Server) Start() {
	s.life.Lock()
	defer s.life.Unlock()
	s.mu.Lock()
	if s.up || s.closed {
		s.mu.Unlock()
		return
	}
	s.mu.Unlock()
	if err := s.listen(); err != nil {
		s.reportf("lomondtest: Start: listening again on %s: %v", s.addr, err)
	}
}

// Restart is Stop then Start: a crash and a restart on the same port.
func (s *Server) Restart() {
	s.Stop()
	s.Start()
}

// Close stops the server for good and waits for every script to return.
// It is safe to call more than once.
func (s *Server) Close() {
	s.life.Lock()
	defer s.life.Unlock()
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.stop()
	s.reportRepeats()
}

// scriptFailed reports a script's failure on connection n, unless an
// earlier connection failed the same way: a client reconnecting to a
// script that fails would report the same line for every connection.
// Repeats are counted and reported once, when the server closes.
func (s *Server) scriptFailed(n int, err error) {
	msg := err.Error()
	s.mu.Lock()
	if s.repeats == nil {
		s.repeats = map[string]*repeat{}
	}
	r, seen := s.repeats[msg]
	if seen {
		r.count++
		r.last = n
	} else {
		s.repeats[msg] = &repeat{first: n}
		s.order = append(s.order, msg)
	}
	s.mu.Unlock()
	if !seen {
		s.reportf("lomondtest: connection %d: %s", n, msg)
	}
}

// reportRepeats reports, once, the failures that repeated.
func (s *Server) reportRepeats() {
	s.mu.Lock()
	var lines []string
	for _, msg := range s.order {
		r := s.repeats[msg]
		switch {
		case r.count == 1:
			lines = append(lines, fmt.Sprintf("lomondtest: connection %d failed the same way as connection %d", r.last, r.first))
		case r.count > 1:
			lines = append(lines, fmt.Sprintf("lomondtest: %d more connections (up to %d) failed the same way as connection %d",
				r.count, r.last, r.first))
		}
		r.count = 0 // Close may come again
	}
	s.mu.Unlock()
	for _, l := range lines {
		s.reportf("%s", l)
	}
}

// listen starts an http.Server on s.addr (a new port the first time, the
// same one after).
func (s *Server) listen() error {
	ln, err := net.Listen("tcp", s.addr)
	if err != nil {
		return err
	}
	s.addr = ln.Addr().String()
	l := &listener{Listener: ln, track: s.track}
	if s.pki != nil {
		l.tlsConfig = s.pki.serverConfig()
	}
	srv := &http.Server{
		Handler:           http.HandlerFunc(s.serveHTTP),
		ReadHeaderTimeout: Timeout,
		ErrorLog:          log.New(io.Discard, "", 0),
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			return context.WithValue(ctx, netConnKey{}, c)
		},
	}
	served := make(chan struct{})
	s.mu.Lock()
	s.ln, s.served, s.up = l, served, true
	s.mu.Unlock()
	go func() {
		defer close(served)
		_ = srv.Serve(l)
	}()
	return nil
}

type netConnKey struct{}

// track registers an accepted connection until it closes, so that Stop
// can close it.
func (s *Server) track(c *netConn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.up {
		return false
	}
	s.netConns[c] = struct{}{}
	c.onClose = func() { s.untrack(c) }
	return true
}

func (s *Server) untrack(c *netConn) {
	s.mu.Lock()
	delete(s.netConns, c)
	s.mu.Unlock()
}

// closeListener stops accepting and returns the live connections.
func (s *Server) closeListener() []*Conn {
	s.mu.Lock()
	ln, served := s.ln, s.served
	s.up, s.ln = false, nil
	var live []*Conn
	for _, c := range s.conns {
		if !c.isDone() {
			live = append(live, c)
		}
	}
	s.mu.Unlock()
	// Only the listener: the kit closes every connection itself. (The
	// http.Server's Close would also close a websocket whose 101 has gone
	// out but which net/http has not yet marked hijacked.)
	if ln != nil {
		_ = ln.Close()
		<-served
	}
	return live
}

// stop closes the listener, drops every connection and waits for every
// handler to return.
func (s *Server) stop() {
	live := s.closeListener()
	for _, c := range live {
		c.kill()
	}
	s.mu.Lock()
	ncs := make([]*netConn, 0, len(s.netConns))
	for nc := range s.netConns {
		ncs = append(ncs, nc)
	}
	s.netConns = map[*netConn]struct{}{}
	s.mu.Unlock()
	for _, nc := range ncs {
		nc.drop(false)
	}
	s.handlers.Wait()
}

// serveHTTP runs the script of the connection the request arrived on.
func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	nc, _ := r.Context().Value(netConnKey{}).(*netConn)
	s.mu.Lock()
	if nc == nil || nc.isClosed() || !s.up {
		s.mu.Unlock()
		w.Header().Set("Connection", "close")
		http.Error(w, "lomondtest: server stopping", http.StatusServiceUnavailable)
		return
	}
	s.handlers.Add(1)
	c := newConn(s, len(s.conns)+1, nc, w, r)
	s.conns = append(s.conns, c)
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
	defer s.handlers.Done()
	c.serve(s.scriptFor(c.n))
}

func (s *Server) scriptFor(n int) Step {
	if n > len(s.scripts) {
		return s.scripts[len(s.scripts)-1]
	}
	return s.scripts[n-1]
}

// reportf fails the test (or logs, outside one).
func (s *Server) reportf(format string, args ...any) {
	if s.t == nil {
		slog.Error(fmt.Sprintf(format, args...))
		return
	}
	s.t.Errorf(format, args...)
}

// joinBroadcast adds c to the connections Broadcast relays to.
func (s *Server) joinBroadcast(c *Conn, join bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if join {
		s.broadcast[c] = struct{}{}
	} else {
		delete(s.broadcast, c)
	}
}

func (s *Server) broadcastMembers() []*Conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*Conn, 0, len(s.broadcast))
	for c := range s.broadcast {
		out = append(out, c)
	}
	return out
}
