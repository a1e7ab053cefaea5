package lomond

import (
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lomond-go/lomond/internal/protocol"
)

// frameWriter writes the client's frames. A data message holds msgMu from its
// first frame to its last, so the fragments of two messages never
// interleave; every frame holds mu, so a control frame (ping, pong, close)
// goes out between two fragments and never waits longer than one frame.
//
// A write that makes no progress for the stall timeout (the ping timeout)
// ends the session as Unresponsive: a server that stops reading cannot hold
// a sender, or the dispatcher's pongs, for ever.
type frameWriter struct {
	conn net.Conn

	msgMu     chan struct{}      // held (one token) from a message's first frame to its last
	deflater  *protocol.Deflater // nil: no compression
	threshold int                // smaller messages go uncompressed
	zbuf      []byte             // a compressed message, under msgMu

	mu        sync.Mutex
	buf       []byte    // frame bytes, under mu
	closeSent bool      // our close frame went out: nothing more is written
	deadline  time.Time // the write deadline in force

	stallTimeout time.Duration                   // 0: writes have no deadline of their own
	closing      atomic.Bool                     // a close bounded the writes: keep its deadline
	onStall      func()                          // the session's: a write made no progress
	onOwedPong   func(payload []byte, err error) // the session's: reports an automatic pong
	owedPong     atomic.Pointer[[]byte]
	cut          atomic.Bool // a send's context ended: its deadline is not a stall
	sent         int         // bytes of the current message written, under msgMu
	broken       bool        // a frame was cut short: nothing more may be written, under mu
}

// maxFrame is the largest data frame written: longer messages are
// fragmented, so that control frames wait at most one frame.
const maxFrame = 64 << 10

// maxKeptBuffer bounds a reused buffer a session keeps between messages
// (frames written, borrowed and compressed messages read).
const maxKeptBuffer = 1 << 20

// errCloseSent fails a write after our close frame went out.
var errCloseSent = errors.New("close frame sent")

func (w *frameWriter) init(conn net.Conn, stallTimeout time.Duration, onStall func()) {
	w.conn, w.stallTimeout, w.onStall = conn, stallTimeout, onStall
	w.msgMu = make(chan struct{}, 1)
}

// writeMessage writes one data message, compressed when the session agreed
// to permessage-deflate and the message is long enough.
func (w *frameWriter) writeMessage(op byte, p []byte) error {
	w.msgMu <- struct{}{}
	defer func() { <-w.msgMu }()
	return w.messageLocked(op, p)
}

// writeMessageContext is writeMessage bounded by ctx: it gives up waiting
// for its turn when ctx ends, and cuts its own write short (errSendCut once
// a byte of the message went out: the stream is then out of step).
func (w *frameWriter) writeMessageContext(ctx context.Context, op byte, p []byte) error {
	if ctx.Done() == nil {
		return w.writeMessage(op, p)
	}
	select {
	case w.msgMu <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-w.msgMu }()
	if err := ctx.Err(); err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, func() {
		w.cut.Store(true)
		_ = w.conn.SetWriteDeadline(time.Unix(1, 0))
	})
	w.sent = 0
	err := w.messageLocked(op, p)
	if !stop() {
		// ctx ended during the write: its deadline may still be in force.
		w.mu.Lock()
		w.cut.Store(false)
		w.deadline = time.Time{}
		_ = w.conn.SetWriteDeadline(noDeadline)
		if err != nil && w.sent > 0 {
			w.broken = true
		}
		w.mu.Unlock()
		if err != nil && w.sent > 0 {
			return errSendCut
		}
		if err != nil {
			return ctx.Err()
		}
	}
	return err
}

func (w *frameWriter) messageLocked(op byte, p []byte) error {
	rsv1 := false
	if w.deflater != nil && len(p) >= w.threshold {
		w.zbuf = w.deflater.Deflate(w.zbuf[:0], p)
		p, rsv1 = w.zbuf, true
		if cap(w.zbuf) > maxKeptBuffer {
			defer func() { w.zbuf = nil }()
		}
	}
	for {
		n := min(len(p), maxFrame)
		fin := n == len(p)
		written, err := w.writeFrame(fin, rsv1, op, p[:n])
		w.sent += written
		if err != nil {
			return err
		}
		if fin {
			return nil
		}
		p, op, rsv1 = p[n:], protocol.OpContinuation, false
	}
}

// writeFrame writes one frame, masked, in one write, and returns how many
// of its bytes went out.
func (w *frameWriter) writeFrame(fin, rsv1 bool, op byte, payload []byte) (int, error) {
	w.mu.Lock()
	defer w.unlock()
	return w.frameBytes(fin, rsv1, op, payload)
}

// frameLocked writes one frame under mu.
func (w *frameWriter) frameLocked(fin, rsv1 bool, op byte, payload []byte) error {
	_, err := w.frameBytes(fin, rsv1, op, payload)
	return err
}

func (w *frameWriter) frameBytes(fin, rsv1 bool, op byte, payload []byte) (int, error) {
	if w.broken {
		return 0, errSendCut
	}
	if w.closeSent {
		return 0, errCloseSent
	}
	if op == protocol.OpClose {
		w.closeSent = true
	}
	// Mask keys must be unpredictable (RFC 6455 section 10.3): math/rand/v2's
	// top-level generator is the runtime's ChaCha8, seeded by the system,
	// per thread: no lock, and no generator per connection.
	key := rand.Uint32()
	b := protocol.AppendHeader(w.buf[:0], fin, rsv1, op, len(payload), key)
	start := len(b)
	b = append(b, payload...)
	protocol.Mask(b[start:], key)
	if cap(b) <= maxKeptBuffer {
		w.buf = b
	}
	return w.write(b)
}

// write writes b, refreshing the write deadline when less than half the
// stall timeout is left (one clock reading per write, one timer change per
// half timeout).
func (w *frameWriter) write(b []byte) (int, error) {
	if w.stallTimeout > 0 && !w.closing.Load() {
		if now := time.Now(); w.deadline.Sub(now) < w.stallTimeout/2 {
			w.deadline = now.Add(w.stallTimeout)
			_ = w.conn.SetWriteDeadline(w.deadline)
		}
	}
	n, err := w.conn.Write(b)
	if err != nil && errors.Is(err, os.ErrDeadlineExceeded) && !w.closing.Load() && !w.cut.Load() && w.stallTimeout > 0 {
		w.onStall()
		return n, ErrUnresponsive
	}
	return n, err
}

// unlock releases mu after sending a pong owed by the dispatcher.
func (w *frameWriter) unlock() {
	if p := w.owedPong.Swap(nil); p != nil {
		err := w.frameLocked(true, false, protocol.OpPong, *p)
		if w.onOwedPong != nil {
			w.onOwedPong(*p, err)
		}
	}
	w.mu.Unlock()
}

// control writes a ping or pong of the application's: it waits at most for
// the frame being written.
func (w *frameWriter) control(op byte, payload []byte) error {
	_, err := w.writeFrame(true, false, op, payload)
	return err
}

// pong answers a ping from the dispatcher goroutine, which must not wait for
// a frame write (perhaps stuck on a peer that does not read): if one is in
// progress, its writer sends the pong when done (only the latest is owed,
// RFC 6455 section 5.5.3).
func (w *frameWriter) pong(payload []byte) {
	if w.mu.TryLock() {
		err := w.frameLocked(true, false, protocol.OpPong, payload)
		w.unlock()
		if w.onOwedPong != nil {
			w.onOwedPong(payload, err)
		}
		return
	}
	owed := append([]byte(nil), payload...)
	w.owedPong.Store(&owed)
	if w.mu.TryLock() {
		w.unlock()
	}
}

// tryPing sends the dispatcher's ping unless a frame write is in progress
// (that write has a deadline of its own). sent is false when it did not try.
func (w *frameWriter) tryPing(payload []byte) (sent bool, err error) {
	if !w.mu.TryLock() {
		return false, nil
	}
	err = w.frameLocked(true, false, protocol.OpPing, payload)
	w.unlock()
	return err == nil, err
}

// lockForClose takes mu to write a close frame. A write in progress may be
// stuck on a peer that does not read: the deadline bounds it, and the close
// frame, by timeout, so closing never hangs.
func (w *frameWriter) lockForClose(timeout time.Duration) {
	w.closing.Store(true)
	_ = w.conn.SetWriteDeadline(time.Now().Add(timeout))
	w.mu.Lock()
}

// sentClose reports whether our close frame went out (or was attempted).
func (w *frameWriter) sentClose() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.closeSent
}

// tryLockMessage takes the message lock if it is free.
func (w *frameWriter) tryLockMessage() bool {
	select {
	case w.msgMu <- struct{}{}:
		return true
	default:
		return false
	}
}

// unlockMessage releases the message lock.
func (w *frameWriter) unlockMessage() { <-w.msgMu }
