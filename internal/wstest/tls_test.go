package wstest

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestTLSServer(t *testing.T) {
	s := NewTLSServer(t, Echo)
	if want := "wss://" + s.Addr() + "/"; s.URL() != want {
		t.Fatalf("URL = %q, want %q", s.URL(), want)
	}
	for _, name := range []string{"", "127.0.0.1", "localhost"} {
		t.Run("ServerName="+name, func(t *testing.T) {
			tc, err := tls.Dial("tcp", s.Addr(), &tls.Config{RootCAs: s.CertPool(), ServerName: name})
			if err != nil {
				t.Fatalf("tls.Dial: %v", err)
			}
			c := newTestClient(t, tc)
			c.handshake("")
			c.send(Text("secure"))
			c.expectFrame(OpText, []byte("secure"))
			c.send(Close(1000, ""))
			c.expectFrame(OpClose, ClosePayload(1000, ""))
		})
	}
	tc, err := tls.Dial("tcp", s.Addr(), s.ClientTLSConfig())
	if err != nil {
		t.Fatalf("tls.Dial with ClientTLSConfig: %v", err)
	}
	tc.Close()
}

func TestTLSServerUntrusted(t *testing.T) {
	s := NewTLSServer(t, Echo)
	tc, err := tls.Dial("tcp", s.Addr(), &tls.Config{RootCAs: x509.NewCertPool()})
	if err == nil {
		tc.Close()
		t.Fatal("handshake with an empty root pool succeeded")
	}
	if !errors.As(err, new(x509.UnknownAuthorityError)) {
		t.Fatalf("error %v is not x509.UnknownAuthorityError", err)
	}
	// A wrong name must not verify either.
	tc, err = tls.Dial("tcp", s.Addr(), &tls.Config{RootCAs: s.CertPool(), ServerName: "example.com"})
	if err == nil {
		tc.Close()
		t.Fatal("handshake for example.com succeeded")
	}
}

func TestTLSCertFiles(t *testing.T) {
	s := NewTLSServer(t, Echo)
	dir := t.TempDir()
	path := s.WriteCAFile(dir)
	if filepath.Dir(path) != dir {
		t.Fatalf("CA file %q not in %q", path, dir)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(data) != string(s.CertPEM()) {
		t.Fatal("CA file differs from CertPEM")
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "CERTIFICATE" {
		t.Fatalf("bad PEM %q", data)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range []string{"127.0.0.1", "::1", "localhost"} {
		if err := cert.VerifyHostname(h); err != nil {
			t.Errorf("certificate not valid for %s: %v", h, err)
		}
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		t.Fatal("AppendCertsFromPEM failed")
	}
	tc, err := tls.Dial("tcp", s.Addr(), &tls.Config{RootCAs: pool})
	if err != nil {
		t.Fatalf("tls.Dial with pool from CA file: %v", err)
	}
	c := newTestClient(t, tc)
	c.handshake("")
	if p2 := s.WriteCAFile(dir); p2 == path {
		t.Fatal("second WriteCAFile reused the path")
	}
}

// TestTLSServerCloseDuringHandshake checks that Close is not held up by a
// client that connected but never sent a ClientHello.
func TestTLSServerCloseDuringHandshake(t *testing.T) {
	started := make(chan struct{})
	s := NewTLSServer(t, func(c *Conn) {
		close(started)
		c.ReadRequest() // blocks in the TLS handshake
	})
	dialClient(t, s.Addr())
	<-started
	s.Close()
}
