package lomond

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"testing"

	"github.com/lomond-go/lomond/internal/wstest"
)

// TestMaskWordsMatchesBytewise: the word-at-a-time mask equals the RFC's
// byte-by-byte definition for every length and alignment.
func TestMaskWordsMatchesBytewise(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for n := 0; n < 70; n++ {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		key := r.Uint32()
		var kb [4]byte
		binary.LittleEndian.PutUint32(kb[:], key)
		want := bytes.Clone(b)
		maskBytes(want, kb)
		maskWords(b, key)
		if !bytes.Equal(b, want) {
			t.Fatalf("length %d: maskWords differs from the bytewise mask", n)
		}
	}
}

// TestRawDataFrameDecodes: frames written by the wire decode, with the
// independent decoder of the test kit, to the payload given, at each length
// form (7-bit, 16-bit, 64-bit).
func TestRawDataFrameDecodes(t *testing.T) {
	for _, n := range []int{0, 1, 125, 126, 65535, 65536, 70000} {
		payload := bytes.Repeat([]byte("abcdefg"), n/7+1)[:n]
		frame := appendFrameHeader(nil, opBinary, n, 0xA1B2C3D4)
		start := len(frame)
		frame = append(frame, payload...)
		maskWords(frame[start:], 0xA1B2C3D4)
		h := parseHeader(frame[:headerSize(frame)])
		if h.length != uint64(n) || !h.masked || h.opcode != opBinary {
			t.Fatalf("length %d: header %+v", n, h)
		}
		got := bytes.Clone(frame[h.size:])
		maskBytes(got, h.mask)
		if !bytes.Equal(got, payload) {
			t.Fatalf("length %d: payload differs after unmasking", n)
		}
		want := wstest.Frame{Fin: true, Opcode: wstest.OpBinary, Masked: true, MaskKey: h.mask, Payload: payload}.Encode()
		if !bytes.Equal(frame, want) {
			t.Fatalf("length %d: frame differs from the test kit's encoding", n)
		}
	}
}

// TestFrameScannerFindsMaskedFrame: the scanner follows frame boundaries
// across arbitrary chunking, after an HTTP header, and reports the offset of
// the first masked server frame.
func TestFrameScannerFindsMaskedFrame(t *testing.T) {
	stream := []byte("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n")
	stream = append(stream, wstest.Text("hello").Encode()...)
	stream = append(stream, wstest.Binary(bytes.Repeat([]byte{0x88}, 300)).Encode()...) // payload bytes that look like headers
	at := len(stream)
	stream = append(stream, wstest.Frame{Fin: true, Opcode: wstest.OpText, Masked: true, Payload: []byte("x")}.Encode()...)
	for chunk := 1; chunk <= len(stream); chunk++ {
		s := frameScanner{http: true}
		found := -1
		for off := 0; off < len(stream); off += chunk {
			end := min(off+chunk, len(stream))
			if bad := s.scan(stream[off:end], nil); bad >= 0 {
				found = off + bad
				break
			}
		}
		// When the header began in an earlier chunk, the scanner reports the
		// start of the chunk that completed it: at most 14 bytes later.
		if found < at || found >= at+14 {
			t.Fatalf("chunk %d: masked frame found at %d, want %d", chunk, found, at)
		}
		if chunk == len(stream) && found != at {
			t.Fatalf("one chunk: masked frame found at %d, want exactly %d", found, at)
		}
	}
}
