package wstest

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// WebSocket opcodes (RFC 6455 section 5.2).
const (
	// OpContinuation marks a continuation frame of a fragmented message.
	OpContinuation = 0x0
	// OpText marks a text data frame.
	OpText = 0x1
	// OpBinary marks a binary data frame.
	OpBinary = 0x2
	// OpClose marks a close control frame.
	OpClose = 0x8
	// OpPing marks a ping control frame.
	OpPing = 0x9
	// OpPong marks a pong control frame.
	OpPong = 0xA
)

// MaxFramePayload is the largest frame payload ReadFrame accepts. Larger
// declared lengths make it fail instead of allocating without bound.
const MaxFramePayload = 64 << 20

// Frame is one WebSocket frame. Payload is always held in clear: Encode
// applies the mask when Masked is set, and ReadFrame removes it.
type Frame struct {
	Fin, RSV1, RSV2, RSV3 bool
	Opcode                byte
	Masked                bool
	MaskKey               [4]byte
	Payload               []byte
}

// Encode returns the wire form of f, using the shortest length form (7, 16
// or 64 bits). If f.Masked is set the payload is masked with f.MaskKey.
// Opcode is truncated to its 4 bits; no other validation is done, so invalid
// frames can be produced on purpose.
func (f Frame) Encode() []byte {
	n := len(f.Payload)
	buf := make([]byte, 0, 14+n)
	var b0 byte
	if f.Fin {
		b0 |= 0x80
	}
	if f.RSV1 {
		b0 |= 0x40
	}
	if f.RSV2 {
		b0 |= 0x20
	}
	if f.RSV3 {
		b0 |= 0x10
	}
	b0 |= f.Opcode & 0x0f
	var b1 byte
	if f.Masked {
		b1 = 0x80
	}
	switch {
	case n <= 125:
		buf = append(buf, b0, b1|byte(n))
	case n <= 0xffff:
		buf = append(buf, b0, b1|126)
		buf = binary.BigEndian.AppendUint16(buf, uint16(n))
	default:
		buf = append(buf, b0, b1|127)
		buf = binary.BigEndian.AppendUint64(buf, uint64(n))
	}
	if f.Masked {
		buf = append(buf, f.MaskKey[:]...)
	}
	start := len(buf)
	buf = append(buf, f.Payload...)
	if f.Masked {
		maskBytes(buf[start:], f.MaskKey)
	}
	return buf
}

// EncodeAll concatenates the encodings of frames, so that several frames can
// be written with a single WriteRaw call (for example in one TCP segment).
func EncodeAll(frames ...Frame) []byte {
	var b []byte
	for _, f := range frames {
		b = append(b, f.Encode()...)
	}
	return b
}

// Text returns a final, unmasked text frame carrying s.
func Text(s string) Frame { return Frame{Fin: true, Opcode: OpText, Payload: []byte(s)} }

// Binary returns a final, unmasked binary frame carrying b.
func Binary(b []byte) Frame { return Frame{Fin: true, Opcode: OpBinary, Payload: b} }

// Ping returns an unmasked ping frame carrying b.
func Ping(b []byte) Frame { return Frame{Fin: true, Opcode: OpPing, Payload: b} }

// Pong returns an unmasked pong frame carrying b.
func Pong(b []byte) Frame { return Frame{Fin: true, Opcode: OpPong, Payload: b} }

// Close returns an unmasked close frame with the given status code and
// reason. Code 0 produces an empty payload (and the reason is ignored).
func Close(code int, reason string) Frame {
	return Frame{Fin: true, Opcode: OpClose, Payload: ClosePayload(code, reason)}
}

// ClosePayload returns the payload of a close frame: the 2-byte big-endian
// code followed by reason. Code 0 yields an empty payload.
func ClosePayload(code int, reason string) []byte {
	if code == 0 {
		return []byte{}
	}
	b := binary.BigEndian.AppendUint16(make([]byte, 0, 2+len(reason)), uint16(code))
	return append(b, reason...)
}

// ParseClose splits a close frame payload into its code and reason. It
// returns code 0 and an empty reason for a payload shorter than 2 bytes.
func ParseClose(payload []byte) (code int, reason string) {
	if len(payload) < 2 {
		return 0, ""
	}
	return int(binary.BigEndian.Uint16(payload)), string(payload[2:])
}

// maskBytes XORs b in place with the 4-byte key (RFC 6455 section 5.3).
func maskBytes(b []byte, key [4]byte) {
	for i := range b {
		b[i] ^= key[i&3]
	}
}

// errFrameTooLarge is returned by readFrame for payloads over MaxFramePayload.
var errFrameTooLarge = errors.New("wstest: frame payload exceeds MaxFramePayload")

// readFrame reads one frame from r. The payload is returned unmasked, with
// Masked and MaskKey recording how it was sent. A clean end of stream before
// the first header byte yields io.EOF; a truncated frame io.ErrUnexpectedEOF.
func readFrame(r *bufio.Reader) (Frame, error) {
	var h [2]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return Frame{}, err
	}
	f := Frame{
		Fin:    h[0]&0x80 != 0,
		RSV1:   h[0]&0x40 != 0,
		RSV2:   h[0]&0x20 != 0,
		RSV3:   h[0]&0x10 != 0,
		Opcode: h[0] & 0x0f,
		Masked: h[1]&0x80 != 0,
	}
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		var ext [2]byte
		if _, err := io.ReadFull(r, ext[:]); err != nil {
			return Frame{}, noEOF(err)
		}
		n = uint64(binary.BigEndian.Uint16(ext[:]))
	case 127:
		var ext [8]byte
		if _, err := io.ReadFull(r, ext[:]); err != nil {
			return Frame{}, noEOF(err)
		}
		n = binary.BigEndian.Uint64(ext[:])
		if n>>63 != 0 {
			return Frame{}, fmt.Errorf("wstest: 64-bit frame length has its most significant bit set (%#x)", n)
		}
	}
	if f.Masked {
		if _, err := io.ReadFull(r, f.MaskKey[:]); err != nil {
			return Frame{}, noEOF(err)
		}
	}
	if n > MaxFramePayload {
		return Frame{}, fmt.Errorf("%w: %d bytes", errFrameTooLarge, n)
	}
	if n <= 1<<20 {
		f.Payload = make([]byte, n)
		if _, err := io.ReadFull(r, f.Payload); err != nil {
			return Frame{}, noEOF(err)
		}
	} else {
		// Grow with the data actually received rather than trusting the
		// declared length for the allocation.
		var buf bytes.Buffer
		if _, err := io.CopyN(&buf, r, int64(n)); err != nil {
			return Frame{}, noEOF(err)
		}
		f.Payload = buf.Bytes()
	}
	if f.Masked {
		maskBytes(f.Payload, f.MaskKey)
	}
	return f, nil
}

// noEOF turns io.EOF in the middle of a frame into io.ErrUnexpectedEOF.
func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}
