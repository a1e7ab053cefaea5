package testconn

import (
	"crypto/sha256"
	"hash"
	"net"
	"sync"
)

// ProxyOptions configures a Proxy.
type ProxyOptions struct {
	// CutAfter, if set, gives for the n-th accepted connection (from 0)
	// how many bytes from the client the proxy forwards before it cuts the
	// connection (closes both sides, wherever that falls in a frame); a
	// negative value never cuts.
	CutAfter func(n int) int64
	// Buffer, if positive, sets the TCP buffers of the proxy's sockets
	// (the accepted one's receive buffer and the upstream one's send
	// buffer), so that a pause backs the client's writes up soon.
	Buffer int
	// Record keeps a digest of the bytes forwarded from each client to
	// the server (Upstream): their count, their SHA-256 and their first
	// bytes, so that a test can check them against what the client wrote
	// without holding them twice.
	Record bool
}

// Proxy forwards TCP connections accepted on 127.0.0.1 to a target, both
// ways, byte for byte. Pause stops the forwarding (so the client's writes
// back up and the server's messages wait) until Resume; a connection can be
// cut after a chosen amount of traffic. Close stops it and waits for its
// goroutines.
type Proxy struct {
	addr   string
	target string
	opts   ProxyOptions
	ln     net.Listener
	wg     sync.WaitGroup

	mu       sync.Mutex
	changed  notifier // paused, closed
	paused   bool
	closed   bool
	accepted int
	cuts     int
	conns    map[net.Conn]struct{}
	upstream []*upstream // per accepted connection, with Record
}

// upstreamHead is how many of the first bytes forwarded Upstream keeps.
const upstreamHead = 8 << 10

type upstream struct {
	head []byte
	n    int64
	sum  hash.Hash
}

// Forwarded is what the proxy forwarded from a client to the server on one
// connection.
type Forwarded struct {
	// Head holds the first bytes (up to 8 KiB): the opening request.
	Head []byte
	// N is how many bytes were forwarded, and SHA256 their digest.
	N      int64
	SHA256 [sha256.Size]byte
}

// NewProxy listens on 127.0.0.1 and forwards every connection to target
// ("host:port").
func NewProxy(target string, opts ProxyOptions) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{addr: ln.Addr().String(), target: target, opts: opts, ln: ln, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.acceptLoop()
	return p, nil
}

// Addr returns the proxy's address, "127.0.0.1:port".
func (p *Proxy) Addr() string { return p.addr }

// Pause stops forwarding, both ways, until Resume: the bytes in flight wait
// in the proxy, and the senders' buffers fill.
func (p *Proxy) Pause() {
	p.mu.Lock()
	p.paused = true
	p.changed.signal()
	p.mu.Unlock()
}

// Resume lets forwarding go on after Pause.
func (p *Proxy) Resume() {
	p.mu.Lock()
	p.paused = false
	p.changed.signal()
	p.mu.Unlock()
}

// Accepted returns how many connections the proxy accepted.
func (p *Proxy) Accepted() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.accepted
}

// Cuts returns how many connections the proxy cut (CutAfter).
func (p *Proxy) Cuts() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cuts
}

// Upstream returns, with Record, what was forwarded from the client to the
// server on each accepted connection, in the order accepted.
func (p *Proxy) Upstream() []Forwarded {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]Forwarded, len(p.upstream))
	for i, u := range p.upstream {
		out[i] = Forwarded{Head: append([]byte(nil), u.head...), N: u.n}
		u.sum.Sum(out[i].SHA256[:0])
	}
	return out
}

// Close stops accepting, closes every connection and waits for the
// proxy's goroutines.
func (p *Proxy) Close() error {
	err := p.ln.Close()
	p.mu.Lock()
	p.closed = true
	p.changed.signal()
	for c := range p.conns {
		_ = c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
	return err
}

// track registers c to be closed by Close; it reports false (and closes c)
// when the proxy is already closed.
func (p *Proxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		_ = c.Close()
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *Proxy) untrack(c net.Conn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
}

func (p *Proxy) acceptLoop() {
	defer p.wg.Done()
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		n := p.accepted
		p.accepted++
		p.upstream = append(p.upstream, &upstream{sum: sha256.New()})
		p.mu.Unlock()
		if !p.track(client) {
			return
		}
		p.wg.Add(1)
		go p.serve(n, client)
	}
}

// serve connects client to the target and forwards until either side ends,
// the cut, or Close.
func (p *Proxy) serve(n int, client net.Conn) {
	defer p.wg.Done()
	defer p.untrack(client)
	defer client.Close()
	server, err := net.Dial("tcp", p.target)
	if err != nil {
		return
	}
	if !p.track(server) {
		return
	}
	defer p.untrack(server)
	defer server.Close()
	if p.opts.Buffer > 0 {
		if tc, ok := client.(*net.TCPConn); ok {
			_ = tc.SetReadBuffer(p.opts.Buffer)
		}
		if tc, ok := server.(*net.TCPConn); ok {
			_ = tc.SetWriteBuffer(p.opts.Buffer)
		}
	}
	cutAt := int64(-1)
	if p.opts.CutAfter != nil {
		cutAt = p.opts.CutAfter(n)
	}
	done := make(chan struct{}, 2)
	go func() {
		p.forward(server, client, cutAt, n)
		done <- struct{}{}
	}()
	p.forward(client, server, -1, -1)
	done <- struct{}{}
	// Either direction ending ends both: the other one's Read fails.
	_ = client.Close()
	_ = server.Close()
	<-done
	<-done
}

// forward copies src to dst while the proxy is not paused; with cutAt >= 0
// it cuts both after cutAt bytes. With Record, what it forwarded is kept
// as the upstream of connection record (unless it is -1).
func (p *Proxy) forward(dst, src net.Conn, cutAt int64, record int) {
	defer dst.Close()
	defer src.Close()
	buf := make([]byte, 32<<10)
	var total int64
	for {
		if !p.waitRunning() {
			return
		}
		n, err := src.Read(buf)
		if n > 0 {
			if !p.waitRunning() {
				return
			}
			chunk := buf[:n]
			cut := cutAt >= 0 && total+int64(n) >= cutAt
			if cut {
				chunk = buf[:cutAt-total]
			}
			m, werr := dst.Write(chunk)
			if p.opts.Record && record >= 0 {
				p.mu.Lock()
				u := p.upstream[record]
				if len(u.head) < upstreamHead {
					u.head = append(u.head, chunk[:min(m, upstreamHead-len(u.head))]...)
				}
				u.n += int64(m)
				u.sum.Write(chunk[:m])
				p.mu.Unlock()
			}
			if werr != nil {
				return
			}
			total += int64(len(chunk))
			if cut {
				p.mu.Lock()
				p.cuts++
				p.mu.Unlock()
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// waitRunning waits while the proxy is paused; it reports false once the
// proxy is closed.
func (p *Proxy) waitRunning() bool {
	for {
		p.mu.Lock()
		closed, paused := p.closed, p.paused
		ch := p.changed.wait()
		p.mu.Unlock()
		switch {
		case closed:
			return false
		case !paused:
			return true
		}
		<-ch
	}
}
