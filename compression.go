package lomond

import (
	"compress/flate"

	"github.com/lomond-go/lomond/internal/protocol"
)

// Compression selects permessage-deflate (RFC 7692).
type Compression int

const (
	// CompressionOff does not offer permessage-deflate (the default).
	CompressionOff Compression = iota
	// CompressionNoContextTakeover offers permessage-deflate with no
	// context kept between messages, either way (client_no_context_takeover,
	// server_no_context_takeover): compressors come from a pool, so an idle
	// connection holds no compression memory. Messages under 512 bytes go
	// uncompressed.
	CompressionNoContextTakeover
	// CompressionContextTakeover offers permessage-deflate keeping the
	// sliding window across messages: better ratios for streams of similar
	// messages, at the cost of a window per connection. Messages under 128
	// bytes go uncompressed.
	CompressionContextTakeover
)

// CompressionOptions tunes permessage-deflate; WithCompressionOptions turns
// it on with them. The zero value offers permessage-deflate with context
// takeover both ways and the server's choice of window.
type CompressionOptions struct {
	// ClientNoContextTakeover compresses each message on its own, and says
	// so in the offer (client_no_context_takeover): no compressor is kept
	// between messages.
	ClientNoContextTakeover bool
	// ServerNoContextTakeover asks the server to compress each message on
	// its own (server_no_context_takeover): the client then keeps no window
	// between messages.
	ServerNoContextTakeover bool
	// ServerMaxWindowBits asks the server for a window of 2^N bytes, N from
	// 8 to 15 (server_max_window_bits); 0 does not ask. A smaller window
	// is less memory for the client when the server keeps its context.
	ServerMaxWindowBits int
	// Threshold is the size under which a message is sent uncompressed
	// (compressing a few bytes costs more than it saves). 0 means 128; a
	// negative value compresses every message.
	Threshold int
	// Level is the compress/flate level, 1 to 9. 0 chooses by mode: 2
	// with context takeover (a kept compressor: smaller output for about
	// the same time), 1 without (a pooled compressor reset per message).
	Level int
}

// WithCompression offers permessage-deflate (off by default).
func WithCompression(mode Compression) Option {
	return func(c *config) error {
		switch mode {
		case CompressionOff:
			c.compression = nil
		case CompressionNoContextTakeover:
			c.compression = &CompressionOptions{ClientNoContextTakeover: true, ServerNoContextTakeover: true, Threshold: 512}
		case CompressionContextTakeover:
			c.compression = &CompressionOptions{}
		default:
			return optErr("unknown compression mode %d", mode)
		}
		return nil
	}
}

// WithCompressionOptions offers permessage-deflate tuned by o. The client
// always offers client_max_window_bits: when the server limits the client's
// window below 32 KiB, which compress/flate cannot shrink, messages are
// compressed with Huffman coding only (no back-references, so any window
// holds).
func WithCompressionOptions(o CompressionOptions) Option {
	return func(c *config) error {
		if o.ServerMaxWindowBits != 0 && (o.ServerMaxWindowBits < 8 || o.ServerMaxWindowBits > 15) {
			return optErr("ServerMaxWindowBits must be 8 to 15 (or 0), got %d", o.ServerMaxWindowBits)
		}
		if o.Level < 0 || o.Level > flate.BestCompression {
			return optErr("compression level must be 1 to 9 (or 0 for the default), got %d", o.Level)
		}
		c.compression = &o
		return nil
	}
}

// deflateOffer is the permessage-deflate offer of the handshake, or nil.
func (c *config) deflateOffer() *protocol.DeflateOffer {
	o := c.compression
	if o == nil {
		return nil
	}
	return &protocol.DeflateOffer{
		ClientNoContextTakeover: o.ClientNoContextTakeover,
		ServerNoContextTakeover: o.ServerNoContextTakeover,
		ServerMaxWindowBits:     o.ServerMaxWindowBits,
	}
}

// threshold is the size from which messages are compressed.
func (o *CompressionOptions) threshold() int {
	switch {
	case o.Threshold == 0:
		return 128
	case o.Threshold < 0:
		return 0
	}
	return o.Threshold
}

// level is the flate level, or the codec's choice by mode.
func (o *CompressionOptions) level() int {
	if o.Level == 0 {
		return protocol.DefaultDeflateLevel
	}
	return o.Level
}
