package lomondtest

import (
	"crypto/tls"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// netConn is every connection the kit accepts, as http.Server and the
// websocket engine see it. It serialises writes (raw bytes a fault writes
// never split a frame the engine writes), can trickle them one byte at a
// time, and can end the TCP connection without ceremony (Drop) or with a
// reset (RST).
type netConn struct {
	net.Conn              // TCP, or TLS over it
	tcp      *net.TCPConn // the transport, for Drop and Reset
	closing  chan struct{}
	once     sync.Once
	wmu      sync.Mutex
	trickle  atomic.Int64 // pause between bytes in nanoseconds; 0: off
	sniff    closeSniffer // the client's close frame
	onClose  func()       // set before the connection is handed out
}

func newNetConn(tcp *net.TCPConn, tlsConfig *tls.Config) *netConn {
	var top net.Conn = tcp
	if tlsConfig != nil {
		top = tls.Server(tcp, tlsConfig)
	}
	return &netConn{Conn: top, tcp: tcp, closing: make(chan struct{})}
}

// Read reads from the client, watching for its close frame.
func (c *netConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.sniff.feed(p[:n])
	return n, err
}

// Write writes p whole, or one byte at a time while trickling.
func (c *netConn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	pause := time.Duration(c.trickle.Load())
	if pause <= 0 {
		return c.Conn.Write(p)
	}
	t := time.NewTimer(pause)
	defer t.Stop()
	for i := range p {
		if i > 0 {
			t.Reset(pause)
			select {
			case <-t.C:
			case <-c.closing:
				return i, net.ErrClosed
			}
		}
		if _, err := c.Conn.Write(p[i : i+1]); err != nil {
			return i, err
		}
	}
	return len(p), nil
}

// Close closes the connection (with a TLS close_notify for TLS).
func (c *netConn) Close() error {
	c.markClosed()
	return c.Conn.Close()
}

// drop closes the TCP connection as a crashed peer would: no close frame,
// no TLS close_notify. With reset, the close sends RST instead of FIN.
func (c *netConn) drop(reset bool) {
	c.markClosed()
	if reset {
		_ = c.tcp.SetLinger(0)
	}
	_ = c.tcp.Close()
}

func (c *netConn) markClosed() {
	c.once.Do(func() {
		close(c.closing)
		if c.onClose != nil {
			c.onClose()
		}
	})
}

func (c *netConn) isClosed() bool {
	select {
	case <-c.closing:
		return true
	default:
		return false
	}
}

// listener wraps every accepted TCP connection in a netConn and hands it to
// track, which refuses it (false) once the server is stopping.
type listener struct {
	net.Listener
	tlsConfig *tls.Config
	track     func(*netConn) bool
}

func (l *listener) Accept() (net.Conn, error) {
	for {
		nc, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		c := newNetConn(nc.(*net.TCPConn), l.tlsConfig)
		if l.track(c) {
			return c, nil
		}
		c.drop(false)
	}
}
