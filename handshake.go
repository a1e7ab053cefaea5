package lomond

import (
	"bufio"
	"context"
	cryptorand "crypto/rand"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/lomond-go/lomond/events"
	"github.com/lomond-go/lomond/internal/protocol"
)

// handshakeBufferSize is the buffer the upgrade response is read through;
// what follows the response in it moves to the session's read buffer
// (readbuf.go).
const handshakeBufferSize = 2 << 10

// handshakeResult is what an accepted opening handshake agreed.
type handshakeResult struct {
	resp     *http.Response
	protocol string
	deflate  *protocol.DeflateParams // nil: no compression
}

// upgradeError is a response the client refuses: a Rejected event.
type upgradeError struct {
	resp *http.Response
	err  error
}

func (e *upgradeError) Error() string { return e.err.Error() }
func (e *upgradeError) Unwrap() error { return e.err }

// handshake sends the upgrade request and reads the response through the
// session's buffered reader, bounded by the handshake timeout. Whatever
// follows the 101 in the same read stays buffered: the first frame.
func (s *session) handshake() (*handshakeResult, error) {
	cfg := s.cfg
	// Until the writer starts, the session goroutine owns both deadlines;
	// the read deadline goes through setReadDeadline, so that a
	// cancellation posted meanwhile is not undone.
	deadline := time.Now().Add(cfg.handshakeTimeout)
	_ = s.conn.SetWriteDeadline(deadline)
	s.setReadDeadline(deadline)

	var random [16]byte
	_, _ = cryptorand.Read(random[:])
	key := protocol.NewKey(random)
	host := s.target.host
	if host == "" {
		host = s.target.url.Host
	}
	req := protocol.Request{
		Host:       host,
		RequestURI: s.target.url.RequestURI(),
		Key:        key,
		Protocols:  s.target.protocols,
		UserAgent:  cfg.userAgent,
		Header:     s.target.header,
	}
	if cfg.jar != nil {
		req.Header = withJarCookies(req.Header, cfg.jar.Cookies(asHTTPURL(s.target.url)))
	}
	offer := cfg.deflateOffer()
	if offer != nil {
		req.Extensions = offer.String()
	}
	if _, err := s.conn.Write(protocol.AppendRequest(nil, &req)); err != nil {
		return nil, s.handshakeIOError(err)
	}

	s.cr = &connReader{conn: s.conn, limit: maxResponseHeader}
	br := bufio.NewReaderSize(s.cr, handshakeBufferSize)
	resp, err := protocol.ReadResponse(br, sentRequest(&req, s.target.url))
	if err != nil {
		return nil, s.handshakeIOError(err)
	}
	if cfg.jar != nil {
		// A 101 and a rejection alike: a sticky session's cookie may come
		// with a 503 that asks to retry.
		if cookies := resp.Cookies(); len(cookies) > 0 {
			cfg.jar.SetCookies(asHTTPURL(s.target.url), cookies)
		}
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		// The body (for the Rejected event) is read under the same
		// deadline and bound as the header.
		return nil, &upgradeError{resp: resp, err: fmt.Errorf("websocket upgrade failed (code=%d)", resp.StatusCode)}
	}
	res := &handshakeResult{resp: resp}
	if res.protocol, err = protocol.CheckResponse(resp, key, s.target.protocols); err != nil {
		return nil, &upgradeError{resp: resp, err: err}
	}
	exts := resp.Header.Values("Sec-WebSocket-Extensions")
	if offer == nil {
		if len(exts) > 0 {
			return nil, &upgradeError{resp: resp, err: errors.New("the server answered an extension that was not offered")}
		}
	} else {
		p, enabled, err := protocol.NegotiateDeflate(*offer, exts)
		if err != nil {
			return nil, &upgradeError{resp: resp, err: err}
		}
		if enabled {
			res.deflate = &p
		}
	}
	s.cr.limit = -1
	s.adoptHandshakeReader(br)
	_ = s.conn.SetWriteDeadline(noDeadline)
	s.setReadDeadline(noDeadline)
	return res, nil
}

// withJarCookies returns header with cookies added to its Cookie header,
// after any cookies already there (as net/http's client adds a jar's). The
// caller's header is not changed.
func withJarCookies(header http.Header, cookies []*http.Cookie) http.Header {
	if len(cookies) == 0 {
		return header
	}
	var b strings.Builder
	for _, v := range header.Values("Cookie") {
		if v != "" {
			if b.Len() > 0 {
				b.WriteString("; ")
			}
			b.WriteString(v)
		}
	}
	for _, c := range cookies {
		if s := (&http.Cookie{Name: c.Name, Value: c.Value, Quoted: c.Quoted}).String(); s != "" {
			if b.Len() > 0 {
				b.WriteString("; ")
			}
			b.WriteString(s)
		}
	}
	h := header.Clone()
	if h == nil {
		h = http.Header{}
	}
	h.Set("Cookie", b.String())
	return h
}

// handshakeIOError names a handshake that failed on the transport: the
// caller's cancellation, a timeout, or a lost connection.
func (s *session) handshakeIOError(err error) error {
	switch {
	case s.takeMail().cancelled || s.cancelled:
		return &handshakeCancelled{err: err}
	case isTimeout(err):
		return fmt.Errorf("%w after %v", ErrHandshakeTimeout, s.cfg.handshakeTimeout)
	case errors.Is(err, io.EOF):
		return &handshakeLost{err: fmt.Errorf("lomond: connection closed before the upgrade response: %w", io.ErrUnexpectedEOF)}
	case isConnLoss(err):
		return &handshakeLost{err: fmt.Errorf("lomond: connection lost before the upgrade response: %w", err)}
	}
	return err
}

// handshakeCancelled is a handshake cut short by the caller's context.
type handshakeCancelled struct{ err error }

func (e *handshakeCancelled) Error() string { return "cancelled during the handshake" }
func (e *handshakeCancelled) Unwrap() error { return context.Canceled }

// handshakeLost is a connection that ended during the opening handshake.
type handshakeLost struct{ err error }

func (e *handshakeLost) Error() string { return e.err.Error() }
func (e *handshakeLost) Unwrap() error { return e.err }

// isConnLoss reports whether err is the transport's end (reset, broken
// pipe, closed): a lost connection rather than a broken handshake.
func isConnLoss(err error) bool {
	return errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNABORTED) || errors.Is(err, net.ErrClosed)
}

// handshakeFailed ends a session whose opening handshake failed: Rejected
// when the server answered and the answer was refused, then Disconnected.
func (s *session) handshakeFailed(err error) *ending {
	var ue *upgradeError
	if errors.As(err, &ue) {
		rej := rejection(ue.resp, ue.err)
		body := readBody(ue.resp)
		s.conn.Close()
		s.state.Store(int32(StateIdle))
		s.emit(&events.Rejected{Meta: events.Stamp(), StatusCode: rej.StatusCode, Status: rej.Status,
			Header: rej.Header, Body: body, Reason: rej.Reason, RetryAfter: rej.RetryAfter,
			HasRetryAfter: rej.HasRetryAfter, Err: ue.err})
		return &ending{result: rej, reason: "closed", graceful: true}
	}
	s.conn.Close()
	var hc *handshakeCancelled
	var hl *handshakeLost
	switch {
	case errors.As(err, &hc):
		return &ending{result: err, reason: "cancelled during the handshake", err: err}
	case errors.Is(err, ErrHandshakeTimeout):
		return &ending{result: err, reason: "handshake timeout", err: err}
	case errors.As(err, &hl):
		return &ending{result: hl.err, reason: "connection lost", err: hl.err}
	}
	return &ending{result: err, reason: "handshake failed", err: err}
}

func readBody(resp *http.Response) []byte {
	if resp.Body == nil {
		return nil
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	return b
}

func rejection(resp *http.Response, err error) *RejectedError {
	rej := &RejectedError{StatusCode: resp.StatusCode, Status: resp.Status, Header: redactHeader(resp.Header), Err: err, Reason: err.Error()}
	rej.RetryAfter, rej.HasRetryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
	return rej
}

// parseRetryAfter reads a Retry-After value: delay-seconds or an HTTP date
// (a past date means 0).
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	var secs int64
	if _, err := fmt.Sscanf(v, "%d", &secs); err == nil && fmt.Sprint(secs) == v {
		if secs < 0 {
			return 0, false
		}
		if secs > int64(math.MaxInt64/time.Second) {
			return time.Duration(math.MaxInt64), true // Persist bounds it
		}
		return time.Duration(secs) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}

// sentRequest is the upgrade request as an *http.Request, for the Ready
// and Rejected events' Response.Request: what was sent, headers included.
func sentRequest(r *protocol.Request, u *url.URL) *http.Request {
	h := r.Header.Clone()
	if h == nil {
		h = http.Header{}
	}
	h.Set("Upgrade", "websocket")
	h.Set("Connection", "Upgrade")
	h.Set("Sec-WebSocket-Key", r.Key)
	h.Set("Sec-WebSocket-Version", "13")
	if len(r.Protocols) > 0 {
		h.Set("Sec-WebSocket-Protocol", strings.Join(r.Protocols, ", "))
	}
	if r.Extensions != "" {
		h.Set("Sec-WebSocket-Extensions", r.Extensions)
	}
	if r.UserAgent != "" {
		h.Set("User-Agent", r.UserAgent)
	}
	return &http.Request{Method: http.MethodGet, URL: u, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: h, Host: r.Host, RequestURI: r.RequestURI}
}
