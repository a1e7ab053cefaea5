package lomond

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/lomond-go/lomond/events"
)

// handshake sends the upgrade request over the session's transport and
// validates the response, bounded by the handshake timeout.
func (s *session) handshake(ctx context.Context) (*websocket.Conn, *http.Response, error) {
	cfg := s.cfg
	hctx, cancel := context.WithTimeoutCause(ctx, cfg.handshakeTimeout, ErrHandshakeTimeout)
	defer cancel()
	_ = s.wire.SetDeadline(time.Now().Add(cfg.handshakeTimeout))

	var given atomic.Bool
	give := func(context.Context, string, string) (net.Conn, error) {
		if given.Swap(true) {
			return nil, errors.New("lomond: the handshake needs a second connection (redirects are not followed)")
		}
		return s.wire, nil
	}
	tr := &http.Transport{
		DialContext:            give,
		DialTLSContext:         give,
		DisableCompression:     true,
		MaxResponseHeaderBytes: 1 << 20,
	}
	defer tr.CloseIdleConnections()
	rt := upgradeRoundTripper{rt: tr, wire: s.wire}
	client := &http.Client{
		Transport: rt,
		// A redirect is reported as Rejected with its Location header.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	header := s.target.header.Clone()
	header.Set("User-Agent", cfg.userAgent)
	opts := &websocket.DialOptions{
		HTTPClient:     client,
		HTTPHeader:     header,
		Host:           s.target.host,
		Subprotocols:   s.target.protocols,
		OnPingReceived: s.onPing,
		OnPongReceived: s.onPong,
	}
	switch cfg.compression {
	case CompressionContextTakeover:
		opts.CompressionMode = websocket.CompressionContextTakeover
	case CompressionNoContextTakeover:
		// The engine keeps its own no-takeover offer even when the server
		// answers without server_no_context_takeover (tornado does), and
		// then resets its decompressor while the server keeps its context:
		// corrupt input from the second message on. Dialing in takeover mode
		// makes the engine follow the server's answer; the offer itself is
		// rewritten to ask for no context takeover.
		opts.CompressionMode = websocket.CompressionContextTakeover
		rt.extensions = "permessage-deflate; client_no_context_takeover; server_no_context_takeover"
	}
	client.Transport = rt
	conn, resp, err := websocket.Dial(hctx, s.target.url.String(), opts)
	if err == nil {
		_ = s.wire.SetDeadline(noDeadline)
		return conn, resp, nil
	}
	if context.Cause(hctx) == ErrHandshakeTimeout || (isTimeout(err) && ctx.Err() == nil) {
		err = fmt.Errorf("%w after %v: %v", ErrHandshakeTimeout, cfg.handshakeTimeout, err)
	}
	return nil, resp, err
}

// upgradeRoundTripper expires the read deadline once a 101 arrives. When the
// engine refuses a 101 (a bad Sec-WebSocket-Accept, say) it reads up to 1 KiB
// of the response body for its error, under a 3 s timer; for a 101 that body
// is the raw connection. The expired deadline makes that read return at once;
// an accepted handshake clears the deadline before anything else is read.
//
// It also replaces the extension offer when extensions is set.
type upgradeRoundTripper struct {
	rt         http.RoundTripper
	wire       *wire
	extensions string
}

func (u upgradeRoundTripper) RoundTrip(req *http.Request) (*http.Response, error) {
	if u.extensions != "" {
		req = req.Clone(req.Context())
		req.Header.Set("Sec-WebSocket-Extensions", u.extensions)
	}
	resp, err := u.rt.RoundTrip(req)
	if err == nil && resp.StatusCode == http.StatusSwitchingProtocols {
		_ = u.wire.SetReadDeadline(time.Now())
	}
	return resp, err
}

// handshakeFailed reports a failed opening handshake: Rejected when the
// server answered, then Disconnected.
func (s *session) handshakeFailed(ctx context.Context, resp *http.Response, err error) error {
	s.wire.Close()
	if resp != nil {
		rej := rejection(resp, err)
		s.state.Store(int32(StateIdle))
		s.emit(&events.Rejected{Meta: events.Stamp(), StatusCode: rej.StatusCode, Status: rej.Status,
			Header: rej.Header, Body: readBody(resp), Reason: rej.Reason, RetryAfter: rej.RetryAfter,
			HasRetryAfter: rej.HasRetryAfter, Err: err})
		s.disconnected("closed", true, nil)
		return rej
	}
	reason := "handshake failed; " + err.Error()
	switch {
	case errors.Is(err, ErrHandshakeTimeout):
		reason = "handshake timeout; no response within " + s.cfg.handshakeTimeout.String()
	case ctx.Err() != nil:
		reason = "cancelled during the handshake"
		err = fmt.Errorf("%w: %v", ctx.Err(), err)
	}
	s.disconnected(reason, false, err)
	return err
}

func readBody(resp *http.Response) []byte {
	if resp.Body == nil {
		return nil
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	return b
}

func rejection(resp *http.Response, err error) *RejectedError {
	rej := &RejectedError{StatusCode: resp.StatusCode, Status: resp.Status, Header: redactHeader(resp.Header), Err: err}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		rej.Reason = fmt.Sprintf("websocket upgrade failed (code=%d)", resp.StatusCode)
	} else {
		rej.Reason = strings.TrimPrefix(err.Error(), "failed to WebSocket dial: ")
	}
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
