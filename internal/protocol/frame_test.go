package protocol

import (
	"bytes"
	"encoding/binary"
	"testing"
)

// The frame tests drive ParseHeader, AppendHeader and Mask with bytes alone,
// no socket: one group per frame kind, as the reader meets them, then the
// length encodings and the client's own headers.

// parse parses a server frame header from its bytes, checking that
// HeaderSize agrees with their length.
func parse(t *testing.T, rsv1 bool, b ...byte) (Header, *Error) {
	t.Helper()
	if n := HeaderSize(b); n != len(b) {
		t.Fatalf("HeaderSize(% x) = %d, want %d", b, n, len(b))
	}
	return ParseHeader(b, rsv1)
}

// wantHeader checks a header that must parse.
func wantHeader(t *testing.T, got Header, err *Error, want Header) {
	t.Helper()
	if err != nil {
		t.Fatalf("ParseHeader: %v, want %+v", err, want)
	}
	if got != want {
		t.Errorf("ParseHeader = %+v, want %+v", got, want)
	}
}

// wantViolation checks a header that must fail the connection.
func wantViolation(t *testing.T, err *Error, code int, reason string) {
	t.Helper()
	if err == nil {
		t.Fatalf("ParseHeader accepted the header, want %d %q", code, reason)
	}
	if err.Code != code || err.Reason != reason {
		t.Errorf("ParseHeader = %d %q, want %d %q", err.Code, err.Reason, code, reason)
	}
}

func TestTextFrame(t *testing.T) {
	t.Run("FinalUnmaskedFrameParses", func(t *testing.T) {
		h, err := parse(t, false, 0x81, 5)
		wantHeader(t, h, err, Header{Fin: true, Opcode: OpText, Length: 5})
		if h.IsControl() {
			t.Error("a text frame is not a control frame")
		}
	})
	t.Run("FirstFragmentHasNoFin", func(t *testing.T) {
		h, err := parse(t, false, 0x01, 3)
		wantHeader(t, h, err, Header{Opcode: OpText, Length: 3})
	})
	t.Run("CompressedWithRSV1WhenDeflateAgreed", func(t *testing.T) {
		h, err := parse(t, true, 0xC1, 7)
		wantHeader(t, h, err, Header{Fin: true, Rsv1: true, Opcode: OpText, Length: 7})
	})
	t.Run("RSV1WithoutDeflateFails1002", func(t *testing.T) {
		_, err := parse(t, false, 0xC1, 7)
		wantViolation(t, err, CloseProtocolError, "reserved bits set")
	})
	t.Run("EmptyPayloadParses", func(t *testing.T) {
		h, err := parse(t, false, 0x81, 0)
		wantHeader(t, h, err, Header{Fin: true, Opcode: OpText})
	})
}

func TestBinaryFrame(t *testing.T) {
	t.Run("FinalUnmaskedFrameParses", func(t *testing.T) {
		h, err := parse(t, false, 0x82, 125)
		wantHeader(t, h, err, Header{Fin: true, Opcode: OpBinary, Length: 125})
	})
	t.Run("MaskedServerFrameFails1002", func(t *testing.T) {
		_, err := parse(t, false, 0x82, 0x80|2, 1, 2, 3, 4)
		wantViolation(t, err, CloseProtocolError, "masked frame")
	})
}

func TestContinuationFrame(t *testing.T) {
	// Whether a continuation may come (a message is open) is the reader's
	// to judge: the header alone is valid either way.
	t.Run("MiddleFragmentParses", func(t *testing.T) {
		h, err := parse(t, false, 0x00, 4)
		wantHeader(t, h, err, Header{Opcode: OpContinuation, Length: 4})
	})
	t.Run("LastFragmentParses", func(t *testing.T) {
		h, err := parse(t, false, 0x80, 4)
		wantHeader(t, h, err, Header{Fin: true, Opcode: OpContinuation, Length: 4})
	})
}

// controlFrameCases are the checks every control frame kind shares.
func controlFrameCases(t *testing.T, op byte) {
	t.Run("FinalFrameParses", func(t *testing.T) {
		h, err := parse(t, false, 0x80|op, 4)
		wantHeader(t, h, err, Header{Fin: true, Opcode: op, Length: 4})
		if !h.IsControl() {
			t.Error("IsControl = false")
		}
	})
	t.Run("125BytesParse", func(t *testing.T) {
		h, err := parse(t, false, 0x80|op, 125)
		wantHeader(t, h, err, Header{Fin: true, Opcode: op, Length: 125})
	})
	t.Run("126BytesFail1002", func(t *testing.T) {
		_, err := parse(t, false, 0x80|op, 126, 0, 126)
		wantViolation(t, err, CloseProtocolError, "control frame too large")
	})
	t.Run("FragmentedFails1002", func(t *testing.T) {
		_, err := parse(t, false, op, 4)
		wantViolation(t, err, CloseProtocolError, "fragmented control frame")
	})
	t.Run("RSV1FailsEvenWithDeflate", func(t *testing.T) {
		_, err := parse(t, true, 0xC0|op, 4)
		wantViolation(t, err, CloseProtocolError, "reserved bits set")
	})
}

func TestPingFrame(t *testing.T) { controlFrameCases(t, OpPing) }

func TestPongFrame(t *testing.T) { controlFrameCases(t, OpPong) }

func TestReservedFrames(t *testing.T) {
	for _, op := range []byte{0x3, 0x4, 0x5, 0x6, 0x7, 0xB, 0xC, 0xD, 0xE, 0xF} {
		_, err := parse(t, true, 0x80|op, 0)
		wantViolation(t, err, CloseProtocolError, "reserved opcode")
	}
	for _, bit := range []byte{0x20, 0x10} { // RSV2, RSV3: no extension uses them
		_, err := parse(t, true, 0x80|bit|OpText, 0)
		wantViolation(t, err, CloseProtocolError, "reserved bits set")
	}
}

func TestFrameLength(t *testing.T) {
	t.Run("SevenBitLength", func(t *testing.T) {
		h, err := parse(t, false, 0x82, 100)
		wantHeader(t, h, err, Header{Fin: true, Opcode: OpBinary, Length: 100})
	})
	t.Run("SixteenBitLength", func(t *testing.T) {
		h, err := parse(t, false, 0x82, 126, 0xFF, 0xFE)
		wantHeader(t, h, err, Header{Fin: true, Opcode: OpBinary, Length: 0xFFFE})
	})
	t.Run("SixtyFourBitLength", func(t *testing.T) {
		b := binary.BigEndian.AppendUint64([]byte{0x82, 127}, 1<<40)
		h, err := parse(t, false, b...)
		wantHeader(t, h, err, Header{Fin: true, Opcode: OpBinary, Length: 1 << 40})
	})
	t.Run("LengthWithTopBitFails1002", func(t *testing.T) {
		b := binary.BigEndian.AppendUint64([]byte{0x82, 127}, 1<<63)
		_, err := parse(t, false, b...)
		wantViolation(t, err, CloseProtocolError, "frame length too large")
	})
	t.Run("HeaderSizeOfAPartialHeaderIsTwo", func(t *testing.T) {
		for _, b := range [][]byte{nil, {0x82}} {
			if n := HeaderSize(b); n != 2 {
				t.Errorf("HeaderSize(% x) = %d, want 2", b, n)
			}
		}
	})
	t.Run("LargestHeaderIsMaxHeaderSize", func(t *testing.T) {
		if n := HeaderSize([]byte{0x82, 0x80 | 127}); n != MaxHeaderSize {
			t.Errorf("HeaderSize of a masked 64-bit length = %d, want %d", n, MaxHeaderSize)
		}
	})
}

func TestClientFrameHeader(t *testing.T) {
	const key = 0x04030201 // on the wire: 01 02 03 04
	for _, c := range []struct {
		name string
		fin  bool
		rsv1 bool
		op   byte
		n    int
		want []byte
	}{
		{"SmallFinalText", true, false, OpText, 5, []byte{0x81, 0x85, 1, 2, 3, 4}},
		{"CompressedFirstFragment", false, true, OpBinary, 125, []byte{0x42, 0x80 | 125, 1, 2, 3, 4}},
		{"SixteenBitLength", true, false, OpBinary, 126, []byte{0x82, 0x80 | 126, 0, 126, 1, 2, 3, 4}},
		{"LargestSixteenBitLength", true, false, OpBinary, 0xFFFF, []byte{0x82, 0x80 | 126, 0xFF, 0xFF, 1, 2, 3, 4}},
		{"SixtyFourBitLength", true, false, OpBinary, 0x10000, []byte{0x82, 0x80 | 127, 0, 0, 0, 0, 0, 1, 0, 0, 1, 2, 3, 4}},
		{"Close", true, false, OpClose, 2, []byte{0x88, 0x82, 1, 2, 3, 4}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := AppendHeader(nil, c.fin, c.rsv1, c.op, c.n, key)
			if !bytes.Equal(got, c.want) {
				t.Errorf("AppendHeader = % x, want % x", got, c.want)
			}
			if n := HeaderSize(got); n != len(got) {
				t.Errorf("HeaderSize = %d, want %d", n, len(got))
			}
		})
	}
	t.Run("MaskIsItsOwnInverseAtEveryLength", func(t *testing.T) {
		for n := 0; n <= 70; n++ {
			p := make([]byte, n)
			for i := range p {
				p[i] = byte(i * 7)
			}
			orig := bytes.Clone(p)
			Mask(p, key)
			for i := range p {
				if want := orig[i] ^ byte(i%4+1); p[i] != want {
					t.Fatalf("length %d: byte %d masked to %#x, want %#x", n, i, p[i], want)
				}
			}
			Mask(p, key)
			if !bytes.Equal(p, orig) {
				t.Fatalf("length %d: masking twice changed the payload", n)
			}
		}
	})
}

func TestErrorText(t *testing.T) {
	e := &Error{Code: CloseInvalidPayload, Reason: "invalid compressed data"}
	if e.Error() != "invalid compressed data" || e.Unwrap() != nil {
		t.Errorf("Error() = %q, Unwrap = %v", e.Error(), e.Unwrap())
	}
	inner := &Error{Code: CloseProtocolError, Reason: "inner"}
	e.Err = inner
	if e.Error() != "invalid compressed data: inner" || e.Unwrap() != inner {
		t.Errorf("with Err: Error() = %q, Unwrap = %v", e.Error(), e.Unwrap())
	}
}
