package protocol

import (
	"bufio"
	"bytes"
	"math/rand/v2"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzHandshakeResponse: whatever a server answers, reading and checking it
// never panics, and an accepted answer really carries the right Accept.
func FuzzHandshakeResponse(f *testing.F) {
	const key = "dGhlIHNhbXBsZSBub25jZQ=="
	accept := AcceptKey(key)
	f.Add([]byte("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " + accept + "\r\n\r\n\x81\x02hi"))
	f.Add([]byte("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 101 Switching Protocols\nUpgrade: websocket\nConnection: upgrade\nSec-WebSocket-Accept: " + accept + "\nSec-WebSocket-Protocol: chat\n\n"))
	f.Add([]byte("HTTP/1.1 403 Forbidden\r\nContent-Length: 5\r\n\r\nnope!"))
	f.Add([]byte("HTTP/1.1 101 OK\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: wrong\r\n\r\n"))
	f.Add([]byte("JUNK\r\n\r\n"))
	f.Add([]byte("HTTP/1.1 101\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		br := bufio.NewReader(bytes.NewReader(b))
		resp, err := ReadResponse(br, nil)
		if err != nil {
			return
		}
		if resp.Body != nil {
			resp.Body.Close()
		}
		proto, err := CheckResponse(resp, key, []string{"chat", "v2"})
		if err != nil {
			return
		}
		if resp.StatusCode != 101 || strings.TrimSpace(resp.Header.Get("Sec-WebSocket-Accept")) != accept {
			t.Fatalf("accepted a response with status %d and accept %q", resp.StatusCode, resp.Header.Get("Sec-WebSocket-Accept"))
		}
		if proto != "" && proto != "chat" && proto != "v2" {
			t.Fatalf("accepted subprotocol %q, which was not offered", proto)
		}
	})
}

// FuzzUTF8: fed in any pieces, the streaming check agrees with utf8.Valid
// on the whole, and fails no later than the piece holding the first bad
// byte can no longer be valid.
func FuzzUTF8(f *testing.F) {
	for _, s := range []string{"", "hello", "κόσμε", "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80\x65\x64\x69\x74\x65\x64",
		"\xf4\x90\x80\x80", "\xed\x9f\xbf", "\xef\xbf\xbf", "a\xc3", "\xf0\x9f\x98\x80 smile", "\x80", "\xc0\xaf"} {
		f.Add([]byte(s), uint64(1))
		f.Add([]byte(s), uint64(7))
	}
	f.Fuzz(func(t *testing.T, b []byte, seed uint64) {
		r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
		var v UTF8
		ok := true
		for rest := b; len(rest) > 0 && ok; {
			n := 1 + r.IntN(len(rest))
			ok = v.Write(rest[:n])
			rest = rest[n:]
		}
		got := ok && v.Done()
		if want := utf8.Valid(b); got != want {
			t.Fatalf("streaming check of %q = %v, utf8.Valid = %v", b, got, want)
		}
	})
}

// FuzzParseHeader: any two to fourteen bytes parse without a panic, and an
// accepted header obeys the rules it checks.
func FuzzParseHeader(f *testing.F) {
	f.Add([]byte{0x81, 0x05}, false)
	f.Add([]byte{0x82, 0x7e, 0x01, 0x00}, false)
	f.Add([]byte{0x82, 0x7f, 0x80, 0, 0, 0, 0, 0, 0, 1}, false)
	f.Add([]byte{0xc1, 0x05}, true)
	f.Add([]byte{0x09, 0x05}, false)
	f.Fuzz(func(t *testing.T, b []byte, rsv1 bool) {
		if len(b) < 2 {
			return
		}
		n := HeaderSize(b)
		if len(b) < n {
			return
		}
		h, err := ParseHeader(b[:n], rsv1)
		if err != nil {
			if err.Code != CloseProtocolError {
				t.Fatalf("violation with code %d", err.Code)
			}
			return
		}
		if b[1]&0x80 != 0 || h.Length>>63 != 0 || (h.Rsv1 && !rsv1) || b[0]&0x30 != 0 {
			t.Fatalf("accepted header % x", b[:n])
		}
		if h.IsControl() && (h.Length > MaxControlPayload || !h.Fin) {
			t.Fatalf("accepted control header % x", b[:n])
		}
	})
}
