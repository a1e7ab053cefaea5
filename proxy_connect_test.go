package lomond

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lomond-go/lomond/events"
)

// Regression tests for the proxy CONNECT (issue 8, item 5): a cancelled
// context ends the CONNECT at once, and the CONNECT response is bounded.

// pcProxy is a CONNECT proxy on 127.0.0.1 that reads the CONNECT request,
// reports it on requested and then runs answer on the connection.
func pcProxy(t *testing.T, answer func(c net.Conn)) (addr string, requested <-chan struct{}) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan struct{}, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		if _, err := http.ReadRequest(bufio.NewReader(c)); err != nil {
			return
		}
		ch <- struct{}{}
		answer(c)
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
	})
	return ln.Addr().String(), ch
}

// TestProxyConnectCancel: the proxy takes the CONNECT and never answers;
// cancelling the context must end the session at once, not after the 30 s
// dial timeout. Before the fix it waited for the dial timeout.
func TestProxyConnectCancel(t *testing.T) {
	addr, requested := pcProxy(t, func(c net.Conn) {
		_, _ = io.Copy(io.Discard, c) // until the client goes away
	})
	ws := tdNew(t, "ws://127.0.0.1:9/", WithProxy("http://"+addr))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	var fail *events.ConnectFail
	go func() {
		done <- ws.Run(ctx, HandlerFunc(func(_ *WebSocket, ev events.Event) {
			if cf, ok := ev.(*events.ConnectFail); ok {
				fail = cf
			}
		}))
	}()
	rcRecv(t, requested, "the CONNECT request")
	start := time.Now()
	cancel()
	var err error
	select {
	case err = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return within 10 s of the cancellation (the dial timeout is 30 s)")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Run returned %v after the cancellation, want at once", d)
	}
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Run = %v, want it to wrap context.Canceled", err)
	}
	if fail == nil || !strings.Contains(fail.Reason, "cancelled") {
		t.Errorf("ConnectFail = %v, want the reason to say cancelled", fail)
	}
}

// TestProxyConnectResponseBounded: a proxy that answers the CONNECT with
// endless headers must not be read without limit. Before the fix the client
// read on until the dial timeout (908 MiB in 5 s).
func TestProxyConnectResponseBounded(t *testing.T) {
	var written atomic.Int64
	addr, _ := pcProxy(t, func(c net.Conn) {
		line := []byte("X-Filler: " + strings.Repeat("a", 1000) + "\r\n")
		n, err := c.Write([]byte("HTTP/1.1 200 Connection established\r\n"))
		written.Add(int64(n))
		for err == nil && written.Load() < 64<<20 {
			n, err = c.Write(line)
			written.Add(int64(n))
		}
	})
	ws := tdNew(t, "ws://127.0.0.1:9/", WithProxy("http://"+addr), WithDialTimeout(20*time.Second))
	start := time.Now()
	ev, err := tdRunConnectFail(t, ws)
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("ConnectFail after %v, want well before the dial timeout", d)
	}
	if !strings.Contains(err.Error(), "larger than") {
		t.Errorf("Run = %v, want it to say the response is too large", err)
	}
	if !strings.Contains(ev.Reason, "proxy") {
		t.Errorf("ConnectFail.Reason = %q, want it to name the proxy", ev.Reason)
	}
	// The proxy's socket buffers hold some more than the client read.
	if n := written.Load(); n > 16<<20 {
		t.Errorf("the proxy wrote %d MiB before the client gave up, want about the 1 MiB bound", n>>20)
	}
}
