package protocol

import (
	"compress/flate"
	"io"
	"sync"
)

// InflateStream decompresses one message as its compressed bytes arrive,
// for a message delivered as a stream: its memory is the decompressor's and
// 64 KiB of history, whatever the message's size. It keeps the Inflater's
// context as Inflate does. It is not safe for concurrent use.
type InflateStream struct {
	f    *Inflater
	src  streamSource
	r    io.ReadCloser // a compress/flate reader over &src
	hist []byte        // the window, then the last 32 KiB of output (cap 64 KiB)
	done bool          // the message was read to its end
	err  error         // sticky
}

// maxDistance is the farthest a DEFLATE block can refer back.
const maxDistance = 1 << 15

// inflateStreams pools stream decompressors (the flate reader, the history
// and the source's buffer).
var inflateStreams sync.Pool

// Stream starts decompressing a message whose compressed payload src
// yields, then io.EOF at the message's end. Call Close when done with it.
func (f *Inflater) Stream(src io.Reader) *InflateStream {
	z, _ := inflateStreams.Get().(*InflateStream)
	if z == nil {
		z = &InflateStream{hist: make([]byte, 0, 2*maxDistance)}
		z.src.buf = make([]byte, 0, 4096)
	}
	z.f, z.done, z.err = f, false, nil
	z.src.reset(src)
	z.hist = z.hist[:0]
	if f.takeover {
		z.hist = append(z.hist, f.window...)
	}
	if z.r == nil {
		z.r = flate.NewReaderDict(&z.src, z.hist)
	} else {
		_ = z.r.(flate.Resetter).Reset(&z.src, z.hist)
	}
	return z
}

// Takeover reports whether the Inflater keeps context between messages:
// then a message must be decompressed whole, even one nobody reads, for
// the next message to decompress right.
func (f *Inflater) Takeover() bool { return f.takeover }

// Read decompresses the next bytes of the message into p; io.EOF at its
// end. Data that is not valid DEFLATE returns an error wrapping
// ErrInflateCorrupt; an error of the source is returned as it is.
func (z *InflateStream) Read(p []byte) (int, error) {
	if z.err != nil {
		return 0, z.err
	}
	if len(p) == 0 {
		return 0, nil
	}
	for {
		n, err := z.r.Read(p)
		if n > 0 {
			z.remember(p[:n])
		}
		switch {
		case err == nil:
			return n, nil
		case err == io.EOF:
			// A final block ended: the message's end if nothing but an
			// empty stored block's header follows (as Inflate decides),
			// else more blocks follow with the history so far.
			more, serr := z.src.moreBlocks()
			if serr != nil {
				z.err = serr
				return n, serr
			}
			if !more {
				z.finish()
				z.err = io.EOF
				return n, io.EOF
			}
			_ = z.r.(flate.Resetter).Reset(&z.src, z.hist[max(0, len(z.hist)-maxDistance):])
			if n > 0 {
				return n, nil
			}
		case z.src.total == 0 && z.src.srcEOF && z.src.err == nil:
			// An empty payload is an empty message, as for Inflate.
			z.finish()
			z.err = io.EOF
			return 0, io.EOF
		default:
			if z.src.err != nil && z.src.err != io.EOF {
				z.err = z.src.err // the source failed: not the data's fault
			} else {
				z.err = newInflateError(err, 0, z.src.total)
			}
			return n, z.err
		}
	}
}

// remember keeps the last 32 KiB of output (after the window) in hist.
func (z *InflateStream) remember(out []byte) {
	if len(out) >= maxDistance {
		z.hist = append(z.hist[:0], out[len(out)-maxDistance:]...)
		return
	}
	if len(z.hist)+len(out) > cap(z.hist) {
		keep := z.hist[len(z.hist)-(maxDistance-len(out)):]
		z.hist = z.hist[:copy(z.hist, keep)]
	}
	z.hist = append(z.hist, out...)
}

// finish takes the message's end into the Inflater's context.
func (z *InflateStream) finish() {
	z.done = true
	if z.f.takeover {
		w := z.hist[max(0, len(z.hist)-z.f.windowSize):]
		z.f.window = append(z.f.window[:0], w...)
	}
}

// Close gives the decompressor back. The Inflater's context is the
// message's end if Read returned io.EOF; otherwise the message is
// unfinished and the Inflater must not be used again (the session ends).
func (z *InflateStream) Close() {
	z.src.reset(nil)
	z.f = nil
	inflateStreams.Put(z)
}

// streamSource is the decompressor's input: the message as src yields it,
// then inflateSuffix. It implements io.ByteReader, so the decompressor reads
// nothing past the end of a DEFLATE stream.
type streamSource struct {
	src    io.Reader
	buf    []byte // read from src, not yet consumed: buf[pos:]
	pos    int
	srcEOF bool // src is exhausted: the suffix follows
	suffix int  // bytes of inflateSuffix consumed
	err    error
	total  int64 // message bytes consumed
}

func (s *streamSource) reset(src io.Reader) {
	s.src, s.buf, s.pos, s.srcEOF, s.suffix, s.err, s.total = src, s.buf[:0], 0, false, 0, nil, 0
}

// fill reads more of the message; false at its end or on an error.
func (s *streamSource) fill() bool {
	if s.srcEOF {
		return false
	}
	if s.pos == len(s.buf) {
		s.buf, s.pos = s.buf[:0], 0
	}
	for {
		if len(s.buf) == cap(s.buf) {
			// Room for at least one more byte (moreBlocks looks ahead).
			s.buf = s.buf[:copy(s.buf, s.buf[s.pos:])]
			s.pos = 0
		}
		n, err := s.src.Read(s.buf[len(s.buf):cap(s.buf)])
		s.buf = s.buf[:len(s.buf)+n]
		if err == io.EOF {
			s.srcEOF = true
			return n > 0
		}
		if err != nil {
			s.err = err
			return n > 0
		}
		if n > 0 {
			return true
		}
	}
}

// ReadByte implements io.ByteReader.
func (s *streamSource) ReadByte() (byte, error) {
	if s.pos == len(s.buf) && !s.fill() {
		if s.err != nil {
			return 0, s.err
		}
		if s.suffix < len(inflateSuffix) {
			s.suffix++
			return inflateSuffix[s.suffix-1], nil
		}
		return 0, io.EOF
	}
	c := s.buf[s.pos]
	s.pos++
	s.total++
	return c, nil
}

// Read implements io.Reader (flate reads through ReadByte).
func (s *streamSource) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	c, err := s.ReadByte()
	if err != nil {
		return 0, err
	}
	p[0] = c
	return 1, nil
}

// moreBlocks reports, after a final block, whether more DEFLATE blocks of
// the message follow: anything but nothing, or a lone header of an empty
// stored block (RFC 7692 section 7.2.3.4), which the suffix completes.
func (s *streamSource) moreBlocks() (bool, error) {
	if s.suffix > 0 {
		return false, nil // the message's bytes were all consumed
	}
	for len(s.buf)-s.pos < 2 && s.fill() {
	}
	if s.err != nil {
		return false, s.err
	}
	rest := s.buf[s.pos:]
	return !(len(rest) == 0 || len(rest) == 1 && s.srcEOF && rest[0]&7 == 0), nil
}
