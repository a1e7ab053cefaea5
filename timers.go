package lomond

import (
	"bytes"
	"context"
	"encoding/binary"
	"time"

	"github.com/lomond-go/lomond/events"
)

// tick runs the timers that are due. It is called on the dispatcher
// goroutine, from inside a read, when the read deadline passes.
func (s *session) tick() error {
	now := time.Now()
	s.tmu.Lock()
	defer s.tmu.Unlock()
	if !s.closeDeadline.IsZero() && !now.Before(s.closeDeadline) {
		if now.Sub(s.closeDeadline) > lateWake && !s.closeGrace {
			// The dispatcher was busy in a handler: the reply may be
			// waiting unread. Read once more before judging.
			s.closeGrace = true
			s.closeDeadline = now.Add(lateWake)
		} else {
			s.timerErr = ErrCloseTimeout
			return s.timerErr
		}
	}
	if !s.pongDeadline.IsZero() && !now.Before(s.pongDeadline) {
		if now.Sub(s.pongDeadline) > min(lateWake, s.cfg.pingTimeout/4) {
			// The dispatcher was busy in a handler, not reading: a pong may
			// be waiting unread. Read for one more timeout before judging.
			s.pongDeadline = now.Add(s.cfg.pingTimeout)
		} else {
			s.tmu.Unlock()
			s.emit(&events.Unresponsive{Meta: events.Stamp(), Timeout: s.cfg.pingTimeout})
			s.tmu.Lock()
			s.timerErr = ErrUnresponsive
			return s.timerErr
		}
	}
	if !s.nextPing.IsZero() && !now.Before(s.nextPing) {
		s.nextPing = nextTick(s.nextPing, s.cfg.pingRate, now)
		if State(s.state.Load()) == StateReady {
			binary.BigEndian.PutUint64(s.pingPayload[:], uint64(now.Sub(s.start)))
			s.pingSent = now
			s.tmu.Unlock()
			// A send holding the lock (perhaps stuck on a peer that does
			// not read) must not stall the read loop: skip this ping.
			sent := s.sendMu.TryLock()
			if sent {
				_ = s.writeOwn(opPing, s.pingPayload[:], outAuto)
				s.unlockSend()
			}
			s.tmu.Lock()
			if sent && s.cfg.pingTimeout > 0 && s.pongDeadline.IsZero() {
				s.pongDeadline = now.Add(s.cfg.pingTimeout)
			}
		}
	}
	if !s.nextPoll.IsZero() && !now.Before(s.nextPoll) {
		s.nextPoll = nextTick(s.nextPoll, s.cfg.pollInterval, now)
		s.tmu.Unlock()
		s.emit(&events.Poll{Meta: events.Stamp()})
		s.tmu.Lock()
	}
	s.rearm()
	return nil
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
	var next time.Time
	for _, t := range [...]time.Time{s.nextPoll, s.nextPing, s.pongDeadline, s.closeDeadline} {
		if !t.IsZero() && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	s.wire.wakeAt(next)
}

func (s *session) armCloseTimer() {
	s.tmu.Lock()
	s.closeDeadline = time.Now().Add(s.cfg.closeTimeout)
	s.nextPing, s.pongDeadline = time.Time{}, time.Time{}
	if s.wire.onTimeout != nil {
		s.rearm()
	} else {
		s.wire.wakeAt(s.closeDeadline)
	}
	s.tmu.Unlock()
}

// onPing runs inside the engine's read, on the dispatcher goroutine. The
// pong goes out before the handler sees the Ping, as in lomond.
func (s *session) onPing(_ context.Context, payload []byte) bool {
	if s.cfg.autoPong {
		if s.sendMu.TryLock() {
			_ = s.writeOwn(opPong, payload, outAuto)
			s.unlockSend()
		} else {
			// A send holds the lock, perhaps stuck on a peer that does not
			// read: the read loop must not wait for it. The holder sends
			// the pong when it is done (only the latest is owed, RFC 6455
			// 5.5.3), unless the lock came free meanwhile.
			owed := bytes.Clone(payload)
			s.owedPong.Store(&owed)
			if s.sendMu.TryLock() {
				s.unlockSend()
			}
		}
	}
	if s.failure == nil { // a failing session delivers no more messages
		s.emit(&events.Ping{Meta: events.Stamp(), Data: bytes.Clone(payload)})
	}
	return false // answered above, or not at all
}

// onPong runs inside the engine's read, on the dispatcher goroutine.
func (s *session) onPong(_ context.Context, payload []byte) {
	now := time.Now()
	ev := &events.Pong{Meta: events.Meta{Received: now}, Data: bytes.Clone(payload)}
	s.tmu.Lock()
	s.pongDeadline = time.Time{}
	if !s.pingSent.IsZero() && bytes.Equal(payload, s.pingPayload[:]) {
		ev.RTT = now.Sub(s.pingSent)
	}
	s.tmu.Unlock()
	if s.failure == nil {
		s.emit(ev)
	}
}
