package testkit

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// after is time.After, for the kit's bounded waits.
var after = time.After

// RefusedAddr returns a loopback address where connections are refused,
// and that no other process can take while the test runs: the port is held
// by the client end of a connection to a throwaway listener. (A port that
// was merely closed could be reused by a concurrent test binary's server.)
func RefusedAddr(t testing.TB) string {
	t.Helper()
	addr, release := ReservePort(t)
	t.Cleanup(release)
	return addr
}

// ReservePort holds a loopback port without listening on it; release
// frees it (for a server to listen there).
func ReservePort(t testing.TB) (addr string, release func()) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	// An explicit bind: connect() would pick a port that later outgoing
	// connections may share, and that would block a listener there.
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}}
	c, err := d.Dial("tcp", ln.Addr().String())
	if err != nil {
		ln.Close()
		t.Fatal(err)
	}
	var once sync.Once
	return c.LocalAddr().String(), func() {
		once.Do(func() {
			// Abort (RST) rather than close, so that the port is free at
			// once instead of lingering in TIME_WAIT.
			_ = c.(*net.TCPConn).SetLinger(0)
			c.Close()
			ln.Close()
		})
	}
}

// ReadFrame reads one client frame from br, unmasked. It refuses frames
// over 1 MiB.
func ReadFrame(br *bufio.Reader) (op byte, payload []byte, err error) {
	var h [2]byte
	if _, err = io.ReadFull(br, h[:]); err != nil {
		return 0, nil, err
	}
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		var b [2]byte
		if _, err = io.ReadFull(br, b[:]); err != nil {
			return 0, nil, err
		}
		n = uint64(binary.BigEndian.Uint16(b[:]))
	case 127:
		var b [8]byte
		if _, err = io.ReadFull(br, b[:]); err != nil {
			return 0, nil, err
		}
		n = binary.BigEndian.Uint64(b[:])
	}
	var key [4]byte
	if h[1]&0x80 != 0 {
		if _, err = io.ReadFull(br, key[:]); err != nil {
			return 0, nil, err
		}
	}
	if n > 1<<20 {
		return 0, nil, errors.New("frame too large for the test server")
	}
	payload = make([]byte, n)
	if _, err = io.ReadFull(br, payload); err != nil {
		return 0, nil, err
	}
	for i := range payload {
		payload[i] ^= key[i%4]
	}
	return h[0] & 0x0f, payload, nil
}

// NXDOMAINDial dials through a resolver whose DNS server, reached over an
// in-memory pipe, answers NXDOMAIN to every query: a DNS failure that needs
// no network. It has the signature of lomond.DialFunc.
func NXDOMAINDial() func(ctx context.Context, network, addr string) (net.Conn, error) {
	r := &net.Resolver{PreferGo: true, Dial: func(context.Context, string, string) (net.Conn, error) {
		client, server := net.Pipe()
		go serveNXDOMAIN(server)
		return client, nil
	}}
	d := &net.Dialer{Resolver: r}
	return d.DialContext
}

// serveNXDOMAIN answers length-prefixed DNS queries (the stream form the
// resolver uses on a non-packet connection) with NXDOMAIN until c closes.
func serveNXDOMAIN(c net.Conn) {
	defer c.Close()
	for {
		var n [2]byte
		if _, err := io.ReadFull(c, n[:]); err != nil {
			return
		}
		q := make([]byte, int(n[0])<<8|int(n[1]))
		if _, err := io.ReadFull(c, q); err != nil || len(q) < 12 {
			return
		}
		resp := append([]byte(nil), q...)
		resp[2] = 0x80 | 0x04 | q[2]&0x79 // response, authoritative, opcode and RD copied
		resp[3] = 0x80 | 3                // recursion available, NXDOMAIN
		if _, err := c.Write(append(n[:], resp...)); err != nil {
			return
		}
	}
}
