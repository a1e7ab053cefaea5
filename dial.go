package lomond

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"time"
)

var noDeadline time.Time

// dialResult is the transport a session runs on.
type dialResult struct {
	conn  net.Conn
	proxy *url.URL
}

// dialTransport opens TCP (through the dialer option, if any), the proxy
// tunnel (HTTP CONNECT or SOCKS5) and TLS, bounded by the dial timeout.
func (c *config) dialTransport(ctx context.Context, target *url.URL) (dialResult, error) {
	ctx, cancel := context.WithTimeout(ctx, c.dialTimeout)
	defer cancel()

	addr := hostPort(target)
	proxy, err := c.proxyFor(target)
	if err != nil {
		return dialResult{}, err
	}
	dial := c.dial
	if dial == nil {
		d := &net.Dialer{KeepAlive: 30 * time.Second}
		dial = d.DialContext
	}
	dialAddr := addr
	if proxy != nil {
		dialAddr = hostPortOf(proxy.Hostname(), proxy.Port(), proxy.Scheme)
	}
	var conn net.Conn
	if proxy != nil && isSOCKS(proxy) {
		conn, err = dialSOCKS(ctx, dial, proxy, addr)
		if err != nil {
			return dialResult{proxy: proxy}, err
		}
	} else {
		conn, err = dial(ctx, "tcp", dialAddr)
		if err != nil {
			if proxy != nil {
				return dialResult{proxy: proxy}, fmt.Errorf("proxy %s: %w", shownProxy(proxy), err)
			}
			return dialResult{}, err
		}
	}
	if proxy != nil && !isSOCKS(proxy) {
		if proxy.Scheme == "https" {
			conn, err = handshakeTLS(ctx, conn, &tls.Config{ServerName: proxy.Hostname(), MinVersion: tls.VersionTLS12})
			if err != nil {
				return dialResult{proxy: proxy}, fmt.Errorf("proxy %s: %w", shownProxy(proxy), err)
			}
		}
		tunnel, err := connectTunnel(ctx, conn, proxy, addr)
		if err != nil {
			_ = conn.Close()
			return dialResult{proxy: proxy}, err
		}
		conn = tunnel
	}
	if target.Scheme == "wss" {
		var cfg *tls.Config
		if c.tls != nil {
			cfg = c.tls.Clone()
		} else {
			cfg = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		if cfg.ServerName == "" {
			cfg.ServerName = target.Hostname()
		}
		// HTTP/1.1 only: the upgrade needs it.
		cfg.NextProtos = nil
		conn, err = handshakeTLS(ctx, conn, cfg)
		if err != nil {
			return dialResult{proxy: proxy}, err
		}
	}
	return dialResult{conn: conn, proxy: proxy}, nil
}

func handshakeTLS(ctx context.Context, conn net.Conn, cfg *tls.Config) (net.Conn, error) {
	tc := tls.Client(conn, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("TLS handshake: %w", err)
	}
	return tc, nil
}

func hostPort(u *url.URL) string {
	return hostPortOf(u.Hostname(), u.Port(), u.Scheme)
}

func hostPortOf(host, port, scheme string) string {
	if port == "" {
		port = defaultPort(scheme)
	}
	return net.JoinHostPort(host, port)
}

// connectFailReason gives a short reason for a dial error, lomond style.
func connectFailReason(err error) string {
	var pe *ProxyError
	switch {
	case errors.As(err, &pe):
		return "proxy fail; " + pe.Error()
	case errors.Is(err, context.DeadlineExceeded):
		return "unable to connect; timed out; " + err.Error()
	case errors.Is(err, context.Canceled):
		return "unable to connect; cancelled"
	}
	return "unable to connect; " + err.Error()
}
