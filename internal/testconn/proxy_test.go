package testconn_test

import (
	"crypto/sha256"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/lomond-go/lomond/internal/testconn"
)

// recordingServer accepts connections on 127.0.0.1; each one's bytes are
// sent on the channel when it ends, and "ping" is answered "pong".
type recordingServer struct {
	ln   net.Listener
	wg   sync.WaitGroup
	got  chan []byte
	mu   sync.Mutex
	open []net.Conn
}

func newRecordingServer(t *testing.T) *recordingServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &recordingServer{ln: ln, got: make(chan []byte, 16)}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.open = append(s.open, c)
			s.mu.Unlock()
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				defer c.Close()
				var all []byte
				buf := make([]byte, 4096)
				for {
					n, err := c.Read(buf)
					all = append(all, buf[:n]...)
					if string(buf[:n]) == "ping" {
						_, _ = c.Write([]byte("pong"))
					}
					if err != nil {
						s.got <- all
						return
					}
				}
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		s.mu.Lock()
		for _, c := range s.open {
			c.Close()
		}
		s.mu.Unlock()
		s.wg.Wait()
	})
	return s
}

func (s *recordingServer) received(t *testing.T) []byte {
	t.Helper()
	select {
	case b := <-s.got:
		return b
	case <-time.After(10 * time.Second):
		t.Fatal("the server's connection did not end")
	}
	return nil
}

func newProxy(t *testing.T, target string, opts testconn.ProxyOptions) *testconn.Proxy {
	t.Helper()
	p, err := testconn.NewProxy(target, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func TestProxyForwardsBothWays(t *testing.T) {
	srv := newRecordingServer(t)
	p := newProxy(t, srv.ln.Addr().String(), testconn.ProxyOptions{Buffer: 16 << 10})
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	if got := readN(t, c, 4); string(got) != "pong" {
		t.Fatalf("read %q", got)
	}
	c.Close()
	if got := srv.received(t); string(got) != "ping" {
		t.Fatalf("server got %q", got)
	}
	if p.Accepted() != 1 || p.Cuts() != 0 {
		t.Fatalf("accepted %d, cuts %d", p.Accepted(), p.Cuts())
	}
}

func TestProxyCutsAfterTheChosenBytes(t *testing.T) {
	srv := newRecordingServer(t)
	p := newProxy(t, srv.ln.Addr().String(), testconn.ProxyOptions{
		CutAfter: func(n int) int64 { return int64(5 + n) },
		Record:   true,
	})
	for i, want := range []string{"01234", "012345"} {
		c, err := net.Dial("tcp", p.Addr())
		if err != nil {
			t.Fatal(err)
		}
		// The cut falls inside this write.
		if _, err := c.Write([]byte("0123456789")); err != nil {
			t.Fatal(err)
		}
		if got := srv.received(t); string(got) != want {
			t.Fatalf("conn %d: server got %q, want %q", i, got, want)
		}
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("conn %d: read after the cut: %v, want the connection closed", i, err)
		}
		c.Close()
	}
	if p.Cuts() != 2 {
		t.Fatalf("cuts %d", p.Cuts())
	}
	up := p.Upstream()
	if len(up) != 2 {
		t.Fatalf("Upstream = %+v", up)
	}
	for i, want := range []string{"01234", "012345"} {
		if string(up[i].Head) != want || up[i].N != int64(len(want)) || up[i].SHA256 != sha256.Sum256([]byte(want)) {
			t.Fatalf("Upstream[%d] = %+v, want %q", i, up[i], want)
		}
	}
}

func TestProxyPauseHoldsTraffic(t *testing.T) {
	srv := newRecordingServer(t)
	p := newProxy(t, srv.ln.Addr().String(), testconn.ProxyOptions{})
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// A first exchange so that the proxy has dialled the server.
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	readN(t, c, 4)
	p.Pause()
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	// Nothing comes back while paused (a generous window to be sure the
	// ping had time to cross an unpaused proxy).
	_ = c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	if n, err := c.Read(make([]byte, 4)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read while paused = %d, %v", n, err)
	}
	p.Resume()
	if got := readN(t, c, 4); string(got) != "pong" {
		t.Fatalf("read after Resume %q", got)
	}
}

func TestProxyCloseEndsConnections(t *testing.T) {
	srv := newRecordingServer(t)
	p, err := testconn.NewProxy(srv.ln.Addr().String(), testconn.ProxyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	readN(t, c, 4)
	p.Pause() // a paused forwarder must end too
	p.Close()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadAll(c); err != nil && !isReset(err) {
		t.Fatalf("read after the proxy closed: %v", err)
	}
	srv.received(t)
	if _, err := net.Dial("tcp", p.Addr()); err == nil {
		t.Fatal("a closed proxy accepted a connection")
	}
}

// isReset reports a connection reset, which a close with unread data gives.
func isReset(err error) bool {
	var oe *net.OpError
	return errors.As(err, &oe) && !oe.Timeout()
}
