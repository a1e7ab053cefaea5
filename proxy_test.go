package lomond

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lomond-go/lomond/events"
	"github.com/lomond-go/lomond/internal/testkit"
	"github.com/lomond-go/lomond/internal/wstest"
)

// Tests of proxy.go: the proxy chosen (WithProxy, the environment,
// NO_PROXY, CGI) and the CONNECT tunnel.

func mustURL(t *testing.T, raw string) *url.URL {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestUseProxyNoProxy(t *testing.T) {
	cases := []struct {
		target, noProxy string
		proxied         bool
	}{
		{"ws://example.com/", "", true},
		{"ws://example.com/", " , ,", true},
		// Exact host, subdomains, case, whitespace.
		{"ws://example.com/", "example.com", false},
		{"ws://Example.COM/", "EXAMPLE.com", false},
		{"ws://api.example.com/", "example.com", false},
		{"ws://a.b.example.com/", "example.com", false},
		{"ws://notexample.com/", "example.com", true},
		{"ws://example.com.evil/", "example.com", true},
		{"ws://example.com/", "other.org, example.com ", false},
		{"ws://example.com/", "ample.com", true},
		// Leading dot and *. forms.
		// As in net/http (golang.org/x/net/http/httpproxy): a leading dot
		// or "*." matches the subdomains only, not the name itself.
		{"ws://api.example.com/", ".example.com", false},
		{"ws://example.com/", ".example.com", true},
		{"ws://xexample.com/", ".example.com", true},
		{"ws://api.example.com/", "*.example.com", false},
		{"ws://example.com/", "*.example.com", true},
		{"ws://xexample.com/", "*.example.com", true},
		// IP addresses and CIDR ranges.
		{"ws://10.1.2.3/", "10.1.2.3", false},
		{"ws://10.1.2.4/", "10.1.2.3", true},
		{"ws://10.9.9.9/", "10.0.0.0/8", false},
		{"ws://11.0.0.1/", "10.0.0.0/8", true},
		{"ws://example.com/", "10.0.0.0/8", true},
		{"ws://192.168.1.7:9000/", "192.168.0.0/16", false},
		{"ws://[2001:db8::1]/", "2001:db8::1", false},
		{"ws://[2001:db8::2]/", "2001:db8::1", true},
		{"ws://[2001:db8::5]/", "2001:db8::/32", false},
		{"ws://[2001:db9::5]/", "2001:db8::/32", true},
		{"ws://10.1.2.3/", "example.com", true},
		// host:port entries.
		{"ws://example.com:8080/", "example.com:8080", false},
		{"ws://example.com:8081/", "example.com:8080", true},
		{"ws://example.com/", "example.com:80", false},
		{"ws://example.com/", "example.com:443", true},
		{"wss://example.com/", "example.com:443", false},
		{"wss://example.com/", "example.com:80", true},
		{"ws://api.example.com:8080/", ".example.com:8080", false},
		{"ws://10.1.2.3:7000/", "10.1.2.3:7000", false},
		{"ws://10.1.2.3:7001/", "10.1.2.3:7000", true},
		{"ws://[2001:db8::1]:7000/", "[2001:db8::1]:7000", false},
		{"ws://[2001:db8::1]:7001/", "[2001:db8::1]:7000", true},
		// Everything.
		{"ws://example.com/", "*", false},
		{"wss://10.1.2.3:9/", "foo.org, *", false},
		// Loopback is never proxied.
		{"ws://localhost/", "", false},
		{"ws://localhost:9000/", "example.com", false},
		{"ws://127.0.0.1/", "", false},
		{"ws://127.0.0.1:8080/", "", false},
		{"ws://127.5.5.5/", "", false},
		{"ws://[::1]:8080/", "", false},
	}
	for _, c := range cases {
		for _, via := range []string{"HTTP_PROXY", "ALL_PROXY"} {
			clearProxyEnv(t)
			t.Setenv(via, "http://proxy.test:3128")
			t.Setenv("HTTPS_PROXY", "http://proxy.test:3128")
			t.Setenv("NO_PROXY", c.noProxy)
			ws, err := New(c.target)
			if err != nil {
				t.Fatal(err)
			}
			u, err := ws.cfg.proxyFor(ws.url)
			if err != nil {
				t.Fatalf("%s with %s: proxyFor: %v", c.target, via, err)
			}
			if got := u != nil; got != c.proxied {
				t.Errorf("%s with %s, NO_PROXY=%q: proxied %v, want %v", c.target, via, c.noProxy, got, c.proxied)
			}
		}
	}
}

// clearProxyEnv unsets every proxy variable for the test, and
// REQUEST_METHOD (a CGI process refuses HTTP_PROXY).
func clearProxyEnv(t *testing.T) {
	for _, k := range []string{"HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "NO_PROXY", "no_proxy",
		"ALL_PROXY", "all_proxy", "REQUEST_METHOD"} {
		t.Setenv(k, "")
	}
}

func TestProxyForEnvironment(t *testing.T) {
	cases := []struct {
		name   string
		env    map[string]string
		target string
		want   string // "" means direct
	}{
		{"no env", nil, "ws://example.com/", ""},
		{"HTTP_PROXY for ws", map[string]string{"HTTP_PROXY": "http://hp:3128"}, "ws://example.com/", "http://hp:3128"},
		{"http_proxy for ws", map[string]string{"http_proxy": "http://lp:3128"}, "ws://example.com/", "http://lp:3128"},
		{"HTTP_PROXY not for wss", map[string]string{"HTTP_PROXY": "http://hp:3128"}, "wss://example.com/", ""},
		{"HTTPS_PROXY for wss", map[string]string{"HTTPS_PROXY": "http://sp:3128"}, "wss://example.com/", "http://sp:3128"},
		{"https_proxy for wss", map[string]string{"https_proxy": "https://lsp:443"}, "wss://example.com/", "https://lsp:443"},
		{"HTTPS_PROXY not for ws", map[string]string{"HTTPS_PROXY": "http://sp:3128"}, "ws://example.com/", ""},
		{"upper case wins", map[string]string{"HTTP_PROXY": "http://upper:1", "http_proxy": "http://lower:1"},
			"ws://example.com/", "http://upper:1"},
		{"bare host:port", map[string]string{"HTTP_PROXY": "bare:8080"}, "ws://example.com/", "http://bare:8080"},
		{"NO_PROXY match", map[string]string{"HTTP_PROXY": "http://hp:1", "NO_PROXY": "example.com"}, "ws://example.com/", ""},
		{"no_proxy match", map[string]string{"HTTPS_PROXY": "http://hp:1", "no_proxy": ".example.com"}, "wss://api.example.com/", ""},
		{"NO_PROXY other host", map[string]string{"HTTP_PROXY": "http://hp:1", "NO_PROXY": "other.org"}, "ws://example.com/", "http://hp:1"},
		{"NO_PROXY star", map[string]string{"HTTPS_PROXY": "http://hp:1", "NO_PROXY": "*"}, "wss://example.com/", ""},
		{"localhost direct", map[string]string{"HTTP_PROXY": "http://hp:1"}, "ws://localhost:9/", ""},
		{"loopback direct", map[string]string{"HTTPS_PROXY": "http://hp:1"}, "wss://127.0.0.1:9/", ""},
		{"credentials kept", map[string]string{"HTTP_PROXY": "http://u:p@hp:1"}, "ws://example.com/", "http://u:p@hp:1"},
		// SOCKS5 from any of the variables.
		{"socks5 in HTTP_PROXY", map[string]string{"HTTP_PROXY": "socks5://u:p@sp:1080"}, "ws://example.com/", "socks5://u:p@sp:1080"},
		{"socks5h in HTTPS_PROXY", map[string]string{"HTTPS_PROXY": "socks5h://sp:1080"}, "wss://example.com/", "socks5h://sp:1080"},
		// ALL_PROXY when the scheme's own variable is unset.
		{"ALL_PROXY for ws", map[string]string{"ALL_PROXY": "socks5://ap:1080"}, "ws://example.com/", "socks5://ap:1080"},
		{"all_proxy for wss", map[string]string{"all_proxy": "socks5h://u:p@ap:1080"}, "wss://example.com/", "socks5h://u:p@ap:1080"},
		{"ALL_PROXY upper case wins", map[string]string{"ALL_PROXY": "socks5://upper:1", "all_proxy": "socks5://lower:1"},
			"ws://example.com/", "socks5://upper:1"},
		{"HTTP_PROXY before ALL_PROXY", map[string]string{"HTTP_PROXY": "http://hp:1", "ALL_PROXY": "socks5://ap:1"},
			"ws://example.com/", "http://hp:1"},
		{"HTTPS_PROXY before ALL_PROXY", map[string]string{"HTTPS_PROXY": "http://sp:1", "ALL_PROXY": "socks5://ap:1"},
			"wss://example.com/", "http://sp:1"},
		{"ALL_PROXY and NO_PROXY", map[string]string{"ALL_PROXY": "socks5://ap:1", "NO_PROXY": "example.com"}, "ws://example.com/", ""},
		{"ALL_PROXY not for loopback", map[string]string{"ALL_PROXY": "socks5://ap:1"}, "ws://127.0.0.1:9/", ""},
		// A CGI process (REQUEST_METHOD set) refuses HTTP_PROXY only.
		{"CGI keeps HTTPS_PROXY", map[string]string{"REQUEST_METHOD": "GET", "HTTPS_PROXY": "http://sp:1"}, "wss://example.com/", "http://sp:1"},
		{"CGI keeps ALL_PROXY", map[string]string{"REQUEST_METHOD": "GET", "ALL_PROXY": "socks5://ap:1"}, "ws://example.com/", "socks5://ap:1"},
		{"CGI, HTTP_PROXY not for wss", map[string]string{"REQUEST_METHOD": "GET", "HTTP_PROXY": "http://evil:1"}, "wss://example.com/", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			clearProxyEnv(t)
			for k, v := range c.env {
				t.Setenv(k, v)
			}
			ws, err := New(c.target)
			if err != nil {
				t.Fatal(err)
			}
			got, err := ws.cfg.proxyFor(ws.url)
			if err != nil {
				t.Fatalf("proxyFor: %v", err)
			}
			if c.want == "" {
				if got != nil {
					t.Errorf("proxyFor = %v, want direct", got)
				}
				return
			}
			if got == nil || got.String() != c.want {
				t.Errorf("proxyFor = %v, want %s", got, c.want)
			}
		})
	}
}

func TestProxyForBadEnvironment(t *testing.T) {
	for _, bad := range []string{"ftp://user:secret@h:21", "socks4://user:secret@h:1080", "http://user:secret@:3128",
		"http://user:secret@h:bad", "socks5://:secret@h:1080", "socks5h://user:" + strings.Repeat("secret", 50) + "@h:1080"} {
		clearProxyEnv(t)
		t.Setenv("HTTP_PROXY", bad)
		ws, err := New("ws://example.com/")
		if err != nil {
			t.Fatal(err)
		}
		u, err := ws.cfg.proxyFor(ws.url)
		if err == nil {
			t.Errorf("HTTP_PROXY=%q: proxyFor = %v, want an error", bad, u)
			continue
		}
		if strings.Contains(err.Error(), "secret") {
			t.Errorf("HTTP_PROXY=%q: error leaks the password: %v", bad, err)
		}
	}
}

func TestWithoutProxyIgnoresEnvironment(t *testing.T) {
	clearProxyEnv(t)
	t.Setenv("HTTP_PROXY", "http://hp:1")
	t.Setenv("HTTPS_PROXY", "http://sp:1")
	for _, target := range []string{"ws://example.com/", "wss://example.com/"} {
		ws, err := New(target, WithoutProxy())
		if err != nil {
			t.Fatal(err)
		}
		if u, err := ws.cfg.proxyFor(ws.url); u != nil || err != nil {
			t.Errorf("%s WithoutProxy: proxyFor = %v, %v; want direct", target, u, err)
		}
	}
}

func TestWithProxyIsFixed(t *testing.T) {
	clearProxyEnv(t)
	t.Setenv("HTTP_PROXY", "http://env:1")
	t.Setenv("HTTPS_PROXY", "http://env:2")
	t.Setenv("NO_PROXY", "*")
	for _, target := range []string{"ws://example.com/", "wss://example.com/", "ws://localhost:9/"} {
		ws, err := New(target, WithProxy("http://fixed:3128"))
		if err != nil {
			t.Fatal(err)
		}
		u, err := ws.cfg.proxyFor(ws.url)
		if err != nil || u == nil || u.String() != "http://fixed:3128" {
			t.Errorf("%s WithProxy: proxyFor = %v, %v; want http://fixed:3128", target, u, err)
		}
	}
}

// rawConnectProxy is a CONNECT proxy on 127.0.0.1 that reads the CONNECT request,
// reports it on requested and then runs answer on the connection.
func rawConnectProxy(t *testing.T, answer func(c net.Conn)) (addr string, requested <-chan struct{}) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan struct{}, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		if _, err := http.ReadRequest(bufio.NewReader(c)); err != nil {
			return
		}
		ch <- struct{}{}
		answer(c)
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
	})
	return ln.Addr().String(), ch
}

// TestProxyConnectCancel: the proxy takes the CONNECT and never answers;
// cancelling the context must end the session at once, not after the 30 s
// dial timeout.
func TestProxyConnectCancel(t *testing.T) {
	addr, requested := rawConnectProxy(t, func(c net.Conn) {
		_, _ = io.Copy(io.Discard, c) // until the client goes away
	})
	ws := mustNew(t, "ws://127.0.0.1:9/", WithProxy("http://"+addr))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	var fail *events.ConnectFail
	go func() {
		done <- ws.Run(ctx, HandlerFunc(func(_ *WebSocket, ev events.Event) {
			if cf, ok := ev.(*events.ConnectFail); ok {
				fail = cf
			}
		}))
	}()
	testkit.Recv(t, requested, "the CONNECT request")
	start := time.Now()
	cancel()
	var err error
	select {
	case err = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return within 10 s of the cancellation (the dial timeout is 30 s)")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Run returned %v after the cancellation, want at once", d)
	}
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Run = %v, want it to wrap context.Canceled", err)
	}
	if fail == nil || !strings.Contains(fail.Reason, "cancelled") {
		t.Errorf("ConnectFail = %v, want the reason to say cancelled", fail)
	}
}

// TestProxyConnectResponseBounded: a proxy that answers the CONNECT with
// endless headers must not be read without limit.
func TestProxyConnectResponseBounded(t *testing.T) {
	var written atomic.Int64
	addr, _ := rawConnectProxy(t, func(c net.Conn) {
		line := []byte("X-Filler: " + strings.Repeat("a", 1000) + "\r\n")
		n, err := c.Write([]byte("HTTP/1.1 200 Connection established\r\n"))
		written.Add(int64(n))
		for err == nil && written.Load() < 64<<20 {
			n, err = c.Write(line)
			written.Add(int64(n))
		}
	})
	ws := mustNew(t, "ws://127.0.0.1:9/", WithProxy("http://"+addr), WithDialTimeout(20*time.Second))
	start := time.Now()
	ev, err := runConnectFail(t, ws)
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("ConnectFail after %v, want well before the dial timeout", d)
	}
	if !strings.Contains(err.Error(), "larger than") {
		t.Errorf("Run = %v, want it to say the response is too large", err)
	}
	if !strings.Contains(ev.Reason, "proxy") {
		t.Errorf("ConnectFail.Reason = %q, want it to name the proxy", ev.Reason)
	}
	// The proxy's socket buffers hold some more than the client read.
	if n := written.Load(); n > 16<<20 {
		t.Errorf("the proxy wrote %d MiB before the client gave up, want about the 1 MiB bound", n>>20)
	}
}

// TestProxyEnvironmentCGI: in a CGI process (REQUEST_METHOD set) HTTP_PROXY
// may come from a request's "Proxy:" header (httpoxy), so it is refused, as
// net/http refuses it: the attempt is a ConnectFail that says why, and the
// proxy it names is never contacted. Loopback targets are never proxied
// from the environment, so the target is 0.0.0.0, which Linux connects to
// the local host.
func TestProxyEnvironmentCGI(t *testing.T) {
	srv := wstest.NewServer(t, wstest.Echo)
	target := strings.Replace(srv.URL(), "127.0.0.1", "0.0.0.0", 1)

	t.Run("without CGI, HTTP_PROXY is used", func(t *testing.T) {
		clearProxyEnv(t)
		proxy := wstest.NewProxy(t, "", "")
		t.Setenv("HTTP_PROXY", proxy.URL())
		runRecorded(t, mustNew(t, target), nil)
		if got := proxy.Targets(); len(got) != 1 {
			t.Errorf("proxy targets %v, want the server's (the control case)", got)
		}
	})

	for _, name := range []string{"HTTP_PROXY", "http_proxy"} {
		t.Run("CGI refuses "+name, func(t *testing.T) {
			clearProxyEnv(t)
			proxy := wstest.NewProxy(t, "", "")
			t.Setenv("REQUEST_METHOD", "GET")
			t.Setenv(name, "http://user:Httpoxy-pa55@"+proxy.Addr())
			before := srv.Conns()
			ev, err := runConnectFail(t, mustNew(t, target))
			for _, want := range []string{"HTTP_PROXY", "CGI", "REQUEST_METHOD", "httpoxy"} {
				if !strings.Contains(ev.Reason, want) {
					t.Errorf("ConnectFail.Reason = %q, want it to mention %s", ev.Reason, want)
				}
			}
			if strings.Contains(ev.Reason, "pa55") || strings.Contains(err.Error(), "pa55") {
				t.Errorf("the refusal shows the proxy's password: %v", err)
			}
			if n := proxy.Conns(); n != 0 {
				t.Errorf("the proxy from HTTP_PROXY got %d connections in a CGI process", n)
			}
			if n := srv.Conns() - before; n != 0 {
				t.Errorf("the server got %d direct connections; the refusal must not fall back silently", n)
			}
		})
	}

	t.Run("CGI keeps ALL_PROXY", func(t *testing.T) {
		clearProxyEnv(t)
		proxy := wstest.NewProxy(t, "", "")
		t.Setenv("REQUEST_METHOD", "POST")
		t.Setenv("ALL_PROXY", proxy.URL())
		rec, _ := runRecorded(t, mustNew(t, target), nil)
		// The wstest proxy tunnels only to loopback names: its refusal
		// proves the CONNECT went through it.
		if got := proxy.Targets(); !slices.Equal(got, []string{strings.TrimPrefix(strings.TrimSuffix(target, "/"), "ws://")}) {
			t.Errorf("proxy targets %v, want the server's; events %v", got, rec.Names())
		}
		var pe *ProxyError
		if ev := testkit.First[*events.ConnectFail](t, rec); !errors.As(ev.Err, &pe) {
			t.Errorf("ConnectFail.Err = %v, want the test proxy's refusal", ev.Err)
		}
	})
}
