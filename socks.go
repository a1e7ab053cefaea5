package lomond

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"

	"golang.org/x/net/proxy"
)

// SOCKS5 proxies (RFC 1928), with user name and password authentication
// (RFC 1929), through golang.org/x/net/proxy. socks5:// resolves the
// target's name here and asks the proxy for the address; socks5h:// hands
// the name to the proxy, which resolves it (curl's convention).

// maxSOCKSCredential is RFC 1929's limit on the user name and the password.
const maxSOCKSCredential = 255

// checkSOCKSUser validates the credentials of a SOCKS5 proxy URL without
// showing them.
func checkSOCKSUser(u *url.URL) error {
	if u.User == nil {
		return nil
	}
	pass, _ := u.User.Password()
	switch {
	case u.User.Username() == "":
		return fmt.Errorf("proxy URL %s: SOCKS5 authentication needs a user name", shownProxy(u))
	case len(u.User.Username()) > maxSOCKSCredential || len(pass) > maxSOCKSCredential:
		return fmt.Errorf("proxy URL %s: SOCKS5 user name and password are limited to %d bytes each", shownProxy(u), maxSOCKSCredential)
	}
	return nil
}

func isSOCKS(u *url.URL) bool {
	return u.Scheme == "socks5" || u.Scheme == "socks5h"
}

// forwardDialer lets x/net/proxy reach the proxy through the DialFunc in
// use (WithDialer's or the default), and records that it did: a failure
// after that is the proxy's answer, not the network's.
type forwardDialer struct {
	dial    DialFunc
	reached bool
}

func (f *forwardDialer) Dial(network, addr string) (net.Conn, error) {
	return f.DialContext(context.Background(), network, addr)
}

func (f *forwardDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	c, err := f.dial(ctx, network, addr)
	f.reached = err == nil
	return c, err
}

// dialSOCKS connects to addr ("host:port") through the SOCKS5 proxy p,
// bounded by ctx.
func dialSOCKS(ctx context.Context, dial DialFunc, p *url.URL, addr string) (net.Conn, error) {
	shown := shownProxy(p)
	if p.Scheme == "socks5" {
		resolved, err := resolveHere(ctx, addr)
		if err != nil {
			return nil, fmt.Errorf("proxy %s: %w", shown, err)
		}
		addr = resolved
	}
	var auth *proxy.Auth
	if p.User != nil {
		pass, _ := p.User.Password()
		auth = &proxy.Auth{User: p.User.Username(), Password: pass}
	}
	fwd := &forwardDialer{dial: dial}
	d, err := proxy.SOCKS5("tcp", hostPortOf(p.Hostname(), p.Port(), p.Scheme), auth, fwd)
	if err != nil {
		return nil, fmt.Errorf("proxy %s: %w", shown, err)
	}
	cd, ok := d.(proxy.ContextDialer)
	if !ok { // x/net's SOCKS5 dialer has always had DialContext
		return nil, fmt.Errorf("proxy %s: the SOCKS5 dialer cannot be cancelled", shown)
	}
	conn, err := cd.DialContext(ctx, "tcp", addr)
	if err == nil {
		return conn, nil
	}
	if ctx.Err() != nil {
		return nil, fmt.Errorf("proxy %s: %w", shown, ctx.Err())
	}
	if refusal := socksRefusal(err); fwd.reached && refusal != "" {
		return nil, &ProxyError{Proxy: shown, Status: refusal}
	}
	return nil, fmt.Errorf("proxy %s: %w", shown, err)
}

// socksRefusal returns what the proxy refused, or "" when err is the
// network's (a reset, an early EOF, a timeout).
func socksRefusal(err error) string {
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		err = op.Err
	}
	var ne net.Error
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.As(err, &ne) {
		return ""
	}
	// x/net reports a reply code as "unknown error connection refused".
	return strings.TrimPrefix(err.Error(), "unknown error ")
}

// resolveHere resolves the host of addr for socks5://, which sends the
// proxy an address: the first the resolver returns.
func resolveHere(ctx context.Context, addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", err
	}
	if net.ParseIP(host) != nil {
		return addr, nil
	}
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return "", err
	}
	if len(ips) == 0 {
		return "", fmt.Errorf("lookup %s: no address", host)
	}
	return net.JoinHostPort(ips[0].Unmap().String(), port), nil
}
