package testconn_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/lomond-go/lomond/internal/testconn"
)

// tcpPair returns a Conn over a real loopback TCP connection, and the peer.
func tcpPair(t *testing.T) (*testconn.Conn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			accepted <- nil
			return
		}
		accepted <- c
	}()
	raw, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	peer := <-accepted
	if peer == nil {
		raw.Close()
		t.Fatal("accept failed")
	}
	c := testconn.Wrap(raw)
	t.Cleanup(func() {
		c.Close()
		peer.Close()
	})
	return c, peer
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// readN reads exactly n bytes from c, or fails the test.
func readN(t *testing.T, c net.Conn, n int) []byte {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	b := make([]byte, n)
	if _, err := io.ReadFull(c, b); err != nil {
		t.Fatalf("reading %d bytes: %v", n, err)
	}
	return b
}

type writeResult struct {
	n   int
	err error
}

// goWrite writes b on c in a goroutine; the result arrives on the channel.
func goWrite(c net.Conn, b []byte) <-chan writeResult {
	ch := make(chan writeResult, 1)
	go func() {
		n, err := c.Write(b)
		ch <- writeResult{n, err}
	}()
	return ch
}

func result(t *testing.T, ch <-chan writeResult) writeResult {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("the write did not return")
	}
	return writeResult{}
}

func TestWriteRecordsAndPassesThrough(t *testing.T) {
	c, peer := tcpPair(t)
	if n, err := c.Write([]byte("hello ")); n != 6 || err != nil {
		t.Fatalf("Write = %d, %v", n, err)
	}
	if n, err := c.Write([]byte("world")); n != 5 || err != nil {
		t.Fatalf("Write = %d, %v", n, err)
	}
	if got := readN(t, peer, 11); string(got) != "hello world" {
		t.Fatalf("peer read %q", got)
	}
	if got := c.Written(); string(got) != "hello world" || c.WrittenLen() != 11 {
		t.Fatalf("Written = %q (%d)", got, c.WrittenLen())
	}
	// Written is a copy.
	w := c.Written()
	w[0] = 'X'
	if c.Written()[0] != 'h' {
		t.Fatal("Written shares its memory")
	}

	if _, err := peer.Write([]byte("reply")); err != nil {
		t.Fatal(err)
	}
	if got := readN(t, c, 5); string(got) != "reply" {
		t.Fatalf("read %q", got)
	}
	if got := c.Received(); string(got) != "reply" {
		t.Fatalf("Received = %q", got)
	}
}

func TestHoldWritesBlocksUntilRelease(t *testing.T) {
	c, peer := tcpPair(t)
	ctx := testCtx(t)
	c.HoldWrites()
	done := goWrite(c, []byte("abc"))
	if err := c.WaitWriteBlocked(ctx); err != nil {
		t.Fatal(err)
	}
	if got := c.WrittenLen(); got != 0 {
		t.Fatalf("%d bytes written while held", got)
	}
	select {
	case r := <-done:
		t.Fatalf("held write returned %d, %v", r.n, r.err)
	default:
	}
	c.ReleaseWrites()
	if r := result(t, done); r.n != 3 || r.err != nil {
		t.Fatalf("released write = %d, %v", r.n, r.err)
	}
	if got := readN(t, peer, 3); string(got) != "abc" {
		t.Fatalf("peer read %q", got)
	}
	// The hold is gone: later writes go straight through.
	if n, err := c.Write([]byte("d")); n != 1 || err != nil {
		t.Fatalf("Write after release = %d, %v", n, err)
	}
}

func TestStallWritesAtWritesThePrefixThenTimesOut(t *testing.T) {
	c, peer := tcpPair(t)
	ctx := testCtx(t)
	c.StallWritesAt(3)
	done := goWrite(c, []byte("abcdef"))
	if err := c.WaitWriteBlocked(ctx); err != nil {
		t.Fatal(err)
	}
	if got := c.Written(); string(got) != "abc" {
		t.Fatalf("Written before the stall = %q", got)
	}
	if got := readN(t, peer, 3); string(got) != "abc" {
		t.Fatalf("peer read %q", got)
	}
	// A deadline set while the write is stuck ends it, as on a real
	// connection whose peer stopped reading.
	_ = c.SetWriteDeadline(time.Unix(1, 0))
	r := result(t, done)
	if r.n != 3 || !errors.Is(r.err, os.ErrDeadlineExceeded) {
		t.Fatalf("stalled write = %d, %v; want 3, deadline exceeded", r.n, r.err)
	}
	var ne net.Error
	if !errors.As(r.err, &ne) || !ne.Timeout() {
		t.Fatalf("%v is not a net.Error timeout", r.err)
	}
	// Clearing the deadline and releasing lets the rest go.
	_ = c.SetWriteDeadline(time.Time{})
	c.ReleaseWrites()
	if n, err := c.Write([]byte("def")); n != 3 || err != nil {
		t.Fatalf("Write = %d, %v", n, err)
	}
	if got := c.Written(); string(got) != "abcdef" {
		t.Fatalf("Written = %q", got)
	}
}

func TestHeldWriteEndsAtItsDeadline(t *testing.T) {
	c, _ := tcpPair(t)
	c.HoldWrites()
	start := time.Now()
	_ = c.SetWriteDeadline(start.Add(50 * time.Millisecond))
	n, err := c.Write([]byte("x"))
	if n != 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("held write = %d, %v; want 0, deadline exceeded", n, err)
	}
	if elapsed := time.Since(start); elapsed < 50*time.Millisecond || elapsed > 5*time.Second {
		t.Fatalf("held write returned after %v, want at its deadline (50ms)", elapsed)
	}
}

func TestPassedDeadlineFailsAWriteAtOnce(t *testing.T) {
	c, _ := tcpPair(t)
	_ = c.SetDeadline(time.Unix(1, 0))
	if n, err := c.Write([]byte("x")); n != 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Write = %d, %v", n, err)
	}
	if c.WrittenLen() != 0 {
		t.Fatal("bytes recorded for a failed write")
	}
}

func TestCloseEndsAHeldWrite(t *testing.T) {
	c, _ := tcpPair(t)
	ctx := testCtx(t)
	c.HoldWrites()
	done := goWrite(c, []byte("x"))
	if err := c.WaitWriteBlocked(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if r := result(t, done); r.n != 0 || !errors.Is(r.err, net.ErrClosed) {
		t.Fatalf("held write after Close = %d, %v; want net.ErrClosed", r.n, r.err)
	}
	if !c.Closed() {
		t.Fatal("Closed() is false")
	}
	if err := c.WaitClosed(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write([]byte("y")); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Write after Close: %v", err)
	}
}

func TestFailWritesAtCrossingWrite(t *testing.T) {
	c, peer := tcpPair(t)
	boom := errors.New("boom")
	c.FailWritesAt(4, boom)
	if n, err := c.Write([]byte("ab")); n != 2 || err != nil {
		t.Fatalf("Write before the offset = %d, %v", n, err)
	}
	if n, err := c.Write([]byte("cdef")); n != 2 || err != boom {
		t.Fatalf("crossing Write = %d, %v; want 2, boom", n, err)
	}
	if n, err := c.Write([]byte("g")); n != 0 || err != boom {
		t.Fatalf("later Write = %d, %v; want 0, boom", n, err)
	}
	if got := c.Written(); string(got) != "abcd" {
		t.Fatalf("Written = %q", got)
	}
	want := []testconn.WriteCall{{Offset: 0, Len: 2, N: 2}, {Offset: 2, Len: 4, N: 2, Err: boom}, {Offset: 4, Len: 1, N: 0, Err: boom}}
	if got := c.WriteCalls(); !slices.Equal(got, want) {
		t.Fatalf("WriteCalls = %+v, want %+v", got, want)
	}
	if got := readN(t, peer, 4); string(got) != "abcd" {
		t.Fatalf("peer read %q", got)
	}
	// Reads still pass through.
	if _, err := peer.Write([]byte("r")); err != nil {
		t.Fatal(err)
	}
	if got := readN(t, c, 1); string(got) != "r" {
		t.Fatalf("read %q", got)
	}
}

func TestFailWritesAtDefaultErrorAndAtOnce(t *testing.T) {
	c, _ := tcpPair(t)
	c.FailWritesAt(0, nil)
	if n, err := c.Write([]byte("x")); n != 0 || !errors.Is(err, testconn.ErrInjected) {
		t.Fatalf("Write = %d, %v", n, err)
	}
}

func TestFailWritesEndsAHeldWrite(t *testing.T) {
	c, _ := tcpPair(t)
	ctx := testCtx(t)
	c.HoldWrites()
	done := goWrite(c, []byte("x"))
	if err := c.WaitWriteBlocked(ctx); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	c.FailWritesAt(0, boom)
	if r := result(t, done); r.n != 0 || r.err != boom {
		t.Fatalf("held write = %d, %v; want 0, boom", r.n, r.err)
	}
}

func TestNewDeadlineWakesAHeldWrite(t *testing.T) {
	c, _ := tcpPair(t)
	ctx := testCtx(t)
	_ = c.SetWriteDeadline(time.Now().Add(time.Hour))
	c.HoldWrites()
	done := goWrite(c, []byte("x"))
	if err := c.WaitWriteBlocked(ctx); err != nil {
		t.Fatal(err)
	}
	// What a send whose context ended does: a deadline in the past.
	_ = c.SetWriteDeadline(time.Unix(1, 0))
	if r := result(t, done); r.n != 0 || !errors.Is(r.err, os.ErrDeadlineExceeded) {
		t.Fatalf("held write = %d, %v; want deadline exceeded", r.n, r.err)
	}
}

func TestWaitWritten(t *testing.T) {
	c, _ := tcpPair(t)
	ctx := testCtx(t)
	done := make(chan error, 1)
	go func() { done <- c.WaitWritten(ctx, 6) }()
	for _, s := range []string{"ab", "cd", "ef"} {
		if _, err := c.Write([]byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	if err := <-done; err != nil {
		t.Fatalf("WaitWritten: %v", err)
	}
	// Waiting for more than will ever come fails when the Conn closes.
	go func() { done <- c.WaitWritten(ctx, 100) }()
	c.Close()
	if err := <-done; err == nil {
		t.Fatal("WaitWritten on a closed Conn returned nil")
	}
	short, cancel := context.WithCancel(ctx)
	cancel()
	c2, _ := tcpPair(t)
	if err := c2.WaitWritten(short, 1); !errors.Is(err, context.Canceled) {
		t.Fatalf("WaitWritten with an ended ctx: %v", err)
	}
}

func TestWrittenIsSafeDuringWrites(t *testing.T) {
	c, peer := tcpPair(t)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // drain the peer
		defer wg.Done()
		_, _ = io.Copy(io.Discard, peer)
	}()
	payload := bytes.Repeat([]byte("0123456789"), 100)
	writers := make(chan error, 4)
	for range 4 {
		go func() {
			for range 50 {
				if _, err := c.Write(payload); err != nil {
					writers <- err
					return
				}
			}
			writers <- nil
		}()
	}
	for range 100 {
		w := c.Written()
		if len(w)%len(payload) != 0 {
			t.Errorf("Written() has a partial write: %d bytes", len(w))
		}
	}
	for range 4 {
		if err := <-writers; err != nil {
			t.Fatal(err)
		}
	}
	if got := c.WrittenLen(); got != 4*50*int64(len(payload)) {
		t.Fatalf("WrittenLen = %d", got)
	}
	c.Close()
	peer.Close()
	wg.Wait()
}

func TestDialerKeepsAndSetsUpConns(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var peers sync.WaitGroup
	peers.Add(1)
	go func() {
		defer peers.Done()
		for range 2 {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	ctx := testCtx(t)
	d := &testconn.Dialer{
		WriteBuffer: 8 << 10,
		Setup:       func(i int, c *testconn.Conn) { c.FailWritesAt(int64(i), nil) },
	}
	defer d.Close()
	for range 2 {
		if _, err := d.Dial(ctx, "tcp", ln.Addr().String()); err != nil {
			t.Fatal(err)
		}
	}
	peers.Wait()
	conns := d.Conns()
	if len(conns) != 2 {
		t.Fatalf("%d conns", len(conns))
	}
	second, err := d.WaitConn(ctx, 1)
	if err != nil || second != conns[1] {
		t.Fatalf("WaitConn(1) = %p, %v", second, err)
	}
	// Setup ran with each index: the first fails at byte 0, the second at 1.
	if n, err := conns[0].Write([]byte("ab")); n != 0 || err == nil {
		t.Fatalf("conn 0 Write = %d, %v", n, err)
	}
	if n, err := conns[1].Write([]byte("ab")); n != 1 || err == nil {
		t.Fatalf("conn 1 Write = %d, %v", n, err)
	}
	short, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
	defer cancel()
	if _, err := d.WaitConn(short, 2); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitConn for a conn never made: %v", err)
	}
	if _, err := d.Dial(ctx, "tcp", "127.0.0.1:1"); err == nil {
		t.Fatal("Dial to a closed port succeeded")
	}
}
