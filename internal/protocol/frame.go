package protocol

import (
	"encoding/binary"
	"fmt"
)

// Opcodes (RFC 6455 section 5.2).
const (
	OpContinuation = 0x0
	OpText         = 0x1
	OpBinary       = 0x2
	OpClose        = 0x8
	OpPing         = 0x9
	OpPong         = 0xA
)

// MaxControlPayload is the largest payload of a control frame.
const MaxControlPayload = 125

// MaxHeaderSize is the largest frame header: 2 bytes, an 8-byte length and
// a 4-byte mask key.
const MaxHeaderSize = 14

// Close codes the client sends when it fails a connection.
const (
	CloseProtocolError  = 1002
	CloseInvalidPayload = 1007
	CloseMessageTooBig  = 1009
)

// Error is a protocol violation by the server: Code is the close code the
// client sends, Reason a short stable phrase (docs/events.md lists them).
type Error struct {
	Code   int
	Reason string
	Err    error // an underlying error, if any (a decompressor's, say)
}

// Error implements error.
func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %v", e.Reason, e.Err)
	}
	return e.Reason
}

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

func violation(code int, reason string) *Error { return &Error{Code: code, Reason: reason} }

// Header is a parsed frame header.
type Header struct {
	Fin    bool
	Rsv1   bool
	Opcode byte
	Length uint64
}

// IsControl reports whether the frame is a control frame (close, ping, pong).
func (h Header) IsControl() bool { return h.Opcode&0x8 != 0 }

// HeaderSize returns the size of the header whose first bytes are b (at least
// two), or 2 when b is shorter.
func HeaderSize(b []byte) int {
	if len(b) < 2 {
		return 2
	}
	n := 2
	switch b[1] & 0x7f {
	case 126:
		n += 2
	case 127:
		n += 8
	}
	if b[1]&0x80 != 0 {
		n += 4
	}
	return n
}

// ParseHeader parses and checks a server frame header, b holding exactly
// HeaderSize(b) bytes. rsv1 tells whether RSV1 may be set (permessage-deflate
// was agreed). It checks what a header alone can show: reserved bits and
// opcodes, masking (a server must not mask), control frames (at most 125
// bytes, never fragmented), and the 64-bit length's top bit. Continuation
// order and the read limit are the reader's, which knows the message state.
func ParseHeader(b []byte, rsv1 bool) (Header, *Error) {
	h := Header{Fin: b[0]&0x80 != 0, Rsv1: b[0]&0x40 != 0, Opcode: b[0] & 0x0f}
	if b[0]&0x30 != 0 || (h.Rsv1 && !rsv1) {
		return h, violation(CloseProtocolError, "reserved bits set")
	}
	switch h.Opcode {
	case OpContinuation, OpText, OpBinary, OpClose, OpPing, OpPong:
	default:
		return h, violation(CloseProtocolError, "reserved opcode")
	}
	if b[1]&0x80 != 0 {
		return h, violation(CloseProtocolError, "masked frame")
	}
	switch l := b[1] & 0x7f; l {
	case 126:
		h.Length = uint64(binary.BigEndian.Uint16(b[2:]))
	case 127:
		h.Length = binary.BigEndian.Uint64(b[2:])
		if h.Length>>63 != 0 {
			return h, violation(CloseProtocolError, "frame length too large")
		}
	default:
		h.Length = uint64(l)
	}
	if h.IsControl() {
		switch {
		case h.Length > MaxControlPayload:
			return h, violation(CloseProtocolError, "control frame too large")
		case !h.Fin:
			return h, violation(CloseProtocolError, "fragmented control frame")
		case h.Rsv1:
			return h, violation(CloseProtocolError, "reserved bits set")
		}
	}
	return h, nil
}

// AppendHeader appends a masked client frame header.
func AppendHeader(b []byte, fin, rsv1 bool, op byte, n int, key uint32) []byte {
	b0 := op
	if fin {
		b0 |= 0x80
	}
	if rsv1 {
		b0 |= 0x40
	}
	b = append(b, b0)
	switch {
	case n <= 125:
		b = append(b, 0x80|byte(n))
	case n <= 0xFFFF:
		b = append(b, 0x80|126, byte(n>>8), byte(n))
	default:
		b = append(b, 0x80|127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	return binary.LittleEndian.AppendUint32(b, key)
}

// Mask XORs b with the 4-byte mask key (little-endian in key, as it appears
// on the wire), eight bytes at a time.
func Mask(b []byte, key uint32) {
	k8 := uint64(key) | uint64(key)<<32
	for len(b) >= 32 {
		binary.LittleEndian.PutUint64(b, binary.LittleEndian.Uint64(b)^k8)
		binary.LittleEndian.PutUint64(b[8:], binary.LittleEndian.Uint64(b[8:])^k8)
		binary.LittleEndian.PutUint64(b[16:], binary.LittleEndian.Uint64(b[16:])^k8)
		binary.LittleEndian.PutUint64(b[24:], binary.LittleEndian.Uint64(b[24:])^k8)
		b = b[32:]
	}
	for len(b) >= 8 {
		binary.LittleEndian.PutUint64(b, binary.LittleEndian.Uint64(b)^k8)
		b = b[8:]
	}
	for i := range b {
		b[i] ^= byte(key >> (8 * (i & 3)))
	}
}
