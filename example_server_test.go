package lomond_test

import (
	"context"
	"encoding/base64"
	"encoding/pem"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/coder/websocket"
	"github.com/lomond-go/lomond"
)

// The embedded servers of the Examples: coder/websocket's Accept on an
// httptest server, on 127.0.0.1. Nothing here is part of the API.

// exampleServer runs serve for every request, with n counting requests from
// 1 and ctx ending when the server is closed (so a handler that holds a
// connection open lets go).
type exampleServer struct {
	URL  string // ws:// (or wss:// for a TLS server) URL of "/"
	Addr string // host:port
	PEM  []byte // the TLS server's certificate, PEM-encoded; nil without TLS
	srv  *httptest.Server
	stop context.CancelFunc
	wg   sync.WaitGroup
	n    atomic.Int32
}

type serveFunc func(ctx context.Context, n int, w http.ResponseWriter, r *http.Request)

func startServer(serve serveFunc) *exampleServer { return start(false, serve) }

func startTLSServer(serve serveFunc) *exampleServer { return start(true, serve) }

func start(useTLS bool, serve serveFunc) *exampleServer {
	s := &exampleServer{}
	ctx, stop := context.WithCancel(context.Background())
	s.stop = stop
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.wg.Add(1)
		defer s.wg.Done()
		serve(ctx, int(s.n.Add(1)), w, r)
	})
	if useTLS {
		s.srv = httptest.NewTLSServer(h)
		s.PEM = pemCert(s.srv.Certificate().Raw)
	} else {
		s.srv = httptest.NewServer(h)
	}
	s.URL = "ws" + strings.TrimPrefix(s.srv.URL, "http") + "/"
	s.Addr = s.srv.Listener.Addr().String()
	return s
}

// Close stops the server and waits for its handlers.
func (s *exampleServer) Close() {
	s.stop()
	s.srv.Close()
	s.wg.Wait()
}

// accept upgrades the request, or returns nil.
func accept(w http.ResponseWriter, r *http.Request) *websocket.Conn {
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		return nil
	}
	return c
}

// echo sends every message back until the connection ends; a close from
// the client is answered with the same code and reason.
func echo(ctx context.Context, c *websocket.Conn) {
	for {
		typ, p, err := c.Read(ctx)
		if err != nil || c.Write(ctx, typ, p) != nil {
			return
		}
	}
}

// echoServer is a server that echoes on every connection.
func echoServer() *exampleServer {
	return startServer(func(ctx context.Context, n int, w http.ResponseWriter, r *http.Request) {
		if c := accept(w, r); c != nil {
			defer c.CloseNow()
			echo(ctx, c)
		}
	})
}

// say sends text messages.
func say(ctx context.Context, c *websocket.Conn, texts ...string) bool {
	for _, t := range texts {
		if c.Write(ctx, websocket.MessageText, []byte(t)) != nil {
			return false
		}
	}
	return true
}

// refusedURL returns a ws:// URL on 127.0.0.1 where nothing listens.
func refusedURL() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer ln.Close()
	return "ws://" + ln.Addr().String() + "/"
}

// fastBackOff waits d between attempts, so that the Examples run in
// milliseconds; real programs keep DefaultBackOff.
func fastBackOff(d time.Duration) lomond.PersistOption {
	return lomond.WithBackOff(func() backoff.BackOff { return backoff.NewConstantBackOff(d) })
}

// connectProxy is an HTTP CONNECT proxy on 127.0.0.1 that reports the
// Proxy-Authorization user of each tunnel on seen.
func connectProxy(seen chan<- string) *exampleServer {
	return startServer(func(ctx context.Context, n int, w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodConnect {
			http.Error(w, "CONNECT only", http.StatusMethodNotAllowed)
			return
		}
		seen <- proxyUser(r.Header.Get("Proxy-Authorization"))
		upstream, err := net.Dial("tcp", r.Host)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer upstream.Close()
		client, buf, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer client.Close()
		_, _ = client.Write([]byte("HTTP/1.1 200 Connection established\r\n\r\n"))
		done := make(chan struct{})
		go func() {
			defer close(done)
			_, _ = io.Copy(upstream, buf)
		}()
		_, _ = io.Copy(client, upstream)
		client.Close() // ends the other copy
		<-done
	})
}

// proxyUser returns the user name of a Basic Proxy-Authorization value.
func proxyUser(auth string) string {
	enc, ok := strings.CutPrefix(auth, "Basic ")
	if !ok {
		return "(none)"
	}
	dec, err := base64.StdEncoding.DecodeString(enc)
	if err != nil {
		return "(invalid)"
	}
	user, _, _ := strings.Cut(string(dec), ":")
	return user
}

func pemCert(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}
