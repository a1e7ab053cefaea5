package lomond

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/lomond-go/lomond/events"
)

// ErrQueueFull is returned by a send when the send queue is full. With
// DropOldest the message was queued and an older one dropped (the error is a
// *DroppedError naming it); with RejectNewest the message was not queued.
var ErrQueueFull = errors.New("lomond: send queue full")

// Overflow is what a full send queue does with one more message.
type Overflow int

const (
	// RejectNewest refuses the new message: the send returns ErrQueueFull.
	RejectNewest Overflow = iota
	// DropOldest queues the new message and drops the oldest queued one:
	// the send returns a *DroppedError (wrapping ErrQueueFull) holding it.
	// A message being written is never dropped: when it is the only other
	// one, the new message is refused with ErrQueueFull.
	DropOldest
)

// Message is a message held by the send queue.
type Message struct {
	// Binary is true for a binary message, false for text.
	Binary bool
	// Data is the payload.
	Data []byte
}

func (m Message) typ() byte {
	if m.Binary {
		return opBinary
	}
	return opText
}

// DroppedError reports the message a DropOldest queue dropped to make room.
type DroppedError struct {
	Dropped Message
}

// Error implements error.
func (e *DroppedError) Error() string {
	return fmt.Sprintf("lomond: send queue full: dropped the oldest message (%d bytes); the new one is queued", len(e.Dropped.Data))
}

// Unwrap returns ErrQueueFull.
func (e *DroppedError) Unwrap() error { return ErrQueueFull }

// WithSendQueue gives the WebSocket a send queue of at most size messages:
// SendText, SendBinary and SendJSON (and their Context forms) made while no
// session is ready queue the message and return nil instead of failing with
// ErrNotConnected. The queue belongs to the WebSocket: it works before the
// first Run or Persist, between Persist's sessions, and after Run or
// Persist returned, and the next session that becomes ready flushes it.
//
// The queue keeps the order of the sends: while messages wait, every send
// joins the back of the queue, even when a session is ready (so a message
// sent from OnReady goes after the ones queued before it). The queue is
// flushed in order after OnReady returns, on the session's goroutine, before
// anything else is read; under a rate limit (WithSendRate) the rest of the
// flush is paced by a goroutine of the session, so reading goes on.
//
// A queued message is sent at most once: if the session is closing before
// it could be written it stays first in the queue for the next session; if
// the connection fails while it is being written it is not sent again.
// Unsent takes what waits out of the queue.
func WithSendQueue(size int, overflow Overflow) Option {
	return func(c *config) error {
		if size <= 0 {
			return optErr("send queue size must be positive, got %d", size)
		}
		if overflow != RejectNewest && overflow != DropOldest {
			return optErr("unknown overflow policy %d", overflow)
		}
		c.queueSize, c.overflow = size, overflow
		return nil
	}
}

// sendQueue holds the sends made while no session is ready, and the ones
// made after them until the flush is done.
type sendQueue struct {
	mu       sync.Mutex
	size     int
	overflow Overflow
	msgs     []Message
	inflight int  // taken by the flush and being written: counts against size
	flushing bool // a flush runs: sends join the back of the queue
}

func newSendQueue(size int, overflow Overflow) *sendQueue {
	return &sendQueue{size: size, overflow: overflow}
}

// notWritten reports whether a send's error means nothing was written, so
// the message may go to the queue.
func notWritten(err error) bool {
	return errors.Is(err, ErrClosing) || errors.Is(err, ErrClosed) || errors.Is(err, ErrNotConnected)
}

// send sends at once when a session is ready and nothing waits; otherwise
// it queues. Send observers hear of the outcome after q.mu is released, so
// that they may call Queued.
func (q *sendQueue) send(ctx context.Context, ws *WebSocket, typ byte, p []byte) error {
	q.mu.Lock()
	if !q.flushing && len(q.msgs) == 0 && ws.State() == StateReady {
		q.mu.Unlock()
		err := ws.sendNow(ctx, typ, p)
		if !notWritten(err) {
			ws.observeSent(typ, p, 0, err)
			return err
		}
		// The session ended before anything was written: queue.
		q.mu.Lock()
	}
	m, dropped, err := q.add(typ, p)
	q.mu.Unlock()
	switch {
	case errors.Is(err, ErrQueueFull) && dropped == nil:
		ws.observeQueue(m, events.Failed, err)
	case dropped != nil:
		ws.observeQueue(*dropped, events.Dropped, ErrQueueFull)
		ws.observeQueue(m, events.Queued, nil)
	default:
		ws.observeQueue(m, events.Queued, nil)
	}
	return err
}

// add queues a copy of p, applying the overflow policy, and returns the
// message and the one dropped for it, if any. Under q.mu.
func (q *sendQueue) add(typ byte, p []byte) (m Message, dropped *Message, err error) {
	m = Message{Binary: typ == opBinary, Data: bytes.Clone(p)}
	if m.Data == nil {
		m.Data = []byte{}
	}
	if len(q.msgs)+q.inflight < q.size {
		q.msgs = append(q.msgs, m)
		return m, nil, nil
	}
	if q.overflow == RejectNewest || len(q.msgs) == 0 {
		return m, nil, ErrQueueFull
	}
	d := q.msgs[0]
	q.msgs = append(q.msgs[1:], m)
	return m, &d, &DroppedError{Dropped: d}
}

// take removes the first message for writing; it stays counted against the
// bound until done. Under q.mu.
func (q *sendQueue) take() Message {
	m := q.msgs[0]
	q.msgs = q.msgs[1:]
	q.inflight++
	return m
}

// done ends the write of m taken by take: if it failed before anything was
// written, m goes back first. It reports whether the flush may go on.
// Under q.mu.
func (q *sendQueue) done(m Message, err error) bool {
	q.inflight--
	if err == nil {
		return true
	}
	if notWritten(err) {
		q.msgs = append([]Message{m}, q.msgs...)
	}
	return false
}

// flushNow sends the queue in order on the session's goroutine, as far as
// the rate limit allows without waiting. It reports whether messages remain
// for flushPaced; then the queue stays in its flushing state.
func (q *sendQueue) flushNow(ws *WebSocket, s *session) (more bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.flushing = true
	for len(q.msgs) > 0 {
		if ws.limiter != nil && !ws.limiter.take() {
			return true
		}
		m := q.take()
		q.mu.Unlock()
		err := s.write(m.typ(), m.Data)
		ws.observeSent(m.typ(), m.Data, outFromQueue, err)
		q.mu.Lock()
		if !q.done(m, err) {
			break
		}
	}
	q.flushing = false
	return false
}

// flushPaced sends the rest of the queue at the rate limit's pace, until the
// queue is empty, a write fails or ctx ends (the session is over).
func (q *sendQueue) flushPaced(ctx context.Context, ws *WebSocket, s *session) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for len(q.msgs) > 0 {
		q.mu.Unlock()
		err := ws.limiter.wait(ctx)
		q.mu.Lock()
		if err != nil || len(q.msgs) == 0 {
			break
		}
		m := q.take()
		q.mu.Unlock()
		err = s.write(m.typ(), m.Data)
		ws.observeSent(m.typ(), m.Data, outFromQueue, err)
		q.mu.Lock()
		if !q.done(m, err) {
			break
		}
	}
	q.flushing = false
}

// attachQueue binds the send queue to session s: the flush after OnReady,
// and the paced flush under a rate limit. The returned function ends the
// paced flush and waits for it; call it when the session is over.
func (ws *WebSocket) attachQueue(s *session) (detach func()) {
	q := ws.queue
	if q == nil {
		return func() {}
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	s.onReady = func() {
		if q.flushNow(ws, s) {
			wg.Add(1)
			go func() {
				defer wg.Done()
				q.flushPaced(ctx, ws, s)
			}()
		}
	}
	return func() {
		cancel()
		wg.Wait()
	}
}

// Unsent takes the messages waiting in the send queue out of it and returns
// them, in order: the way to decide what to do with messages that were never
// sent (when Persist returned, or before the next run). The queue stays
// usable. Without a queue it returns nil.
func (ws *WebSocket) Unsent() []Message {
	q := ws.queue
	if q == nil {
		return nil
	}
	q.mu.Lock()
	u := q.msgs
	q.msgs = nil
	q.mu.Unlock()
	for _, m := range u {
		ws.observeQueue(m, events.Unsent, nil)
	}
	return u
}

// Queued returns how many messages wait in the send queue (not counting one
// being written).
func (ws *WebSocket) Queued() int {
	q := ws.queue
	if q == nil {
		return 0
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.msgs)
}
