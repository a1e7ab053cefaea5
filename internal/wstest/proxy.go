package wstest

import (
	"bufio"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// proxyDialTimeout bounds how long the proxy waits to connect to a target.
const proxyDialTimeout = 5 * time.Second

// Proxy is an HTTP CONNECT proxy for tests, listening on 127.0.0.1. It only
// tunnels to loopback targets. Every response other than 200 is followed by
// closing the client connection; a malformed request gets 400. It is closed automatically by t.Cleanup.
type Proxy struct {
	t          testing.TB
	ln         net.Listener
	user, pass string
	tr         *tracker
	accepted   atomic.Int64
	closeOnce  sync.Once

	mu      sync.Mutex
	targets []string
}

// NewProxy starts a CONNECT proxy on 127.0.0.1:0. With an empty user no
// authentication is required; otherwise requests must carry
// "Proxy-Authorization: Basic base64(user:pass)" and are answered 407 with
// `Proxy-Authenticate: Basic realm="test"` if not. For "CONNECT host:port"
// the proxy answers 403 unless host is a loopback IP or "localhost", 502 if
// the target cannot be reached, and otherwise
// "HTTP/1.1 200 Connection established" and then relays bytes both ways.
// Any other method gets 405. t.Cleanup(p.Close) is registered.
func NewProxy(t testing.TB, user, pass string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("wstest: proxy listen: %v", err)
	}
	p := &Proxy{t: t, ln: ln, user: user, pass: pass, tr: newTracker(t)}
	p.tr.wg.Add(1)
	go p.acceptLoop()
	t.Cleanup(p.Close)
	return p
}

// URL returns "http://127.0.0.1:PORT", without credentials.
func (p *Proxy) URL() string { return "http://" + p.Addr() }

// URLWithAuth returns the proxy URL with the configured credentials as
// userinfo ("http://user:pass@127.0.0.1:PORT"), or URL() if there are none.
func (p *Proxy) URLWithAuth() string {
	if p.user == "" {
		return p.URL()
	}
	u := url.URL{Scheme: "http", User: url.UserPassword(p.user, p.pass), Host: p.Addr()}
	return u.String()
}

// Addr returns the listening address, "127.0.0.1:PORT".
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Conns returns how many client connections have been accepted so far.
func (p *Proxy) Conns() int { return int(p.accepted.Load()) }

// Targets returns the targets of all CONNECT requests received so far, in
// order, including those that were refused (407, 403, 502).
func (p *Proxy) Targets() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.targets...)
}

// Close stops accepting, closes every client and target connection and
// waits for all proxy goroutines to return. It is safe to call more than
// once.
func (p *Proxy) Close() {
	p.closeOnce.Do(func() { p.tr.shutdown(p.ln, "Proxy") })
}

func (p *Proxy) acceptLoop() {
	defer p.tr.wg.Done()
	for {
		nc, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.accepted.Add(1)
		if !p.tr.add(nc) {
			continue
		}
		p.tr.wg.Add(1)
		go p.serve(nc)
	}
}

func (p *Proxy) serve(client net.Conn) {
	defer p.tr.wg.Done()
	defer p.tr.remove(client)
	br := bufio.NewReader(client)
	req, err := http.ReadRequest(br)
	if err != nil {
		if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, net.ErrClosed) {
			writeStatus(client, http.StatusBadRequest, "")
		}
		return
	}
	if req.Method != http.MethodConnect {
		writeStatus(client, http.StatusMethodNotAllowed, "Allow: CONNECT\r\n")
		return
	}
	target := req.Host
	p.mu.Lock()
	p.targets = append(p.targets, target)
	p.mu.Unlock()

	if !p.authorized(req) {
		writeStatus(client, http.StatusProxyAuthRequired, "Proxy-Authenticate: Basic realm=\"test\"\r\n")
		return
	}
	if err := checkLoopbackTarget(target); err != nil {
		writeStatus(client, http.StatusForbidden, "")
		return
	}
	d := net.Dialer{Timeout: proxyDialTimeout, Control: loopbackOnly}
	upstream, err := d.DialContext(p.tr.ctx, "tcp", target)
	if err != nil {
		writeStatus(client, http.StatusBadGateway, "")
		return
	}
	if !p.tr.add(upstream) {
		return
	}
	defer p.tr.remove(upstream)
	if _, err := io.WriteString(client, "HTTP/1.1 200 Connection established\r\n\r\n"); err != nil {
		return
	}
	p.splice(client, br, upstream)
}

// splice relays bytes both ways until both directions have ended. A clean
// end of one direction is propagated as a half-close; an error aborts both.
func (p *Proxy) splice(client net.Conn, clientR io.Reader, upstream net.Conn) {
	up := make(chan struct{})
	p.tr.wg.Add(1)
	go func() {
		defer p.tr.wg.Done()
		defer close(up)
		relay(upstream, clientR, client)
	}()
	relay(client, upstream, upstream)
	<-up
}

// relay copies src to dst. On a clean end of src it half-closes dst; on an
// error it closes both dst and srcConn so the other direction stops too.
func relay(dst net.Conn, src io.Reader, srcConn net.Conn) {
	_, err := io.Copy(dst, src)
	if cw, ok := dst.(interface{ CloseWrite() error }); ok && err == nil {
		if cw.CloseWrite() == nil {
			return
		}
	}
	dst.Close()
	srcConn.Close()
}

// authorized reports whether req carries the configured credentials.
func (p *Proxy) authorized(req *http.Request) bool {
	if p.user == "" {
		return true
	}
	scheme, cred, ok := strings.Cut(req.Header.Get("Proxy-Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Basic") {
		return false
	}
	want := base64.StdEncoding.EncodeToString([]byte(p.user + ":" + p.pass))
	return subtle.ConstantTimeCompare([]byte(strings.TrimSpace(cred)), []byte(want)) == 1
}

// writeStatus writes a bodiless response with Connection: close. extra must
// be complete header lines.
func writeStatus(w io.Writer, status int, extra string) {
	fmt.Fprintf(w, "HTTP/1.1 %d %s\r\n%sContent-Length: 0\r\nConnection: close\r\n\r\n",
		status, http.StatusText(status), extra)
}

// checkLoopbackTarget accepts "host:port" where host is a loopback IP
// literal or "localhost" and port is numeric.
func checkLoopbackTarget(target string) error {
	host, port, err := net.SplitHostPort(target)
	if err != nil {
		return err
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
		return fmt.Errorf("wstest: bad port %q", port)
	}
	if strings.EqualFold(host, "localhost") {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("wstest: %q is not a loopback address", host)
}

// loopbackOnly is a net.Dialer Control hook refusing non-loopback
// addresses, so that a name resolving elsewhere is never dialled.
func loopbackOnly(_, address string, _ syscall.RawConn) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return err
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return errors.New("wstest: refusing to dial non-loopback address " + address)
	}
	return nil
}
