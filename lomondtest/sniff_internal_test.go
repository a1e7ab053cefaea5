package lomondtest

import (
	"bytes"
	"encoding/binary"
	"testing"
)

// clientFrame encodes a masked client frame.
func clientFrame(op byte, payload []byte) []byte {
	var b bytes.Buffer
	b.WriteByte(0x80 | op)
	switch n := len(payload); {
	case n < 126:
		b.WriteByte(0x80 | byte(n))
	case n <= 0xffff:
		b.WriteByte(0x80 | 126)
		_ = binary.Write(&b, binary.BigEndian, uint16(n))
	default:
		b.WriteByte(0x80 | 127)
		_ = binary.Write(&b, binary.BigEndian, uint64(n))
	}
	mask := [4]byte{0xa1, 0xb2, 0xc3, 0xd4}
	b.Write(mask[:])
	for i, c := range payload {
		b.WriteByte(c ^ mask[i%4])
	}
	return b.Bytes()
}

func TestCloseSnifferFollowsTheFrames(t *testing.T) {
	request := "GET / HTTP/1.1\r\nHost: x\r\nSec-WebSocket-Key: \r\n\r\r\n\r\n" // a stray \r before the end
	var stream []byte
	stream = append(stream, request...)
	stream = append(stream, clientFrame(0x1, []byte("hi"))...)
	stream = append(stream, clientFrame(0x2, bytes.Repeat([]byte{0x88}, 300))...)   // 16-bit length, close-like bytes inside
	stream = append(stream, clientFrame(0x2, bytes.Repeat([]byte{0x88}, 70000))...) // 64-bit length
	stream = append(stream, clientFrame(0x9, nil)...)                               // an empty ping
	stream = append(stream, clientFrame(0x8, append([]byte{0x03, 0xe9}, "bye"...))...)
	stream = append(stream, clientFrame(0x8, []byte{0x03, 0xe8})...) // a second close: ignored

	for _, chunk := range []int{1, 3, 7, 1 << 20} {
		var s closeSniffer
		for i := 0; i < len(stream); i += chunk {
			s.feed(stream[i:min(i+chunk, len(stream))])
		}
		code, reason, ok := s.result()
		if !ok || code != 1001 || reason != "bye" {
			t.Errorf("reads of %d bytes: got %d %q %v, want 1001 \"bye\" true", chunk, code, reason, ok)
		}
	}

	var s closeSniffer
	s.feed([]byte("GET / HTTP/1.1\r\n\r\n"))
	s.feed(clientFrame(0x8, nil))
	if code, reason, ok := s.result(); !ok || code != 1005 || reason != "" {
		t.Errorf("an empty close frame: got %d %q %v, want 1005", code, reason, ok)
	}
}
