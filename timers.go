package lomond

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/lomond-go/lomond/events"
)

// The session's timers (poll, ping, ping timeout, close timeout) need no
// goroutine and belong to the session goroutine alone: the read deadline is
// set to the earliest of them (setReadDeadline, the deadline's one owner),
// and when a read returns for it the session goroutine runs onDeadline
// between two reads, with no I/O call in progress. Mail from other
// goroutines arrives the same way (post sets the deadline in the past).
//
// Two of them judge the server: the ping timeout (no pong) and the close
// timeout (no close reply). Neither counts time spent in handlers. Before
// either is declared, bytes that have already arrived are processed (a pong
// queued behind a backlog is not a dead server), but at most maxJudgeDrain
// of them: a server that floods cannot put the judgement off for ever.

// timers are the session goroutine's deadlines. A zero time is off.
type timers struct {
	start    time.Time // when the session became ready: pings carry the time since
	nextPoll time.Time
	nextPing time.Time
	pongDue  time.Time
	closeDue time.Time
	armedAt  time.Time // when the latest judging timer was armed
	overdue  bool      // a judging timer passed while bytes were waiting, with
	dueFrom  uint64    // cr.total then, and
	drainEnd time.Time // when the verdict stands whatever is still waiting
	pings    [4]uint64 // the latest keep-alive pings' payloads, for RTTs
	npings   int
	awaiting bool // pongDue or closeDue is set: one test per event in emit
}

// judging reports whether a pong or a close reply is awaited.
func (t *timers) judging() bool { return t.awaiting }

// judged notes a change of pongDue or closeDue.
func (t *timers) judged() { t.awaiting = !t.pongDue.IsZero() || !t.closeDue.IsZero() }

// sentPing records a keep-alive ping's payload.
func (t *timers) sentPing(v uint64) {
	t.pings[t.npings%len(t.pings)] = v
	t.npings++
}

// pingSentAt returns when the keep-alive ping whose payload is p was sent,
// if p is one of the latest.
func (t *timers) pingSentAt(p []byte) (time.Time, bool) {
	if len(p) != 8 {
		return time.Time{}, false
	}
	v := binary.BigEndian.Uint64(p)
	for i := 0; i < min(t.npings, len(t.pings)); i++ {
		if t.pings[i] == v {
			return t.start.Add(time.Duration(v)), true
		}
	}
	return time.Time{}, false
}

// pongReceived ends the wait for a pong: any pong does (RFC 6455 allows a
// server to answer only the latest ping, or to send pongs unasked).
func (t *timers) pongReceived() {
	t.pongDue = time.Time{}
	t.judged()
}

// probeWindow is how long a judgement waits for bytes that have already
// arrived (they are in the kernel's buffer: a read returns them at once).
const probeWindow = 5 * time.Millisecond

// idleAfter is how long without bytes makes a connection idle, for the read
// buffer's size.
const idleAfter = time.Second

// maxJudgeDrain bounds what the session goroutine reads after the ping
// timeout or the close timeout passed while data keeps arriving: more than
// socket buffers hold, so a backlog is read, and a server that floods
// instead of answering is not waited for beyond it. Nor is it waited for
// longer than the timeout itself once more (time in handlers not counted):
// reading a backlog takes milliseconds.
var maxJudgeDrain uint64 = 16 << 20 // a variable for its test

// onDeadline reads the mail and runs the timers that are due. It returns an
// error when the session must end.
func (s *session) onDeadline() error {
	m := s.takeMail()
	if m.broken != nil {
		return s.writeBroken(m.broken)
	}
	if m.cancelled {
		s.startClose(closeForContext(s.ctx))
	}
	if m.closeAsked {
		s.closeStarted()
	}
	now := time.Now()
	tm := &s.tm
	var judged error
	switch {
	case !tm.closeDue.IsZero() && !now.Before(tm.closeDue):
		judged = ErrCloseTimeout
	case !tm.pongDue.IsZero() && !now.Before(tm.pongDue):
		judged = ErrUnresponsive
	}
	if judged == nil {
		tm.overdue = false
	} else {
		if !tm.overdue {
			tm.overdue, tm.dueFrom = true, s.cr.total
			if judged == ErrCloseTimeout {
				tm.drainEnd = now.Add(s.cfg.closeTimeout)
			} else {
				tm.drainEnd = now.Add(s.cfg.pingTimeout)
			}
		}
		if s.cr.total-tm.dueFrom >= maxJudgeDrain || !now.Before(tm.drainEnd) || !s.moreArrived(now) {
			return s.timedOut(judged)
		}
		// Bytes are waiting: read them first; rearm brings the session
		// goroutine back here as soon as they are processed.
	}
	s.shrinkReadBuffer(now)
	if !tm.nextPing.IsZero() && !now.Before(tm.nextPing) {
		tm.nextPing = nextTick(tm.nextPing, s.cfg.pingRate, now)
		s.ping(now)
	}
	poll := false
	if !tm.nextPoll.IsZero() && !now.Before(tm.nextPoll) {
		tm.nextPoll = nextTick(tm.nextPoll, s.cfg.pollInterval, now)
		poll = s.failure == nil // a failed session is only waiting for its end
	}
	s.rearm(now)
	if poll {
		s.emit(&events.Poll{Meta: events.Stamp()})
	}
	return nil
}

// ping posts the keep-alive ping, carrying the time since the session
// started, and starts the ping timeout if no pong is awaited.
func (s *session) ping(now time.Time) {
	if State(s.state.Load()) != StateReady || s.w.closing.Load() {
		return // nothing follows our close frame
	}
	v := uint64(now.Sub(s.tm.start))
	var payload [8]byte
	binary.BigEndian.PutUint64(payload[:], v)
	s.tm.sentPing(v)
	s.w.postPing(payload[:])
	if s.cfg.pingTimeout > 0 && s.tm.pongDue.IsZero() {
		s.tm.pongDue, s.tm.armedAt = now.Add(s.cfg.pingTimeout), now
		s.tm.judged()
	}
}

// moreArrived reports whether bytes are waiting to be read: buffered, or in
// the kernel's buffer (one read with a short deadline finds them at once).
func (s *session) moreArrived(now time.Time) bool {
	if s.rb.pos < s.rb.end {
		return true
	}
	s.setReadDeadline(now.Add(probeWindow))
	_, err := s.readMore()
	// Only a read that waited in vain says nothing arrived; the end of the
	// connection is for the read loop to report.
	return err == nil || !isTimeout(err)
}

// timedOut ends the session for a judged timer.
func (s *session) timedOut(err error) error {
	if err == ErrUnresponsive {
		s.emit(&events.Unresponsive{Meta: events.Stamp(), Timeout: s.cfg.pingTimeout})
	}
	return err
}

// writeBroken ends the session whose write stream broke: a write that made
// no progress for the stall timeout is an unresponsive server, any other
// failure a lost connection.
func (s *session) writeBroken(err error) error {
	if errors.Is(err, errStalled) {
		return s.timedOut(ErrUnresponsive)
	}
	return fmt.Errorf("write failed: %w", err)
}

// nextTick schedules a periodic timer after it fired at now, skipping missed
// periods instead of firing in a burst.
func nextTick(prev time.Time, period time.Duration, now time.Time) time.Time {
	next := prev.Add(period)
	if !next.After(now) {
		next = now.Add(period)
	}
	return next
}

// rearm sets the read deadline to the earliest timer, or to now while a
// judgement waits for bytes already received.
func (s *session) rearm(now time.Time) {
	tm := &s.tm
	var next time.Time
	for _, t := range [...]time.Time{tm.nextPoll, tm.nextPing, tm.pongDue, tm.closeDue} {
		if !t.IsZero() && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	if t := s.shrinkDue(now); !t.IsZero() && (next.IsZero() || t.Before(next)) {
		next = t
	}
	if tm.overdue {
		next = now
	}
	s.setReadDeadline(next)
}

// excludeHandlerTime moves the judging timers by the time a handler took
// since began (or, when zero, since the timer was armed).
func (s *session) excludeHandlerTime(began time.Time) {
	tm := &s.tm
	if began.IsZero() || began.Before(tm.armedAt) {
		began = tm.armedAt
	}
	if d := time.Since(began); d > 0 {
		if !tm.pongDue.IsZero() {
			tm.pongDue = tm.pongDue.Add(d)
		}
		if !tm.closeDue.IsZero() {
			tm.closeDue = tm.closeDue.Add(d)
		}
		if tm.overdue {
			tm.drainEnd = tm.drainEnd.Add(d)
		}
	}
}

// armCloseTimer starts the close timeout and stops pinging.
func (s *session) armCloseTimer(now time.Time) {
	tm := &s.tm
	if tm.closeDue.IsZero() {
		tm.armedAt = now
		tm.closeDue = now.Add(s.cfg.closeTimeout)
	}
	tm.nextPing, tm.pongDue = time.Time{}, time.Time{}
	tm.judged()
	s.rearm(now)
}
