package lomond

import (
	"bytes"
	"errors"
	"fmt"
	"sync"

	"github.com/coder/websocket"
	"github.com/lomond-go/lomond/events"
)

// ErrQueueFull is returned by a send when Persist's send queue is full. With
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
	DropOldest
)

// Message is a message held by Persist's send queue.
type Message struct {
	// Binary is true for a binary message, false for text.
	Binary bool
	// Data is the payload.
	Data []byte
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

// WithSendQueue makes sends while disconnected wait in a queue of at most
// size messages instead of failing with ErrNotConnected. The queue is
// flushed in order after the next Ready, once OnReady has returned, so a
// protocol's own opening messages (authentication, subscriptions) sent from
// OnReady go first. A queued message is sent at most once: if the
// connection fails while it is being written, it is not sent again. When
// Persist returns, unsent messages stay available from Unsent.
func WithSendQueue(size int, overflow Overflow) PersistOption {
	return func(c *persistConfig) error {
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

// sendQueue holds sends made while no session is ready.
type sendQueue struct {
	mu       sync.Mutex
	size     int
	overflow Overflow
	msgs     []Message
	flushing bool
}

func newSendQueue(size int, overflow Overflow) *sendQueue {
	return &sendQueue{size: size, overflow: overflow}
}

// send sends at once when a session is ready and the queue is not being
// flushed; otherwise it queues. Send observers hear of the outcome after
// q.mu is released, so that they may call Queued.
func (q *sendQueue) send(ws *WebSocket, typ websocket.MessageType, p []byte) error {
	q.mu.Lock()
	if !q.flushing && ws.State() == StateReady {
		q.mu.Unlock()
		err := ws.sendNow(typ, p)
		if !errors.Is(err, ErrClosing) && !errors.Is(err, ErrClosed) && !errors.Is(err, ErrNotConnected) {
			ws.observeSent(byte(typ), p, 0, err)
			return err
		}
		// The session ended under us before anything was written: queue.
		q.mu.Lock()
	}
	m := Message{Binary: typ == websocket.MessageBinary, Data: bytes.Clone(p)}
	if m.Data == nil {
		m.Data = []byte{}
	}
	if len(q.msgs) < q.size {
		q.msgs = append(q.msgs, m)
		q.mu.Unlock()
		ws.observeQueue(m, events.Queued, nil)
		return nil
	}
	if q.overflow == RejectNewest {
		q.mu.Unlock()
		ws.observeQueue(m, events.Failed, ErrQueueFull)
		return ErrQueueFull
	}
	dropped := q.msgs[0]
	q.msgs = append(q.msgs[1:], m)
	q.mu.Unlock()
	ws.observeQueue(dropped, events.Dropped, ErrQueueFull)
	ws.observeQueue(m, events.Queued, nil)
	return &DroppedError{Dropped: dropped}
}

// resetFlush is called when a session starts and when it ends: a flush cut
// short by the session's end must not hold back the next session's sends.
func (q *sendQueue) resetFlush() {
	q.mu.Lock()
	q.flushing = false
	q.mu.Unlock()
}

// flush sends the queue in order, on the dispatcher goroutine, after OnReady.
// Sends made meanwhile join the back of the queue.
func (q *sendQueue) flush(ws *WebSocket, s *session) {
	q.mu.Lock()
	q.flushing = true
	for len(q.msgs) > 0 {
		m := q.msgs[0]
		q.msgs = q.msgs[1:]
		q.mu.Unlock()
		typ := websocket.MessageText
		if m.Binary {
			typ = websocket.MessageBinary
		}
		err := s.write(typ, m.Data)
		requeue := errors.Is(err, ErrClosing) || errors.Is(err, ErrClosed) || errors.Is(err, ErrNotConnected)
		if !requeue {
			ws.observeSent(byte(typ), m.Data, outFromQueue, err)
		}
		q.mu.Lock()
		if err != nil {
			if requeue {
				// Not written: keep it first for the next session.
				q.msgs = append([]Message{m}, q.msgs...)
			}
			break
		}
	}
	q.flushing = false
	q.mu.Unlock()
}

// shutdown keeps what was never sent for Unsent.
func (q *sendQueue) shutdown(ws *WebSocket) {
	q.mu.Lock()
	left := q.msgs
	ws.unsentMu.Lock()
	ws.unsent = append(ws.unsent, left...)
	ws.unsentMu.Unlock()
	q.msgs = nil
	q.mu.Unlock()
	for _, m := range left {
		ws.observeQueue(m, events.Unsent, nil)
	}
}

// Unsent returns, and forgets, the messages a send queue still held when
// Persist returned.
func (ws *WebSocket) Unsent() []Message {
	ws.unsentMu.Lock()
	defer ws.unsentMu.Unlock()
	u := ws.unsent
	ws.unsent = nil
	return u
}

// Queued returns how many messages wait in Persist's send queue.
func (ws *WebSocket) Queued() int {
	q := ws.queue.Load()
	if q == nil {
		return 0
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.msgs)
}
