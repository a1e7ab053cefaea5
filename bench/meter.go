package main

import (
	"runtime"
	"sync/atomic"
	"time"
)

// snapshot is what the meter reads at the start and the end of the timed
// region: wall clock, the process's CPU time and its allocation counters.
// The fixture server is another process, so all of it is the client's.
type snapshot struct {
	wall    time.Time
	cpu     time.Duration
	mallocs uint64
	bytes   uint64
}

func takeSnapshot() snapshot {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return snapshot{wall: time.Now(), cpu: processCPU(), mallocs: ms.Mallocs, bytes: ms.TotalAlloc}
}

// meter counts the messages a client receives and times them. Every client
// calls message once per message, on its reading goroutine; the hot path is
// an increment and one atomic load.
//
// In count mode (limit > 0) the timed region runs from begin to the
// limit-th message. In duration mode a warm-up of warmup is not timed, then
// the timed region lasts dur; a timer raises tick at each boundary and the
// reading goroutine takes the snapshots itself, so the counts and the
// snapshots agree.
type meter struct {
	limit  int64
	warmup time.Duration
	dur    time.Duration
	// clientCloses: the client closes the connection when the run is
	// over; otherwise (a counted push) the server does, after the last
	// message.
	clientCloses bool

	tick  atomic.Bool
	timer *time.Timer
	phase int   // 0 warm-up, 1 timed, 2 done
	count int64 // messages in the timed region
	total int64 // every message received

	start, end snapshot
}

func newMeter(limit int64, warmup, dur time.Duration) *meter {
	return &meter{limit: limit, warmup: warmup, dur: dur}
}

// begin is called once the connection is ready.
func (m *meter) begin() {
	if m.limit > 0 || m.warmup <= 0 {
		m.startTimed()
		return
	}
	m.timer = time.AfterFunc(m.warmup, func() { m.tick.Store(true) })
}

func (m *meter) startTimed() {
	m.phase = 1
	m.start = takeSnapshot()
	if m.limit == 0 {
		m.timer = time.AfterFunc(m.dur, func() { m.tick.Store(true) })
	}
}

// message records one message and reports whether the run has just ended
// (true once): the client then closes the connection if m.clientCloses, and
// ignores what still arrives.
func (m *meter) message() (stop bool) {
	m.total++
	if m.phase == 2 {
		return false
	}
	if m.phase == 1 {
		m.count++
		if m.count == m.limit {
			m.finish()
			return true
		}
	}
	if !m.tick.Load() {
		return false
	}
	m.tick.Store(false)
	if m.phase == 0 {
		m.startTimed()
		return false
	}
	m.finish()
	return true
}

func (m *meter) finish() {
	m.end = takeSnapshot()
	m.phase = 2
}

// done reports whether the timed region is over.
func (m *meter) done() bool { return m.phase == 2 }

// stop releases the timer; call it when the client returns.
func (m *meter) stop() {
	if m.timer != nil {
		m.timer.Stop()
	}
}
