package wstest

import (
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// websocketGUID is the fixed GUID of RFC 6455 section 1.3.
const websocketGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// AcceptKey returns the Sec-WebSocket-Accept value for a Sec-WebSocket-Key:
// base64(SHA-1(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")).
func AcceptKey(key string) string {
	sum := sha1.Sum([]byte(key + websocketGUID))
	return base64.StdEncoding.EncodeToString(sum[:])
}

// CheckUpgrade reports whether req is a valid RFC 6455 opening handshake:
// a GET over HTTP/1.1 or later with Upgrade: websocket, Connection: Upgrade,
// Sec-WebSocket-Version: 13 and a Sec-WebSocket-Key that is 16 bytes in
// base64. It returns an error describing the first problem found.
func CheckUpgrade(req *http.Request) error {
	if req == nil {
		return errors.New("wstest: nil request")
	}
	if req.Method != http.MethodGet {
		return fmt.Errorf("wstest: handshake method is %q, want GET", req.Method)
	}
	if !req.ProtoAtLeast(1, 1) {
		return fmt.Errorf("wstest: handshake protocol is %s, want HTTP/1.1 or later", req.Proto)
	}
	if !headerHasToken(req.Header, "Upgrade", "websocket") {
		return fmt.Errorf("wstest: Upgrade header %q lacks websocket", req.Header.Values("Upgrade"))
	}
	if !headerHasToken(req.Header, "Connection", "upgrade") {
		return fmt.Errorf("wstest: Connection header %q lacks upgrade", req.Header.Values("Connection"))
	}
	if v := req.Header.Get("Sec-WebSocket-Version"); v != "13" {
		return fmt.Errorf("wstest: Sec-WebSocket-Version is %q, want 13", v)
	}
	key := req.Header.Values("Sec-WebSocket-Key")
	if len(key) != 1 {
		return fmt.Errorf("wstest: got %d Sec-WebSocket-Key headers, want 1", len(key))
	}
	raw, err := base64.StdEncoding.DecodeString(key[0])
	if err != nil || len(raw) != 16 {
		return fmt.Errorf("wstest: Sec-WebSocket-Key %q is not 16 bytes in base64", key[0])
	}
	return nil
}

// headerHasToken reports whether the comma-separated values of header name
// contain token, compared case-insensitively.
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

// firstProtocol returns the first subprotocol offered in
// Sec-WebSocket-Protocol, or "" if none is offered.
func firstProtocol(req *http.Request) string {
	for _, v := range req.Header.Values("Sec-WebSocket-Protocol") {
		for _, t := range strings.Split(v, ",") {
			if t = strings.TrimSpace(t); t != "" {
				return t
			}
		}
	}
	return ""
}
