package lomond

// completeRunes returns the length of b without a trailing incomplete UTF-8
// sequence (which the next read may complete).
func completeRunes(b []byte) int {
	for k := 1; k <= 3 && k <= len(b); k++ {
		c := b[len(b)-k]
		if c < 0x80 {
			return len(b)
		}
		if c >= 0xC0 {
			need := 2
			if c >= 0xF0 {
				need = 4
			} else if c >= 0xE0 {
				need = 3
			}
			if need > k {
				return len(b) - k
			}
			return len(b)
		}
	}
	return len(b)
}

// validUTF8Prefix reports whether b, an incomplete trailing sequence, can
// still become a valid UTF-8 character (RFC 3629 section 4), so that an
// invalid message fails as soon as its first bad byte arrives.
func validUTF8Prefix(b []byte) bool {
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
