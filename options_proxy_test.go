package lomond

import (
	"bufio"
	"context"
	"errors"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/lomond-go/lomond/events"
)

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

// TestProxyErrorRedacted runs a CONNECT against an in-memory proxy that
// answers 407 and checks the password never shows in the error or reason.
func TestProxyErrorRedacted(t *testing.T) {
	client, server := net.Pipe()
	defer client.Close()
	gotAuth := make(chan string, 1)
	go func() {
		defer server.Close()
		req, err := http.ReadRequest(bufio.NewReader(server))
		if err != nil {
			gotAuth <- "read error: " + err.Error()
			return
		}
		gotAuth <- req.Header.Get("Proxy-Authorization")
		_, _ = server.Write([]byte("HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n"))
	}()
	proxy := mustURL(t, "http://user:secret@proxy.example:3128")
	_, err := connectTunnel(context.Background(), client, proxy, "example.com:80")
	if auth := <-gotAuth; auth != "Basic dXNlcjpzZWNyZXQ=" {
		t.Errorf("Proxy-Authorization = %q, want Basic user:secret", auth)
	}
	var pe *ProxyError
	if !errors.As(err, &pe) {
		t.Fatalf("connectTunnel err = %v, want a *ProxyError", err)
	}
	if pe.StatusCode != 407 {
		t.Errorf("StatusCode = %d, want 407", pe.StatusCode)
	}
	reason := connectFailReason(err)
	for _, s := range []string{err.Error(), pe.Proxy, reason} {
		if strings.Contains(s, "secret") {
			t.Errorf("password leaked: %q", s)
		}
	}
	if !strings.HasPrefix(reason, "proxy fail; ") || !strings.Contains(reason, "407") {
		t.Errorf("reason = %q, want a proxy fail mentioning 407", reason)
	}
}

// TestConnectFailRedacted runs a session whose dial to the proxy fails and
// checks that neither the events nor the returned error show the password.
func TestConnectFailRedacted(t *testing.T) {
	failDial := func(context.Context, string, string) (net.Conn, error) {
		return nil, errors.New("test: refused")
	}
	ws, err := New("ws://example.com/", WithProxy("http://user:secret@proxy.example:3128"), WithDialer(failDial))
	if err != nil {
		t.Fatal(err)
	}
	var texts []string
	var fail *events.ConnectFail
	runErr := ws.Run(context.Background(), HandlerFunc(func(_ *WebSocket, ev events.Event) {
		texts = append(texts, ev.String())
		if cf, ok := ev.(*events.ConnectFail); ok {
			fail = cf
		}
	}))
	var ce *ConnectError
	if !errors.As(runErr, &ce) {
		t.Fatalf("Run = %v, want a *ConnectError", runErr)
	}
	if fail == nil {
		t.Fatal("no ConnectFail event")
	}
	texts = append(texts, runErr.Error(), fail.Reason, fail.Err.Error(), ce.Reason)
	for _, s := range texts {
		if strings.Contains(s, "secret") {
			t.Errorf("password leaked: %q", s)
		}
	}
	if !strings.Contains(fail.Reason, "proxy.example") {
		t.Errorf("reason %q does not name the proxy", fail.Reason)
	}
}

func TestShownProxy(t *testing.T) {
	if got := shownProxy(nil); got != "" {
		t.Errorf("shownProxy(nil) = %q", got)
	}
	for in, want := range map[string]string{
		"http://user:secret@p:1":       "http://p:1",
		"http://TOKEN@p:1":             "http://p:1",
		"https://p:443/path?token=x#f": "https://p:443",
	} {
		if got := shownProxy(mustURL(t, in)); got != want {
			t.Errorf("shownProxy(%q) = %q, want %q", in, got, want)
		}
	}
}
