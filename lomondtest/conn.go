package lomondtest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// Conn is one connection to a Server: the record of what the server saw on
// it, and the handle scripts act through. Its methods are safe for
// concurrent use, while the connection runs and after.
type Conn struct {
	srv *Server
	n   int
	nc  *netConn
	req *http.Request // a copy, for the record

	// The handshake: w and r belong to the handler goroutine until the
	// upgrade is answered.
	hs    sync.Mutex
	w     http.ResponseWriter
	r     *http.Request
	state connState
	ws    *websocket.Conn
	raw   *bufio.ReadWriter // after a hijack for raw bytes
	// readerDone is closed when the websocket reader has returned.
	readerDone chan struct{}

	ctx    context.Context // ends with the connection
	cancel context.CancelFunc

	ignorePings atomic.Bool
	killed      atomic.Bool // Stop or Close dropped the connection
	shutDown    atomic.Bool // Shutdown closed the connection

	mu          sync.Mutex
	changed     chan struct{} // closed and replaced on every change below
	subprotocol string
	msgs        []Message
	cursor      int // the next message Expect or Receive returns
	pings       [][]byte
	ended       bool
	endErr      error
	done        chan struct{}
}

type connState int

const (
	stateNew      connState = iota // upgrade request read, not answered
	stateAccepted                  // websocket running
	stateRejected                  // answered with a non-101 response
	stateRaw                       // hijacked by a fault for raw bytes
	stateGone                      // dropped or reset by a fault
)

func newConn(s *Server, n int, nc *netConn, w http.ResponseWriter, r *http.Request) *Conn {
	ctx, cancel := context.WithCancel(context.Background())
	return &Conn{
		srv: s, n: n, nc: nc, w: w, r: r,
		req:        r.Clone(context.Background()),
		readerDone: make(chan struct{}),
		ctx:        ctx,
		cancel:     cancel,
		changed:    make(chan struct{}),
		done:       make(chan struct{}),
	}
}

// Number is the connection's number on its server, from 1.
func (c *Conn) Number() int { return c.n }

// Request returns the client's upgrade request (headers, URL, Host; no
// body).
func (c *Conn) Request() *http.Request { return c.req }

// Subprotocol returns the subprotocol the server chose ("" for none, or
// before the handshake).
func (c *Conn) Subprotocol() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.subprotocol
}

// Messages returns every message the client sent, in order, whether or not
// a step has consumed it. A message that arrives while the server closes
// the connection itself (CloseWith, Shutdown) may be missing: the engine
// reads and drops it during its close handshake.
func (c *Conn) Messages() []Message {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Message(nil), c.msgs...)
}

// AssertMessages checks every message the client sent on the connection
// against want, in order: one matcher per message, no more and no fewer,
// with the check Expect makes (JSON compares values, so no decoding by
// hand). It waits up to Timeout for len(want) messages to arrive (less if
// the connection ends), and fails the test with the messages and where
// they part from want:
//
//	srv.Conn(t, 1).AssertMessages(t,
//		lomondtest.JSON(`{"op": "subscribe", "topic": "ticks"}`),
//		lomondtest.Text("bye"),
//	)
func (c *Conn) AssertMessages(t testing.TB, want ...Matcher) {
	t.Helper()
	deadline := time.NewTimer(waitLimit)
	defer deadline.Stop()
	why := ""
	for why == "" {
		c.mu.Lock()
		n, ended, changed := len(c.msgs), c.ended, c.changed
		c.mu.Unlock()
		switch {
		case n >= len(want):
			why = "done"
		case ended:
			why = "but the connection ended"
		default:
			select {
			case <-changed:
			case <-deadline.C:
				why = fmt.Sprintf("but none came within %v", waitLimit)
			}
		}
	}
	got := c.Messages()
	for i := 0; i < len(got) || i < len(want); i++ {
		var problem string
		switch {
		case i >= len(want):
			problem = fmt.Sprintf("message %d: want no more, got %v", i+1, got[i])
		case i >= len(got):
			problem = fmt.Sprintf("message %d: want %v, %s", i+1, want[i], why)
		case !want[i].Matches(got[i]):
			problem = fmt.Sprintf("message %d: want %v, got %v", i+1, want[i], got[i])
		default:
			continue
		}
		t.Fatalf("lomondtest: connection %d: the client's messages do not match\n\t%s\n%s", c.n, problem, listMessages(got, i))
		return
	}
}

// listMessages lists msgs one a line, numbered from 1, with an arrow at
// index mark; a long list is cut around the mark.
func listMessages(msgs []Message, mark int) string {
	if len(msgs) == 0 {
		return "\t(no messages)"
	}
	const around = 10
	from, to := max(0, mark-around), min(len(msgs), mark+around+1)
	var b strings.Builder
	b.WriteString("\tmessages:")
	if from > 0 {
		fmt.Fprintf(&b, "\n\t   ... (%d before)", from)
	}
	for i := from; i < to; i++ {
		arrow := "  "
		if i == mark {
			arrow = "->"
		}
		fmt.Fprintf(&b, "\n\t%s %2d %v", arrow, i+1, msgs[i])
	}
	if to < len(msgs) {
		fmt.Fprintf(&b, "\n\t   ... (%d more)", len(msgs)-to)
	}
	return b.String()
}

// Pings returns the payloads of the client's pings, in order (answered or
// not; see fault.IgnorePings).
func (c *Conn) Pings() [][]byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([][]byte(nil), c.pings...)
}

// ClientClose returns the code and reason of the client's close frame, and
// whether it sent one (whichever side started the close). A close frame
// with no code reads as 1005. If the server has not read one yet, it waits
// for the connection to end, up to Timeout: a client that answers a
// server's close may finish its session before the server has read the
// answer.
func (c *Conn) ClientClose() (code int, reason string, ok bool) {
	if code, reason, ok := c.nc.sniff.result(); ok {
		return code, reason, ok
	}
	timer := time.NewTimer(waitLimit)
	defer timer.Stop()
	select {
	case <-c.done:
	case <-timer.C:
	}
	return c.nc.sniff.result()
}

// Done returns a channel closed when the connection has ended.
func (c *Conn) Done() <-chan struct{} { return c.done }

// WaitDone waits up to Timeout for the connection to end; it fails the test
// if it does not.
func (c *Conn) WaitDone(t testing.TB) {
	t.Helper()
	timer := time.NewTimer(waitLimit)
	defer timer.Stop()
	select {
	case <-c.done:
	case <-timer.C:
		t.Fatalf("lomondtest: connection %d did not end within %v", c.n, waitLimit)
	}
}

// Do runs steps on the connection from the test goroutine, after or
// alongside its script, and fails the test at the first that fails. Steps
// that consume messages (Expect, ExpectClose, Echo) compete with a script
// still consuming them; handshake steps fail once the handshake is done.
func (c *Conn) Do(t testing.TB, steps ...Step) {
	t.Helper()
	for i, step := range steps {
		if step == nil {
			t.Fatalf("lomondtest: connection %d: Do step %d is nil", c.n, i+1)
		}
		if err := step(c); err != nil {
			t.Fatalf("lomondtest: connection %d: Do step %d: %v", c.n, i+1, err)
		}
	}
}

// serve plays script on the connection, then keeps a websocket open until
// the client leaves. It runs on the http.Server's goroutine for the request.
func (c *Conn) serve(script Step) {
	defer c.finish()
	if err := script(c); err != nil {
		if !c.endedByServer() {
			c.srv.scriptFailed(c.n, err)
		}
		c.fail()
		return
	}
	c.hs.Lock()
	state := c.state
	c.hs.Unlock()
	switch state {
	case stateNew:
		if err := c.accept(acceptConfig{}); err != nil {
			if !c.endedByServer() {
				c.srv.reportf("lomondtest: connection %d: %v", c.n, err)
			}
			return
		}
		<-c.readerDone
	case stateAccepted:
		<-c.readerDone
	case stateRaw:
		c.drain()
	}
}

// fail ends a connection whose script failed: close 1011 on a websocket, a
// 500 before the handshake.
func (c *Conn) fail() {
	c.hs.Lock()
	defer c.hs.Unlock()
	switch c.state {
	case stateNew:
		c.state = stateRejected
		c.w.Header().Set("Connection", "close")
		http.Error(c.w, "lomondtest: script failed", http.StatusInternalServerError)
	case stateAccepted:
		_ = c.ws.Close(websocket.StatusInternalError, "lomondtest: script failed")
	case stateRaw:
		c.nc.drop(false)
	}
}

// finish releases everything once the handler is done.
func (c *Conn) finish() {
	c.hs.Lock()
	ws, state := c.ws, c.state
	c.hs.Unlock()
	if ws != nil {
		_ = ws.CloseNow()
		<-c.readerDone
	}
	if state == stateRaw || state == stateGone {
		c.nc.drop(false)
	}
	c.end(errors.New("the server's script ended"))
	c.cancel()
}

// endedByServer reports whether the server itself ended the connection
// (Shutdown, or Stop before the client closed): then a step that fails for
// it is not a script failure.
func (c *Conn) endedByServer() bool {
	if c.shutDown.Load() {
		return true
	}
	if !c.killed.Load() {
		return false
	}
	_, _, clientClosed := c.nc.sniff.result()
	return !clientClosed
}

// kill drops the connection because the server is stopping.
func (c *Conn) kill() {
	c.killed.Store(true)
	c.cancel()
	c.nc.drop(false)
}

// shutdown closes a websocket with a close frame (Shutdown).
func (c *Conn) shutdown(code int, reason string) {
	c.shutDown.Store(true)
	c.hs.Lock()
	ws := c.ws
	c.hs.Unlock()
	if ws != nil {
		_ = ws.Close(websocket.StatusCode(code), reason)
	}
}

// hijack takes the connection from net/http for raw bytes, before the
// handshake.
func (c *Conn) hijack() error {
	c.hs.Lock()
	defer c.hs.Unlock()
	return c.hijackLocked()
}

func (c *Conn) hijackLocked() error {
	switch c.state {
	case stateRaw:
		return nil
	case stateNew:
	default:
		return c.stateErrLocked("take over the connection")
	}
	_, brw, err := http.NewResponseController(c.w).Hijack()
	if err != nil {
		return fmt.Errorf("hijacking the connection: %w", err)
	}
	c.raw, c.state = brw, stateRaw
	return nil
}

// drain reads and discards until the client hangs up or the server stops.
func (c *Conn) drain() {
	c.hs.Lock()
	raw := c.raw
	c.hs.Unlock()
	buf := make([]byte, 512)
	for {
		if _, err := raw.Read(buf); err != nil {
			c.end(fmt.Errorf("the connection ended: %w", err))
			return
		}
	}
}

// stateErrLocked explains why a step cannot run in the current state.
func (c *Conn) stateErrLocked(what string) error {
	switch c.state {
	case stateAccepted:
		return fmt.Errorf("cannot %s: the handshake is done", what)
	case stateRejected:
		return fmt.Errorf("cannot %s: the upgrade was rejected", what)
	case stateRaw:
		return fmt.Errorf("cannot %s: a fault took over the connection for raw bytes", what)
	case stateGone:
		return fmt.Errorf("cannot %s: the connection was dropped", what)
	}
	return fmt.Errorf("cannot %s", what)
}

// socket returns the running websocket, accepting the upgrade with the
// defaults first if no step has answered it yet.
func (c *Conn) socket() (*websocket.Conn, error) {
	c.hs.Lock()
	if c.state == stateAccepted {
		ws := c.ws
		c.hs.Unlock()
		return ws, nil
	}
	if c.state != stateNew {
		err := c.stateErrLocked("use the websocket")
		c.hs.Unlock()
		return nil, err
	}
	c.hs.Unlock()
	if err := c.accept(acceptConfig{}); err != nil {
		return nil, err
	}
	c.hs.Lock()
	defer c.hs.Unlock()
	return c.ws, nil
}

// accepted returns the websocket if the handshake is done, or nil; while
// the upgrade is being answered, it waits for the answer.
func (c *Conn) accepted() *websocket.Conn {
	c.hs.Lock()
	defer c.hs.Unlock()
	if c.state != stateAccepted {
		return nil
	}
	return c.ws
}

// accept answers the upgrade with websocket.Accept and starts the reader.
func (c *Conn) accept(cfg acceptConfig) error {
	c.hs.Lock()
	defer c.hs.Unlock()
	if c.state != stateNew {
		return c.stateErrLocked("accept")
	}
	for name, values := range cfg.header {
		for _, v := range values {
			c.w.Header().Add(name, v)
		}
	}
	ws, err := websocket.Accept(c.w, c.r, &websocket.AcceptOptions{
		Subprotocols:       cfg.protocols,
		InsecureSkipVerify: true, // any Origin: a test server has no site to protect
		CompressionMode:    cfg.compression,
		OnPingReceived:     c.onPing,
	})
	if err != nil {
		c.state = stateRejected
		return fmt.Errorf("accepting the upgrade: %w", err)
	}
	ws.SetReadLimit(-1)
	c.ws, c.state = ws, stateAccepted
	c.mu.Lock()
	c.subprotocol = ws.Subprotocol()
	c.mu.Unlock()
	go c.read(ws)
	return nil
}

func (c *Conn) onPing(_ context.Context, payload []byte) bool {
	c.update(func() { c.pings = append(c.pings, append([]byte(nil), payload...)) })
	return !c.ignorePings.Load()
}

// read records the client's messages until the connection ends. Reading is
// what lets the engine answer pings and the close handshake.
func (c *Conn) read(ws *websocket.Conn) {
	defer close(c.readerDone)
	for {
		typ, data, err := ws.Read(context.Background())
		if err != nil {
			c.end(err)
			return
		}
		m := Message{Binary: typ == websocket.MessageBinary, Data: data}
		c.update(func() { c.msgs = append(c.msgs, m) })
	}
}

// update changes the record under the lock and wakes the waiters.
func (c *Conn) update(f func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f()
	close(c.changed)
	c.changed = make(chan struct{})
}

// end marks the connection over (once).
func (c *Conn) end(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ended {
		return
	}
	c.ended, c.endErr = true, err
	close(c.done)
	close(c.changed)
	c.changed = make(chan struct{})
}

// endsSoon reports whether the connection ends within a moment: after a
// failed write, whether the client was leaving (not a failure) or the
// connection is stuck.
func (c *Conn) endsSoon() bool {
	timer := time.NewTimer(time.Second)
	defer timer.Stop()
	select {
	case <-c.done:
		return true
	case <-timer.C:
		return false
	}
}

func (c *Conn) isDone() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// errClosed is what waiting for a message returns once the connection has
// ended: it says how.
type errClosed struct {
	code    int
	reason  string
	hasCode bool
	cause   error
}

func (e *errClosed) Error() string {
	if e.hasCode {
		return fmt.Sprintf("the client closed the connection (%d %q)", e.code, e.reason)
	}
	return fmt.Sprintf("the connection ended without a close frame (%v)", e.cause)
}

// next returns the next message not yet consumed, waiting until ctx ends.
func (c *Conn) next(ctx context.Context) (Message, error) {
	for {
		c.mu.Lock()
		if c.cursor < len(c.msgs) {
			m := c.msgs[c.cursor]
			c.cursor++
			c.mu.Unlock()
			return m, nil
		}
		if c.ended {
			cause := c.endErr
			c.mu.Unlock()
			code, reason, ok := c.ClientClose()
			return Message{}, &errClosed{code: code, reason: reason, hasCode: ok, cause: cause}
		}
		changed := c.changed
		c.mu.Unlock()
		select {
		case <-changed:
		case <-ctx.Done():
			return Message{}, ctx.Err()
		}
	}
}

// stepContext bounds one step by Timeout. (The end of the connection ends
// a step's wait on its own, and a step then reports how it ended.)
func (c *Conn) stepContext() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), waitLimit)
}
