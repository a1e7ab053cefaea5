package protocol

import (
	"bufio"
	"errors"
	"net/http"
	"strings"
	"testing"
)

// The opening handshake, sans I/O: the request's bytes, and the response
// read from a bufio.Reader over a string and checked.

func TestHandshakeKeys(t *testing.T) {
	t.Run("AcceptKeyOfTheRFCExample", func(t *testing.T) {
		// RFC 6455 section 1.3.
		if got := AcceptKey("dGhlIHNhbXBsZSBub25jZQ=="); got != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" {
			t.Errorf("AcceptKey = %q", got)
		}
	})
	t.Run("NewKeyIsSixteenBytesInBase64", func(t *testing.T) {
		var r [16]byte
		copy(r[:], "the sample nonce")
		if got := NewKey(r); got != "dGhlIHNhbXBsZSBub25jZQ==" {
			t.Errorf("NewKey = %q", got)
		}
	})
}

func TestHandshakeRequest(t *testing.T) {
	t.Run("MinimalRequest", func(t *testing.T) {
		got := string(AppendRequest(nil, &Request{Host: "127.0.0.1:8080", RequestURI: "/chat?x=1", Key: "k=="}))
		want := "GET /chat?x=1 HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
			"Sec-WebSocket-Key: k==\r\nSec-WebSocket-Version: 13\r\n\r\n"
		if got != want {
			t.Errorf("request:\n%q\nwant\n%q", got, want)
		}
	})
	t.Run("OptionalHeadersAndFurtherHeadersSorted", func(t *testing.T) {
		got := string(AppendRequest(nil, &Request{
			Host: "[::1]", RequestURI: "/", Key: "k==",
			Protocols: []string{"v2", "v1"}, Extensions: "permessage-deflate", UserAgent: "ua/1",
			Header: http.Header{"X-B": {"2", "3"}, "X-A": {"1"}},
		}))
		want := "GET / HTTP/1.1\r\nHost: [::1]\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
			"Sec-WebSocket-Key: k==\r\nSec-WebSocket-Version: 13\r\n" +
			"Sec-WebSocket-Protocol: v2, v1\r\nSec-WebSocket-Extensions: permessage-deflate\r\nUser-Agent: ua/1\r\n" +
			"X-A: 1\r\nX-B: 2\r\nX-B: 3\r\n\r\n"
		if got != want {
			t.Errorf("request:\n%q\nwant\n%q", got, want)
		}
	})
	t.Run("ParsesAsAnHTTPRequest", func(t *testing.T) {
		b := AppendRequest(nil, &Request{Host: "127.0.0.1", RequestURI: "/", Key: "k=="})
		req, err := http.ReadRequest(bufio.NewReader(strings.NewReader(string(b))))
		if err != nil {
			t.Fatal(err)
		}
		if req.Header.Get("Sec-WebSocket-Key") != "k==" || req.Host != "127.0.0.1" {
			t.Errorf("parsed request: %+v", req)
		}
	})
}

// upgrade101 is a valid 101 answer to key, with extra header lines.
func upgrade101(key, extra string) string {
	return "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Accept: " + AcceptKey(key) + "\r\n" + extra + "\r\n"
}

func readResponse(t *testing.T, raw string) (*http.Response, *bufio.Reader, error) {
	t.Helper()
	br := bufio.NewReader(strings.NewReader(raw))
	resp, err := ReadResponse(br, nil)
	return resp, br, err
}

func TestHandshakeResponse(t *testing.T) {
	const key = "dGhlIHNhbXBsZSBub25jZQ=="
	t.Run("FirstFrameStaysBuffered", func(t *testing.T) {
		resp, br, err := readResponse(t, upgrade101(key, "")+"\x81\x02hi")
		if err != nil {
			t.Fatal(err)
		}
		if p, err := CheckResponse(resp, key, nil); err != nil || p != "" {
			t.Errorf("CheckResponse = %q, %v", p, err)
		}
		if rest, _ := br.Peek(4); string(rest) != "\x81\x02hi" {
			t.Errorf("after the response: %q, want the first frame", rest)
		}
	})
	t.Run("InformationalResponsesAreSkipped", func(t *testing.T) {
		resp, _, err := readResponse(t, "HTTP/1.1 100 Continue\r\n\r\n"+upgrade101(key, ""))
		if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
			t.Fatalf("ReadResponse = %v, %v; want the 101", resp, err)
		}
	})
	t.Run("BareLineFeedsAreAccepted", func(t *testing.T) {
		raw := strings.ReplaceAll(upgrade101(key, ""), "\r\n", "\n")
		resp, _, err := readResponse(t, raw)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := CheckResponse(resp, key, nil); err != nil {
			t.Errorf("CheckResponse: %v", err)
		}
	})
	t.Run("NotHTTPWrapsErrNotHTTP", func(t *testing.T) {
		_, _, err := readResponse(t, "SSH-2.0-OpenSSH_9.6\r\n\r\n")
		if !errors.Is(err, ErrNotHTTP) {
			t.Errorf("ReadResponse = %v, want ErrNotHTTP", err)
		}
	})
	t.Run("ChosenSubprotocolIsReturned", func(t *testing.T) {
		resp, _, _ := readResponse(t, upgrade101(key, "Sec-WebSocket-Protocol: v1\r\n"))
		if p, err := CheckResponse(resp, key, []string{"v2", "v1"}); err != nil || p != "v1" {
			t.Errorf("CheckResponse = %q, %v; want v1", p, err)
		}
	})
	t.Run("HeaderTokensAreCaseInsensitiveAndListed", func(t *testing.T) {
		raw := "HTTP/1.1 101 Switching Protocols\r\nUpgrade: WebSocket\r\nConnection: keep-alive, UPGRADE\r\n" +
			"Sec-WebSocket-Accept: " + AcceptKey(key) + "\r\n\r\n"
		resp, _, _ := readResponse(t, raw)
		if _, err := CheckResponse(resp, key, nil); err != nil {
			t.Errorf("CheckResponse: %v", err)
		}
	})
	for _, c := range []struct {
		name, raw string
		offered   []string
		want      string
	}{
		{"NotA101IsRefused", "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n", nil, "code=403"},
		{"MissingUpgradeIsRefused", "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " + AcceptKey(key) + "\r\n\r\n", nil, "Upgrade"},
		{"MissingConnectionIsRefused", "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: " + AcceptKey(key) + "\r\n\r\n", nil, "Connection"},
		{"WrongAcceptIsRefused", "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " + AcceptKey("other") + "\r\n\r\n", nil, "Sec-WebSocket-Accept"},
		{"TwoAcceptsAreRefused", upgrade101(key, "Sec-WebSocket-Accept: "+AcceptKey(key)+"\r\n"), nil, "Sec-WebSocket-Accept"},
		{"UnofferedSubprotocolIsRefused", upgrade101(key, "Sec-WebSocket-Protocol: v3\r\n"), []string{"v1"}, "not offered"},
		{"TwoSubprotocolsAreRefused", upgrade101(key, "Sec-WebSocket-Protocol: v1, v2\r\n"), []string{"v1", "v2"}, "more than one"},
	} {
		t.Run(c.name, func(t *testing.T) {
			resp, _, err := readResponse(t, c.raw)
			if err != nil {
				t.Fatal(err)
			}
			_, err = CheckResponse(resp, key, c.offered)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("CheckResponse = %v, want an error naming %q", err, c.want)
			}
		})
	}
}
