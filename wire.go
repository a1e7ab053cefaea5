package lomond

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"net"
	"sync"
	"time"
	"unicode/utf8"
)

// wire is the dispatcher's hold on the transport connection, placed under the
// engine. The engine (coder/websocket) reads and writes frames through it;
// the wire adds what the engine's public API lacks:
//
//   - frames of our own (close, ping, pong) written whole at a frame
//     boundary, so a client close does not go through the engine's Close,
//     which discards every message the server sends before its close reply;
//   - after our close frame, the engine's own later frames (its echo of the
//     server's close reply, pongs) are dropped: a client sends nothing after
//     its close frame (RFC 6455 5.5.1);
//   - a scan of incoming frame headers that fails the connection on a masked
//     server frame, which the engine's client accepts;
//   - a scan of outgoing frames that records any close frame the engine
//     writes (how its protocol errors are told from transport errors) and
//     answers a server close with an invalid UTF-8 reason with 1007;
//   - timers: the read deadline is set to the session's next timer, and a
//     timeout is handed to onTimeout on the reading goroutine instead of
//     failing the read, so no goroutine or timer per connection is needed.
type wire struct {
	net.Conn

	// onTimeout, set once the session is ready, runs the session's timers
	// when the read deadline passes. A non-nil error fails the read.
	onTimeout func() error

	in        frameScanner
	violation error     // set by Read when the server broke the protocol
	lastRead  time.Time // when bytes last arrived: a message's received time

	wmu          sync.Mutex // serializes every Write on the connection
	out          frameScanner
	closeSent    bool        // a close frame went out (ours or the engine's)
	ourClose     bool        // the close frame that went out was ours
	engineClosed *closeFrame // the close frame the engine wrote, if any
}

type closeFrame struct {
	code   int
	reason string
}

// errMaskedFrame fails a connection whose server masked a frame.
var errMaskedFrame = errors.New("server sent a masked frame")

func newWire(c net.Conn) *wire {
	w := &wire{Conn: c}
	w.in.http = true
	w.out.http = true
	return w
}

// Read reads from the connection, scans frame headers, and runs timers on
// deadline expiry.
func (w *wire) Read(p []byte) (int, error) {
	if w.violation != nil {
		return 0, w.violation
	}
	for {
		n, err := w.Conn.Read(p)
		if n > 0 {
			// One clock reading per read, not per message: a read carries
			// many small messages, and they all arrived now.
			w.lastRead = time.Now()
			if bad := w.in.scan(p[:n], nil); bad >= 0 {
				w.violation = errMaskedFrame
				if bad > 0 {
					return bad, nil
				}
				return 0, w.violation
			}
			return n, err
		}
		if err != nil && w.onTimeout != nil && isTimeout(err) {
			if terr := w.onTimeout(); terr != nil {
				return 0, terr
			}
			continue
		}
		return n, err
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// Write writes the engine's bytes, dropping them once our close frame went
// out and rewriting its close echo when the server's reason was not UTF-8.
func (w *wire) Write(p []byte) (int, error) {
	w.wmu.Lock()
	defer w.wmu.Unlock()
	if w.ourClose {
		return len(p), nil
	}
	var rewrite []byte
	w.out.scan(p, func(h frameHeader, off int) {
		if h.opcode != opClose || w.closeSent {
			return
		}
		w.closeSent = true
		end := off + h.size + int(h.length)
		if off < 0 || h.length > maxControl || end > len(p) {
			w.engineClosed = &closeFrame{code: 1005}
			return
		}
		payload := append([]byte(nil), p[off+h.size:end]...)
		maskBytes(payload, h.mask)
		cf := parseClose(payload)
		w.engineClosed = &cf
		if !utf8.ValidString(cf.reason) {
			// The engine echoes the server's close as is; an invalid UTF-8
			// reason must instead fail the connection with 1007.
			rewrite = append(append(rewrite, p[:off]...), encodeFrame(opClose, closePayload(1007, "invalid UTF-8 in close reason"))...)
			rewrite = append(rewrite, p[end:]...)
		}
	})
	if rewrite != nil {
		if _, err := w.Conn.Write(rewrite); err != nil {
			return 0, err
		}
		return len(p), nil
	}
	return w.Conn.Write(p)
}

// writeFrame writes one frame of ours. The caller holds the session's send
// lock, so no engine data frame is half written.
func (w *wire) writeFrame(op byte, payload []byte) error {
	w.wmu.Lock()
	defer w.wmu.Unlock()
	if w.closeSent {
		return net.ErrClosed
	}
	if op == opClose {
		w.closeSent, w.ourClose = true, true
	}
	_, err := w.Conn.Write(encodeFrame(op, payload))
	return err
}

// writeData writes one whole data frame of ours (uncompressed sessions),
// masked into buf, in a single write: the engine copies a client payload
// through a 4 KiB buffer, one write(2) per 4 KiB. The caller holds the
// session's send lock and owns buf; the grown buffer is returned for reuse.
func (w *wire) writeData(op byte, payload []byte, key uint32, buf []byte) ([]byte, error) {
	buf = appendFrameHeader(buf[:0], op, len(payload), key)
	start := len(buf)
	buf = append(buf, payload...)
	maskWords(buf[start:], key)
	w.wmu.Lock()
	defer w.wmu.Unlock()
	if w.closeSent {
		return buf, net.ErrClosed
	}
	_, err := w.Conn.Write(buf)
	return buf, err
}

// appendFrameHeader appends a final, masked client frame header.
func appendFrameHeader(b []byte, op byte, n int, key uint32) []byte {
	b = append(b, 0x80|op)
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

// maskWords XORs b with the 4-byte mask key (little-endian in key, as it
// appears on the wire), eight bytes at a time.
func maskWords(b []byte, key uint32) {
	k8 := uint64(key) | uint64(key)<<32
	for len(b) >= 8 {
		binary.LittleEndian.PutUint64(b, binary.LittleEndian.Uint64(b)^k8)
		b = b[8:]
	}
	for i := range b {
		b[i] ^= byte(key >> (8 * (i & 3)))
	}
}

// sentClose reports whether a close frame went out.
func (w *wire) sentClose() bool {
	w.wmu.Lock()
	defer w.wmu.Unlock()
	return w.closeSent
}

// wakeAt sets the read deadline to the next timer.
func (w *wire) wakeAt(t time.Time) { _ = w.Conn.SetReadDeadline(t) }

const (
	opContinuation = 0x0
	opText         = 0x1
	opBinary       = 0x2
	opClose        = 0x8
	opPing         = 0x9
	opPong         = 0xA
	maxControl     = 125
)

// encodeFrame builds a masked, final client frame (payloads of control
// frames only: at most 125 bytes).
func encodeFrame(op byte, payload []byte) []byte {
	var key [4]byte
	_, _ = rand.Read(key[:])
	k := binary.LittleEndian.Uint32(key[:])
	b := appendFrameHeader(make([]byte, 0, 6+len(payload)), op, len(payload), k)
	start := len(b)
	b = append(b, payload...)
	maskWords(b[start:], k)
	return b
}

func maskBytes(b []byte, key [4]byte) {
	for i := range b {
		b[i] ^= key[i&3]
	}
}

func closePayload(code int, reason string) []byte {
	if code == 0 {
		return nil
	}
	b := make([]byte, 2, 2+len(reason))
	binary.BigEndian.PutUint16(b, uint16(code))
	return append(b, reason...)
}

func parseClose(p []byte) closeFrame {
	if len(p) < 2 {
		return closeFrame{code: 1005}
	}
	return closeFrame{code: int(binary.BigEndian.Uint16(p)), reason: string(p[2:])}
}

// frameHeader is what the scanner learns of a frame.
type frameHeader struct {
	opcode byte
	masked bool
	mask   [4]byte
	length uint64
	size   int // header bytes
}

// frameScanner follows frame boundaries through a byte stream without
// copying payloads: the IO-free part of the wire. In http mode it first
// skips an HTTP response header.
type frameScanner struct {
	http bool
	crlf int // matched bytes of "\r\n\r\n"
	hdr  [14]byte
	hn   int
	skip uint64
}

// scan advances over chunk. It calls fn (if non-nil) for every frame header
// completed in chunk, with the offset in chunk where the header began (-1 if
// it began in an earlier chunk). It returns that offset for the first masked
// frame (0 when it began earlier), or -1 when there is none.
func (s *frameScanner) scan(chunk []byte, fn func(h frameHeader, off int)) int {
	start := -1
	i := 0
	for i < len(chunk) {
		if s.http {
			c := chunk[i]
			i++
			switch {
			case c == '\r' && (s.crlf == 0 || s.crlf == 2):
				s.crlf++
			case c == '\n' && (s.crlf == 1 || s.crlf == 3):
				s.crlf++
			case c == '\r':
				s.crlf = 1
			default:
				s.crlf = 0
			}
			if s.crlf == 4 {
				s.http = false
			}
			continue
		}
		if s.skip > 0 {
			n := uint64(len(chunk) - i)
			if n > s.skip {
				n = s.skip
			}
			s.skip -= n
			i += int(n)
			continue
		}
		if s.hn == 0 && fn == nil && len(chunk)-i >= 10 {
			// Fast path: the header's length bytes are all in this chunk.
			b1 := chunk[i+1]
			if b1&0x80 != 0 {
				return i
			}
			switch l := b1 & 0x7f; l {
			case 126:
				s.skip = uint64(binary.BigEndian.Uint16(chunk[i+2:]))
				i += 4
			case 127:
				s.skip = binary.BigEndian.Uint64(chunk[i+2:])
				i += 10
			default:
				s.skip = uint64(l)
				i += 2
			}
			continue
		}
		if s.hn == 0 {
			start = i
		}
		s.hdr[s.hn] = chunk[i]
		s.hn++
		i++
		need := headerSize(s.hdr[:s.hn])
		if s.hn < need {
			continue
		}
		h := parseHeader(s.hdr[:need])
		s.hn = 0
		s.skip = h.length
		if fn != nil {
			fn(h, start)
		} else if h.masked {
			return max(start, 0)
		}
		start = -1
	}
	return -1
}

// headerSize returns the full size of the header whose first bytes are b, or
// len(b)+1 while that is not yet known.
func headerSize(b []byte) int {
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

func parseHeader(b []byte) frameHeader {
	h := frameHeader{opcode: b[0] & 0x0f, masked: b[1]&0x80 != 0, size: len(b)}
	i := 2
	switch l := b[1] & 0x7f; l {
	case 126:
		h.length = uint64(binary.BigEndian.Uint16(b[2:]))
		i += 2
	case 127:
		h.length = binary.BigEndian.Uint64(b[2:])
		i += 8
	default:
		h.length = uint64(l)
	}
	if h.masked {
		copy(h.mask[:], b[i:i+4])
	}
	return h
}
