package main

import (
	"sync"
	"time"
)

// quietWait is --wait-quiet: once started (at the end of input, or after
// the --send messages), it calls fire when no message has arrived for d,
// so that the replies still in flight are printed before the close.
type quietWait struct {
	d    time.Duration
	fire func()

	mu      sync.Mutex
	started bool
	stopped bool
	last    time.Time // the start, or the latest message after it
	timer   *time.Timer
}

// start begins the wait; later calls do nothing.
func (q *quietWait) start() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.started || q.stopped {
		return
	}
	q.started, q.last = true, time.Now()
	q.timer = time.AfterFunc(q.d, q.check)
}

// message records that a message arrived: the wait starts over.
func (q *quietWait) message() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.started {
		q.last = time.Now()
	}
}

// check runs when the timer fires: it fires if d has passed since the
// latest message, and waits for the rest otherwise.
func (q *quietWait) check() {
	q.mu.Lock()
	if q.stopped {
		q.mu.Unlock()
		return
	}
	if rest := q.d - time.Since(q.last); rest > 0 {
		q.timer.Reset(rest)
		q.mu.Unlock()
		return
	}
	q.stopped = true
	q.mu.Unlock()
	q.fire()
}

// stop ends the wait without firing.
func (q *quietWait) stop() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.stopped = true
	if q.timer != nil {
		q.timer.Stop()
	}
}
