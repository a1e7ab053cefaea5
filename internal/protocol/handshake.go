package protocol

import (
	"bufio"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/textproto"
	"sort"
	"strings"
)

// NewKey returns a Sec-WebSocket-Key: 16 random bytes, base64-encoded.
func NewKey(random [16]byte) string {
	return base64.StdEncoding.EncodeToString(random[:])
}

// AcceptKey returns the Sec-WebSocket-Accept a server must answer key with.
func AcceptKey(key string) string {
	h := sha1.New()
	h.Write([]byte(key))
	h.Write([]byte("258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	return base64.StdEncoding.EncodeToString(h.Sum(nil))
}

// Request is an opening handshake request.
type Request struct {
	Host       string      // the Host header
	RequestURI string      // path and query
	Key        string      // Sec-WebSocket-Key
	Protocols  []string    // Sec-WebSocket-Protocol, in order of preference
	Extensions string      // Sec-WebSocket-Extensions, or ""
	UserAgent  string      // User-Agent, or ""
	Header     http.Header // further headers, already validated
}

// AppendRequest appends the request's bytes: one write puts it on the wire.
// Further headers go out sorted by name, so a request is reproducible.
func AppendRequest(b []byte, r *Request) []byte {
	b = append(b, "GET "...)
	b = append(b, r.RequestURI...)
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(b, r.Host...)
	b = append(b, "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: "...)
	b = append(b, r.Key...)
	b = append(b, "\r\nSec-WebSocket-Version: 13\r\n"...)
	if len(r.Protocols) > 0 {
		b = appendHeader(b, "Sec-WebSocket-Protocol", strings.Join(r.Protocols, ", "))
	}
	if r.Extensions != "" {
		b = appendHeader(b, "Sec-WebSocket-Extensions", r.Extensions)
	}
	if r.UserAgent != "" {
		b = appendHeader(b, "User-Agent", r.UserAgent)
	}
	names := make([]string, 0, len(r.Header))
	for name := range r.Header {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		for _, v := range r.Header[name] {
			b = appendHeader(b, name, v)
		}
	}
	return append(b, "\r\n"...)
}

func appendHeader(b []byte, name, value string) []byte {
	b = append(b, name...)
	b = append(b, ": "...)
	b = append(b, value...)
	return append(b, "\r\n"...)
}

// ErrNotHTTP is wrapped by ReadResponse when the server's answer is not an
// HTTP/1.x response.
var ErrNotHTTP = errors.New("the server's answer is not an HTTP response")

// ReadResponse reads the server's answer to req from br, skipping
// informational (1xx) responses other than 101, as net/http does. Lines may
// end in CRLF or a bare LF. The caller bounds the header's size (the reader
// under br) and time (a deadline). What follows a 101 stays in br: it is
// the first frame. The response's Request is req.
func ReadResponse(br *bufio.Reader, req *http.Request) (*http.Response, error) {
	if req == nil {
		req = &http.Request{Method: http.MethodGet}
	}
	for {
		resp, err := http.ReadResponse(br, req)
		if err != nil {
			var pe *textproto.ProtocolError
			if errors.As(err, &pe) || strings.Contains(err.Error(), "malformed HTTP") {
				return nil, fmt.Errorf("%w: %v", ErrNotHTTP, err)
			}
			return nil, err
		}
		if resp.StatusCode >= 100 && resp.StatusCode < 200 && resp.StatusCode != http.StatusSwitchingProtocols {
			continue
		}
		return resp, nil
	}
}

// CheckResponse checks a 101 answer to a request sent with key and
// protocols: the Upgrade and Connection headers, Sec-WebSocket-Accept, and
// the subprotocol, which must be one offered (or none). It returns the
// subprotocol chosen. Extensions are checked by the caller, who knows what
// was offered.
func CheckResponse(resp *http.Response, key string, protocols []string) (string, error) {
	if resp.StatusCode != http.StatusSwitchingProtocols {
		return "", fmt.Errorf("websocket upgrade failed (code=%d)", resp.StatusCode)
	}
	if !headerHasToken(resp.Header, "Upgrade", "websocket") {
		return "", errors.New("the response has no Upgrade: websocket header")
	}
	if !headerHasToken(resp.Header, "Connection", "upgrade") {
		return "", errors.New("the response has no Connection: Upgrade header")
	}
	accept := resp.Header.Values("Sec-WebSocket-Accept")
	if len(accept) != 1 || strings.TrimSpace(accept[0]) != AcceptKey(key) {
		return "", errors.New("invalid Sec-WebSocket-Accept")
	}
	chosen := resp.Header.Values("Sec-WebSocket-Protocol")
	switch {
	case len(chosen) == 0:
		return "", nil
	case len(chosen) > 1 || strings.Contains(chosen[0], ","):
		return "", errors.New("the server chose more than one subprotocol")
	}
	p := strings.TrimSpace(chosen[0])
	for _, offered := range protocols {
		if p == offered {
			return p, nil
		}
	}
	return "", fmt.Errorf("the server chose subprotocol %q, which was not offered", p)
}

// headerHasToken reports whether a comma-separated header holds token,
// case-insensitively.
func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}
