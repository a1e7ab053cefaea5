package wstest

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"testing"
	"time"
)

// testTimeout bounds every client read and write so a broken test fails
// instead of hanging.
const testTimeout = 10 * time.Second

// testClient is a tiny hand-rolled WebSocket client used to exercise the kit.
type testClient struct {
	t  *testing.T
	nc net.Conn
	br *bufio.Reader
}

func dialClient(t *testing.T, addr string) *testClient {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	return newTestClient(t, nc)
}

func newTestClient(t *testing.T, nc net.Conn) *testClient {
	t.Helper()
	t.Cleanup(func() { nc.Close() })
	if err := nc.SetDeadline(time.Now().Add(testTimeout)); err != nil {
		t.Fatal(err)
	}
	return &testClient{t: t, nc: nc, br: bufio.NewReader(nc)}
}

func newKey(t *testing.T) string {
	t.Helper()
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(b[:])
}

// upgradeRequest returns a valid opening handshake with the given key and
// extra header lines.
func upgradeRequest(host, key, extra string) string {
	return fmt.Sprintf("GET /chat HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n%s\r\n", host, key, extra)
}

// handshake performs the opening handshake and checks for a correct 101.
func (c *testClient) handshake(extra string) *http.Response {
	c.t.Helper()
	key := newKey(c.t)
	c.writeRaw(upgradeRequest("127.0.0.1", key, extra))
	resp := c.readResponse()
	if resp.StatusCode != http.StatusSwitchingProtocols {
		c.t.Fatalf("handshake status = %d, want 101", resp.StatusCode)
	}
	if got, want := resp.Header.Get("Sec-WebSocket-Accept"), AcceptKey(key); got != want {
		c.t.Fatalf("Sec-WebSocket-Accept = %q, want %q", got, want)
	}
	if !headerHasToken(resp.Header, "Upgrade", "websocket") || !headerHasToken(resp.Header, "Connection", "upgrade") {
		c.t.Fatalf("bad upgrade headers: %v", resp.Header)
	}
	return resp
}

func (c *testClient) readResponse() *http.Response {
	c.t.Helper()
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		c.t.Fatalf("reading response: %v", err)
	}
	return resp
}

func (c *testClient) writeRaw(s string) {
	c.t.Helper()
	if _, err := c.nc.Write([]byte(s)); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// send writes f masked with a random key, as a client must.
func (c *testClient) send(f Frame) {
	c.t.Helper()
	f.Masked = true
	if _, err := rand.Read(f.MaskKey[:]); err != nil {
		c.t.Fatal(err)
	}
	if _, err := c.nc.Write(f.Encode()); err != nil {
		c.t.Fatalf("write frame: %v", err)
	}
}

func (c *testClient) recv() Frame {
	c.t.Helper()
	f, err := readFrame(c.br)
	if err != nil {
		c.t.Fatalf("read frame: %v", err)
	}
	if f.Masked {
		c.t.Fatalf("server frame is masked")
	}
	return f
}

// expectFrame reads a frame and checks its opcode, FIN and payload.
func (c *testClient) expectFrame(op byte, payload []byte) {
	c.t.Helper()
	f := c.recv()
	if f.Opcode != op || !f.Fin || !bytes.Equal(f.Payload, payload) {
		c.t.Fatalf("got frame op=%#x fin=%v payload=%q, want op=%#x fin=true payload=%q",
			f.Opcode, f.Fin, trunc(f.Payload), op, trunc(payload))
	}
}

// expectEOF checks that the server closed the connection.
func (c *testClient) expectEOF() {
	c.t.Helper()
	if b, err := c.br.ReadByte(); err == nil {
		c.t.Fatalf("read byte %#x, want EOF", b)
	}
}

func trunc(b []byte) []byte {
	if len(b) > 32 {
		return b[:32]
	}
	return b
}
