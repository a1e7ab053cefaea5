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
// flushed in order after OnReady returns, by a goroutine of the session (at
// the pace of WithSendRate, if set), so reading goes on however long the
// flush takes.
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
//
// Its lock is mu. reportMu orders what send observers hear of a message:
// a send holds it from queueing a message until "queued" was reported, and
// the flush takes it before reporting "sent", so that "queued" always comes
// first. reportMu is taken before mu, never after.
type sendQueue struct {
	reportMu sync.Mutex

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
	return errors.Is(err, ErrClosing) || errors.Is(err, ErrClosed) || errors.Is(err, ErrNotConnected) ||
		errors.Is(err, ErrConnectionLost)
}

// send sends at once when a session is ready and nothing waits; otherwise
// it queues. Whether to queue and the queueing itself happen under one hold
// of q.mu, so that a session becoming ready meanwhile either sees the
// message in the queue (and flushes it) or has already flushed, and the
// message goes out directly. Send observers hear of the outcome after q.mu
// is released, so that they may call Queued.
func (q *sendQueue) send(ctx context.Context, ws *WebSocket, typ byte, p []byte) error {
	for {
		q.mu.Lock()
		direct := !q.flushing && len(q.msgs) == 0 && ws.State() == StateReady
		q.mu.Unlock()
		if direct {
			started, err := ws.sendNow(ctx, typ, p)
			if started || !notWritten(err) {
				ws.observeSent(typ, p, 0, err)
				return err
			}
			// Nothing was written, and the session is gone or going: queue.
		}
		q.reportMu.Lock()
		q.mu.Lock()
		if !direct && !q.flushing && len(q.msgs) == 0 && ws.State() == StateReady {
			// A session became ready, and flushed, meanwhile: send directly.
			q.mu.Unlock()
			q.reportMu.Unlock()
			continue
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
		q.reportMu.Unlock()
		return err
	}
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

// flush sends the queue in order, on the session's flush goroutine, until
// the queue is empty, a message cannot be written (it stays first for the
// next session unless part of it went out) or ctx ends (the session is
// over). Sends made meanwhile join the back of the queue. Under a rate
// limit, each message waits for its turn.
func (q *sendQueue) flush(ctx context.Context, ws *WebSocket, s *session) {
	q.mu.Lock()
	for len(q.msgs) > 0 {
		if ws.limiter != nil {
			q.mu.Unlock()
			err := ws.limiter.wait(ctx)
			q.mu.Lock()
			if err != nil || len(q.msgs) == 0 {
				break
			}
		}
		m := q.msgs[0]
		q.msgs = q.msgs[1:]
		q.inflight++
		q.mu.Unlock()
		started, err := s.write(ctx, m.typ(), m.Data)
		q.reportMu.Lock() // m's "queued" was reported
		q.reportMu.Unlock()
		ws.observeSent(m.typ(), m.Data, outFromQueue, err)
		q.mu.Lock()
		q.inflight--
		if err != nil {
			if !started {
				q.msgs = append([]Message{m}, q.msgs...)
			}
			break
		}
	}
	q.flushing = false
	q.mu.Unlock()
}

// attachQueue binds the send queue to session s: after OnReady, a flush
// goroutine of the session sends what waits, so that the session goroutine
// goes on reading however fast messages are queued. The returned function
// ends the flush and waits for it; call it when the session is over.
func (ws *WebSocket) attachQueue(s *session) (detach func()) {
	q := ws.queue
	if q == nil {
		return func() {}
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	s.onReady = func() {
		q.mu.Lock()
		if len(q.msgs) == 0 {
			q.mu.Unlock()
			return
		}
		q.flushing = true
		q.mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			q.flush(ctx, ws, s)
		}()
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
