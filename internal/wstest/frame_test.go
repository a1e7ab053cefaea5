package wstest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"testing"
)

var testLengths = []int{0, 125, 126, 65535, 65536}

func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i>>8)
	}
	return b
}

func decode(t *testing.T, b []byte) Frame {
	t.Helper()
	r := bufio.NewReader(bytes.NewReader(b))
	f, err := readFrame(r)
	if err != nil {
		t.Fatalf("readFrame: %v", err)
	}
	if _, err := r.ReadByte(); err != io.EOF {
		t.Fatalf("trailing bytes after frame (err %v)", err)
	}
	return f
}

func TestFrameRoundTrip(t *testing.T) {
	for _, n := range testLengths {
		for _, masked := range []bool{false, true} {
			t.Run(fmt.Sprintf("len=%d/masked=%v", n, masked), func(t *testing.T) {
				in := Frame{Fin: n%2 == 0, RSV1: true, RSV3: true, Opcode: OpBinary,
					Masked: masked, Payload: pattern(n)}
				if masked {
					in.MaskKey = [4]byte{0x37, 0xfa, 0x21, 0x3d}
				}
				enc := in.Encode()

				var lenField byte
				ext := 0
				switch {
				case n <= 125:
					lenField = byte(n)
				case n <= 65535:
					lenField, ext = 126, 2
				default:
					lenField, ext = 127, 8
				}
				hdr := 2 + ext
				if masked {
					hdr += 4
				}
				if len(enc) != hdr+n {
					t.Fatalf("encoded length %d, want %d", len(enc), hdr+n)
				}
				if got := enc[1] & 0x7f; got != lenField {
					t.Fatalf("length field %d, want %d", got, lenField)
				}
				if got := enc[1]&0x80 != 0; got != masked {
					t.Fatalf("mask bit %v, want %v", got, masked)
				}
				wire := append([]byte(nil), enc[hdr:]...)
				if masked {
					maskBytes(wire, in.MaskKey)
				}
				if !bytes.Equal(wire, in.Payload) {
					t.Fatal("payload on the wire is not payload XOR mask key")
				}

				out := decode(t, enc)
				if out.Fin != in.Fin || out.RSV1 != in.RSV1 || out.RSV2 != in.RSV2 || out.RSV3 != in.RSV3 ||
					out.Opcode != in.Opcode || out.Masked != in.Masked || out.MaskKey != in.MaskKey ||
					!bytes.Equal(out.Payload, in.Payload) {
					t.Fatalf("round trip mismatch: got fin=%v rsv=%v%v%v op=%#x masked=%v key=%x len=%d",
						out.Fin, out.RSV1, out.RSV2, out.RSV3, out.Opcode, out.Masked, out.MaskKey, len(out.Payload))
				}
			})
		}
	}
}

// TestFrameRFCExamples checks the examples of RFC 6455 section 5.7.
func TestFrameRFCExamples(t *testing.T) {
	tests := []struct {
		name string
		f    Frame
		want []byte
	}{
		{"unmasked text", Text("Hello"), []byte{0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f}},
		{"masked text", Frame{Fin: true, Opcode: OpText, Masked: true, MaskKey: [4]byte{0x37, 0xfa, 0x21, 0x3d}, Payload: []byte("Hello")},
			[]byte{0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58}},
		{"first fragment", Frame{Opcode: OpText, Payload: []byte("Hel")}, []byte{0x01, 0x03, 0x48, 0x65, 0x6c}},
		{"last fragment", Frame{Fin: true, Opcode: OpContinuation, Payload: []byte("lo")}, []byte{0x80, 0x02, 0x6c, 0x6f}},
		{"ping", Ping([]byte("Hello")), []byte{0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f}},
		{"pong", Pong([]byte("Hello")), []byte{0x8a, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f}},
		{"close empty", Close(0, "ignored"), []byte{0x88, 0x00}},
		{"close 1000", Close(1000, "ok"), []byte{0x88, 0x04, 0x03, 0xe8, 'o', 'k'}},
	}
	for _, tt := range tests {
		if got := tt.f.Encode(); !bytes.Equal(got, tt.want) {
			t.Errorf("%s: Encode = % x, want % x", tt.name, got, tt.want)
		}
	}
	if got := Binary(make([]byte, 256)).Encode()[:4]; !bytes.Equal(got, []byte{0x82, 0x7e, 0x01, 0x00}) {
		t.Errorf("256-byte binary header = % x", got)
	}
	if got := Binary(make([]byte, 65536)).Encode()[:10]; !bytes.Equal(got, []byte{0x82, 0x7f, 0, 0, 0, 0, 0, 1, 0, 0}) {
		t.Errorf("64KiB binary header = % x", got)
	}
	if got := EncodeAll(Text("a"), Ping(nil)); !bytes.Equal(got, []byte{0x81, 0x01, 'a', 0x89, 0x00}) {
		t.Errorf("EncodeAll = % x", got)
	}
}

func TestClosePayload(t *testing.T) {
	if p := ClosePayload(0, "x"); len(p) != 0 {
		t.Errorf("ClosePayload(0) = % x, want empty", p)
	}
	p := ClosePayload(4001, "bye now")
	if code, reason := ParseClose(p); code != 4001 || reason != "bye now" {
		t.Errorf("ParseClose = %d %q", code, reason)
	}
	for _, p := range [][]byte{nil, {}, {0x03}} {
		if code, reason := ParseClose(p); code != 0 || reason != "" {
			t.Errorf("ParseClose(% x) = %d %q, want 0 \"\"", p, code, reason)
		}
	}
}

func TestReadFrameErrors(t *testing.T) {
	read := func(b []byte) error {
		_, err := readFrame(bufio.NewReader(bytes.NewReader(b)))
		return err
	}
	if err := read(nil); err != io.EOF {
		t.Errorf("empty input: %v, want io.EOF", err)
	}
	for _, b := range [][]byte{{0x81}, {0x81, 0x05, 'H'}, {0x82, 0x7e, 0x01}, {0x81, 0x85, 1, 2}} {
		if err := read(b); err != io.ErrUnexpectedEOF {
			t.Errorf("truncated % x: %v, want io.ErrUnexpectedEOF", b, err)
		}
	}
	if err := read([]byte{0x82, 0x7f, 0x80, 0, 0, 0, 0, 0, 0, 0}); err == nil {
		t.Error("64-bit length with MSB set: no error")
	}
	if err := read([]byte{0x82, 0x7f, 0, 0, 0, 0, 0x7f, 0, 0, 0}); !errors.Is(err, errFrameTooLarge) {
		t.Errorf("huge length: %v, want errFrameTooLarge", err)
	}
}

func TestAcceptKey(t *testing.T) {
	// RFC 6455 section 1.3.
	if got := AcceptKey("dGhlIHNhbXBsZSBub25jZQ=="); got != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" {
		t.Errorf("AcceptKey = %q", got)
	}
}
