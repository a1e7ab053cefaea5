package wstest

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"
)

func TestEcho(t *testing.T) {
	s := NewServer(t, Echo)
	c := dialClient(t, s.Addr())
	resp := c.handshake("")
	if _, ok := resp.Header["Sec-Websocket-Protocol"]; ok {
		t.Fatalf("subprotocol chosen although none offered: %v", resp.Header)
	}

	c.send(Text("hello"))
	c.expectFrame(OpText, []byte("hello"))

	for _, n := range testLengths {
		c.send(Binary(pattern(n)))
		c.expectFrame(OpBinary, pattern(n))
	}

	// Fragmented message with an interleaved ping: the pong comes first,
	// then the message reassembled into a single frame.
	c.send(Frame{Opcode: OpBinary, Payload: []byte{1, 2}})
	c.send(Ping([]byte("ping!")))
	c.send(Frame{Opcode: OpContinuation, Payload: []byte{3}})
	c.send(Frame{Fin: true, Opcode: OpContinuation, Payload: []byte{4, 5}})
	c.expectFrame(OpPong, []byte("ping!"))
	c.expectFrame(OpBinary, []byte{1, 2, 3, 4, 5})

	c.send(Pong([]byte("unsolicited"))) // ignored
	c.send(Ping(nil))
	c.expectFrame(OpPong, []byte{})

	c.send(Close(1000, "bye"))
	c.expectFrame(OpClose, ClosePayload(1000, "bye"))
	c.expectEOF()
}

func TestEchoEmptyClose(t *testing.T) {
	s := NewServer(t, Echo)
	c := dialClient(t, s.Addr())
	c.handshake("")
	c.send(Close(0, ""))
	c.expectFrame(OpClose, []byte{})
	c.expectEOF()
}

func TestEchoSubprotocol(t *testing.T) {
	s := NewServer(t, Echo)
	c := dialClient(t, s.Addr())
	resp := c.handshake("Sec-WebSocket-Protocol: chat, superchat\r\nSec-WebSocket-Protocol: other\r\n")
	if got := resp.Header.Values("Sec-WebSocket-Protocol"); len(got) != 1 || got[0] != "chat" {
		t.Fatalf("Sec-WebSocket-Protocol = %q, want [chat]", got)
	}
	c.send(Text("x"))
	c.expectFrame(OpText, []byte("x"))
}

func TestEchoRejectsNonUpgrade(t *testing.T) {
	s := NewServer(t, Echo)
	c := dialClient(t, s.Addr())
	c.writeRaw("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
	resp := c.readResponse()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("status %d, want 400", resp.StatusCode)
	}
	if body, err := io.ReadAll(resp.Body); err != nil || !strings.Contains(string(body), "Upgrade") {
		t.Fatalf("body %q, %v", body, err)
	}
	c.expectEOF()
}

func TestEchoClosesOnProtocolError(t *testing.T) {
	s := NewServer(t, Echo)
	c := dialClient(t, s.Addr())
	c.handshake("")
	c.send(Frame{Fin: true, Opcode: 0x3, Payload: []byte("reserved")})
	c.expectEOF()
}

// TestEchoPipelined sends the handshake and the first frames in one write,
// checking that bytes buffered behind the request are not lost.
func TestEchoPipelined(t *testing.T) {
	s := NewServer(t, Echo)
	c := dialClient(t, s.Addr())
	key := newKey(t)
	var b bytes.Buffer
	b.WriteString(upgradeRequest("127.0.0.1", key, ""))
	f := Text("early")
	f.Masked, f.MaskKey = true, [4]byte{9, 8, 7, 6}
	b.Write(f.Encode())
	c.writeRaw(b.String())
	if resp := c.readResponse(); resp.StatusCode != http.StatusSwitchingProtocols || resp.Header.Get("Sec-WebSocket-Accept") != AcceptKey(key) {
		t.Fatalf("bad response %d %v", resp.StatusCode, resp.Header)
	}
	c.expectFrame(OpText, []byte("early"))
}
