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
)

// parseProxyURL accepts http:// and https:// proxy URLs (a bare host:port
// means http://). Its errors never show the URL's user information.
func parseProxyURL(raw string) (*url.URL, error) {
	if !strings.Contains(raw, "://") {
		raw = "http://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("proxy URL: %v", redactParseErr(err))
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("proxy URL scheme %q is not supported (http or https CONNECT proxies only)", u.Scheme)
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
// From the environment, ws:// uses HTTP_PROXY and wss:// uses HTTPS_PROXY
// (upper or lower case), unless NO_PROXY matches. As in net/http,
// localhost and loopback addresses are never proxied from the environment.
// The environment is read at each connection attempt.
func (c *config) proxyFor(target *url.URL) (*url.URL, error) {
	switch c.proxyMode {
	case proxyNone:
		return nil, nil
	case proxyFixed:
		return c.proxyURL, nil
	}
	var raw string
	if target.Scheme == "wss" {
		raw = getenvAny("HTTPS_PROXY", "https_proxy")
	} else {
		raw = getenvAny("HTTP_PROXY", "http_proxy")
	}
	if raw == "" || !useProxy(target, getenvAny("NO_PROXY", "no_proxy")) {
		return nil, nil
	}
	u, err := parseProxyURL(raw)
	if err != nil {
		return nil, fmt.Errorf("proxy from environment: %w", err)
	}
	return u, nil
}

// useProxy applies NO_PROXY: a comma-separated list of host names (matching
// the name and its subdomains; a leading dot or "*." is allowed), IP
// addresses, CIDR ranges, optionally with :port, or "*" for everything.
func useProxy(target *url.URL, noProxy string) bool {
	host, port := target.Hostname(), target.Port()
	if port == "" {
		port = defaultPort(target.Scheme)
	}
	if host == "localhost" {
		return false
	}
	ip := net.ParseIP(host)
	if ip != nil && ip.IsLoopback() {
		return false
	}
	for _, entry := range strings.Split(noProxy, ",") {
		entry = strings.ToLower(strings.TrimSpace(entry))
		if entry == "" {
			continue
		}
		if entry == "*" {
			return false
		}
		if _, cidr, err := net.ParseCIDR(entry); err == nil {
			if ip != nil && cidr.Contains(ip) {
				return false
			}
			continue
		}
		eHost, ePort := entry, ""
		if h, p, err := net.SplitHostPort(entry); err == nil {
			eHost, ePort = h, p
		}
		if ePort != "" && ePort != port {
			continue
		}
		if eIP := net.ParseIP(eHost); eIP != nil {
			if ip != nil && eIP.Equal(ip) {
				return false
			}
			continue
		}
		eHost = strings.TrimPrefix(strings.TrimPrefix(eHost, "*"), ".")
		h := strings.ToLower(host)
		if h == eHost || strings.HasSuffix(h, "."+eHost) {
			return false
		}
	}
	return true
}

func defaultPort(scheme string) string {
	if scheme == "wss" || scheme == "https" {
		return "443"
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
// CONNECT tunnel.
type ProxyError struct {
	// Proxy is the proxy as scheme://host:port: no user name (it may be a
	// token), no password.
	Proxy string
	// StatusCode is the proxy's HTTP status, such as 407.
	StatusCode int
	// Status is the proxy's status line text, as sent.
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
