package lomond

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/lomond-go/lomond/events"
	"github.com/lomond-go/lomond/internal/testkit"
	"github.com/lomond-go/lomond/internal/wstest"
)

// The dial tests check that every connection option has an observable
// effect against real servers on 127.0.0.1.

// closeOnReady closes the session as soon as it is ready.
func closeOnReady(ws *WebSocket, ev events.Event) {
	if _, ok := ev.(*events.Ready); ok {
		_ = ws.Close(StatusNormal, "bye")
	}
}

// runUntilReady runs a session that closes once ready and fails the test
// unless it reached Ready and ended cleanly.
func runUntilReady(t *testing.T, ws *WebSocket) *testkit.EventRecorder {
	t.Helper()
	rec, err := runRecorded(t, ws, closeOnReady)
	if err != nil {
		t.Fatalf("Run: %v; events: %v", err, rec.Names())
	}
	testkit.First[*events.Ready](t, rec)
	return rec
}

// runConnectFail runs a session that must end with ConnectFail.
func runConnectFail(t *testing.T, ws *WebSocket) (*events.ConnectFail, error) {
	t.Helper()
	rec, err := runRecorded(t, ws, nil)
	var ce *ConnectError
	if !errors.As(err, &ce) {
		t.Fatalf("Run = %v, want a *ConnectError; events: %v", err, rec.Names())
	}
	if got := rec.Names(); !slices.Equal(got, []string{"connecting", "connect_fail"}) {
		t.Errorf("events %v, want connecting, connect_fail", got)
	}
	return testkit.First[*events.ConnectFail](t, rec), err
}

// captureRequests is a server script that hands the upgrade request to reqs,
// accepts it choosing the first offered subprotocol, echoes text and
// answers the client's close.
func captureRequests(reqs chan<- *http.Request) func(c *wstest.Conn) {
	return func(c *wstest.Conn) {
		req, err := c.ReadRequest()
		if err != nil {
			return
		}
		select {
		case reqs <- req:
		default:
		}
		var extra http.Header
		if offered := req.Header.Get("Sec-WebSocket-Protocol"); offered != "" {
			first, _, _ := strings.Cut(offered, ",")
			extra = http.Header{"Sec-WebSocket-Protocol": {strings.TrimSpace(first)}}
		}
		if err := c.Accept(req, extra); err != nil {
			return
		}
		testkit.ServeMessages(c, func(op byte, p []byte) {
			if op == wstest.OpText || op == wstest.OpBinary {
				_ = c.WriteFrame(wstest.Frame{Fin: true, Opcode: op, Payload: p})
			}
		})
	}
}

// upgradeRequest runs a session with opts against a capturing server and returns
// the upgrade request the server saw, and the session's events.
func upgradeRequest(t *testing.T, opts ...Option) (*http.Request, *testkit.EventRecorder) {
	t.Helper()
	reqs := make(chan *http.Request, 1)
	srv := wstest.NewServer(t, captureRequests(reqs))
	rec := runUntilReady(t, mustNew(t, srv.URL(), opts...))
	select {
	case req := <-reqs:
		return req, rec
	default:
		t.Fatal("the server saw no request")
		return nil, nil
	}
}

// headerTokens splits comma-separated header values into their tokens.
func headerTokens(values []string) []string {
	var out []string
	for _, v := range values {
		for _, tok := range strings.Split(v, ",") {
			if tok = strings.TrimSpace(tok); tok != "" {
				out = append(out, tok)
			}
		}
	}
	return out
}

// loopbackDialer is a DialFunc that records the addresses it is asked for and
// dials redirect[addr] instead when present. It refuses anything else that
// is not loopback, so tests never leave the machine.
type loopbackDialer struct {
	mu       sync.Mutex
	asked    []string
	redirect map[string]string
}

func (d *loopbackDialer) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	d.mu.Lock()
	d.asked = append(d.asked, addr)
	to, ok := d.redirect[addr]
	d.mu.Unlock()
	if !ok {
		to = addr
		host, _, err := net.SplitHostPort(addr)
		if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
			return nil, errors.New("loopbackDialer: refusing non-loopback " + addr)
		}
	}
	var nd net.Dialer
	return nd.DialContext(ctx, network, to)
}

func (d *loopbackDialer) addrs() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.asked)
}

func TestDialRequestHeaders(t *testing.T) {
	req, rec := upgradeRequest(t,
		WithProtocols("a", "b"),
		WithHeader("X-Lomond-Test", "one"),
		WithHeader("x-lomond-test", "two"),
		WithHeader("Host", "example.test"),
		WithUserAgent("test-agent/1.0"),
		WithOrigin("https://origin.example"),
	)
	if got := headerTokens(req.Header.Values("Sec-WebSocket-Protocol")); !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("Sec-WebSocket-Protocol offers %q, want [a b] in order", got)
	}
	if got := req.Header.Values("X-Lomond-Test"); !slices.Equal(got, []string{"one", "two"}) {
		t.Errorf("X-Lomond-Test = %q, want [one two]", got)
	}
	if req.Host != "example.test" {
		t.Errorf("Host = %q, want example.test", req.Host)
	}
	if got := req.UserAgent(); got != "test-agent/1.0" {
		t.Errorf("User-Agent = %q, want test-agent/1.0", got)
	}
	if got := req.Header.Get("Origin"); got != "https://origin.example" {
		t.Errorf("Origin = %q, want https://origin.example", got)
	}
	if got := testkit.First[*events.Ready](t, rec).Protocol; got != "a" {
		t.Errorf("Ready.Protocol = %q, want a", got)
	}
	if ext := req.Header.Get("Sec-WebSocket-Extensions"); ext != "" {
		t.Errorf("Sec-WebSocket-Extensions = %q without WithCompression", ext)
	}
}

func TestDialDefaultUserAgent(t *testing.T) {
	req, _ := upgradeRequest(t)
	if got, want := req.UserAgent(), "lomond-go/"+Version; got != want {
		t.Errorf("User-Agent = %q, want %q", got, want)
	}
	if got := req.Header.Get("Sec-WebSocket-Protocol"); got != "" {
		t.Errorf("Sec-WebSocket-Protocol = %q without WithProtocols", got)
	}
	if got := req.Header.Get("Origin"); got != "" {
		t.Errorf("Origin = %q without WithOrigin", got)
	}
}

func TestDialCompressionOffer(t *testing.T) {
	for _, mode := range []Compression{CompressionContextTakeover, CompressionNoContextTakeover} {
		req, rec := upgradeRequest(t, WithCompression(mode))
		if ext := req.Header.Get("Sec-WebSocket-Extensions"); !strings.Contains(ext, "permessage-deflate") {
			t.Errorf("mode %d: Sec-WebSocket-Extensions = %q, want permessage-deflate offered", mode, ext)
		}
		// The wstest server ignores the offer: no extension in use.
		if ext := testkit.First[*events.Ready](t, rec).Extensions; len(ext) != 0 {
			t.Errorf("mode %d: Ready.Extensions = %q, the server accepted none", mode, ext)
		}
	}
}

// countingConn counts the bytes that cross a connection.
type countingConn struct {
	net.Conn
	read, written *atomic.Int64
}

func (c countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.read.Add(int64(n))
	return n, err
}

func (c countingConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.written.Add(int64(n))
	return n, err
}

func TestDialCompressionRoundTrip(t *testing.T) {
	modes := map[string][2]any{
		"context takeover":    {CompressionContextTakeover, websocket.CompressionContextTakeover},
		"no context takeover": {CompressionNoContextTakeover, websocket.CompressionNoContextTakeover},
	}
	for name, m := range modes {
		t.Run(name, func(t *testing.T) {
			handlerDone := make(chan struct{}, 1)
			hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				defer func() { handlerDone <- struct{}{} }()
				c, err := websocket.Accept(w, r, &websocket.AcceptOptions{CompressionMode: m[1].(websocket.CompressionMode)})
				if err != nil {
					return
				}
				defer c.CloseNow()
				coderEcho(c)
			}))
			defer hs.Close()

			var read, written atomic.Int64
			dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
				var d net.Dialer
				c, err := d.DialContext(ctx, network, addr)
				if err != nil {
					return nil, err
				}
				return countingConn{Conn: c, read: &read, written: &written}, nil
			}
			msg := strings.Repeat("lomond compresses this text. ", 400)[:10*1024]
			ws := mustNew(t, "ws"+strings.TrimPrefix(hs.URL, "http")+"/", WithCompression(m[0].(Compression)), WithDialer(dial))
			rec, err := runRecorded(t, ws, func(ws *WebSocket, ev events.Event) {
				switch ev.(type) {
				case *events.Ready:
					if err := ws.SendText(msg); err != nil {
						t.Errorf("SendText: %v", err)
					}
				case *events.Text:
					_ = ws.Close(StatusNormal, "bye")
				}
			})
			if err != nil {
				t.Fatalf("Run: %v; events: %v", err, rec.Names())
			}
			<-handlerDone
			ready := testkit.First[*events.Ready](t, rec)
			if !slices.Equal(ready.Extensions, []string{"permessage-deflate"}) {
				t.Errorf("Ready.Extensions = %q, want [permessage-deflate]", ready.Extensions)
			}
			if txt := testkit.First[*events.Text](t, rec); txt.Text != msg {
				t.Errorf("echo differs: got %d bytes, want %d", len(txt.Text), len(msg))
			}
			// Both directions crossed the wire compressed.
			if w, r := written.Load(), read.Load(); w >= int64(len(msg)) || r >= int64(len(msg)) {
				t.Errorf("wire bytes written %d, read %d: a %d-byte message was not compressed", w, r, len(msg))
			}
		})
	}
}

func TestDialTLS(t *testing.T) {
	srv := wstest.NewTLSServer(t, wstest.Echo)

	t.Run("system roots reject", func(t *testing.T) {
		ev, err := runConnectFail(t, mustNew(t, srv.URL()))
		var cve *tls.CertificateVerificationError
		if !errors.As(ev.Err, &cve) && !strings.Contains(ev.Err.Error(), "certificate") {
			t.Errorf("ConnectFail.Err = %v, want a certificate verification error", ev.Err)
		}
		if !errors.Is(err, ev.Err) {
			t.Errorf("Run's error %v does not wrap the event's %v", err, ev.Err)
		}
	})
	trusted := map[string]Option{
		"WithCAFile":             WithCAFile(srv.WriteCAFile(t.TempDir())),
		"WithRootCAs":            WithRootCAs(srv.CertPool()),
		"WithInsecureSkipVerify": WithInsecureSkipVerify(),
		"WithTLSConfig":          WithTLSConfig(&tls.Config{RootCAs: srv.CertPool(), MinVersion: tls.VersionTLS12}),
	}
	for name, opt := range trusted {
		t.Run(name, func(t *testing.T) {
			runUntilReady(t, mustNew(t, srv.URL(), opt))
		})
	}
	t.Run("localhost name", func(t *testing.T) {
		// The certificate names localhost too: ServerName comes from the URL.
		u := strings.Replace(srv.URL(), "127.0.0.1", "localhost", 1)
		runUntilReady(t, mustNew(t, u, WithRootCAs(srv.CertPool())))
	})
}

func TestDialProxy(t *testing.T) {
	clearProxyEnv(t)

	t.Run("ws", func(t *testing.T) {
		srv := wstest.NewServer(t, wstest.Echo)
		proxy := wstest.NewProxy(t, "", "")
		rec := runUntilReady(t, mustNew(t, srv.URL(), WithProxy(proxy.URL())))
		if got := proxy.Targets(); !slices.Equal(got, []string{srv.Addr()}) {
			t.Errorf("proxy targets %v, want [%s]", got, srv.Addr())
		}
		if got := testkit.First[*events.Connected](t, rec).Proxy; got != proxy.URL() {
			t.Errorf("Connected.Proxy = %q, want %q", got, proxy.URL())
		}
	})

	t.Run("wss", func(t *testing.T) {
		srv := wstest.NewTLSServer(t, wstest.Echo)
		proxy := wstest.NewProxy(t, "", "")
		rec := runUntilReady(t, mustNew(t, srv.URL(), WithProxy(proxy.URL()), WithRootCAs(srv.CertPool())))
		if got := proxy.Targets(); !slices.Equal(got, []string{srv.Addr()}) {
			t.Errorf("proxy targets %v, want [%s]", got, srv.Addr())
		}
		if got := testkit.First[*events.Connected](t, rec).Proxy; got != proxy.URL() {
			t.Errorf("Connected.Proxy = %q, want %q", got, proxy.URL())
		}
	})

	const user, pass = "proxyuser", "s3cret-Pa55"
	t.Run("auth", func(t *testing.T) {
		srv := wstest.NewServer(t, wstest.Echo)
		proxy := wstest.NewProxy(t, user, pass)
		rec := runUntilReady(t, mustNew(t, srv.URL(), WithProxy(proxy.URLWithAuth())))
		if got := proxy.Targets(); !slices.Equal(got, []string{srv.Addr()}) {
			t.Errorf("proxy targets %v, want [%s]", got, srv.Addr())
		}
		conn := testkit.First[*events.Connected](t, rec)
		if strings.Contains(conn.Proxy, pass) || !strings.Contains(conn.Proxy, proxy.Addr()) {
			t.Errorf("Connected.Proxy = %q, want the proxy without its password", conn.Proxy)
		}
		for _, ev := range rec.All() {
			if s := ev.String(); strings.Contains(s, pass) {
				t.Errorf("%s event shows the proxy password: %s", ev.Name(), s)
			}
		}
	})

	t.Run("wrong credentials", func(t *testing.T) {
		srv := wstest.NewServer(t, wstest.Echo)
		proxy := wstest.NewProxy(t, user, pass)
		const wrong = "not-the-Pa55word"
		ev, err := runConnectFail(t, mustNew(t, srv.URL(), WithProxy("http://"+user+":"+wrong+"@"+proxy.Addr())))
		if !strings.Contains(ev.Reason, "407") {
			t.Errorf("ConnectFail.Reason = %q, want it to mention 407", ev.Reason)
		}
		for what, s := range map[string]string{"Reason": ev.Reason, "String()": ev.String(), "Err": ev.Err.Error(), "Run error": err.Error()} {
			if strings.Contains(s, wrong) {
				t.Errorf("%s shows the proxy password: %s", what, s)
			}
		}
		if srv.Conns() != 0 {
			t.Errorf("the server got %d connections through a refused tunnel", srv.Conns())
		}
	})

	t.Run("unreachable", func(t *testing.T) {
		srv := wstest.NewServer(t, wstest.Echo)
		ev, _ := runConnectFail(t, mustNew(t, srv.URL(), WithProxy("http://"+testkit.RefusedAddr(t)), WithDialTimeout(5*time.Second)))
		if !strings.Contains(ev.Reason, "proxy") {
			t.Errorf("ConnectFail.Reason = %q, want it to name the proxy", ev.Reason)
		}
		if srv.Conns() != 0 {
			t.Errorf("the server got %d connections; the proxy was bypassed", srv.Conns())
		}
	})
}

func TestDialProxyFromEnvironment(t *testing.T) {
	// Loopback targets are never proxied from the environment (as in
	// net/http), so the other cases reach a named host through a dialer that
	// redirects it to the real server.
	const host = "ws.example.test"

	t.Run("loopback not proxied", func(t *testing.T) {
		clearProxyEnv(t)
		proxy := wstest.NewProxy(t, "", "")
		t.Setenv("HTTP_PROXY", proxy.URL())
		t.Setenv("HTTPS_PROXY", proxy.URL())
		plain := wstest.NewServer(t, wstest.Echo)
		secure := wstest.NewTLSServer(t, wstest.Echo)
		for _, ws := range []*WebSocket{
			mustNew(t, plain.URL()),
			mustNew(t, strings.Replace(plain.URL(), "127.0.0.1", "localhost", 1)),
			mustNew(t, secure.URL(), WithRootCAs(secure.CertPool())),
		} {
			rec := runUntilReady(t, ws)
			if got := testkit.First[*events.Connected](t, rec).Proxy; got != "" {
				t.Errorf("%s: Connected.Proxy = %q, want direct", ws.URL(), got)
			}
		}
		if n := proxy.Conns(); n != 0 {
			t.Errorf("the proxy got %d connections for loopback targets", n)
		}
	})

	t.Run("HTTP_PROXY for ws", func(t *testing.T) {
		clearProxyEnv(t)
		proxy := wstest.NewProxy(t, "", "")
		t.Setenv("HTTP_PROXY", proxy.URL())
		t.Setenv("HTTPS_PROXY", "http://"+testkit.RefusedAddr(t))
		d := &loopbackDialer{}
		ev, _ := runConnectFail(t, mustNew(t, "ws://"+host+"/", WithDialer(d.dial)))
		// The wstest proxy only tunnels to loopback: its 403 proves the
		// CONNECT for the named host went through it.
		if got := d.addrs(); !slices.Equal(got, []string{proxy.Addr()}) {
			t.Errorf("dialer asked for %v, want the proxy [%s]", got, proxy.Addr())
		}
		if got := proxy.Targets(); !slices.Equal(got, []string{host + ":80"}) {
			t.Errorf("proxy targets %v, want [%s:80]", got, host)
		}
		if !strings.Contains(ev.Reason, "403") {
			t.Errorf("ConnectFail.Reason = %q, want the proxy's 403", ev.Reason)
		}
	})

	t.Run("HTTPS_PROXY for wss", func(t *testing.T) {
		clearProxyEnv(t)
		proxy := wstest.NewProxy(t, "", "")
		t.Setenv("HTTP_PROXY", "http://"+testkit.RefusedAddr(t))
		t.Setenv("HTTPS_PROXY", proxy.URL())
		d := &loopbackDialer{}
		runConnectFail(t, mustNew(t, "wss://"+host+"/", WithDialer(d.dial)))
		if got := d.addrs(); !slices.Equal(got, []string{proxy.Addr()}) {
			t.Errorf("dialer asked for %v, want the proxy [%s]", got, proxy.Addr())
		}
		if got := proxy.Targets(); !slices.Equal(got, []string{host + ":443"}) {
			t.Errorf("proxy targets %v, want [%s:443]", got, host)
		}
	})

	t.Run("NO_PROXY", func(t *testing.T) {
		clearProxyEnv(t)
		proxy := wstest.NewProxy(t, "", "")
		srv := wstest.NewServer(t, wstest.Echo)
		t.Setenv("HTTP_PROXY", proxy.URL())
		t.Setenv("NO_PROXY", "example.test")
		d := &loopbackDialer{redirect: map[string]string{host + ":80": srv.Addr()}}
		rec := runUntilReady(t, mustNew(t, "ws://"+host+"/", WithDialer(d.dial)))
		if got := d.addrs(); !slices.Equal(got, []string{host + ":80"}) {
			t.Errorf("dialer asked for %v, want [%s:80]", got, host)
		}
		if got := testkit.First[*events.Connected](t, rec).Proxy; got != "" || proxy.Conns() != 0 {
			t.Errorf("proxied despite NO_PROXY: Connected.Proxy %q, proxy connections %d", got, proxy.Conns())
		}
	})

	t.Run("WithoutProxy", func(t *testing.T) {
		clearProxyEnv(t)
		srv := wstest.NewServer(t, wstest.Echo)
		dead := "http://" + testkit.RefusedAddr(t)
		t.Setenv("HTTP_PROXY", dead)
		t.Setenv("HTTPS_PROXY", dead)
		d := &loopbackDialer{redirect: map[string]string{host + ":80": srv.Addr()}}
		rec := runUntilReady(t, mustNew(t, "ws://"+host+"/", WithoutProxy(), WithDialer(d.dial)))
		if got := d.addrs(); !slices.Equal(got, []string{host + ":80"}) {
			t.Errorf("dialer asked for %v, want [%s:80] directly", got, host)
		}
		if got := testkit.First[*events.Connected](t, rec).Proxy; got != "" {
			t.Errorf("Connected.Proxy = %q, want direct", got)
		}
	})
}

func TestDialTimeout(t *testing.T) {
	var calls atomic.Int32
	block := func(ctx context.Context, _, _ string) (net.Conn, error) {
		calls.Add(1)
		<-ctx.Done()
		return nil, ctx.Err()
	}
	ws := mustNew(t, "ws://127.0.0.1:9/", WithDialer(block), WithDialTimeout(300*time.Millisecond), WithoutProxy())
	rec, err := runRecorded(t, ws, nil)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Run = %v, want it to wrap context.DeadlineExceeded", err)
	}
	ev := testkit.First[*events.ConnectFail](t, rec)
	if !errors.Is(ev.Err, context.DeadlineExceeded) {
		t.Errorf("ConnectFail.Err = %v, want it to wrap context.DeadlineExceeded", ev.Err)
	}
	took := ev.ReceivedTime().Sub(testkit.First[*events.Connecting](t, rec).ReceivedTime())
	if took < 290*time.Millisecond || took > 3*time.Second {
		t.Errorf("ConnectFail after %v, want about 300ms", took)
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("dialer called %d times, want 1", n)
	}
}

// WithDialer replaces only TCP: TLS and the handshake still run on top, for
// the URL's host.
func TestDialCustomDialer(t *testing.T) {
	t.Run("ws", func(t *testing.T) {
		reqs := make(chan *http.Request, 1)
		srv := wstest.NewServer(t, captureRequests(reqs))
		d := &loopbackDialer{redirect: map[string]string{"localhost:9": srv.Addr()}}
		runUntilReady(t, mustNew(t, "ws://localhost:9/path?q=1", WithDialer(d.dial), WithoutProxy()))
		if got := d.addrs(); !slices.Equal(got, []string{"localhost:9"}) {
			t.Errorf("dialer asked for %v, want [localhost:9]", got)
		}
		req := <-reqs
		if req.Host != "localhost:9" || req.URL.RequestURI() != "/path?q=1" {
			t.Errorf("server saw Host %q, URI %q; want localhost:9, /path?q=1", req.Host, req.URL.RequestURI())
		}
	})
	t.Run("wss", func(t *testing.T) {
		srv := wstest.NewTLSServer(t, wstest.Echo)
		d := &loopbackDialer{redirect: map[string]string{"localhost:9": srv.Addr()}}
		runUntilReady(t, mustNew(t, "wss://localhost:9/", WithDialer(d.dial), WithRootCAs(srv.CertPool()), WithoutProxy()))
		if got := d.addrs(); !slices.Equal(got, []string{"localhost:9"}) {
			t.Errorf("dialer asked for %v, want [localhost:9]", got)
		}
	})
	t.Run("wss with proxy", func(t *testing.T) {
		// The dialer reaches the proxy; the tunnel and TLS run over it.
		srv := wstest.NewTLSServer(t, wstest.Echo)
		proxy := wstest.NewProxy(t, "", "")
		d := &loopbackDialer{}
		runUntilReady(t, mustNew(t, srv.URL(), WithDialer(d.dial), WithRootCAs(srv.CertPool()), WithProxy(proxy.URL())))
		if got := d.addrs(); !slices.Equal(got, []string{proxy.Addr()}) {
			t.Errorf("dialer asked for %v, want the proxy [%s]", got, proxy.Addr())
		}
		if got := proxy.Targets(); !slices.Equal(got, []string{srv.Addr()}) {
			t.Errorf("proxy targets %v, want [%s]", got, srv.Addr())
		}
	})
}

func TestDialReadLimit(t *testing.T) {
	const size = 20 << 20
	payload := make([]byte, size)
	for i := range payload {
		payload[i] = byte(i * 7)
	}
	script := func(c *wstest.Conn) {
		if _, err := c.Handshake(); err != nil {
			return
		}
		if err := c.WriteFrame(wstest.Binary(payload)); err != nil {
			return
		}
		if code, reason, err := c.ExpectClose(); err == nil {
			_ = c.WriteFrame(wstest.Close(code, reason))
		}
	}

	t.Run("NoReadLimit", func(t *testing.T) {
		srv := wstest.NewServer(t, script)
		ws := mustNew(t, srv.URL(), WithReadLimit(NoReadLimit))
		rec, err := runRecorded(t, ws, func(ws *WebSocket, ev events.Event) {
			if _, ok := ev.(*events.Binary); ok {
				_ = ws.Close(StatusNormal, "bye")
			}
		})
		if err != nil {
			t.Fatalf("Run: %v; events: %v", err, rec.Names())
		}
		if b := testkit.First[*events.Binary](t, rec); !bytes.Equal(b.Data, payload) {
			t.Errorf("got %d bytes, want the %d-byte message", len(b.Data), size)
		}
	})

	t.Run("default limit", func(t *testing.T) {
		srv := wstest.NewServer(t, script)
		rec, err := runRecorded(t, mustNew(t, srv.URL()), nil)
		if CloseStatus(err) != StatusMessageTooBig {
			t.Fatalf("Run = %v, want a 1009 ProtocolError; events: %v", err, rec.Names())
		}
		if n := len(testkit.All[*events.Binary](rec)); n != 0 {
			t.Errorf("a %d-byte message over the 16 MiB default was delivered", size)
		}
		if pe := testkit.First[*events.ProtocolError](t, rec); pe.Code != StatusMessageTooBig {
			t.Errorf("ProtocolError code %d, want 1009", pe.Code)
		}
	})
}
