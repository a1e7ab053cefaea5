package lomond

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/lomond-go/lomond/events"
)

// ErrQueueFull is returned by a send when the send queue is full. With
// DropOldest the message was queued and older ones dropped (the error is a
// *DroppedError naming them); with RejectNewest the message was not queued.
// A message larger than the queue's byte bound (WithSendQueueBytes) is
// refused with an error wrapping ErrQueueFull under either policy.
var ErrQueueFull = errors.New("lomond: send queue full")

// Overflow is what a full send queue does with one more message.
type Overflow int

const (
	// RejectNewest refuses the new message: the send returns ErrQueueFull.
	RejectNewest Overflow = iota
	// DropOldest queues the new message and drops as many of the oldest
	// queued ones as it takes to fit it (one, under the message bound
	// alone): the send returns a *DroppedError (wrapping ErrQueueFull)
	// holding them. A message being written is never dropped: when the new
	// message would not fit even with every waiting one dropped, it is
	// refused with ErrQueueFull and nothing is dropped.
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

// DroppedError reports the messages a DropOldest queue dropped to make room
// for the new one, which is queued.
type DroppedError struct {
	// Dropped is the oldest message dropped.
	Dropped Message
	// More holds the other messages dropped for the same send, oldest
	// first: a byte bound (WithSendQueueBytes) may take several to make
	// room. Empty when one was enough.
	More []Message
}

// Error implements error.
func (e *DroppedError) Error() string {
	if len(e.More) == 0 {
		return fmt.Sprintf("lomond: send queue full: dropped the oldest message (%d bytes); the new one is queued", len(e.Dropped.Data))
	}
	n := len(e.Dropped.Data)
	for _, m := range e.More {
		n += len(m.Data)
	}
	return fmt.Sprintf("lomond: send queue full: dropped the %d oldest messages (%d bytes); the new one is queued", 1+len(e.More), n)
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
//
// The queue is bounded in messages by size; WithSendQueueBytes bounds it in
// bytes as well, so that large messages cannot make its memory unbounded.
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

// WithSendQueueBytes bounds the send queue of WithSendQueue in bytes too:
// the payloads of the messages it holds, including one being written by
// the flush, add up to at most n bytes (the payloads as given to the send,
// before compression). The queue is full when either bound would be
// passed, and WithSendQueue's overflow policy applies: RejectNewest refuses
// the new message, DropOldest drops as many of the oldest waiting messages
// as it takes to fit it. It is python-websockets' write_limit and
// partysocket's bufferedAmount, for the queue.
//
// A message larger than n can never be queued: a send that would queue it
// returns an error wrapping ErrQueueFull, whatever the policy, and nothing
// is dropped for it. It still goes out directly when a session is ready and
// nothing waits, as every send does then.
//
// n must be positive, and New requires WithSendQueue with it (in either
// order): the queue's message bound and overflow policy are WithSendQueue's.
func WithSendQueueBytes(n int) Option {
	return func(c *config) error {
		if n <= 0 {
			return optErr("send queue byte bound must be positive, got %d", n)
		}
		c.queueBytes = n
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

	mu            sync.Mutex
	size          int
	maxBytes      int // 0: no byte bound
	overflow      Overflow
	msgs          []Message
	bytes         int  // the payload bytes of msgs
	inflight      int  // taken by the flush and being written: counts against size
	inflightBytes int  // its payload bytes: count against maxBytes
	flushing      bool // a flush runs: sends join the back of the queue
}

func newSendQueue(size, maxBytes int, overflow Overflow) *sendQueue {
	return &sendQueue{size: size, maxBytes: maxBytes, overflow: overflow}
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
		case errors.Is(err, ErrQueueFull) && len(dropped) == 0:
			ws.observeQueue(m, events.Failed, err)
		case len(dropped) > 0:
			for _, d := range dropped {
				ws.observeQueue(d, events.Dropped, ErrQueueFull)
			}
			ws.observeQueue(m, events.Queued, nil)
		default:
			ws.observeQueue(m, events.Queued, nil)
		}
		q.reportMu.Unlock()
		return err
	}
}

// add queues a copy of p, applying the overflow policy, and returns the
// message and the ones dropped for it, oldest first. Under q.mu.
func (q *sendQueue) add(typ byte, p []byte) (m Message, dropped []Message, err error) {
	n := len(p)
	if q.maxBytes > 0 && n > q.maxBytes {
		// A message that can never fit: refused before p is copied.
		m = Message{Binary: typ == opBinary, Data: p}
		return m, nil, fmt.Errorf("%w: a message of %d bytes is larger than the queue's bound of %d bytes", ErrQueueFull, n, q.maxBytes)
	}
	m = Message{Binary: typ == opBinary, Data: bytes.Clone(p)}
	if m.Data == nil {
		m.Data = []byte{}
	}
	// fits reports whether m fits once the k oldest waiting messages
	// (freed bytes in all) are dropped; the message being written stays.
	freed := 0
	fits := func(k int) bool {
		return len(q.msgs)-k+q.inflight < q.size &&
			(q.maxBytes == 0 || q.bytes-freed+q.inflightBytes+n <= q.maxBytes)
	}
	if fits(0) {
		q.push(m)
		return m, nil, nil
	}
	if q.overflow == RejectNewest {
		return m, nil, ErrQueueFull
	}
	k := 0
	for ; k < len(q.msgs) && !fits(k); k++ {
		freed += len(q.msgs[k].Data)
	}
	if !fits(k) {
		// Not even dropping every waiting message makes room: drop none.
		return m, nil, ErrQueueFull
	}
	dropped = slices.Clone(q.msgs[:k])
	clear(q.msgs[:k]) // the backing array must not keep them alive
	q.msgs = q.msgs[k:]
	q.bytes -= freed
	q.push(m)
	de := &DroppedError{Dropped: dropped[0]}
	if k > 1 {
		de.More = dropped[1:]
	}
	return m, dropped, de
}

// push appends m to the queue. Under q.mu.
func (q *sendQueue) push(m Message) {
	q.msgs = append(q.msgs, m)
	q.bytes += len(m.Data)
}

// pop takes the first message out of the queue. Under q.mu.
func (q *sendQueue) pop() Message {
	m := q.msgs[0]
	q.msgs[0] = Message{} // the backing array must not keep it alive
	q.msgs = q.msgs[1:]
	q.bytes -= len(m.Data)
	return m
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
		m := q.pop()
		q.inflight++
		q.inflightBytes += len(m.Data)
		q.mu.Unlock()
		started, err := s.write(ctx, m.typ(), m.Data)
		// A barrier, not a critical section: m's Queued report is made
		// under reportMu, and its Sent report must not overtake it.
		q.reportMu.Lock()
		//lint:ignore SA2001 the empty section waits for the Queued report
		q.reportMu.Unlock()
		ws.observeSent(m.typ(), m.Data, outFromQueue, err)
		q.mu.Lock()
		q.inflight--
		q.inflightBytes -= len(m.Data)
		if err != nil {
			if !started {
				q.msgs = append([]Message{m}, q.msgs...)
				q.bytes += len(m.Data)
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
	q.msgs, q.bytes = nil, 0
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

// QueuedBytes returns the payload bytes of the messages waiting in the send
// queue (not counting one being written): what WithSendQueueBytes bounds.
// Without a queue it returns 0.
func (ws *WebSocket) QueuedBytes() int {
	q := ws.queue
	if q == nil {
		return 0
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.bytes
}
