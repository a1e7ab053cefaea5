package protocol

import (
	"compress/flate"
	"errors"
	"io"
	"strconv"
	"sync"
)

var (
	// ErrInflateLimit is returned by Inflater.Inflate when a message
	// decompresses to more bytes than the limit (close code 1009).
	ErrInflateLimit = errors.New("lomond: decompressed message exceeds the read limit")
	// ErrInflateCorrupt is wrapped by the error Inflater.Inflate returns for
	// a message that is not valid DEFLATE data (close code 1007 or 1002 is
	// the dispatcher's choice).
	ErrInflateCorrupt = errors.New("lomond: corrupt compressed message")
)

// inflateSuffix follows every message fed to the decompressor. The first four
// bytes are the end of the empty stored block of a sync flush, which the
// sender removed (RFC 7692 7.2.1) and the receiver puts back (7.2.2). The last
// five are an empty stored block with BFINAL set: the decompressor reports
// io.EOF right after a well-formed message instead of asking for more input.
const inflateSuffix = "\x00\x00\xff\xff\x01\x00\x00\xff\xff"

// Inflater decompresses the messages a server compresses with
// permessage-deflate. It is not safe for concurrent use.
//
// It holds no decompressor between messages: each Inflate takes one from a
// pool shared by every Inflater and gives it back. With context takeover
// (ServerNoContextTakeover false) it keeps the last 2^ServerMaxWindowBits
// bytes of output, at most 32 KiB, as the dictionary of the next message; it
// keeps at least 512 bytes even when 8 bits were agreed, because zlib, which
// most servers use, silently compresses with a 9-bit window when asked for 8.
// Without context takeover it keeps nothing.
type Inflater struct {
	takeover   bool
	windowSize int    // bytes of output kept for the next message (takeover)
	window     []byte // the last windowSize bytes of output, or fewer (takeover)
}

// NewInflater returns an Inflater for the agreed parameters. It allocates
// nothing until the first message.
func NewInflater(p DeflateParams) *Inflater {
	bits := deflateWindowBits(p.ServerMaxWindowBits)
	if bits < 9 {
		bits = 9
	}
	return &Inflater{takeover: !p.ServerNoContextTakeover, windowSize: 1 << bits}
}

// Inflate decompresses one message and appends it to dst. compressed is the
// whole message payload as received: the payloads of its frames
// concatenated, RSV1 having been set on the first (RFC 7692 section 6).
//
// limit bounds the decompressed size of this message (not counting dst's
// existing bytes); a negative limit is no limit. As soon as the output
// exceeds it, Inflate stops and returns ErrInflateLimit, having decompressed
// at most limit+1 bytes: a small message that would inflate to gigabytes
// costs no more than the limit.
//
// Data that is not valid DEFLATE, or that ends inside a block, returns an
// error wrapping ErrInflateCorrupt (and the compress/flate error, for
// errors.As).
//
// A DEFLATE block with BFINAL set ends a DEFLATE stream but not the message:
// RFC 7692 section 7.2.1 lets a sender use such blocks anywhere, padded to a
// byte boundary, "The next DEFLATE block follows the padded data if any". So
// the bytes after it are decoded as the next blocks of the same message, as
// in the RFC's example of section 7.2.3.4 (a final block, then the header of
// an empty stored block). They may refer back to what came before, like the
// blocks of a message to the window of the ones before it. Nothing is ever
// dropped: bytes after a final block that are not valid DEFLATE fail the
// message like any corrupt data, never yield a message cut short. Each
// final block with more after it costs about what a new message does: a
// reset of the decompressor, with up to 32 KiB of window.
//
// An empty payload is an empty message (a compressor writes at least one
// byte, but zlib reads an empty payload as nothing, without error).
//
// DEFLATE has no checksum: a payload cut inside a block is reported as
// corrupt when the missing bits are needed, but may instead decode to a
// shorter message if the bits appended to every message happen to complete
// it (zlib-based receivers do the same).
//
// On error the returned slice is dst with its original length (its capacity
// may have grown), and the context of the Inflater is that of before the
// message; the session is expected to end.
func (f *Inflater) Inflate(dst, compressed []byte, limit int) ([]byte, error) {
	if len(compressed) == 0 {
		return dst, nil
	}
	var dict []byte
	if f.takeover {
		dict = f.window
	}
	d := getInflateReader(compressed, dict)
	defer putInflateReader(d)

	start := len(dst)
	out := dst
	base := 0 // where in compressed the current DEFLATE stream starts
	for {
		produced := len(out) - start
		if len(out) == cap(out) {
			out = growInflateBuffer(out, produced, len(compressed), limit)
		}
		buf := out[len(out):cap(out)]
		if limit >= 0 && len(buf) > limit+1-produced {
			buf = buf[:limit+1-produced] // never decompress past limit+1
		}
		n, err := d.r.Read(buf)
		out = out[:len(out)+n]
		if limit >= 0 && len(out)-start > limit {
			return out[:start], ErrInflateLimit
		}
		if err == io.EOF {
			// A final block ended. If it ended in inflateSuffix, the
			// whole message was read. Otherwise more blocks follow (RFC
			// 7692 section 7.2.1): a new stream, with the window so far.
			// A last byte that is the header of an empty stored block,
			// whose length the suffix supplies, is nothing (the RFC's
			// example of section 7.2.3.4): skip the restart.
			rest := compressed[min(d.src.pos, len(compressed)):]
			if len(rest) == 0 || len(rest) == 1 && rest[0]&7 == 0 {
				break
			}
			base = d.src.pos
			d.restart(f.history(d, out[start:]))
			continue
		}
		if err != nil {
			return out[:start], newInflateError(err, int64(base), int64(len(compressed)))
		}
	}
	if f.takeover {
		f.remember(out[start:])
	}
	return out, nil
}

// history returns the window for the blocks that follow a final block in a
// message: the last 32 KiB of the message so far, after the Inflater's
// window with context takeover. It copies into d's scratch buffer only when
// both are needed, and once for final blocks with nothing between them.
func (f *Inflater) history(d *inflateReader, msg []byte) []byte {
	const maxDistance = 1 << 15 // the farthest a DEFLATE block can refer back
	if !f.takeover || len(f.window) == 0 || len(msg) >= maxDistance {
		return msg[max(0, len(msg)-maxDistance):]
	}
	if d.scratchFor != len(msg) {
		w := f.window[max(0, len(f.window)-(maxDistance-len(msg))):]
		d.scratch = append(append(d.scratch[:0], w...), msg...)
		d.scratchFor = len(msg)
	}
	return d.scratch
}

// Reset drops the Inflater's context (the window kept with context takeover),
// as at the start of a session, so that it can be reused or pooled.
func (f *Inflater) Reset() {
	f.window = nil
}

// remember appends a message's output to the window, keeping its last
// windowSize bytes.
func (f *Inflater) remember(msg []byte) {
	w := f.windowSize
	if len(msg) >= w {
		msg = msg[len(msg)-w:]
		f.window = f.window[:0]
	} else if excess := len(f.window) + len(msg) - w; excess > 0 {
		f.window = f.window[:copy(f.window, f.window[excess:])]
	}
	if need := len(f.window) + len(msg); need > cap(f.window) {
		// Grow by doubling, to exactly windowSize at most: a session of
		// small messages keeps a small window.
		c := max(need, 2*cap(f.window), 512)
		c = min(c, w)
		grown := make([]byte, len(f.window), c)
		copy(grown, f.window)
		f.window = grown
	}
	f.window = append(f.window, msg...)
}

// growInflateBuffer returns out with more spare capacity: a first guess from
// the compressed size, then doubling, and never more than the limit allows
// (limit+1 bytes of output, to detect that it is exceeded).
func growInflateBuffer(out []byte, produced, compressedLen, limit int) []byte {
	add := max(produced, 4*compressedLen+64)
	if limit >= 0 {
		add = min(add, limit+1-produced)
	}
	grown := make([]byte, len(out), len(out)+add)
	copy(grown, out)
	return grown
}

// inflateError is a message that could not be decompressed. It wraps
// ErrInflateCorrupt and the compress/flate error.
type inflateError struct {
	detail string
	err    error
}

// newInflateError describes err, from the decompressor that started at byte
// base of a message of msgLen bytes.
func newInflateError(err error, base, msgLen int64) error {
	var off flate.CorruptInputError
	switch {
	case errors.As(err, &off) && base+int64(off) <= msgLen:
		return &inflateError{detail: "invalid deflate data before byte " + strconv.FormatInt(base+int64(off), 10), err: err}
	case errors.As(err, &off) || errors.Is(err, io.ErrUnexpectedEOF):
		return &inflateError{detail: "deflate data ends inside a block", err: err}
	default:
		return &inflateError{detail: "deflate decoder failed", err: err}
	}
}

// Error implements error.
func (e *inflateError) Error() string {
	return ErrInflateCorrupt.Error() + ": " + e.detail
}

// Unwrap returns ErrInflateCorrupt and the compress/flate error.
func (e *inflateError) Unwrap() []error { return []error{ErrInflateCorrupt, e.err} }

// inflateReader is a pooled decompressor with its input.
type inflateReader struct {
	src     inflateSource
	r       io.ReadCloser // a compress/flate reader over &src
	scratch []byte        // Inflater.history's buffer, at most 32 KiB
	// scratchFor is the length of the message output that scratch ends
	// with, or -1: within a message, output only grows.
	scratchFor int
}

// inflateReaders pools decompressors (about 40 KiB each, 32 KiB more once
// they decoded blocks after a final block with context takeover) across
// Inflaters: an idle session holds none.
var inflateReaders sync.Pool

func getInflateReader(msg, dict []byte) *inflateReader {
	d, _ := inflateReaders.Get().(*inflateReader)
	if d == nil {
		d = &inflateReader{scratchFor: -1}
		d.src.msg = msg
		d.r = flate.NewReaderDict(&d.src, dict)
		return d
	}
	d.src = inflateSource{msg: msg}
	d.scratchFor = -1
	d.restart(dict)
	return d
}

// restart starts a new DEFLATE stream where the input is, with the window
// dict.
func (d *inflateReader) restart(dict []byte) {
	// Reset cannot fail: the source is a flate.Reader.
	_ = d.r.(flate.Resetter).Reset(&d.src, dict)
}

func putInflateReader(d *inflateReader) {
	d.src = inflateSource{} // do not keep the message alive in the pool
	inflateReaders.Put(d)
}

// inflateSource is the decompressor's input: the message, then
// inflateSuffix. It implements io.ByteReader, so the decompressor reads
// nothing past the end of the DEFLATE stream: the next one of the message,
// if any, starts where it stopped.
type inflateSource struct {
	msg []byte
	pos int // position in msg, then len(msg)+ position in inflateSuffix
}

// ReadByte implements io.ByteReader.
func (s *inflateSource) ReadByte() (byte, error) {
	if s.pos < len(s.msg) {
		c := s.msg[s.pos]
		s.pos++
		return c, nil
	}
	if i := s.pos - len(s.msg); i < len(inflateSuffix) {
		s.pos++
		return inflateSuffix[i], nil
	}
	return 0, io.EOF
}

// Read implements io.Reader.
func (s *inflateSource) Read(p []byte) (int, error) {
	n := 0
	if s.pos < len(s.msg) {
		n = copy(p, s.msg[s.pos:])
		s.pos += n
	}
	if i := s.pos - len(s.msg); n < len(p) && i < len(inflateSuffix) {
		m := copy(p[n:], inflateSuffix[i:])
		s.pos += m
		n += m
	}
	if n == 0 && len(p) > 0 {
		return 0, io.EOF
	}
	return n, nil
}
