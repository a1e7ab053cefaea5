package protocol

import (
	"bytes"
	"compress/flate"
	"sync"
)

// DefaultDeflateLevel, given to NewDeflater, picks the compression level by
// how the Deflater works, as measured on 1 KiB JSON-like messages:
//
//   - With context takeover (one writer kept for the session): level 2. It
//     is as fast as flate.BestSpeed or faster there, its output is about a
//     third smaller (BestSpeed only refers back to the previous message), and
//     its writer is smaller (0.8 MB against 1.2 MB).
//   - Otherwise (a writer from the pool, reset for every message):
//     flate.BestSpeed, the only level whose reset is cheap; levels 2 to 9
//     clear 640 KiB of hash tables on every reset, which costs more than
//     compressing the message.
const DefaultDeflateLevel = 100

// takeoverDefaultLevel and freshDefaultLevel are what DefaultDeflateLevel
// means with and without a writer kept between messages.
const (
	takeoverDefaultLevel = 2
	freshDefaultLevel    = flate.BestSpeed
)

// syncTail ends every sync flush of compress/flate (the empty stored block's
// LEN and NLEN); permessage-deflate leaves it out of the message (RFC 7692
// section 7.2.1).
var syncTail = []byte{0x00, 0x00, 0xff, 0xff}

// Deflater compresses the client's messages with permessage-deflate. It is
// not safe for concurrent use.
//
// With context takeover (ClientNoContextTakeover false, ClientMaxWindowBits
// 15) it keeps one compress/flate writer from its first message until Reset:
// about 0.8 MB at levels 2 to 9, 0.7 MB at HuffmanOnly, 1.2 MB at BestSpeed.
// Otherwise it keeps nothing: each message takes a writer from a pool shared
// by every Deflater and gives it back.
//
// ClientMaxWindowBits below 15: compress/flate always uses a 32 KiB window
// and cannot be told to use less. A message no longer than the window
// (2^ClientMaxWindowBits bytes) is compressed on its own by a fresh writer at
// the configured level, whose back-references cannot reach further back than
// the message's own start, so they stay within the window. A longer message
// is compressed with flate.HuffmanOnly, which has no back-references at all.
// Either way the client never takes over its context, so the server's window
// limit holds.
type Deflater struct {
	level    int
	takeover bool
	window   int            // 2^ClientMaxWindowBits
	w        *deflateWriter // kept between messages with takeover; nil until the first
}

// NewDeflater returns a Deflater for the agreed parameters, compressing at
// level: DefaultDeflateLevel, or a compress/flate level (flate.HuffmanOnly,
// flate.DefaultCompression or 0 to 9); any other value means
// DefaultDeflateLevel. It allocates nothing until the first message.
func NewDeflater(p DeflateParams, level int) *Deflater {
	bits := deflateWindowBits(p.ClientMaxWindowBits)
	takeover := !p.ClientNoContextTakeover && bits == MaxWindowBits
	if level < flate.HuffmanOnly || level > flate.BestCompression {
		level = freshDefaultLevel
		if takeover {
			level = takeoverDefaultLevel
		}
	}
	return &Deflater{level: level, takeover: takeover, window: 1 << bits}
}

// Deflate compresses msg as one permessage-deflate message and appends the
// payload to dst: DEFLATE blocks ending with a sync flush whose last four
// bytes (0x00 0x00 0xff 0xff) are removed (RFC 7692 section 7.2.1). An empty
// msg gives the single byte 0x00. The frames that carry the payload must have
// RSV1 set on the first.
//
// With context takeover the message may refer back to earlier ones, so every
// payload Deflate returns must be sent, in order.
func (d *Deflater) Deflate(dst, msg []byte) []byte {
	if d.takeover {
		if d.w == nil {
			d.w = getDeflateWriter(d.level)
		}
		return d.w.compress(dst, msg)
	}
	level := d.level
	if d.window < 1<<MaxWindowBits && len(msg) > d.window {
		level = flate.HuffmanOnly
	}
	w := getDeflateWriter(level)
	dst = w.compress(dst, msg)
	putDeflateWriter(w)
	return dst
}

// DeflatePart compresses the next part of a message sent in fragments and
// appends it to dst: final is the message's last part. Each part ends with
// a sync flush, so that every fragment can be decoded as it arrives; only
// the last one's four flush bytes are removed, as Deflate removes them.
// The frames carry the parts in order, RSV1 set on the first only. Without
// context takeover each part is compressed as Deflate compresses a message
// (a part longer than a window below 32 KiB with Huffman coding only):
// back-references never reach into an earlier part, so any window holds.
func (d *Deflater) DeflatePart(dst, part []byte, final bool) []byte {
	var w *deflateWriter
	if d.takeover {
		if d.w == nil {
			d.w = getDeflateWriter(d.level)
		}
		w = d.w
	} else {
		level := d.level
		if d.window < 1<<MaxWindowBits && len(part) > d.window {
			level = flate.HuffmanOnly
		}
		w = getDeflateWriter(level)
		defer putDeflateWriter(w)
	}
	if final {
		return w.compress(dst, part)
	}
	w.sink.b = dst
	_, _ = w.fw.Write(part)
	_ = w.fw.Flush()
	out := w.sink.b
	w.sink.b = nil
	return out
}

// Reset drops the Deflater's context (the writer kept with context takeover,
// which goes back to the pool), as at the start of a session, so that it can
// be reused or pooled.
func (d *Deflater) Reset() {
	if d.w != nil {
		putDeflateWriter(d.w)
		d.w = nil
	}
}

// deflateWriter is a compress/flate writer with the buffer it writes to.
type deflateWriter struct {
	level int
	fw    *flate.Writer // writes to &sink
	sink  appendWriter
}

// compress appends msg, sync-flushed and without syncTail, to dst.
func (w *deflateWriter) compress(dst, msg []byte) []byte {
	w.sink.b = dst
	// Neither can fail: appendWriter never does and fw is never closed.
	_, _ = w.fw.Write(msg)
	_ = w.fw.Flush()
	out := w.sink.b
	w.sink.b = nil
	if len(out)-len(dst) >= len(syncTail) && bytes.HasSuffix(out, syncTail) {
		out = out[:len(out)-len(syncTail)]
	}
	return out
}

// appendWriter is an io.Writer appending to b.
type appendWriter struct{ b []byte }

// Write implements io.Writer; it never fails.
func (a *appendWriter) Write(p []byte) (int, error) {
	a.b = append(a.b, p...)
	return len(p), nil
}

// deflateWriters pools writers by level (flate.HuffmanOnly to
// flate.BestCompression), across Deflaters.
var deflateWriters [flate.BestCompression - flate.HuffmanOnly + 1]sync.Pool

// getDeflateWriter returns a writer with no context: the next message cannot
// refer to anything written before.
func getDeflateWriter(level int) *deflateWriter {
	if w, _ := deflateWriters[level-flate.HuffmanOnly].Get().(*deflateWriter); w != nil {
		// HuffmanOnly and NoCompression have no context after a flush (no
		// back-references, and the flush leaves nothing buffered); their
		// Reset would only clear hash tables they never use.
		if level != flate.HuffmanOnly && level != flate.NoCompression {
			w.fw.Reset(&w.sink)
		}
		return w
	}
	w := &deflateWriter{level: level}
	w.fw, _ = flate.NewWriter(&w.sink, level) // level is valid: cannot fail
	return w
}

func putDeflateWriter(w *deflateWriter) {
	w.sink.b = nil
	deflateWriters[w.level-flate.HuffmanOnly].Put(w)
}
