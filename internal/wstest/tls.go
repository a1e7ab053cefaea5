package wstest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"testing"
	"time"
)

// NewTLSServer is like NewServer but serves TLS with a freshly generated
// self-signed ECDSA P-256 certificate valid for 127.0.0.1, ::1 and
// localhost. Its URL is "wss://127.0.0.1:PORT/". Clients trust it through
// CertPool, ClientTLSConfig, CertPEM or WriteCAFile.
func NewTLSServer(t testing.TB, script func(c *Conn)) *Server {
	t.Helper()
	cert, certPEM, err := selfSignedCert()
	if err != nil {
		t.Fatalf("wstest: generating certificate: %v", err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert.Leaf)
	s := &Server{
		tlsConfig: &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
		certPEM:   certPEM,
		certPool:  pool,
	}
	return startServer(t, script, s)
}

// selfSignedCert generates a CA-capable self-signed server certificate.
func selfSignedCert() (tls.Certificate, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{Organization: []string{"wstest"}, CommonName: "wstest"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	cert := tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
	return cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), nil
}

// CertPEM returns the server certificate in PEM form (nil for a plain
// server).
func (s *Server) CertPEM() []byte {
	return append([]byte(nil), s.certPEM...)
}

// CertPool returns a new pool containing only the server certificate (nil
// for a plain server).
func (s *Server) CertPool() *x509.CertPool {
	if s.certPool == nil {
		return nil
	}
	return s.certPool.Clone()
}

// ClientTLSConfig returns a client configuration that trusts only the
// server certificate (nil for a plain server).
func (s *Server) ClientTLSConfig() *tls.Config {
	if s.certPool == nil {
		return nil
	}
	return &tls.Config{RootCAs: s.CertPool(), MinVersion: tls.VersionTLS12}
}

// WriteCAFile writes the server certificate as PEM to a new file in dir and
// returns its path. It fails the test on error or for a plain server.
func (s *Server) WriteCAFile(dir string) string {
	s.t.Helper()
	if s.certPEM == nil {
		s.t.Fatal("wstest: WriteCAFile on a server without TLS")
	}
	f, err := os.CreateTemp(dir, "wstest-ca-*.pem")
	if err != nil {
		s.t.Fatalf("wstest: WriteCAFile: %v", err)
	}
	_, werr := f.Write(s.certPEM)
	cerr := f.Close()
	if werr != nil || cerr != nil {
		s.t.Fatalf("wstest: WriteCAFile: write %v, close %v", werr, cerr)
	}
	return f.Name()
}
