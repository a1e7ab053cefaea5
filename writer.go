package lomond

import (
	cryptorand "crypto/rand"
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

	msgMu     sync.Mutex
	deflater  *protocol.Deflater // nil: no compression
	threshold int                // smaller messages go uncompressed
	zbuf      []byte             // a compressed message, under msgMu

	mu        sync.Mutex
	buf       []byte        // frame bytes, under mu
	rng       *rand.ChaCha8 // mask keys, under mu
	closeSent bool          // our close frame went out: nothing more is written
	deadline  time.Time     // the write deadline in force

	stallTimeout time.Duration // 0: writes have no deadline of their own
	closing      atomic.Bool   // a close bounded the writes: keep its deadline
	onStall      func()        // the session's: a write made no progress
	owedPong     atomic.Pointer[[]byte]
}

// maxFrame is the largest data frame written: longer messages are
// fragmented, so that control frames wait at most one frame.
const maxFrame = 64 << 10

// maxKeptWriteBuffer bounds the frame buffer kept between writes.
const maxKeptWriteBuffer = 1 << 20

// errCloseSent fails a write after our close frame went out.
var errCloseSent = errors.New("close frame sent")

func (w *frameWriter) init(conn net.Conn, stallTimeout time.Duration, onStall func()) {
	var seed [32]byte
	_, _ = cryptorand.Read(seed[:])
	w.conn, w.rng, w.stallTimeout, w.onStall = conn, rand.NewChaCha8(seed), stallTimeout, onStall
}

// writeMessage writes one data message, compressed when the session agreed
// to permessage-deflate and the message is long enough.
func (w *frameWriter) writeMessage(op byte, p []byte) error {
	w.msgMu.Lock()
	defer w.msgMu.Unlock()
	rsv1 := false
	if w.deflater != nil && len(p) >= w.threshold {
		w.zbuf = w.deflater.Deflate(w.zbuf[:0], p)
		p, rsv1 = w.zbuf, true
		if cap(w.zbuf) > maxKeptWriteBuffer {
			defer func() { w.zbuf = nil }()
		}
	}
	for {
		n := min(len(p), maxFrame)
		fin := n == len(p)
		if err := w.writeFrame(fin, rsv1, op, p[:n]); err != nil {
			return err
		}
		if fin {
			return nil
		}
		p, op, rsv1 = p[n:], protocol.OpContinuation, false
	}
}

// writeFrame writes one frame, masked, in one write.
func (w *frameWriter) writeFrame(fin, rsv1 bool, op byte, payload []byte) error {
	w.mu.Lock()
	defer w.unlock()
	return w.frameLocked(fin, rsv1, op, payload)
}

func (w *frameWriter) frameLocked(fin, rsv1 bool, op byte, payload []byte) error {
	if w.closeSent {
		return errCloseSent
	}
	if op == protocol.OpClose {
		w.closeSent = true
	}
	key := uint32(w.rng.Uint64())
	b := protocol.AppendHeader(w.buf[:0], fin, rsv1, op, len(payload), key)
	start := len(b)
	b = append(b, payload...)
	protocol.Mask(b[start:], key)
	if cap(b) <= maxKeptWriteBuffer {
		w.buf = b
	}
	return w.write(b)
}

// write writes b, refreshing the write deadline when less than half the
// stall timeout is left (one clock reading per write, one timer change per
// half timeout).
func (w *frameWriter) write(b []byte) error {
	if w.stallTimeout > 0 && !w.closing.Load() {
		if now := time.Now(); w.deadline.Sub(now) < w.stallTimeout/2 {
			w.deadline = now.Add(w.stallTimeout)
			_ = w.conn.SetWriteDeadline(w.deadline)
		}
	}
	_, err := w.conn.Write(b)
	if err != nil && errors.Is(err, os.ErrDeadlineExceeded) && !w.closing.Load() && w.stallTimeout > 0 {
		w.onStall()
		return ErrUnresponsive
	}
	return err
}

// unlock releases mu after sending a pong owed by the dispatcher.
func (w *frameWriter) unlock() {
	if p := w.owedPong.Swap(nil); p != nil {
		_ = w.frameLocked(true, false, protocol.OpPong, *p)
	}
	w.mu.Unlock()
}

// control writes a ping or pong of the application's: it waits at most for
// the frame being written.
func (w *frameWriter) control(op byte, payload []byte) error {
	return w.writeFrame(true, false, op, payload)
}

// pong answers a ping from the dispatcher goroutine, which must not wait for
// a frame write (perhaps stuck on a peer that does not read): if one is in
// progress, its writer sends the pong when done (only the latest is owed,
// RFC 6455 section 5.5.3).
func (w *frameWriter) pong(payload []byte) {
	if w.mu.TryLock() {
		_ = w.frameLocked(true, false, protocol.OpPong, payload)
		w.unlock()
		return
	}
	owed := append([]byte(nil), payload...)
	w.owedPong.Store(&owed)
	if w.mu.TryLock() {
		w.unlock()
	}
}

// tryPing sends the dispatcher's ping unless a frame write is in progress
// (that write has a deadline of its own).
func (w *frameWriter) tryPing(payload []byte) bool {
	if !w.mu.TryLock() {
		return false
	}
	err := w.frameLocked(true, false, protocol.OpPing, payload)
	w.unlock()
	return err == nil
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
