package lomond

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/lomond-go/lomond/events"
	"github.com/lomond-go/lomond/internal/protocol"
)

// byteConn is a transport whose server side is a fixed byte string: the
// answer to the upgrade request (computed from its key) and then frames.
// It never blocks, so a fuzzed session always ends.
type byteConn struct {
	deflate bool
	frames  []byte
	in      *bytes.Reader
}

func (c *byteConn) Write(p []byte) (int, error) {
	if c.in == nil {
		req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(p)))
		if err != nil {
			return 0, err
		}
		resp := "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
			"Sec-WebSocket-Accept: " + protocol.AcceptKey(req.Header.Get("Sec-WebSocket-Key")) + "\r\n"
		if c.deflate {
			resp += "Sec-WebSocket-Extensions: permessage-deflate\r\n"
		}
		c.in = bytes.NewReader(append([]byte(resp+"\r\n"), c.frames...))
	}
	return len(p), nil
}

func (c *byteConn) Read(p []byte) (int, error) {
	if c.in == nil {
		return 0, io.EOF
	}
	return c.in.Read(p)
}

func (c *byteConn) Close() error                     { return nil }
func (c *byteConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (c *byteConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (c *byteConn) SetDeadline(time.Time) error      { return nil }
func (c *byteConn) SetReadDeadline(time.Time) error  { return nil }
func (c *byteConn) SetWriteDeadline(time.Time) error { return nil }

// FuzzFrameReader: whatever frames a server sends, the session never
// panics and always ends; it delivers only valid UTF-8 text, no message
// over the read limit, and (uncompressed) never more bytes than it read.
func FuzzFrameReader(f *testing.F) {
	enc := func(frames ...[]byte) []byte { return bytes.Join(frames, nil) }
	f.Add(enc([]byte{0x81, 0x02, 'h', 'i'}, []byte{0x88, 0x02, 0x03, 0xe8}), false)
	f.Add(enc([]byte{0x01, 0x01, 'a'}, []byte{0x89, 0x00}, []byte{0x80, 0x01, 'b'}), false)
	f.Add(enc([]byte{0x82, 0x7e, 0x00, 0x04, 1, 2, 3, 4}), false)
	f.Add(enc([]byte{0x81, 0x64}, bytes.Repeat([]byte("a"), 16)), false)
	f.Add(enc([]byte{0xc1, 0x08}, rfc7692Hello), true)
	f.Add(enc([]byte{0x41, 0x07}, rfc7692Hello[:7], []byte{0x80, 0x01, 0x00}), true)
	f.Add(enc([]byte{0x81, 0x03, 0xed, 0xa0, 0x80}), false)
	f.Add(enc([]byte{0x88, 0x01, 0x03}), false)
	f.Fuzz(func(t *testing.T, frames []byte, deflate bool) {
		conn := &byteConn{deflate: deflate, frames: frames}
		opts := []Option{WithoutProxy(), WithPollInterval(0), WithPingRate(0), WithReadLimit(1 << 16),
			WithCloseTimeout(time.Second),
			WithDialer(func(context.Context, string, string) (net.Conn, error) { return conn, nil })}
		if deflate {
			opts = append(opts, WithCompression(CompressionContextTakeover))
		}
		ws, err := New("ws://fuzz.invalid/", opts...)
		if err != nil {
			t.Fatal(err)
		}
		delivered := 0
		_ = ws.Run(context.Background(), HandlerFunc(func(ws *WebSocket, ev events.Event) {
			switch e := ev.(type) {
			case *events.Text:
				if !utf8.ValidString(e.Text) {
					t.Fatalf("invalid UTF-8 delivered: %q", e.Text)
				}
				delivered += len(e.Text)
				if len(e.Text) > 1<<16 {
					t.Fatalf("a %d-byte text passed the read limit", len(e.Text))
				}
			case *events.Binary:
				delivered += len(e.Data)
				if len(e.Data) > 1<<16 {
					t.Fatalf("a %d-byte binary passed the read limit", len(e.Data))
				}
			case *events.Closed:
				if strings.ContainsRune(e.Reason, utf8.RuneError) && !utf8.ValidString(e.Reason) {
					t.Fatalf("invalid close reason delivered")
				}
			}
		}))
		if !deflate && delivered > len(frames) {
			t.Fatalf("delivered %d payload bytes from %d bytes read", delivered, len(frames))
		}
	})
}
