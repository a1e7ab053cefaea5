package protocol

// TEMPORARY stand-in until the permessage-deflate codec lands.

import (
	"bytes"
	"compress/flate"
	"errors"
	"io"
	"strings"
)

type DeflateOffer struct {
	ClientNoContextTakeover bool
	ServerNoContextTakeover bool
	ServerMaxWindowBits     int
}

func (o DeflateOffer) String() string {
	s := "permessage-deflate; client_max_window_bits"
	if o.ClientNoContextTakeover {
		s += "; client_no_context_takeover"
	}
	if o.ServerNoContextTakeover {
		s += "; server_no_context_takeover"
	}
	return s
}

type DeflateParams struct {
	ServerNoContextTakeover bool
	ClientNoContextTakeover bool
	ServerMaxWindowBits     int
	ClientMaxWindowBits     int
}

var (
	ErrInflateLimit   = errors.New("inflate limit")
	ErrInflateCorrupt = errors.New("corrupt")
)

func NegotiateDeflate(offer DeflateOffer, header []string) (DeflateParams, bool, error) {
	p := DeflateParams{ServerMaxWindowBits: 15, ClientMaxWindowBits: 15}
	if len(header) == 0 {
		return p, false, nil
	}
	h := strings.Join(header, ",")
	if !strings.HasPrefix(strings.TrimSpace(h), "permessage-deflate") {
		return p, false, errors.New("bad extension")
	}
	p.ServerNoContextTakeover = strings.Contains(h, "server_no_context_takeover")
	p.ClientNoContextTakeover = strings.Contains(h, "client_no_context_takeover") || offer.ClientNoContextTakeover
	return p, true, nil
}

type Inflater struct {
	p    DeflateParams
	dict []byte
}

func NewInflater(p DeflateParams) *Inflater { return &Inflater{p: p} }

func (f *Inflater) Inflate(dst, compressed []byte, limit int) ([]byte, error) {
	src := io.MultiReader(bytes.NewReader(compressed), bytes.NewReader([]byte{0, 0, 0xff, 0xff, 1, 0, 0, 0xff, 0xff}))
	r := flate.NewReaderDict(src, f.dict)
	start := len(dst)
	buf := bytes.NewBuffer(dst)
	var lr io.Reader = r
	if limit >= 0 {
		lr = io.LimitReader(r, int64(limit)+1)
	}
	_, err := buf.ReadFrom(lr)
	if err != nil && err != io.ErrUnexpectedEOF {
		return nil, ErrInflateCorrupt
	}
	out := buf.Bytes()
	if limit >= 0 && len(out)-start > limit {
		return nil, ErrInflateLimit
	}
	if !f.p.ServerNoContextTakeover {
		f.dict = append(f.dict, out[start:]...)
		if len(f.dict) > 32768 {
			f.dict = append([]byte(nil), f.dict[len(f.dict)-32768:]...)
		}
	}
	return out, nil
}

func (f *Inflater) Reset() { f.dict = nil }

type Deflater struct {
	p     DeflateParams
	level int
	w     *flate.Writer
	buf   bytes.Buffer
}

func NewDeflater(p DeflateParams, level int) *Deflater { return &Deflater{p: p, level: level} }

func (d *Deflater) Deflate(dst, msg []byte) []byte {
	if d.w == nil || d.p.ClientNoContextTakeover {
		d.buf.Reset()
		d.w, _ = flate.NewWriter(&d.buf, d.level)
	}
	d.buf.Reset()
	d.w.Write(msg)
	d.w.Flush()
	b := d.buf.Bytes()
	b = bytes.TrimSuffix(b, []byte{0, 0, 0xff, 0xff})
	return append(dst, b...)
}
