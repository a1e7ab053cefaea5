package lomond

import (
	"bufio"
	"encoding/binary"
	"time"

	"github.com/lomond-go/lomond/events"
	"github.com/lomond-go/lomond/internal/protocol"
)

// The session's timers (poll, ping, ping timeout, close timeout) need no
// goroutine: the read deadline is set to the earliest of them, and when a
// read returns for it the dispatcher runs onDeadline between two reads, with
// no I/O call in progress.
//
// Two of them judge the server: the ping timeout (no pong) and the close
// timeout (no close reply). Neither counts time spent in handlers, and
// neither is declared before everything already received was processed (a
// read finds nothing more): a pong queued behind a backlog of messages is
// not a dead server, and a server whose messages keep arriving is not
// unresponsive. After the close timeout, at most maxCloseDrain more bytes
// are read.

// probeWindow is how long a judgement waits for bytes that have already
// arrived (they are in the kernel's buffer: a read returns them at once).
const probeWindow = 5 * time.Millisecond

// idleAfter is how long without bytes makes a connection idle, for the read
// buffer's size.
const idleAfter = time.Second

// maxCloseDrain bounds what the dispatcher reads after the close timeout
// passed while data keeps arriving: far more than any socket buffer holds,
// so a backlog is always read, and a server that floods instead of replying
// is not waited for beyond it.
var maxCloseDrain uint64 = 64 << 20 // a variable for its test

// onDeadline runs the timers that are due. It returns ErrUnresponsive or
// ErrCloseTimeout when the session must end.
func (s *session) onDeadline() error {
	if s.cutSend.Load() {
		return errSendCut
	}
	if s.stalled.Load() {
		return s.timedOut(ErrUnresponsive)
	}
	now := time.Now()
	s.tmu.Lock()
	var judged error
	flooded := false // a server that floods after our close is not waited for
	switch {
	case !s.closeDue.IsZero() && !now.Before(s.closeDue):
		judged = ErrCloseTimeout
		if !s.closeOverdue {
			s.closeOverdue, s.closeDueBytes = true, s.cr.total
		}
		flooded = s.cr.total-s.closeDueBytes > maxCloseDrain
	case !s.pongDue.IsZero() && !now.Before(s.pongDue):
		judged = ErrUnresponsive
	}
	if judged != nil {
		if flooded || !s.moreArrived(now) {
			s.tmu.Unlock()
			return s.timedOut(judged)
		}
		// Something arrived: read it first, and judge again after it
		// (the passed deadline brings the dispatcher back here as soon as
		// the buffered bytes are processed).
		_ = s.conn.SetReadDeadline(now)
		s.tmu.Unlock()
		return nil
	}
	if s.br.Buffered() == 0 && s.br.Size() > readBufferSize && now.Sub(s.cr.lastRead) > idleAfter {
		// Idle: give the busy buffer back (nothing is buffered to lose).
		s.br = bufio.NewReaderSize(s.cr, readBufferSize)
		s.cr.full = false
	}
	ping := false
	if !s.nextPing.IsZero() && !now.Before(s.nextPing) {
		s.nextPing = nextTick(s.nextPing, s.cfg.pingRate, now)
		ping = State(s.state.Load()) == StateReady
		if ping {
			binary.BigEndian.PutUint64(s.pingPayload[:], uint64(now.Sub(s.start)))
		}
	}
	poll := false
	if !s.nextPoll.IsZero() && !now.Before(s.nextPoll) {
		s.nextPoll = nextTick(s.nextPoll, s.cfg.pollInterval, now)
		poll = true
	}
	payload := s.pingPayload
	s.rearm()
	s.tmu.Unlock()

	// A frame write in progress (perhaps stuck on a peer that does not
	// read) is not waited for: it has a deadline of its own.
	if ping && s.tryPing(payload[:]) {
		s.tmu.Lock()
		s.pingSent = now
		if s.cfg.pingTimeout > 0 && s.pongDue.IsZero() {
			s.pongDue = now.Add(s.cfg.pingTimeout)
			s.armedAt = now
			s.setJudging()
			s.rearm()
		}
		s.tmu.Unlock()
	}
	if poll {
		s.emit(&events.Poll{Meta: events.Stamp()})
	}
	return nil
}

// moreArrived reports whether bytes are waiting to be read: buffered, or in
// the kernel's buffer (one read with a short deadline finds them at once).
// Caller holds tmu; the dispatcher is between two reads.
func (s *session) moreArrived(now time.Time) bool {
	n := s.br.Buffered()
	if n >= s.br.Size() {
		return true
	}
	_ = s.conn.SetReadDeadline(now.Add(probeWindow))
	_, err := s.br.Peek(n + 1)
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

// nextTick schedules a periodic timer after it fired at now, skipping missed
// periods instead of firing in a burst.
func nextTick(prev time.Time, period time.Duration, now time.Time) time.Time {
	next := prev.Add(period)
	if !next.After(now) {
		next = now.Add(period)
	}
	return next
}

// rearm sets the read deadline to the earliest timer. Caller holds tmu.
func (s *session) rearm() {
	if s.stalled.Load() || s.cutSend.Load() {
		_ = s.conn.SetReadDeadline(time.Unix(1, 0))
		return
	}
	var next time.Time
	for _, t := range [...]time.Time{s.nextPoll, s.nextPing, s.pongDue, s.closeDue} {
		if !t.IsZero() && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	_ = s.conn.SetReadDeadline(next)
}

// setJudging notes whether a judging timer is armed. Caller holds tmu.
func (s *session) setJudging() {
	s.judging.Store(!s.pongDue.IsZero() || !s.closeDue.IsZero())
}

// excludeHandlerTime moves the judging timers by the time a handler took
// since began (or, when zero, since the timer was armed).
func (s *session) excludeHandlerTime(began time.Time) {
	now := time.Now()
	s.tmu.Lock()
	if began.IsZero() || began.Before(s.armedAt) {
		began = s.armedAt
	}
	if d := now.Sub(began); d > 0 {
		if !s.pongDue.IsZero() {
			s.pongDue = s.pongDue.Add(d)
		}
		if !s.closeDue.IsZero() {
			s.closeDue = s.closeDue.Add(d)
		}
	}
	s.tmu.Unlock()
}

// armCloseTimer starts the close timeout and stops pinging.
func (s *session) armCloseTimer() {
	s.tmu.Lock()
	if s.closeDue.IsZero() {
		s.armedAt = time.Now()
		s.closeDue = s.armedAt.Add(s.cfg.closeTimeout)
	}
	s.nextPing, s.pongDue = time.Time{}, time.Time{}
	s.setJudging()
	s.rearm()
	s.tmu.Unlock()
}

// onStall is the writer's report of a write that made no progress for the
// ping timeout: the dispatcher is woken to end the session as Unresponsive.
func (s *session) onStall() {
	s.tmu.Lock()
	s.stalled.Store(true)
	s.rearm()
	s.tmu.Unlock()
}

// dropConnection is the writer's report of a frame cut short by a send's
// context: the stream is out of step, and the dispatcher is woken to end the
// session as a lost connection.
func (s *session) dropConnection() {
	s.tmu.Lock()
	s.cutSend.Store(true)
	s.rearm()
	s.tmu.Unlock()
}

// tryPing sends the keep-alive ping unless a frame write is in progress,
// and reports it to send observers.
func (s *session) tryPing(payload []byte) bool {
	ok, err := s.w.tryPing(payload)
	if ok || err != nil {
		s.ws.observeSent(protocol.OpPing, payload, outAuto, err)
	}
	return ok && err == nil
}
