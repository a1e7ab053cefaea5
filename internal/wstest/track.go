package wstest

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"
)

// stuckWarning is how long shutdown waits before logging that goroutines
// have not returned yet. It only triggers a diagnostic; shutdown keeps
// waiting.
const stuckWarning = 5 * time.Second

// tracker owns the connections and goroutines of a Server or Proxy so that
// shutdown can close every connection and wait for every goroutine.
type tracker struct {
	t      testing.TB
	ctx    context.Context // cancelled when shutdown starts
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu     sync.Mutex
	closed bool
	conns  map[net.Conn]struct{}
}

func newTracker(t testing.TB) *tracker {
	ctx, cancel := context.WithCancel(context.Background())
	return &tracker{t: t, ctx: ctx, cancel: cancel, conns: make(map[net.Conn]struct{})}
}

// add registers c so that shutdown closes it. If shutdown has already
// started, c is closed immediately and add returns false.
func (tr *tracker) add(c net.Conn) bool {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if tr.closed {
		c.Close()
		return false
	}
	tr.conns[c] = struct{}{}
	return true
}

// remove closes c and forgets it.
func (tr *tracker) remove(c net.Conn) {
	c.Close()
	tr.mu.Lock()
	delete(tr.conns, c)
	tr.mu.Unlock()
}

// shutdown closes ln and all registered connections, then waits for every
// goroutine counted in tr.wg. It must be called at most once.
func (tr *tracker) shutdown(ln net.Listener, what string) {
	tr.mu.Lock()
	tr.closed = true
	conns := make([]net.Conn, 0, len(tr.conns))
	for c := range tr.conns {
		conns = append(conns, c)
	}
	tr.mu.Unlock()
	tr.cancel()
	ln.Close()
	for _, c := range conns {
		c.Close()
	}

	done := make(chan struct{})
	go func() {
		tr.wg.Wait()
		close(done)
	}()
	timer := time.NewTimer(stuckWarning)
	defer timer.Stop()
	select {
	case <-done:
	case <-timer.C:
		tr.t.Logf("wstest: %s.Close still waiting after %v for goroutines to return; "+
			"is a script blocked on something other than its connection (use Conn.Done)?", what, stuckWarning)
		<-done
	}
}
