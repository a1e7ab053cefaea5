package lomond

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/lomond-go/lomond/events"
	"github.com/lomond-go/lomond/internal/protocol"
)

// Sending a message as a stream. A MessageWriter holds the write lock from
// its opening to its Close, so that no other message's frames come between
// its fragments. While it idles between writes, the frames the library
// posts (pongs, keep-alive pings) must still go out: the writer's mailbox
// then takes the MessageWriter's mutex (writer.stream) and writes them
// itself. Whoever holds that mutex during the message acts as the write
// lock's holder. A close frame waits for the message's end.

// ErrMessageAbandoned is returned (wrapped) when a message sent as a stream
// cannot be finished after some of it was sent: its reader failed, its
// context ended before Close, or its text was not valid UTF-8. A message
// cannot be taken back, so the client closes the connection with 1011
// (a close frame may come between fragments): the server never takes the
// part for a whole message.
var ErrMessageAbandoned = errors.New("lomond: message abandoned half-way; the connection is closing (1011)")

// errWriterClosed is a write to a MessageWriter after its Close.
var errWriterClosed = errors.New("lomond: write to a closed MessageWriter")

// StreamFragment is the payload size of the frames a streamed message is
// sent in (before compression): the posted control frames, and the other
// senders' messages, wait for at most one fragment.
const StreamFragment = maxFrame

// MessageWriter writes one message in fragments of StreamFragment bytes:
// what is written is sent as the fragments fill, and Close sends the last
// one. It is compressed, fragment by fragment, when permessage-deflate was
// agreed. Made by TextWriter and BinaryWriter; one goroutine uses it.
//
// From its making to Close, the message holds the session's write lock:
// other messages wait (SendTextContext bounds the wait by its context), and
// the client's pongs and pings go out between fragments and while the
// writer idles. A close frame (Close, the reply to the server's close) goes
// out after the message; a writer that never closes is bounded by its
// context, else by the close timeout once the session closes.
type MessageWriter struct {
	s   *session
	ws  *WebSocket
	op  byte
	ctx context.Context

	// mu is held by whoever writes during the message: Write, Close, the
	// context's end, or a poster writing control frames while it idles.
	mu         sync.Mutex
	buf        []byte // the next fragment: one goroutine's, outside mu too
	sent       bool   // a fragment went out: the next is a continuation
	compressed bool
	size       int64 // bytes of the message so far
	done       bool  // closed or abandoned: the write lock was let go
	err        error // what later calls return
	utf8       protocol.UTF8
	stop       func() bool // stops the context's watcher
}

// TextWriter opens a text message sent as it is written; see
// MessageWriter. ctx bounds the wait for the write lock and the whole
// message: if it ends before Close, the message is abandoned
// (ErrMessageAbandoned). What is written must be UTF-8 (checked as it is
// written). Streamed messages are not queued (WithSendQueue): with no
// session ready, TextWriter returns ErrNotConnected.
func (ws *WebSocket) TextWriter(ctx context.Context) (*MessageWriter, error) {
	return ws.openWriter(ctx, opText)
}

// BinaryWriter opens a binary message sent as it is written, as TextWriter
// does.
func (ws *WebSocket) BinaryWriter(ctx context.Context) (*MessageWriter, error) {
	return ws.openWriter(ctx, opBinary)
}

// SendTextStream sends r's bytes, to its io.EOF, as one text message in
// fragments: memory holds one fragment, whatever the message's size. ctx
// bounds the wait for the write lock and the whole message. If r fails, or
// ctx ends, before any fragment went out, nothing is sent and the error is
// returned; after, the message is abandoned (ErrMessageAbandoned, wrapping
// the cause) and the connection closes with 1011.
func (ws *WebSocket) SendTextStream(ctx context.Context, r io.Reader) error {
	return ws.sendStream(ctx, opText, r)
}

// SendBinaryStream sends r's bytes as one binary message, as SendTextStream
// does.
func (ws *WebSocket) SendBinaryStream(ctx context.Context, r io.Reader) error {
	return ws.sendStream(ctx, opBinary, r)
}

func (ws *WebSocket) sendStream(ctx context.Context, op byte, r io.Reader) error {
	if r == nil {
		return fmt.Errorf("%w: nil io.Reader", ErrInvalidOption)
	}
	mw, err := ws.openWriter(ctx, op)
	if err != nil {
		return err
	}
	if _, err := mw.ReadFrom(r); err != nil {
		return err
	}
	return mw.Close()
}

func (ws *WebSocket) openWriter(ctx context.Context, op byte) (*MessageWriter, error) {
	if ctx == nil {
		return nil, fmt.Errorf("%w: nil context", ErrInvalidOption)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s := ws.sess.Load()
	if s == nil {
		return nil, ErrNotConnected
	}
	if ws.limiter != nil {
		// A streamed message takes one turn, like any message.
		if st := State(s.state.Load()); st != StateReady {
			return nil, stateErr(st)
		}
		if err := ws.limiter.wait(ctx); err != nil {
			return nil, err
		}
		if s = ws.sess.Load(); s == nil {
			return nil, ErrNotConnected
		}
	}
	if err := s.ready(); err != nil {
		return nil, err
	}
	if err := s.w.acquire(ctx); err != nil {
		return nil, err
	}
	w := &s.w
	if err := w.usable(); err != nil {
		w.release()
		return nil, s.sendError(err, false)
	}
	mw := &MessageWriter{s: s, ws: ws, op: op, ctx: ctx, buf: getFragment()}
	mw.mu.Lock()
	w.mu.Lock()
	w.stream = &mw.mu
	w.mu.Unlock()
	// Set under mu: a context that ends now runs contextDone at once,
	// which takes mu first.
	mw.stop = context.AfterFunc(ctx, mw.contextDone)
	w.leaveStream(&mw.mu) // and write what was posted meanwhile
	return mw, nil
}

// usable says why nothing more can be written, or nil. Under the lock.
func (w *writer) usable() error {
	switch {
	case w.broken != nil:
		return w.broken
	case w.closeSent:
		return errCloseSent
	}
	return nil
}

// leaveStream writes the posted pings and pongs, then lets the message
// writer's mutex m go under mu: a frame posted meanwhile is either written
// here or finds m free (as release lets the lock go).
func (w *writer) leaveStream(m *sync.Mutex) {
	for {
		w.mu.Lock()
		op, payload, flags, ok := w.takePostedLocked(false)
		if !ok {
			m.Unlock()
			w.mu.Unlock()
			return
		}
		w.mu.Unlock()
		w.writePosted(op, payload, flags)
	}
}

// Write sends p as the next bytes of the message; fragments go out as they
// fill. After an error the message is over: see ErrMessageAbandoned.
func (mw *MessageWriter) Write(p []byte) (int, error) {
	mw.mu.Lock()
	if mw.done {
		defer mw.mu.Unlock()
		return 0, mw.doneErr()
	}
	if mw.op == opText && !mw.utf8.Write(p) {
		err := mw.abandon(ErrInvalidUTF8)
		mw.mu.Unlock()
		return 0, err
	}
	n := 0
	for len(p) > 0 {
		if len(mw.buf) == cap(mw.buf) {
			if err := mw.flush(false); err != nil {
				err = mw.abandon(err)
				mw.mu.Unlock()
				return n, err
			}
		}
		c := copy(mw.buf[len(mw.buf):cap(mw.buf)], p)
		mw.buf = mw.buf[:len(mw.buf)+c]
		p = p[c:]
		n += c
		mw.size += int64(c)
	}
	mw.s.w.leaveStream(&mw.mu)
	return n, nil
}

// ReadFrom sends r's bytes, to its io.EOF, as the next bytes of the
// message, reading straight into the fragment buffer (io.Copy uses it). If
// r fails, the message is abandoned as when its context ends: it cannot be
// finished.
func (mw *MessageWriter) ReadFrom(r io.Reader) (int64, error) {
	var total int64
	mw.mu.Lock()
	for {
		if mw.done {
			defer mw.mu.Unlock()
			return total, mw.doneErr()
		}
		if len(mw.buf) == cap(mw.buf) {
			if err := mw.flush(false); err != nil {
				err = mw.abandon(err)
				mw.mu.Unlock()
				return total, err
			}
		}
		// r is read outside mu, so that posted frames go out while it
		// blocks; the buffer's bytes are this goroutine's alone.
		start := len(mw.buf)
		room := mw.buf[start:cap(mw.buf)]
		mw.s.w.leaveStream(&mw.mu)
		n, err := r.Read(room)
		mw.mu.Lock()
		if mw.done {
			mw.mu.Unlock()
			return total, mw.doneErr()
		}
		mw.buf = mw.buf[:start+n]
		mw.size += int64(n)
		total += int64(n)
		switch {
		case mw.op == opText && !mw.utf8.Write(room[:n]):
			err = mw.abandon(ErrInvalidUTF8)
		case err == io.EOF:
			mw.s.w.leaveStream(&mw.mu)
			return total, nil
		case err != nil:
			err = mw.abandon(err)
		default:
			continue
		}
		mw.mu.Unlock()
		return total, err
	}
}

// Close sends the message's last fragment and lets the write lock go. It
// returns the error that ended the message, if one did; calling it again
// returns the same.
func (mw *MessageWriter) Close() error {
	mw.mu.Lock()
	defer mw.mu.Unlock()
	if mw.done {
		return mw.doneErr()
	}
	if mw.op == opText && !mw.utf8.Done() {
		return mw.abandon(ErrInvalidUTF8)
	}
	err := mw.flush(true)
	if err != nil {
		return mw.abandon(err)
	}
	mw.finish(nil)
	return nil
}

// doneErr is what a call gets after the message ended.
func (mw *MessageWriter) doneErr() error {
	if mw.err != nil {
		return mw.err
	}
	return errWriterClosed
}

// flush writes the buffered fragment (final: the message's last). Under mu.
func (mw *MessageWriter) flush(final bool) error {
	w := &mw.s.w
	if err := w.usable(); err != nil {
		return err
	}
	payload, rsv1 := mw.buf, false
	if !mw.sent {
		// A message of one small fragment goes uncompressed, as any.
		mw.compressed = w.deflater != nil && (!final || len(payload) >= w.threshold)
		rsv1 = mw.compressed
	}
	if mw.compressed {
		w.zbuf = w.deflater.DeflatePart(w.zbuf[:0], payload, final)
		payload = w.zbuf
	}
	op := mw.op
	if mw.sent {
		op = protocol.OpContinuation
	}
	err := w.frame(final, rsv1, op, payload)
	if cap(w.zbuf) > maxKeptBuffer {
		w.zbuf = nil
	}
	if err != nil {
		mw.sent = mw.sent || w.wrote
		return err
	}
	mw.sent = true
	mw.buf = mw.buf[:0]
	if !final {
		w.writePostedControl()
	}
	return nil
}

// abandon ends a message that cannot be finished, and returns the error
// for the caller. Under mu.
func (mw *MessageWriter) abandon(cause error) error {
	s := mw.s
	var err error
	switch {
	case !mw.sent:
		// Nothing went out: the stream is as it was.
		err = cause
		if errors.Is(cause, errCloseSent) || s.w.broken != nil {
			err = s.sendError(cause, false)
		}
	case s.w.broken != nil:
		err = s.sendError(cause, true)
	default:
		// RFC 6455 section 5.4: a control frame may come between
		// fragments; nothing follows a close frame.
		_ = s.close(StatusInternalError, "message abandoned")
		err = fmt.Errorf("%w: %d bytes sent: %w", ErrMessageAbandoned, mw.size, cause)
	}
	mw.finish(err)
	return err
}

// finish lets the write lock go (writing what is posted, the close frame
// included) and reports the message. Under mu.
func (mw *MessageWriter) finish(err error) {
	mw.done, mw.err = true, err
	w := &mw.s.w
	w.mu.Lock()
	w.stream = nil
	w.mu.Unlock()
	w.release()
	if mw.stop != nil {
		mw.stop()
	}
	if err == nil {
		// Only a closed writer's buffer is surely no longer read into
		// (ReadFrom reads outside mu, and sees an abandon only after).
		putFragment(mw.buf)
	}
	mw.buf = nil
	mw.ws.observeStream(mw.op, mw.size, err)
}

// fragments pools the fragment buffers of MessageWriters: a message costs
// no 64 KiB allocation.
var fragments = sync.Pool{New: func() any { b := make([]byte, 0, StreamFragment); return &b }}

func getFragment() []byte { return (*fragments.Get().(*[]byte))[:0] }

func putFragment(b []byte) {
	if cap(b) == StreamFragment {
		fragments.Put(&b)
	}
}

// contextDone abandons a message whose context ended before its Close.
func (mw *MessageWriter) contextDone() {
	mw.mu.Lock()
	defer mw.mu.Unlock()
	if !mw.done {
		mw.abandon(context.Cause(mw.ctx))
	}
}

// observeStream reports a streamed message to the send observers, once,
// with its size (Data is nil: the message was never held whole).
func (ws *WebSocket) observeStream(op byte, size int64, err error) {
	t := ws.runTable()
	if !ws.observed(t) {
		return
	}
	ev := &events.Outbound{Time: time.Now(), Kind: outboundKind(op), Result: events.Sent, Size: int(size), Err: err}
	if err != nil {
		ev.Result = events.Failed
	}
	if p := ws.cfg.plugins; p != nil {
		for _, o := range p.out {
			o.OnSend(ws, ev)
		}
	}
	if t != nil {
		for _, o := range t.out {
			o.OnSend(ws, ev)
		}
	}
}
