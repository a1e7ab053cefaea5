package lomond

import (
	"errors"
	"io"
	"net"
	"os"
	"time"
)

// connReader is what the session's one buffered reader reads from: the
// transport connection, with a clock reading per read (a message's
// ReceivedTime: a read carries many small messages, and they all arrived
// then) and, during the opening handshake, a bound on the response's size.
type connReader struct {
	conn     net.Conn
	lastRead time.Time // when bytes last arrived
	total    uint64    // bytes read
	full     bool      // the last read filled all the room it was given: a busy stream
	limit    int64     // bytes left before the handshake's bound; <0: none
}

// errResponseTooLarge fails a handshake whose response header has no end.
var errResponseTooLarge = errors.New("the server's response header is larger than 1 MiB")

// maxResponseHeader bounds the upgrade response's header.
const maxResponseHeader = 1 << 20

func (r *connReader) Read(p []byte) (int, error) {
	if r.limit >= 0 {
		if r.limit == 0 {
			return 0, errResponseTooLarge
		}
		if int64(len(p)) > r.limit {
			p = p[:r.limit]
		}
	}
	n, err := r.conn.Read(p)
	if n > 0 {
		r.lastRead = time.Now()
		r.total += uint64(n)
		r.full = n == len(p)
		if r.limit >= 0 {
			r.limit -= int64(n)
		}
	}
	return n, err
}

var _ io.Reader = (*connReader)(nil)

// isTimeout reports whether err is a passed deadline: the session's timers
// run then, and the read goes on.
func isTimeout(err error) bool {
	return errors.Is(err, os.ErrDeadlineExceeded)
}
