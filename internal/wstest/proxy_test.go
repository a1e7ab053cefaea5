package wstest

import (
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"reflect"
	"strings"
	"testing"
)

// connectVia opens a connection to the proxy and sends a CONNECT for target
// with the given extra header lines, returning the client and the response.
func connectVia(t *testing.T, p *Proxy, target, extra string) (*testClient, *http.Response) {
	t.Helper()
	c := dialClient(t, p.Addr())
	c.writeRaw(fmt.Sprintf("CONNECT %s HTTP/1.1\r\nHost: %s\r\n%s\r\n", target, target, extra))
	resp, err := http.ReadResponse(c.br, &http.Request{Method: http.MethodConnect})
	if err != nil {
		t.Fatalf("reading CONNECT response: %v", err)
	}
	return c, resp
}

func basicAuth(user, pass string) string {
	return "Proxy-Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass)) + "\r\n"
}

func TestProxyNoAuth(t *testing.T) {
	s := NewServer(t, Echo)
	p := NewProxy(t, "", "")
	if want := "http://" + p.Addr(); p.URL() != want || p.URLWithAuth() != want {
		t.Fatalf("URL = %q, URLWithAuth = %q, want %q", p.URL(), p.URLWithAuth(), want)
	}
	c, resp := connectVia(t, p, s.Addr(), "")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("CONNECT status %d", resp.StatusCode)
	}
	c.handshake("")
	c.send(Text("through the tunnel"))
	c.expectFrame(OpText, []byte("through the tunnel"))
	c.send(Binary(pattern(70000)))
	c.expectFrame(OpBinary, pattern(70000))
	c.send(Close(1000, ""))
	c.expectFrame(OpClose, ClosePayload(1000, ""))
	c.expectEOF() // server closed, propagated through the proxy
	if got := p.Targets(); !reflect.DeepEqual(got, []string{s.Addr()}) {
		t.Fatalf("Targets = %q", got)
	}
}

func TestProxyExactEstablishedLine(t *testing.T) {
	s := NewServer(t, func(c *Conn) {})
	p := NewProxy(t, "", "")
	c := dialClient(t, p.Addr())
	c.writeRaw("CONNECT " + s.Addr() + " HTTP/1.1\r\nHost: " + s.Addr() + "\r\n\r\n")
	want := "HTTP/1.1 200 Connection established\r\n\r\n"
	got := make([]byte, len(want))
	if _, err := io.ReadFull(c.br, got); err != nil || string(got) != want {
		t.Fatalf("got %q (%v), want %q", got, err, want)
	}
	c.expectEOF() // script returned immediately, so the tunnel ends
}

func TestProxyAuth(t *testing.T) {
	s := NewServer(t, Echo)
	p := NewProxy(t, "alice", "s3cr:t@")
	if want := "http://alice:s3cr%3At%40@" + p.Addr(); p.URLWithAuth() != want {
		t.Fatalf("URLWithAuth = %q, want %q", p.URLWithAuth(), want)
	}
	if p.URL() != "http://"+p.Addr() {
		t.Fatalf("URL = %q", p.URL())
	}
	for name, hdr := range map[string]string{
		"missing":      "",
		"wrong pass":   basicAuth("alice", "nope"),
		"wrong scheme": "Proxy-Authorization: Bearer abc\r\n",
	} {
		c, resp := connectVia(t, p, s.Addr(), hdr)
		if resp.StatusCode != http.StatusProxyAuthRequired {
			t.Fatalf("%s: status %d, want 407", name, resp.StatusCode)
		}
		if got := resp.Header.Get("Proxy-Authenticate"); got != `Basic realm="test"` {
			t.Fatalf("%s: Proxy-Authenticate = %q", name, got)
		}
		c.expectEOF()
	}
	if s.Conns() != 0 {
		t.Fatalf("unauthorised CONNECTs reached the server (%d conns)", s.Conns())
	}
	c, resp := connectVia(t, p, s.Addr(), basicAuth("alice", "s3cr:t@"))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("authorised CONNECT status %d", resp.StatusCode)
	}
	c.handshake("")
	c.send(Text("authed"))
	c.expectFrame(OpText, []byte("authed"))
	if got := p.Targets(); len(got) != 4 || got[3] != s.Addr() {
		t.Fatalf("Targets = %q", got)
	}
	if p.Conns() != 4 {
		t.Fatalf("proxy Conns = %d, want 4", p.Conns())
	}
}

func TestProxyRefusals(t *testing.T) {
	p := NewProxy(t, "", "")
	// A loopback port with nothing listening.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()

	tests := []struct {
		target string
		want   int
	}{
		{"192.0.2.1:80", http.StatusForbidden},
		{"example.com:443", http.StatusForbidden},
		{"[2001:db8::1]:443", http.StatusForbidden},
		{"127.0.0.1", http.StatusForbidden},
		{"127.0.0.1:0", http.StatusForbidden},
		{"127.0.0.1:notaport", http.StatusBadRequest}, // rejected by http.ReadRequest
		{closed, http.StatusBadGateway},
	}
	for _, tt := range tests {
		c, resp := connectVia(t, p, tt.target, "")
		if resp.StatusCode != tt.want {
			t.Errorf("CONNECT %s: status %d, want %d", tt.target, resp.StatusCode, tt.want)
		}
		c.expectEOF()
	}

	c := dialClient(t, p.Addr())
	c.writeRaw("GET http://127.0.0.1/ HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
	resp := c.readResponse()
	if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "CONNECT" {
		t.Fatalf("GET through proxy: %d %v", resp.StatusCode, resp.Header)
	}
	c.expectEOF()
	if got := p.Targets(); len(got) != len(tests)-1 {
		t.Fatalf("Targets = %q, want the %d well-formed CONNECT targets", got, len(tests)-1)
	}
}

func TestProxyLocalhostTarget(t *testing.T) {
	s := NewServer(t, Echo)
	p := NewProxy(t, "", "")
	_, port, _ := net.SplitHostPort(s.Addr())
	c, resp := connectVia(t, p, "localhost:"+port, "")
	if resp.StatusCode == http.StatusBadGateway {
		t.Skip("localhost does not resolve to 127.0.0.1 here")
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	c.handshake("")
	c.send(Text("hi"))
	c.expectFrame(OpText, []byte("hi"))
}

func TestProxyToTLSServer(t *testing.T) {
	s := NewTLSServer(t, Echo)
	p := NewProxy(t, "u", "p")
	c, resp := connectVia(t, p, s.Addr(), basicAuth("u", "p"))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if c.br.Buffered() != 0 {
		t.Fatal("unexpected bytes after the CONNECT response")
	}
	tc := tls.Client(c.nc, &tls.Config{RootCAs: s.CertPool(), ServerName: "127.0.0.1"})
	wc := newTestClient(t, tc)
	wc.handshake("")
	wc.send(Text("tls via proxy"))
	wc.expectFrame(OpText, []byte("tls via proxy"))
}

// TestProxyCloseWithOpenTunnel checks that Close tears down live tunnels and
// waits for its goroutines while the target script is blocked reading.
func TestProxyCloseWithOpenTunnel(t *testing.T) {
	started := make(chan struct{})
	s := NewServer(t, func(c *Conn) {
		close(started)
		c.ReadFrame()
	})
	p := NewProxy(t, "", "")
	c, resp := connectVia(t, p, s.Addr(), "")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	<-started
	p.Close()
	c.expectEOF()
	s.Close()
	p.Close()
	if !strings.HasPrefix(p.URL(), "http://127.0.0.1:") {
		t.Fatalf("URL = %q", p.URL())
	}
}
