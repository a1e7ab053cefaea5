package lomondtest

import (
	"encoding/binary"
	"sync"
)

// closeSniffer watches the bytes a client sends, as the server reads them,
// for the client's close frame. It skips the HTTP request, then follows the
// frame headers and keeps only a close frame's payload.
//
// The engine reads the close frame too, but it answers it before a caller
// learns of it, and when a close the server started races with the kit's
// reader, the engine may read the reply itself and keep it. Watching the
// bytes records the client's close before the answer leaves, whoever reads
// it.
type closeSniffer struct {
	// Reads are sequential; mu guards the result for readers of the record.
	inFrames bool
	crlf     int // how much of "\r\n\r\n" ends the bytes seen so far

	hdr     [14]byte
	hn      int   // header bytes collected
	remain  int64 // payload bytes left in the current frame
	isClose bool
	mask    [4]byte
	masked  bool
	pos     int64
	payload []byte

	mu     sync.Mutex
	code   int
	reason string
	seen   bool
}

// feed follows p, the next bytes read from the client.
func (s *closeSniffer) feed(p []byte) {
	for len(p) > 0 {
		if !s.inFrames {
			p = s.skipRequest(p)
			continue
		}
		if s.remain > 0 {
			n := int64(len(p))
			if n > s.remain {
				n = s.remain
			}
			if s.isClose {
				for _, b := range p[:n] {
					if s.masked {
						b ^= s.mask[s.pos%4]
					}
					s.payload = append(s.payload, b)
					s.pos++
				}
			}
			s.remain -= n
			p = p[n:]
			if s.remain == 0 {
				s.frameDone()
			}
			continue
		}
		s.hdr[s.hn] = p[0]
		s.hn++
		p = p[1:]
		if need := s.headerLen(); need > 0 && s.hn == need {
			s.startPayload()
		}
	}
}

// skipRequest consumes the HTTP request up to its blank line.
func (s *closeSniffer) skipRequest(p []byte) []byte {
	const end = "\r\n\r\n"
	for i, b := range p {
		switch {
		case b == end[s.crlf]:
			s.crlf++
		case b == '\r':
			s.crlf = 1
		default:
			s.crlf = 0
		}
		if s.crlf == len(end) {
			s.inFrames = true
			return p[i+1:]
		}
	}
	return nil
}

// headerLen returns the length of the header being collected, or 0 while
// its second byte has not arrived.
func (s *closeSniffer) headerLen() int {
	if s.hn < 2 {
		return 0
	}
	n := 2
	switch s.hdr[1] & 0x7f {
	case 126:
		n += 2
	case 127:
		n += 8
	}
	if s.hdr[1]&0x80 != 0 {
		n += 4
	}
	return n
}

func (s *closeSniffer) startPayload() {
	i := 2
	switch l := s.hdr[1] & 0x7f; l {
	case 126:
		s.remain = int64(binary.BigEndian.Uint16(s.hdr[2:4]))
		i = 4
	case 127:
		s.remain = int64(binary.BigEndian.Uint64(s.hdr[2:10]) & (1<<63 - 1))
		i = 10
	default:
		s.remain = int64(l)
	}
	s.masked = s.hdr[1]&0x80 != 0
	if s.masked {
		copy(s.mask[:], s.hdr[i:i+4])
	}
	s.isClose = s.hdr[0]&0x0f == 0x8
	s.pos, s.payload, s.hn = 0, s.payload[:0], 0
	if s.remain == 0 {
		s.frameDone()
	}
}

func (s *closeSniffer) frameDone() {
	if !s.isClose {
		return
	}
	s.isClose = false
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.seen {
		return
	}
	s.seen, s.code = true, 1005 // no status code in the frame
	if len(s.payload) >= 2 {
		s.code = int(binary.BigEndian.Uint16(s.payload))
		s.reason = string(s.payload[2:])
	}
}

// result returns the client's close frame, if one has been read.
func (s *closeSniffer) result() (code int, reason string, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.code, s.reason, s.seen
}
