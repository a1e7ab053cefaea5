package testconn

import (
	"bufio"
	"bytes"
	"compress/flate"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Opcodes of RFC 6455 section 5.2.
const (
	OpContinuation = 0x0
	OpText         = 0x1
	OpBinary       = 0x2
	OpClose        = 0x8
	OpPing         = 0x9
	OpPong         = 0xa
)

// Negotiated is what a server's upgrade response agreed to.
type Negotiated struct {
	// Status is the response's status code (101 for an upgrade).
	Status int
	// Deflate is true when the server accepted permessage-deflate.
	Deflate bool
	// ClientNoContextTakeover is true when the client must compress each
	// message on its own (client_no_context_takeover in the response).
	ClientNoContextTakeover bool
	// ClientMaxWindowBits is the client_max_window_bits the server set, or
	// 0.
	ClientMaxWindowBits int
	// HeaderLen is the length of the response header, up to and including
	// its blank line: the server's frames start there.
	HeaderLen int
}

// ErrIncompleteResponse is returned by ParseResponse for bytes that end
// before the response header does.
var ErrIncompleteResponse = errors.New("testconn: incomplete HTTP response")

// ParseResponse parses the server's upgrade response at the start of what
// the client read (Conn.Received) and says what it negotiated.
func ParseResponse(received []byte) (Negotiated, error) {
	end := bytes.Index(received, []byte("\r\n\r\n"))
	if end < 0 {
		return Negotiated{}, ErrIncompleteResponse
	}
	head := received[:end+4]
	resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(head)), nil)
	if err != nil {
		return Negotiated{}, fmt.Errorf("testconn: upgrade response: %w", err)
	}
	_ = resp.Body.Close()
	n := Negotiated{Status: resp.StatusCode, HeaderLen: len(head)}
	for _, v := range resp.Header.Values("Sec-WebSocket-Extensions") {
		for _, ext := range strings.Split(v, ",") {
			params := strings.Split(ext, ";")
			if strings.TrimSpace(params[0]) != "permessage-deflate" {
				return n, fmt.Errorf("testconn: unknown extension %q", strings.TrimSpace(ext))
			}
			if n.Deflate {
				return n, errors.New("testconn: permessage-deflate accepted twice")
			}
			n.Deflate = true
			for _, p := range params[1:] {
				name, value, _ := strings.Cut(strings.TrimSpace(p), "=")
				switch name {
				case "client_no_context_takeover":
					n.ClientNoContextTakeover = true
				case "client_max_window_bits":
					bits, err := strconv.Atoi(strings.Trim(value, `"`))
					if err != nil || bits < 8 || bits > 15 {
						return n, fmt.Errorf("testconn: bad client_max_window_bits %q", value)
					}
					n.ClientMaxWindowBits = bits
				case "server_no_context_takeover", "server_max_window_bits":
				default:
					return n, fmt.Errorf("testconn: unknown permessage-deflate parameter %q", name)
				}
			}
		}
	}
	return n, nil
}

// Frame is one frame of the client's, unmasked.
type Frame struct {
	Fin     bool   // the last frame of its message
	RSV1    bool   // a compressed message's first frame
	Opcode  byte   // OpText, OpBinary, OpContinuation or a control opcode
	Payload []byte // unmasked
	// Offset is where the frame starts in the written stream.
	Offset int64
}

// Message is a data message reassembled from the client's frames and, when
// it was compressed, inflated.
type Message struct {
	Opcode     byte   // OpText or OpBinary
	Payload    []byte // reassembled and inflated
	Compressed bool   // RSV1 was set: the payload was inflated
	Frames     int    // how many frames carried it
	// Err is set (a *DecodeError) when the message does not inflate or
	// its text is not UTF-8: the framing is intact, the content is not.
	// Payload then holds what could be inflated.
	Err error
	// Start and End are the offsets of the message's first byte and of the
	// byte after its last in the written stream.
	Start, End int64
}

// Stream is what the client wrote on one connection, decoded.
type Stream struct {
	// Request is the opening handshake request; nil when the stream ends
	// before its end.
	Request []byte
	// Messages are the complete data messages, in order.
	Messages []Message
	// Controls are the control frames (ping, pong, close), in order.
	Controls []Frame
	// Unfinished is true when the stream ends inside a frame or a
	// fragmented message (the connection was cut, or a write failed): the
	// bytes from TailOffset on are not a complete message.
	Unfinished bool
	TailOffset int64
}

// DecodeOptions says how to decode a client's stream.
type DecodeOptions struct {
	// Deflate is true when permessage-deflate was negotiated: a data
	// message with RSV1 is compressed.
	Deflate bool
	// ContextTakeover is true when the client keeps its compressor's
	// window between messages (no client_no_context_takeover).
	ContextTakeover bool
	// MaxMessage bounds an inflated message; 0 means 64 MiB.
	MaxMessage int64
}

// OptionsFor returns the DecodeOptions of what n negotiated.
func OptionsFor(n Negotiated) DecodeOptions {
	return DecodeOptions{Deflate: n.Deflate, ContextTakeover: n.Deflate && !n.ClientNoContextTakeover}
}

// DecodeError reports a malformed client stream.
type DecodeError struct {
	Offset int64 // where in the written stream
	Reason string
}

// Error implements error.
func (e *DecodeError) Error() string {
	return fmt.Sprintf("testconn: malformed client stream at byte %d: %s", e.Offset, e.Reason)
}

// deflateTail ends a raw deflate message (RFC 7692 section 7.2.2: the
// empty stored block the sender removed) and then the stream (an empty
// final stored block), so that the reader ends with io.EOF.
var deflateTail = []byte{0x00, 0x00, 0xff, 0xff, 0x01, 0x00, 0x00, 0xff, 0xff}

// windowSize is the largest LZ77 window (RFC 7692: 2^15).
const windowSize = 32 << 10

// DecodeClient decodes the bytes a client wrote on one connection
// (Conn.Written): the opening handshake request, then masked frames. Its
// error is the first *DecodeError found. A framing error stops the
// decoding (what came before it is returned): an unmasked frame, reserved
// bits or opcodes, a control frame fragmented or too long, a continuation
// without a message or a message started inside another, bytes after the
// close frame. A message whose content is wrong (a compressed message
// that does not inflate, with the window of the earlier ones under context
// takeover, or text that is not UTF-8) is kept with its Err set, and the
// decoding goes on. A stream that merely ends early is not an error:
// Unfinished says so.
func DecodeClient(written []byte, opts DecodeOptions) (*Stream, error) {
	if opts.MaxMessage <= 0 {
		opts.MaxMessage = 64 << 20
	}
	s := &Stream{}
	end := bytes.Index(written, []byte("\r\n\r\n"))
	if end < 0 {
		s.Unfinished = len(written) > 0
		return s, nil
	}
	if !bytes.HasPrefix(written, []byte("GET ")) {
		return s, &DecodeError{0, "the stream does not start with a GET request"}
	}
	s.Request = written[:end+4]
	d := decoder{opts: opts, s: s}
	if err := d.frames(written, int64(end+4)); err != nil {
		return s, err
	}
	for _, m := range s.Messages {
		if m.Err != nil {
			return s, m.Err
		}
	}
	return s, nil
}

type decoder struct {
	opts   DecodeOptions
	s      *Stream
	window []byte // the last 32 KiB inflated, under context takeover

	inMsg bool
	msg   Message
	raw   []byte // the message's payload as written
}

func (d *decoder) frames(b []byte, off int64) error {
	closed := false
	for off < int64(len(b)) {
		if closed {
			return &DecodeError{off, "bytes after the close frame"}
		}
		f, n, err := parseFrame(b[off:], off)
		if err != nil {
			return err
		}
		if n == 0 { // incomplete frame
			break
		}
		if err := d.frame(f, off+int64(n)); err != nil {
			return err
		}
		closed = f.Opcode == OpClose
		off += int64(n)
	}
	if off < int64(len(b)) || d.inMsg {
		d.s.Unfinished = true
		d.s.TailOffset = off
		if d.inMsg {
			d.s.TailOffset = d.msg.Start
		}
	}
	return nil
}

// parseFrame parses the frame at the start of b (at offset off of the
// stream). It returns n == 0 for an incomplete frame.
func parseFrame(b []byte, off int64) (f Frame, n int, err error) {
	if len(b) < 2 {
		return f, 0, nil
	}
	f.Offset = off
	f.Fin = b[0]&0x80 != 0
	f.RSV1 = b[0]&0x40 != 0
	f.Opcode = b[0] & 0x0f
	if b[0]&0x30 != 0 {
		return f, 0, &DecodeError{off, "RSV2 or RSV3 set"}
	}
	if b[1]&0x80 == 0 {
		return f, 0, &DecodeError{off, "unmasked client frame"}
	}
	length := uint64(b[1] & 0x7f)
	pos := 2
	switch length {
	case 126:
		if len(b) < 4 {
			return f, 0, nil
		}
		length = uint64(binary.BigEndian.Uint16(b[2:]))
		pos = 4
		if length < 126 {
			return f, 0, &DecodeError{off, "16-bit length for a short payload"}
		}
	case 127:
		if len(b) < 10 {
			return f, 0, nil
		}
		length = binary.BigEndian.Uint64(b[2:])
		pos = 10
		if length>>63 != 0 {
			return f, 0, &DecodeError{off, "64-bit length with its top bit set"}
		}
		if length <= 0xffff {
			return f, 0, &DecodeError{off, "64-bit length for a short payload"}
		}
	}
	if len(b) < pos+4 {
		return f, 0, nil
	}
	var key [4]byte
	copy(key[:], b[pos:])
	pos += 4
	if uint64(len(b)-pos) < length {
		return f, 0, nil
	}
	f.Payload = make([]byte, length)
	for i := range f.Payload {
		f.Payload[i] = b[pos+i] ^ key[i&3]
	}
	return f, pos + int(length), nil
}

// frame takes one complete frame, which ends at offset end.
func (d *decoder) frame(f Frame, end int64) error {
	switch f.Opcode {
	case OpClose, OpPing, OpPong:
		switch {
		case !f.Fin:
			return &DecodeError{f.Offset, "fragmented control frame"}
		case f.RSV1:
			return &DecodeError{f.Offset, "RSV1 on a control frame"}
		case len(f.Payload) > 125:
			return &DecodeError{f.Offset, "control frame over 125 bytes"}
		case f.Opcode == OpClose && len(f.Payload) == 1:
			return &DecodeError{f.Offset, "close frame with a 1-byte payload"}
		case f.Opcode == OpClose && len(f.Payload) > 2 && !utf8.Valid(f.Payload[2:]):
			return &DecodeError{f.Offset, "close reason is not UTF-8"}
		}
		d.s.Controls = append(d.s.Controls, f)
		return nil
	case OpText, OpBinary:
		if d.inMsg {
			return &DecodeError{f.Offset, "a data frame starts a message inside another"}
		}
		if f.RSV1 && !d.opts.Deflate {
			return &DecodeError{f.Offset, "RSV1 without permessage-deflate"}
		}
		d.inMsg = true
		d.msg = Message{Opcode: f.Opcode, Compressed: f.RSV1, Start: f.Offset}
		d.raw = d.raw[:0]
	case OpContinuation:
		if !d.inMsg {
			return &DecodeError{f.Offset, "continuation frame without a message"}
		}
		if f.RSV1 {
			return &DecodeError{f.Offset, "RSV1 on a continuation frame"}
		}
	default:
		return &DecodeError{f.Offset, fmt.Sprintf("reserved opcode %#x", f.Opcode)}
	}
	d.raw = append(d.raw, f.Payload...)
	d.msg.Frames++
	if int64(len(d.raw)) > d.opts.MaxMessage {
		return &DecodeError{f.Offset, "message over the size bound"}
	}
	if !f.Fin {
		return nil
	}
	m := d.msg
	d.inMsg = false
	m.End = end
	m.Payload = append([]byte(nil), d.raw...)
	if m.Compressed {
		out, err := d.inflate(m.Payload)
		m.Payload = out
		if err != nil {
			m.Err = &DecodeError{m.Start, "compressed message does not inflate: " + err.Error()}
		}
	}
	if m.Err == nil && m.Opcode == OpText && !utf8.Valid(m.Payload) {
		m.Err = &DecodeError{m.Start, "text message is not UTF-8"}
	}
	d.s.Messages = append(d.s.Messages, m)
	return nil
}

// inflate decompresses one message, with the window of the earlier ones
// under context takeover.
func (d *decoder) inflate(p []byte) ([]byte, error) {
	in := bytes.NewReader(append(append([]byte(nil), p...), deflateTail...))
	var dict []byte
	if d.opts.ContextTakeover {
		dict = d.window
	}
	r := flate.NewReaderDict(in, dict)
	out, err := io.ReadAll(io.LimitReader(r, d.opts.MaxMessage+1))
	switch {
	case err != nil:
	case int64(len(out)) > d.opts.MaxMessage:
		out, err = out[:d.opts.MaxMessage], errors.New("inflates over the size bound")
	case in.Len() != 0 && in.Len() != len(deflateTail):
		// A final block inside the message leaves the tail unread;
		// anything more is data after the end of the deflate stream.
		err = fmt.Errorf("data after the final deflate block (%d bytes left)", in.Len())
	}
	// Under takeover the window goes on with what was inflated, right or
	// wrong: the next messages are decoded as a peer would.
	if d.opts.ContextTakeover {
		d.window = append(d.window, out...)
		if len(d.window) > windowSize {
			d.window = append([]byte(nil), d.window[len(d.window)-windowSize:]...)
		}
	}
	return out, err
}
