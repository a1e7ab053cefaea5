package interop

import (
	"context"
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/coder/websocket"
)

// echoServer is an in-process websocket echo server (coder/websocket) on
// 127.0.0.1, for the fault tests and as the target behind the CONNECT
// proxies. It has the echo peers' paths / and /close/CODE, the subprotocol
// echo.v1, and accepts permessage-deflate when offered. On /half it answers
// the first message with a binary message of the same bytes sent in two
// parts: it writes the first half, closes halfSent, and writes the rest
// once the test closes release.
type echoServer struct {
	srv      *httptest.Server
	halfSent chan struct{}
	release  chan struct{}

	mu     sync.Mutex
	conns  map[*websocket.Conn]bool
	wg     sync.WaitGroup
	closed chan struct{}
}

// newEchoServer starts the server, with TLS if pki is not nil, and stops it
// (and every connection it holds) when the test ends.
func newEchoServer(t *testing.T, pki *testPKI) *echoServer {
	t.Helper()
	s := &echoServer{
		halfSent: make(chan struct{}),
		release:  make(chan struct{}),
		conns:    map[*websocket.Conn]bool{},
		closed:   make(chan struct{}),
	}
	s.srv = httptest.NewUnstartedServer(http.HandlerFunc(s.serve))
	if pki != nil {
		s.srv.TLS = &tls.Config{Certificates: []tls.Certificate{pki.cert}}
		s.srv.StartTLS()
	} else {
		s.srv.Start()
	}
	t.Cleanup(s.stop)
	return s
}

// url returns the ws:// or wss:// URL of path.
func (s *echoServer) url(path string) string {
	return "ws" + strings.TrimPrefix(s.srv.URL, "http") + path
}

// addr returns the server's host:port.
func (s *echoServer) addr() string { return s.srv.Listener.Addr().String() }

func (s *echoServer) stop() {
	close(s.closed)
	s.srv.Close()
	s.mu.Lock()
	for c := range s.conns {
		_ = c.CloseNow()
	}
	s.mu.Unlock()
	s.wg.Wait() // hijacked connections are not waited for by httptest
}

func (s *echoServer) track(c *websocket.Conn, add bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if add {
		select {
		case <-s.closed:
			return false
		default:
		}
		s.conns[c] = true
		s.wg.Add(1)
		return true
	}
	delete(s.conns, c)
	s.wg.Done()
	return true
}

func (s *echoServer) serve(w http.ResponseWriter, r *http.Request) {
	c, err := websocket.Accept(w, r, &websocket.AcceptOptions{
		Subprotocols:    []string{"echo.v1"},
		CompressionMode: websocket.CompressionContextTakeover,
	})
	if err != nil {
		return
	}
	defer c.CloseNow()
	if !s.track(c, true) {
		return
	}
	defer s.track(c, false)
	c.SetReadLimit(64 << 20)
	ctx := context.Background()

	if code, ok := strings.CutPrefix(r.URL.Path, "/close/"); ok {
		n, _ := strconv.Atoi(code)
		_ = c.Close(websocket.StatusCode(n), "bye")
		return
	}
	if r.URL.Path == "/half" {
		if !s.sendInHalves(ctx, c) {
			return
		}
	}
	for {
		typ, data, err := c.Read(ctx)
		if err != nil {
			return
		}
		if err := c.Write(ctx, typ, data); err != nil {
			return
		}
	}
}

// sendInHalves echoes one message as binary in two parts (see echoServer).
func (s *echoServer) sendInHalves(ctx context.Context, c *websocket.Conn) bool {
	_, data, err := c.Read(ctx)
	if err != nil {
		return false
	}
	w, err := c.Writer(ctx, websocket.MessageBinary)
	if err != nil {
		return false
	}
	half := len(data) / 2
	if _, err := w.Write(data[:half]); err != nil {
		return false
	}
	close(s.halfSent)
	select {
	case <-s.release:
	case <-s.closed:
		return false
	}
	if _, err := w.Write(data[half:]); err != nil {
		return false
	}
	return w.Close() == nil
}
