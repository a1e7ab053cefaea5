package lomond

import (
	"bufio"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"golang.org/x/net/http/httpproxy"
)

// parseProxyURL accepts http://, https://, socks5:// and socks5h:// proxy
// URLs (a bare host:port means http://). Its errors never show the URL's
// user information.
func parseProxyURL(raw string) (*url.URL, error) {
	if !strings.Contains(raw, "://") {
		raw = "http://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("proxy URL: %v", redactParseErr(err))
	}
	u.Scheme = strings.ToLower(u.Scheme)
	switch u.Scheme {
	case "http", "https":
	case "socks5", "socks5h":
		if err := checkSOCKSUser(u); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("proxy URL scheme %q is not supported (http and https CONNECT proxies, socks5 and socks5h)", printable(u.Scheme))
	}
	if u.Hostname() == "" {
		return nil, fmt.Errorf("proxy URL %q has no host", shownProxy(u))
	}
	return u, nil
}

// getenvAny returns the first non-empty of the named variables.
func getenvAny(names ...string) string {
	for _, n := range names {
		if v := os.Getenv(n); v != "" {
			return v
		}
	}
	return ""
}

// proxyFor returns the proxy to use for target (nil: connect directly).
//
// From the environment, read at each connection attempt, ws:// uses
// HTTP_PROXY and wss:// uses HTTPS_PROXY (upper or lower case), either of
// them falling back to ALL_PROXY when unset, unless NO_PROXY matches. The
// choice is golang.org/x/net/http/httpproxy's, which is net/http's:
// localhost and loopback addresses are never proxied, and HTTP_PROXY is
// refused in a CGI process (REQUEST_METHOD set), where a request's Proxy
// header sets it (httpoxy).
func (c *config) proxyFor(target *url.URL) (*url.URL, error) {
	switch c.proxyMode {
	case proxyNone:
		return nil, nil
	case proxyFixed:
		return c.proxyURL, nil
	}
	env := httpproxy.FromEnvironment()
	name, raw := "HTTP_PROXY", env.HTTPProxy
	if target.Scheme == "wss" {
		name, raw = "HTTPS_PROXY", env.HTTPSProxy
	}
	if raw == "" {
		// ALL_PROXY cannot come from a request header: no CGI refusal.
		all := getenvAny("ALL_PROXY", "all_proxy")
		name, raw = "ALL_PROXY", all
		env = &httpproxy.Config{HTTPProxy: all, HTTPSProxy: all, NoProxy: env.NoProxy}
	}
	if raw == "" {
		return nil, nil
	}
	// Our own parse first: httpproxy ignores a proxy it cannot parse (a
	// direct connection the user did not ask for), and its error would
	// quote the password.
	u, err := parseProxyURL(raw)
	if err != nil {
		return nil, fmt.Errorf("proxy from environment (%s): %w", name, err)
	}
	use, err := env.ProxyFunc()(asHTTPURL(target))
	if err != nil {
		return nil, fmt.Errorf("proxy from environment: %s is not used in a CGI process (REQUEST_METHOD is set), where a request's Proxy header sets it (httpoxy); use WithProxy, ALL_PROXY or WithoutProxy", name)
	}
	if use == nil {
		return nil, nil // NO_PROXY, localhost or loopback
	}
	return u, nil
}

// asHTTPURL maps a websocket URL to the http:// or https:// URL it is
// carried as, for NO_PROXY matching and the cookie jar.
func asHTTPURL(target *url.URL) *url.URL {
	u := *target
	u.User = nil
	switch u.Scheme {
	case "ws":
		u.Scheme = "http"
	case "wss":
		u.Scheme = "https"
	}
	return &u
}

func defaultPort(scheme string) string {
	switch scheme {
	case "wss", "https":
		return "443"
	case "socks5", "socks5h":
		return "1080"
	}
	return "80"
}

// maxConnectResponse bounds the proxy's answer to CONNECT (status line and
// headers), as the upgrade response is bounded.
const maxConnectResponse = 1 << 20

// connectTunnel asks the proxy on conn to open a tunnel to addr. The dial's
// context bounds it: its deadline, and its cancellation at once.
func connectTunnel(ctx context.Context, conn net.Conn, proxy *url.URL, addr string) (net.Conn, error) {
	if d, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(d)
	}
	// A cancelled context expires the deadline, which ends a blocked read or
	// write at once.
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer func() {
		if stop() {
			_ = conn.SetDeadline(noDeadline)
		}
	}()
	fail := func(what string, err error) error {
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return fmt.Errorf("proxy %s: %s: %w", shownProxy(proxy), what, err)
	}
	req := "CONNECT " + addr + " HTTP/1.1\r\nHost: " + addr + "\r\n"
	if u := proxy.User; u != nil {
		pass, _ := u.Password()
		req += "Proxy-Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte(u.Username()+":"+pass)) + "\r\n"
	}
	req += "\r\n"
	if _, err := conn.Write([]byte(req)); err != nil {
		return nil, fail("sending CONNECT", err)
	}
	limited := &io.LimitedReader{R: conn, N: maxConnectResponse}
	br := bufio.NewReader(limited)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
	if err != nil {
		if limited.N <= 0 {
			err = fmt.Errorf("response larger than %d bytes", maxConnectResponse)
		}
		return nil, fail("reading CONNECT response", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, &ProxyError{Proxy: shownProxy(proxy), StatusCode: resp.StatusCode, Status: resp.Status}
	}
	if ctx.Err() != nil {
		return nil, fail("CONNECT", ctx.Err())
	}
	limited.N = math.MaxInt64 // the tunnel's bytes are not the response's
	if br.Buffered() > 0 {
		// The server spoke before we did; keep what the reader holds.
		return &bufferedConn{Conn: conn, r: br}, nil
	}
	return conn, nil
}

// ProxyError is the cause of a ConnectFail when the proxy refused the
// tunnel: an HTTP proxy answered CONNECT with another status than 200, or a
// SOCKS5 proxy refused the credentials or the connection.
type ProxyError struct {
	// Proxy is the proxy as scheme://host:port: no user name (it may be a
	// token), no password.
	Proxy string
	// StatusCode is an HTTP proxy's status, such as 407; 0 for a SOCKS5
	// proxy.
	StatusCode int
	// Status is an HTTP proxy's status line text, as sent, or what a SOCKS5
	// proxy refused: "username/password authentication failed", "no
	// acceptable authentication methods", or its reply ("connection
	// refused", "host unreachable", ...).
	Status string
}

// Error implements error. The proxy's status text is escaped.
func (e *ProxyError) Error() string {
	return printable(fmt.Sprintf("proxy %s refused the tunnel: %s", e.Proxy, e.Status))
}

type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }
