package lomond

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lomond-go/lomond/events"
	"github.com/lomond-go/lomond/internal/testkit"
	"github.com/lomond-go/lomond/internal/wstest"
)

// The SOCKS5 tests run the client through microsocks (Debian package
// microsocks), a SOCKS5 server of its own, started on 127.0.0.1 by each
// test. .ci/run installs it; elsewhere the tests are skipped when it is
// missing, except with CI=true.

// socksServer is a running microsocks.
type socksServer struct {
	addr       string
	user, pass string
}

// url returns scheme://[user:pass@]addr.
func (s *socksServer) url(scheme string, withAuth bool) string {
	u := url.URL{Scheme: scheme, Host: s.addr}
	if withAuth && s.user != "" {
		u.User = url.UserPassword(s.user, s.pass)
	}
	return u.String()
}

// startSOCKS starts microsocks on 127.0.0.1, requiring user and pass when
// user is not empty, and stops it at the end of the test.
func startSOCKS(t *testing.T, user, pass string) *socksServer {
	t.Helper()
	bin, err := exec.LookPath("microsocks")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("microsocks is not installed (Debian package microsocks); .ci/run installs it")
		}
		t.Skip("microsocks is not installed (Debian package microsocks): apt-get install microsocks")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_, port, _ := net.SplitHostPort(addr)
	ln.Close()
	args := []string{"-i", "127.0.0.1", "-p", port}
	if user != "" {
		args = append(args, "-u", user, "-P", pass)
	}
	cmd := exec.Command(bin, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting microsocks: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	// Ready when it accepts a connection.
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return &socksServer{addr: addr, user: user, pass: pass}
		}
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("microsocks exited: %v\n%s", err, out.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("microsocks did not listen on %s within 10 s: %v", addr, err)
		}
	}
}

// tapDialer dials like the default dialer and keeps what the client wrote
// on each connection: the SOCKS5 exchange, then the tunnel's bytes.
type tapDialer struct {
	mu      sync.Mutex
	asked   []string
	written bytes.Buffer
}

type tapConn struct {
	net.Conn
	d *tapDialer
}

func (c *tapConn) Write(p []byte) (int, error) {
	c.d.mu.Lock()
	c.d.written.Write(p)
	c.d.mu.Unlock()
	return c.Conn.Write(p)
}

func (d *tapDialer) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	d.mu.Lock()
	d.asked = append(d.asked, addr)
	d.mu.Unlock()
	var nd net.Dialer
	c, err := nd.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	return &tapConn{Conn: c, d: d}, nil
}

func (d *tapDialer) bytes() []byte {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.written.Bytes())
}

func (d *tapDialer) addrs() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.asked)
}

// socksConnect is the start of the SOCKS5 CONNECT request for the given
// address type and address bytes (RFC 1928, section 4).
func socksConnect(atyp byte, addr []byte) []byte {
	b := []byte{5, 1, 0, atyp}
	if atyp == 3 {
		b = append(b, byte(len(addr)))
	}
	return append(b, addr...)
}

// noSecret fails the test if any event, the run's error or extra text shows
// secret.
func noSecret(t *testing.T, secret string, rec *testkit.EventRecorder, texts ...string) {
	t.Helper()
	for _, ev := range rec.All() {
		if s := ev.String(); strings.Contains(s, secret) {
			t.Errorf("the %s event shows a secret: %s", ev.Name(), s)
		}
		if cf, ok := ev.(*events.ConnectFail); ok {
			texts = append(texts, cf.Reason, cf.Err.Error())
		}
	}
	for _, s := range texts {
		if strings.Contains(s, secret) {
			t.Errorf("a secret shows: %s", s)
		}
	}
}

// TestSocks5Proxy: ws:// and wss:// through socks5:// and socks5h://, with
// and without authentication. With socks5:// the client resolves the name
// and asks for the address; with socks5h:// the proxy gets the name.
func TestSocks5Proxy(t *testing.T) {
	clearProxyEnv(t)
	const user, pass = "sockuser", "S0cks-pa55"
	open := startSOCKS(t, "", "")
	authed := startSOCKS(t, user, pass)
	plain := wstest.NewServer(t, wstest.Echo)
	secure := wstest.NewTLSServer(t, wstest.Echo)
	localhost := []byte{127, 0, 0, 1}
	for _, scheme := range []string{"socks5", "socks5h"} {
		for _, useTLS := range []bool{false, true} {
			for _, auth := range []bool{false, true} {
				name := scheme + "/ws"
				srv, opts := plain, []Option(nil)
				if useTLS {
					name = scheme + "/wss"
					srv, opts = secure, []Option{WithRootCAs(secure.CertPool())}
				}
				proxy := open
				if auth {
					name += "/auth"
					proxy = authed
				}
				t.Run(name, func(t *testing.T) {
					// A name, to see who resolves it; the certificate
					// covers localhost.
					target := strings.Replace(srv.URL(), "127.0.0.1", "localhost", 1)
					_, port, _ := net.SplitHostPort(srv.Addr())
					d := &tapDialer{}
					opts := append(opts, WithProxy(proxy.url(scheme, auth)), WithDialer(d.dial))
					rec := runUntilReady(t, mustNew(t, target, opts...))
					if got, want := testkit.First[*events.Connected](t, rec).Proxy, scheme+"://"+proxy.addr; got != want {
						t.Errorf("Connected.Proxy = %q, want %q", got, want)
					}
					if got := d.addrs(); !slices.Equal(got, []string{proxy.addr}) {
						t.Errorf("dialer asked for %v, want the proxy [%s]", got, proxy.addr)
					}
					n, err := strconv.Atoi(port)
					if err != nil {
						t.Fatal(err)
					}
					portBytes := []byte{byte(n >> 8), byte(n)}
					wrote := d.bytes()
					want := append(socksConnect(1, localhost), portBytes...)
					if scheme == "socks5h" {
						want = append(socksConnect(3, []byte("localhost")), portBytes...)
					}
					if !bytes.Contains(wrote, want) {
						t.Errorf("the client's SOCKS5 bytes %q hold no CONNECT %q", wrote, want)
					}
					if auth {
						// RFC 1929: version 1, the user name, the password.
						cred := append(append([]byte{1, byte(len(user))}, user...), byte(len(pass)))
						if !bytes.Contains(wrote, append(cred, pass...)) {
							t.Errorf("the client's SOCKS5 bytes %q hold no user name and password", wrote)
						}
						noSecret(t, pass, rec)
					}
				})
			}
		}
	}
}

// TestSocks5ProxyRefusals: what the proxy refuses is a ConnectFail whose
// Err is a *ProxyError saying what, never showing the password.
func TestSocks5ProxyRefusals(t *testing.T) {
	clearProxyEnv(t)
	const user, pass = "sockuser", "S0cks-pa55"
	authed := startSOCKS(t, user, pass)
	srv := wstest.NewServer(t, wstest.Echo)

	for _, scheme := range []string{"socks5", "socks5h"} {
		t.Run(scheme+"/wrong password", func(t *testing.T) {
			const wrong = "n0t-the-Pa55word"
			proxy := scheme + "://" + user + ":" + wrong + "@" + authed.addr
			rec, err := runRecorded(t, mustNew(t, srv.URL(), WithProxy(proxy)), nil)
			ev := testkit.First[*events.ConnectFail](t, rec)
			var pe *ProxyError
			if !errors.As(err, &pe) || !errors.As(ev.Err, &pe) {
				t.Fatalf("Run = %v, ConnectFail.Err = %v; want a *ProxyError", err, ev.Err)
			}
			if pe.Status != "username/password authentication failed" || pe.StatusCode != 0 || pe.Proxy != scheme+"://"+authed.addr {
				t.Errorf("ProxyError %+v, want the authentication failure of %s://%s", pe, scheme, authed.addr)
			}
			if !strings.HasPrefix(ev.Reason, "proxy fail; ") || !strings.Contains(ev.Reason, "authentication failed") {
				t.Errorf("ConnectFail.Reason = %q, want a proxy fail saying the authentication failed", ev.Reason)
			}
			noSecret(t, wrong, rec, err.Error())
			noSecret(t, user, rec, err.Error())
			if srv.Conns() != 0 {
				t.Errorf("the server got %d connections through a refused proxy", srv.Conns())
			}
		})
	}

	t.Run("no credentials", func(t *testing.T) {
		rec, err := runRecorded(t, mustNew(t, srv.URL(), WithProxy("socks5://"+authed.addr)), nil)
		var pe *ProxyError
		if !errors.As(err, &pe) || pe.Status != "no acceptable authentication methods" {
			t.Errorf("Run = %v, want a *ProxyError: no acceptable authentication methods; events %v", err, rec.Names())
		}
	})

	t.Run("target refused", func(t *testing.T) {
		dead := testkit.RefusedAddr(t)
		rec, err := runRecorded(t, mustNew(t, "ws://"+dead+"/", WithProxy(authed.url("socks5", true))), nil)
		var pe *ProxyError
		if !errors.As(err, &pe) || pe.Status == "" {
			t.Fatalf("Run = %v, want a *ProxyError with the proxy's reply; events %v", err, rec.Names())
		}
		if strings.HasPrefix(pe.Status, "unknown error") {
			t.Errorf("ProxyError.Status = %q, want the reply without x/net's prefix", pe.Status)
		}
		noSecret(t, pass, rec, err.Error())
	})

	t.Run("proxy unreachable", func(t *testing.T) {
		dead := testkit.RefusedAddr(t)
		rec, err := runRecorded(t, mustNew(t, srv.URL(), WithProxy("socks5h://"+user+":"+pass+"@"+dead)), nil)
		ev := testkit.First[*events.ConnectFail](t, rec)
		var pe *ProxyError
		if errors.As(err, &pe) {
			t.Errorf("Run = %v: an unreachable proxy refused nothing", err)
		}
		if !strings.Contains(ev.Reason, "socks5h://"+dead) || !strings.HasPrefix(ev.Reason, "unable to connect; ") {
			t.Errorf("ConnectFail.Reason = %q, want unable to connect, naming the proxy", ev.Reason)
		}
		noSecret(t, pass, rec, err.Error())
	})
}

// TestSocks5FromEnvironment: ALL_PROXY (either case) is used when the
// scheme's own variable is unset, and NO_PROXY bypasses it. Loopback
// targets are never proxied from the environment, so the target is
// 0.0.0.0, which Linux connects to the local host: the traffic stays on
// the machine.
func TestSocks5FromEnvironment(t *testing.T) {
	const user, pass = "envuser", "Env-pa55"
	proxy := startSOCKS(t, user, pass)
	srv := wstest.NewServer(t, wstest.Echo)
	target := strings.Replace(srv.URL(), "127.0.0.1", "0.0.0.0", 1)
	_, port, _ := net.SplitHostPort(srv.Addr())

	for _, name := range []string{"ALL_PROXY", "all_proxy"} {
		t.Run(name, func(t *testing.T) {
			clearProxyEnv(t)
			t.Setenv(name, proxy.url("socks5h", true))
			d := &tapDialer{}
			rec := runUntilReady(t, mustNew(t, target, WithDialer(d.dial)))
			if got, want := testkit.First[*events.Connected](t, rec).Proxy, "socks5h://"+proxy.addr; got != want {
				t.Errorf("Connected.Proxy = %q, want %q", got, want)
			}
			if got := d.addrs(); !slices.Equal(got, []string{proxy.addr}) {
				t.Errorf("dialer asked for %v, want the proxy [%s]", got, proxy.addr)
			}
			noSecret(t, pass, rec)
		})
	}

	t.Run("NO_PROXY", func(t *testing.T) {
		clearProxyEnv(t)
		t.Setenv("ALL_PROXY", proxy.url("socks5", true))
		t.Setenv("NO_PROXY", "10.0.0.0/8, 0.0.0.0")
		d := &tapDialer{}
		rec := runUntilReady(t, mustNew(t, target, WithDialer(d.dial)))
		if got := testkit.First[*events.Connected](t, rec).Proxy; got != "" {
			t.Errorf("Connected.Proxy = %q, want direct (NO_PROXY)", got)
		}
		if got := d.addrs(); !slices.Equal(got, []string{"0.0.0.0:" + port}) {
			t.Errorf("dialer asked for %v, want the server directly", got)
		}
	})
}
