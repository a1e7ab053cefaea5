package lomond

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lomond-go/lomond/internal/protocol"
)

// writer owns the client's half of the connection once the opening
// handshake is done. docs/architecture.md has the whole picture; in short:
//
//   - One lock, the write lock (a flag taken by compare-and-swap, with a
//     wake channel for waiters, so that a context can bound the wait). Its holder alone writes to the connection,
//     sets the write deadline, and uses the frame buffer and the
//     compressor. A context bounds only the wait for the lock: a message
//     whose first byte went out is written whole, or the connection fails.
//   - Goroutines that must not wait for the lock (the session goroutine's
//     pongs, pings and close frames, a Close from any goroutine) post their
//     control frame in the mailbox (under mu, never held during I/O). The
//     lock's holder writes what is posted at every frame boundary and
//     before it lets the lock go, so a posted frame waits at most for one
//     frame; if the lock is free, the poster takes it and writes at once.
//   - A write that makes no progress for the stall timeout, or fails, breaks
//     the stream: nothing more is written, every later send fails, and the
//     session goroutine is told (it decides how the session ends).
type writer struct {
	conn    net.Conn
	held    atomic.Bool   // the write lock: set while taken
	waiters atomic.Int32  // goroutines waiting for the lock
	wake    chan struct{} // one token: the lock was let go while someone waited
	report  func(op byte, payload []byte, flags outFlags, err error)
	broke   func(err error) // tells the session goroutine that the stream broke

	// Under the write lock.
	buf       []byte
	deflater  *protocol.Deflater         // nil: no compression
	threshold int                        // smaller messages go uncompressed
	zbuf      []byte                     // a compressed message
	stall     time.Duration              // a write with no progress for this long breaks the stream
	refresh   atomic.Pointer[time.Timer] // marks the deadline stale a quarter of the stall timeout after it was set
	stale     atomic.Bool                // the write deadline is due for a refresh
	closeSent bool                       // our close frame was written: nothing more is
	broken    error                      // the stream broke: nothing more is written
	wrote     bool                       // the last frame's write put bytes on the wire

	// The mailbox, under mu.
	mu        sync.Mutex
	open      bool          // the handshake is done: frames may be written
	owedPing  []byte        // the keep-alive ping to write (nil: none)
	owedPong  []byte        // the pong to write (only the latest is owed)
	pongFlags outFlags      // the owed pong's, for send observers
	hasPong   bool          // owedPong is set (it may be empty)
	owedClose []byte        // our close frame's payload, until written
	closeFlag outFlags      // the owed close's, for send observers
	closeReq  bool          // a close frame was asked for: it is the last frame
	closeDone chan struct{} // closed when our close frame was written, or never will be
	closing   atomic.Bool   // mirrors closeReq, for State
	stream    *sync.Mutex   // an open MessageWriter's: taken to write posted frames while it idles
}

// maxFrame is the largest data frame written: longer messages are
// fragmented, so that posted control frames wait at most one frame.
const maxFrame = 64 << 10

// maxKeptBuffer bounds a reused buffer a session keeps between messages
// (frames written, borrowed and compressed messages read).
const maxKeptBuffer = 1 << 20

// errCloseSent fails a write after our close frame went out.
var errCloseSent = errors.New("close frame sent")

// errStalled is a write that made no progress for the stall timeout.
var errStalled = errors.New("a write made no progress for the stall timeout")

func (w *writer) init(conn net.Conn, stall time.Duration) {
	w.conn, w.stall = conn, stall
	w.wake = make(chan struct{}, 1)
	w.closeDone = make(chan struct{})
}

// acquire takes the write lock; ctx bounds the wait (nil: no bound).
func (w *writer) acquire(ctx context.Context) error {
	if w.held.CompareAndSwap(false, true) {
		return nil
	}
	return w.acquireSlow(ctx)
}

// acquireSlow waits for the lock. A waiter counts itself before it tries
// the lock again, and unlock wakes one waiter after letting the lock go:
// either the waiter's try comes after the unlock (and succeeds, or the new
// holder's unlock wakes it), or the unlock sees the waiter. A wake that
// finds the lock taken again is harmless: the waiter waits again.
func (w *writer) acquireSlow(ctx context.Context) error {
	var done <-chan struct{}
	if ctx != nil {
		done = ctx.Done()
	}
	w.waiters.Add(1)
	defer w.waiters.Add(-1)
	for {
		if w.held.CompareAndSwap(false, true) {
			return nil
		}
		select {
		case <-w.wake:
		case <-done:
			// Pass on a wake this waiter may have been meant for.
			if !w.held.Load() && w.waiters.Load() > 1 {
				w.signal()
			}
			return ctx.Err()
		}
	}
}

// tryAcquire takes the lock if it is free.
func (w *writer) tryAcquire() bool { return w.held.CompareAndSwap(false, true) }

// unlock lets the lock go and wakes a waiter, if any.
func (w *writer) unlock() {
	w.held.Store(false)
	if w.waiters.Load() > 0 {
		w.signal()
	}
}

func (w *writer) signal() {
	select {
	case w.wake <- struct{}{}:
	default: // a wake is pending already
	}
}

// release writes the posted control frames and lets the lock go. The
// lock is let go under mu, so that a frame posted meanwhile is either seen
// here or finds the lock free.
func (w *writer) release() {
	for {
		w.mu.Lock()
		op, payload, flags, ok := w.takePostedLocked(true)
		if !ok {
			w.unlock()
			w.mu.Unlock()
			return
		}
		w.mu.Unlock()
		w.writePosted(op, payload, flags)
	}
}

// takePostedLocked takes the next posted frame: the ping, the pong, then,
// if withClose, the close frame (last: nothing follows it). Under mu.
func (w *writer) takePostedLocked(withClose bool) (op byte, payload []byte, flags outFlags, ok bool) {
	if !w.open {
		return 0, nil, 0, false
	}
	switch {
	case w.owedPing != nil:
		payload, w.owedPing = w.owedPing, nil
		return protocol.OpPing, payload, outAuto, true
	case w.hasPong:
		payload, flags = w.owedPong, w.pongFlags
		w.owedPong, w.hasPong = nil, false
		return protocol.OpPong, payload, flags, true
	case withClose && w.owedClose != nil:
		payload, w.owedClose = w.owedClose, nil
		return protocol.OpClose, payload, w.closeFlag, true
	}
	return 0, nil, 0, false
}

// writePosted writes a posted frame under the lock and reports it.
func (w *writer) writePosted(op byte, payload []byte, flags outFlags) {
	var err error
	switch {
	case w.broken != nil:
		err = w.broken
	case w.closeSent:
		err = errCloseSent
	default:
		err = w.frame(true, false, op, payload)
		if op == protocol.OpClose {
			w.closeSent = true
		}
	}
	if op == protocol.OpClose {
		close(w.closeDone)
	}
	if w.report != nil {
		w.report(op, payload, flags, err)
	}
}

// post puts a control frame in the mailbox and writes it at once if the
// lock is free; otherwise the lock's holder writes it at its next frame
// boundary. It never waits for the lock.
func (w *writer) post(set func()) {
	w.mu.Lock()
	set()
	took, tookStream := false, false
	if w.open {
		took = w.tryAcquire()
		if !took {
			// A streamed message holds the lock: if it idles between
			// writes, write for it (stream_writer.go).
			tookStream = w.stream != nil && w.stream.TryLock()
		}
	}
	m := w.stream
	w.mu.Unlock()
	if took {
		w.release()
	} else if tookStream {
		w.leaveStream(m)
	}
}

// postPong owes a pong with payload (a copy is kept): only the latest is
// owed (RFC 6455 section 5.5.3).
func (w *writer) postPong(payload []byte, flags outFlags) {
	p := append(make([]byte, 0, len(payload)), payload...)
	w.post(func() { w.owedPong, w.pongFlags, w.hasPong = p, flags, true })
}

// postPing owes the keep-alive ping.
func (w *writer) postPing(payload []byte) {
	p := append(make([]byte, 0, len(payload)), payload...)
	w.post(func() { w.owedPing = p })
}

// postClose owes our close frame; it is the last frame. It returns
// ErrClosing if a close frame was asked for already. Before the handshake
// is done the frame waits for it.
func (w *writer) postClose(payload []byte, flags outFlags) error {
	var err error
	w.post(func() {
		if w.closeReq {
			err = ErrClosing
			return
		}
		w.closeReq, w.owedClose, w.closeFlag = true, payload, flags
		w.closing.Store(true)
	})
	return err
}

// closeAsked reports whether a close frame was asked for.
func (w *writer) closeAsked() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.closeReq
}

// start opens the writer once the handshake is done and writes what was
// posted before (a Close during the handshake). It reports whether a close
// frame was asked for.
func (w *writer) start() (closing bool) {
	w.post(func() { w.open = true })
	return w.closeAsked()
}

// abandon gives up what is still posted when the session ends: a close
// frame that never went out no longer holds anyone.
func (w *writer) abandon() {
	if t := w.refresh.Load(); t != nil {
		t.Stop()
	}
	w.mu.Lock()
	w.open = false
	if w.owedClose != nil {
		w.owedClose = nil
		close(w.closeDone)
	}
	w.mu.Unlock()
}

// message writes one data message, compressed when the session agreed to
// permessage-deflate and the message is long enough, under the lock.
// started reports whether any of its bytes went out: a message that did not
// start left the stream and the compressor as they were.
func (w *writer) message(op byte, p []byte) (started bool, err error) {
	if w.broken != nil {
		return false, w.broken
	}
	if w.closeSent {
		return false, errCloseSent
	}
	rsv1 := false
	if w.deflater != nil && len(p) >= w.threshold {
		// The compressor's history changes only for a message that is
		// written: from here on it is written whole, or the stream breaks.
		w.zbuf = w.deflater.Deflate(w.zbuf[:0], p)
		p, rsv1 = w.zbuf, true
		if cap(w.zbuf) > maxKeptBuffer {
			defer func() { w.zbuf = nil }()
		}
	}
	for {
		n := min(len(p), maxFrame)
		fin := n == len(p)
		if err := w.frame(fin, rsv1, op, p[:n]); err != nil {
			return started || w.wrote, err
		}
		started = true
		if fin {
			return true, nil
		}
		p, op, rsv1 = p[n:], protocol.OpContinuation, false
		w.writePostedControl()
	}
}

// writePostedControl writes the posted ping and pong between two fragments
// of a message (a close frame waits for the message's end).
func (w *writer) writePostedControl() {
	for {
		w.mu.Lock()
		op, payload, flags, ok := w.takePostedLocked(false)
		w.mu.Unlock()
		if !ok {
			return
		}
		w.writePosted(op, payload, flags)
	}
}

// control writes an application's ping or pong under the lock.
func (w *writer) control(op byte, payload []byte) error {
	if w.broken != nil {
		return w.broken
	}
	if w.closeSent {
		return errCloseSent
	}
	return w.frame(true, false, op, payload)
}

// frame writes one frame, masked, in one write. A write that fails, or
// makes no progress for the stall timeout, breaks the stream. Under the
// lock.
func (w *writer) frame(fin, rsv1 bool, op byte, payload []byte) error {
	if w.broken != nil {
		return w.broken
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
	if w.stall > 0 && (w.stale.Load() || w.refresh.Load() == nil) {
		w.refreshDeadline()
	}
	n, err := w.conn.Write(b)
	w.wrote = n > 0
	if err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			err = errStalled
		}
		w.broken = &brokenError{err: err}
		if w.broke != nil {
			w.broke(err)
		}
		return w.broken
	}
	return nil
}

// refreshDeadline sets the write deadline a stall timeout and a quarter
// ahead. A timer marks it stale a quarter of the timeout later, so a frame
// starts with at least the whole timeout ahead of it (a stalled write never
// fails early; should the timer fire late, a frame gets that much less),
// and at most a quarter more, without a clock reading per frame. Under the
// lock.
func (w *writer) refreshDeadline() {
	_ = w.conn.SetWriteDeadline(time.Now().Add(w.stall + w.stall/4))
	w.stale.Store(false)
	if t := w.refresh.Load(); t != nil {
		t.Reset(w.stall / 4)
	} else {
		w.refresh.Store(time.AfterFunc(w.stall/4, func() { w.stale.Store(true) }))
	}
}

// brokenError fails every write after the stream broke.
type brokenError struct{ err error }

func (e *brokenError) Error() string {
	return fmt.Sprintf("the connection's write stream broke: %v", e.err)
}
func (e *brokenError) Unwrap() error { return e.err }

// stallTimeout is how long a write may make no progress before the stream
// counts as broken and the session ends as Unresponsive: the ping timeout,
// or the close timeout when the ping timeout is off, so that no write, the
// session goroutine's own included, waits for ever.
func (c *config) stallTimeout() time.Duration {
	if c.pingTimeout > 0 {
		return c.pingTimeout
	}
	return c.closeTimeout
}
