package protocol

import "unicode/utf8"

// UTF8 validates text that arrives in pieces (reads, frames): each piece is
// checked as it arrives, so invalid text fails at its first bad byte, even in
// the middle of a frame (Autobahn 6.4.x, strict). The zero value is ready.
type UTF8 struct {
	pend [utf8.UTFMax]byte // an incomplete sequence at the end of the last piece
	n    int
}

// Write checks the next piece of text. It reports false as soon as the text
// so far cannot be the start of valid UTF-8.
func (v *UTF8) Write(p []byte) bool {
	if v.n > 0 {
		need := seqLen(v.pend[0])
		for v.n < need && len(p) > 0 {
			v.pend[v.n] = p[0]
			v.n++
			p = p[1:]
		}
		if v.n < need {
			return validPrefix(v.pend[:v.n])
		}
		if !utf8.Valid(v.pend[:need]) {
			return false
		}
		v.n = 0
	}
	end := completeRunes(p)
	if !utf8.Valid(p[:end]) {
		return false
	}
	tail := p[end:]
	if !validPrefix(tail) {
		return false
	}
	v.n = copy(v.pend[:], tail)
	return true
}

// Done reports whether the text ended on a character boundary, and resets v
// for the next message.
func (v *UTF8) Done() bool {
	ok := v.n == 0
	v.n = 0
	return ok
}

// seqLen is the length of the UTF-8 sequence that starts with c (1 for a
// byte that cannot start one: utf8.Valid rejects it).
func seqLen(c byte) int {
	switch {
	case c >= 0xF0:
		return 4
	case c >= 0xE0:
		return 3
	case c >= 0xC0:
		return 2
	}
	return 1
}

// completeRunes returns the length of b without a trailing incomplete UTF-8
// sequence (which the next piece may complete).
func completeRunes(b []byte) int {
	for k := 1; k <= 3 && k <= len(b); k++ {
		c := b[len(b)-k]
		if c < 0x80 {
			return len(b)
		}
		if c >= 0xC0 {
			if seqLen(c) > k {
				return len(b) - k
			}
			return len(b)
		}
	}
	return len(b)
}

// validPrefix reports whether b, an incomplete trailing sequence, can still
// become a valid UTF-8 character (RFC 3629 section 4), so that an invalid
// message fails as soon as its first bad byte arrives.
func validPrefix(b []byte) bool {
	if len(b) == 0 {
		return true
	}
	lo, hi := byte(0x80), byte(0xBF)
	switch c := b[0]; {
	case c >= 0xC2 && c <= 0xDF:
	case c == 0xE0:
		lo = 0xA0
	case c == 0xED:
		hi = 0x9F
	case c >= 0xE1 && c <= 0xEF:
	case c == 0xF0:
		lo = 0x90
	case c == 0xF4:
		hi = 0x8F
	case c >= 0xF1 && c <= 0xF3:
	default:
		return false
	}
	for i, c := range b[1:] {
		if i == 0 && (c < lo || c > hi) || i > 0 && (c < 0x80 || c > 0xBF) {
			return false
		}
	}
	return true
}
