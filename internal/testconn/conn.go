package testconn

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"time"
)

// ErrInjected is the error of FailWritesAt when it is given none.
var ErrInjected = errors.New("testconn: injected write failure")

// noOffset marks an offset (hold, failure) that is not set.
const noOffset = -1

// notifier wakes everyone waiting for a change of the state it guards: the
// waiter takes the channel under the owner's lock, and every change closes
// it and makes a new one.
type notifier struct{ ch chan struct{} }

// wait returns the channel closed at the next change. Under the owner's lock.
func (n *notifier) wait() <-chan struct{} {
	if n.ch == nil {
		n.ch = make(chan struct{})
	}
	return n.ch
}

// signal wakes the waiters. Under the owner's lock.
func (n *notifier) signal() {
	if n.ch != nil {
		close(n.ch)
		n.ch = nil
	}
}

// Conn wraps a net.Conn. It records every byte its Write calls returned as
// written and every byte its Read calls returned, and its writes can be
// held (HoldWrites, StallWritesAt), released (ReleaseWrites) and made to
// fail at a chosen byte (FailWritesAt). Reads pass through. A Conn is safe
// for concurrent use; Write calls are serialised, as a real connection's.
type Conn struct {
	inner net.Conn

	wmu sync.Mutex // one Write at a time, as a real connection

	mu        sync.Mutex
	changed   notifier // every change of the fields below
	written   []byte
	received  []byte
	holdAt    int64 // writes stop at this offset until released; noOffset: none
	failAt    int64 // the write crossing this offset fails; noOffset: none
	failErr   error
	failed    bool      // a write failed at failAt: every later one fails
	blocked   int       // Write calls waiting at holdAt
	closed    bool      // Close was called
	wDeadline time.Time // the write deadline, as set
	calls     []WriteCall
}

// WriteCall is one call of Write: where in the stream it started, how many
// bytes it was given, how many it wrote and its error. A call that wrote
// fewer bytes than it was given left a frame cut short (on a real
// connection too): whatever is written after it is out of step.
type WriteCall struct {
	Offset int64
	Len, N int
	Err    error
}

// Wrap returns a Conn over c. Closing the Conn closes c.
func Wrap(c net.Conn) *Conn {
	return &Conn{inner: c, holdAt: noOffset, failAt: noOffset}
}

// Inner returns the wrapped connection.
func (c *Conn) Inner() net.Conn { return c.inner }

// opErr is an error as a real connection returns it: a *net.OpError
// wrapping err (os.ErrDeadlineExceeded, net.ErrClosed).
func (c *Conn) opErr(op string, err error) error {
	return &net.OpError{Op: op, Net: c.inner.LocalAddr().Network(), Source: c.inner.LocalAddr(), Addr: c.inner.RemoteAddr(), Err: err}
}

// Write writes b to the wrapped connection, except where a hold or a
// failure is set: the bytes before a hold's offset are written, then Write
// waits until ReleaseWrites, the write deadline (an error wrapping
// os.ErrDeadlineExceeded) or Close (an error wrapping net.ErrClosed); the
// bytes before a failure's offset are written, then Write returns its error.
// It returns how many bytes of b were written.
func (c *Conn) Write(b []byte) (n int, err error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.mu.Lock()
	start := int64(len(c.written))
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.calls = append(c.calls, WriteCall{Offset: start, Len: len(b), N: n, Err: err})
		c.mu.Unlock()
	}()
	for {
		c.mu.Lock()
		switch {
		case c.closed:
			c.mu.Unlock()
			return n, c.opErr("write", net.ErrClosed)
		case c.failed:
			err := c.failErr
			c.mu.Unlock()
			return n, err
		case !c.wDeadline.IsZero() && !time.Now().Before(c.wDeadline):
			c.mu.Unlock()
			return n, c.opErr("write", os.ErrDeadlineExceeded)
		case n == len(b):
			c.mu.Unlock()
			return n, nil
		}
		pos := int64(len(c.written))
		chunk := int64(len(b) - n)
		if c.failAt != noOffset {
			if pos >= c.failAt {
				c.failed = true
				c.changed.signal()
				c.mu.Unlock()
				continue
			}
			chunk = min(chunk, c.failAt-pos)
		}
		if c.holdAt != noOffset {
			if pos >= c.holdAt {
				c.waitHeld() // unlocks c.mu
				continue
			}
			chunk = min(chunk, c.holdAt-pos)
		}
		c.mu.Unlock()
		m, err := c.inner.Write(b[n : n+int(chunk)])
		c.mu.Lock()
		c.written = append(c.written, b[n:n+m]...)
		c.changed.signal()
		c.mu.Unlock()
		n += m
		if err != nil {
			return n, err
		}
	}
}

// waitHeld waits, as a Write blocked at the hold, for any change: a
// release, a new deadline, a failure, Close, or the deadline passing.
// Called with c.mu held; returns with it released.
func (c *Conn) waitHeld() {
	c.blocked++
	c.changed.signal()
	ch := c.changed.wait()
	deadline := c.wDeadline
	c.mu.Unlock()
	var expired <-chan time.Time
	if !deadline.IsZero() {
		t := time.NewTimer(time.Until(deadline))
		defer t.Stop()
		expired = t.C
	}
	select {
	case <-ch:
	case <-expired:
	}
	c.mu.Lock()
	c.blocked--
	c.changed.signal()
	c.mu.Unlock()
}

// Read reads from the wrapped connection and records what it returned.
func (c *Conn) Read(p []byte) (int, error) {
	n, err := c.inner.Read(p)
	if n > 0 {
		c.mu.Lock()
		c.received = append(c.received, p[:n]...)
		c.changed.signal()
		c.mu.Unlock()
	}
	return n, err
}

// Close closes the wrapped connection; blocked writes return an error
// wrapping net.ErrClosed.
func (c *Conn) Close() error {
	c.mu.Lock()
	c.closed = true
	c.changed.signal()
	c.mu.Unlock()
	return c.inner.Close()
}

// LocalAddr returns the wrapped connection's local address.
func (c *Conn) LocalAddr() net.Addr { return c.inner.LocalAddr() }

// RemoteAddr returns the wrapped connection's remote address.
func (c *Conn) RemoteAddr() net.Addr { return c.inner.RemoteAddr() }

// SetDeadline sets the read and write deadlines.
func (c *Conn) SetDeadline(t time.Time) error {
	c.setWriteDeadline(t)
	return c.inner.SetDeadline(t)
}

// SetReadDeadline sets the wrapped connection's read deadline.
func (c *Conn) SetReadDeadline(t time.Time) error { return c.inner.SetReadDeadline(t) }

// SetWriteDeadline sets the write deadline, which bounds a held write too.
func (c *Conn) SetWriteDeadline(t time.Time) error {
	c.setWriteDeadline(t)
	return c.inner.SetWriteDeadline(t)
}

func (c *Conn) setWriteDeadline(t time.Time) {
	c.mu.Lock()
	c.wDeadline = t
	c.changed.signal()
	c.mu.Unlock()
}

// HoldWrites makes writes stop at the current offset: the next Write (or
// the rest of one in progress) waits until ReleaseWrites, its deadline or
// Close.
func (c *Conn) HoldWrites() {
	c.mu.Lock()
	c.holdAt = int64(len(c.written))
	c.changed.signal()
	c.mu.Unlock()
}

// StallWritesAt makes writes stop at byte offset off of the stream (as a
// peer that stops reading there): the Write that crosses it writes the bytes
// before it, then waits until ReleaseWrites, its deadline or Close.
func (c *Conn) StallWritesAt(off int64) {
	c.mu.Lock()
	c.holdAt = max(off, 0)
	c.changed.signal()
	c.mu.Unlock()
}

// ReleaseWrites lets held writes go on, and removes the hold.
func (c *Conn) ReleaseWrites() {
	c.mu.Lock()
	c.holdAt = noOffset
	c.changed.signal()
	c.mu.Unlock()
}

// FailWritesAt makes the Write that crosses byte offset off of the stream
// write the bytes before it and return err (ErrInjected if nil); every
// later Write returns err without writing. A Write held at or after off
// fails at once. Reads are not affected.
func (c *Conn) FailWritesAt(off int64, err error) {
	if err == nil {
		err = ErrInjected
	}
	c.mu.Lock()
	c.failAt, c.failErr = max(off, 0), err
	c.changed.signal()
	c.mu.Unlock()
}

// WaitWriteBlocked waits until a Write is blocked at a hold, or ctx ends.
func (c *Conn) WaitWriteBlocked(ctx context.Context) error {
	return c.waitFor(ctx, func() (bool, error) { return c.blocked > 0, nil })
}

// WaitWritten waits until at least n bytes were written. It fails when ctx
// ends, when the Conn is closed or its writes fail before that.
func (c *Conn) WaitWritten(ctx context.Context, n int64) error {
	return c.waitFor(ctx, func() (bool, error) {
		got := int64(len(c.written))
		switch {
		case got >= n:
			return true, nil
		case c.closed:
			return false, fmt.Errorf("testconn: closed after %d of %d bytes written", got, n)
		case c.failed:
			return false, fmt.Errorf("testconn: writes failed after %d of %d bytes written", got, n)
		}
		return false, nil
	})
}

// WaitClosed waits until the Conn is closed, or ctx ends.
func (c *Conn) WaitClosed(ctx context.Context) error {
	return c.waitFor(ctx, func() (bool, error) { return c.closed, nil })
}

// waitFor waits until done (called under c.mu) is true or fails, or ctx
// ends.
func (c *Conn) waitFor(ctx context.Context, done func() (bool, error)) error {
	for {
		c.mu.Lock()
		ok, err := done()
		ch := c.changed.wait()
		c.mu.Unlock()
		if ok || err != nil {
			return err
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Written returns a copy of every byte Write reported as written, in order.
func (c *Conn) Written() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]byte(nil), c.written...)
}

// WriteCalls returns every Write call so far, in order.
func (c *Conn) WriteCalls() []WriteCall {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]WriteCall(nil), c.calls...)
}

// WrittenLen returns how many bytes Write reported as written.
func (c *Conn) WrittenLen() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return int64(len(c.written))
}

// Received returns a copy of every byte Read returned, in order.
func (c *Conn) Received() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]byte(nil), c.received...)
}

// Closed reports whether Close was called.
func (c *Conn) Closed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

// Dialer dials TCP connections and wraps them in Conns; it keeps every one
// it made. Its Dial method is a lomond.DialFunc. The zero Dialer is ready
// to use.
type Dialer struct {
	// Setup, if set, is called with every new Conn (and its index, from 0)
	// before Dial returns it: to hold or fail its writes from the first
	// byte.
	Setup func(i int, c *Conn)
	// WriteBuffer, if positive, sets the TCP send buffer of every
	// connection (SetWriteBuffer), so that the client's writes back up
	// soon after the peer stops reading.
	WriteBuffer int

	mu      sync.Mutex
	changed notifier
	conns   []*Conn
}

// Dial connects to addr and returns the connection wrapped in a Conn.
func (d *Dialer) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	var nd net.Dialer
	raw, err := nd.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	if tc, ok := raw.(*net.TCPConn); ok && d.WriteBuffer > 0 {
		if err := tc.SetWriteBuffer(d.WriteBuffer); err != nil {
			_ = raw.Close()
			return nil, err
		}
	}
	c := Wrap(raw)
	d.mu.Lock()
	i := len(d.conns)
	d.conns = append(d.conns, c)
	d.changed.signal()
	d.mu.Unlock()
	if d.Setup != nil {
		d.Setup(i, c)
	}
	return c, nil
}

// Conns returns the connections made so far, in order.
func (d *Dialer) Conns() []*Conn {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]*Conn(nil), d.conns...)
}

// WaitConn waits until the i-th connection (from 0) was made and returns
// it, or ctx's error.
func (d *Dialer) WaitConn(ctx context.Context, i int) (*Conn, error) {
	for {
		d.mu.Lock()
		var c *Conn
		if i < len(d.conns) {
			c = d.conns[i]
		}
		ch := d.changed.wait()
		d.mu.Unlock()
		if c != nil {
			return c, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// Close closes every connection the Dialer made.
func (d *Dialer) Close() {
	for _, c := range d.Conns() {
		_ = c.Close()
	}
}
