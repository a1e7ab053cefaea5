package wstest

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
)

func TestServerURL(t *testing.T) {
	s := NewServer(t, func(c *Conn) {})
	if want := "ws://" + s.Addr() + "/"; s.URL() != want {
		t.Errorf("URL = %q, want %q", s.URL(), want)
	}
	if !strings.HasPrefix(s.Addr(), "127.0.0.1:") {
		t.Errorf("Addr = %q, want 127.0.0.1:PORT", s.Addr())
	}
	if s.CertPEM() != nil || s.CertPool() != nil || s.ClientTLSConfig() != nil {
		t.Error("plain server has TLS material")
	}
}

// TestServerReadsClientFrames sends masked and unmasked frames of every
// interesting length and checks what ReadFrame reports.
func TestServerReadsClientFrames(t *testing.T) {
	type result struct {
		f   Frame
		err error
	}
	results := make(chan result)
	s := NewServer(t, func(c *Conn) {
		if _, err := c.Handshake(); err != nil {
			results <- result{err: err}
			return
		}
		for {
			f, err := c.ReadFrame()
			results <- result{f, err}
			if err != nil {
				return
			}
		}
	})
	c := dialClient(t, s.Addr())
	c.handshake("")
	key := [4]byte{1, 2, 3, 4}
	for _, n := range testLengths {
		for _, masked := range []bool{true, false} {
			want := pattern(n)
			f := Frame{Fin: true, Opcode: OpBinary, Masked: masked, Payload: want}
			if masked {
				f.MaskKey = key
			}
			if _, err := c.nc.Write(f.Encode()); err != nil {
				t.Fatal(err)
			}
			r := <-results
			if r.err != nil {
				t.Fatalf("len %d masked %v: %v", n, masked, r.err)
			}
			if r.f.Masked != masked || !bytes.Equal(r.f.Payload, want) || r.f.Opcode != OpBinary || !r.f.Fin {
				t.Fatalf("len %d masked %v: got masked=%v len=%d op=%#x", n, masked, r.f.Masked, len(r.f.Payload), r.f.Opcode)
			}
			if masked && r.f.MaskKey != key {
				t.Fatalf("mask key %x, want %x", r.f.MaskKey, key)
			}
		}
	}
	c.nc.Close()
	if r := <-results; r.err != io.EOF {
		t.Fatalf("after client close: %v, want io.EOF", r.err)
	}
}

func TestServerWritesFrames(t *testing.T) {
	s := NewServer(t, func(c *Conn) {
		if _, err := c.Handshake(); err != nil {
			t.Errorf("handshake: %v", err)
			return
		}
		for _, n := range testLengths {
			if err := c.WriteFrame(Binary(pattern(n))); err != nil {
				t.Errorf("write: %v", err)
				return
			}
		}
		c.WriteRaw(EncodeAll(Text("a"), Close(1001, "away")))
	})
	c := dialClient(t, s.Addr())
	c.handshake("")
	for _, n := range testLengths {
		c.expectFrame(OpBinary, pattern(n))
	}
	c.expectFrame(OpText, []byte("a"))
	c.expectFrame(OpClose, ClosePayload(1001, "away"))
	c.expectEOF()
}

func TestReadMessageReassembly(t *testing.T) {
	type msg struct {
		op  byte
		p   string
		err error
	}
	msgs := make(chan msg)
	s := NewServer(t, func(c *Conn) {
		c.Handshake()
		for {
			op, p, err := c.ReadMessage()
			msgs <- msg{op, string(p), err}
			if err != nil {
				return
			}
		}
	})
	c := dialClient(t, s.Addr())
	c.handshake("")
	c.send(Frame{Opcode: OpText, Payload: []byte("Hel")})
	c.send(Ping([]byte("p1")))
	c.send(Frame{Opcode: OpContinuation, Payload: []byte("lo, ")})
	c.send(Frame{Fin: true, Opcode: OpContinuation, Payload: []byte("world")})
	c.send(Binary([]byte{0, 1, 2}))
	c.send(Pong(nil))
	c.send(Close(1000, "done"))
	c.send(Frame{Fin: true, Opcode: OpContinuation, Payload: []byte("orphan")})
	want := []msg{
		{OpPing, "p1", nil},
		{OpText, "Hello, world", nil},
		{OpBinary, "\x00\x01\x02", nil},
		{OpPong, "", nil},
		{OpClose, string(ClosePayload(1000, "done")), nil},
	}
	for i, w := range want {
		if got := <-msgs; got != w {
			t.Fatalf("message %d = %+v, want %+v", i, got, w)
		}
	}
	if got := <-msgs; got.err == nil {
		t.Fatalf("orphan continuation accepted: %+v", got)
	}
}

func TestExpectClose(t *testing.T) {
	type res struct {
		code   int
		reason string
		err    error
	}
	got := make(chan res, 1)
	s := NewServer(t, func(c *Conn) {
		c.Handshake()
		code, reason, err := c.ExpectClose()
		got <- res{code, reason, err}
		c.WriteFrame(Close(code, reason))
	})
	c := dialClient(t, s.Addr())
	c.handshake("")
	c.send(Text("ignored"))
	c.send(Ping(nil))
	c.send(Close(4000, "custom"))
	if r := <-got; r != (res{4000, "custom", nil}) {
		t.Fatalf("ExpectClose = %+v", r)
	}
	c.expectFrame(OpClose, ClosePayload(4000, "custom"))
	c.expectEOF()
}

func TestHandshakeRejectsBadRequest(t *testing.T) {
	errs := make(chan error, 1)
	s := NewServer(t, func(c *Conn) {
		_, err := c.Handshake()
		errs <- err
	})
	c := dialClient(t, s.Addr())
	c.writeRaw("GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Version: 13\r\n\r\n")
	resp := c.readResponse()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("status %d, want 400", resp.StatusCode)
	}
	if err := <-errs; err == nil || !strings.Contains(err.Error(), "Sec-WebSocket-Key") {
		t.Fatalf("Handshake error = %v", err)
	}
}

func TestCheckUpgrade(t *testing.T) {
	key := "dGhlIHNhbXBsZSBub25jZQ=="
	good := func() *http.Request {
		r, _ := http.NewRequest("GET", "http://127.0.0.1/", nil)
		r.Header.Set("Upgrade", "WebSocket")
		r.Header.Set("Connection", "keep-alive, Upgrade")
		r.Header.Set("Sec-WebSocket-Version", "13")
		r.Header.Set("Sec-WebSocket-Key", key)
		return r
	}
	if err := CheckUpgrade(good()); err != nil {
		t.Fatalf("valid request: %v", err)
	}
	for name, mutate := range map[string]func(r *http.Request){
		"method":     func(r *http.Request) { r.Method = "POST" },
		"proto":      func(r *http.Request) { r.ProtoMajor, r.ProtoMinor, r.Proto = 1, 0, "HTTP/1.0" },
		"upgrade":    func(r *http.Request) { r.Header.Set("Upgrade", "h2c") },
		"connection": func(r *http.Request) { r.Header.Del("Connection") },
		"version":    func(r *http.Request) { r.Header.Set("Sec-WebSocket-Version", "8") },
		"key":        func(r *http.Request) { r.Header.Set("Sec-WebSocket-Key", "c2hvcnQ=") },
		"two keys":   func(r *http.Request) { r.Header.Add("Sec-WebSocket-Key", key) },
	} {
		r := good()
		mutate(r)
		if err := CheckUpgrade(r); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestAcceptExtraHeaders(t *testing.T) {
	s := NewServer(t, func(c *Conn) {
		req, err := c.ReadRequest()
		if err != nil {
			return
		}
		c.Accept(req, http.Header{
			"sec-websocket-accept": {"bogus"}, // overrides the default
			"Connection":           nil,       // removes the default
			"X-B":                  {"2"},
			"X-A":                  {"1", "1b"},
		})
	})
	c := dialClient(t, s.Addr())
	c.writeRaw(upgradeRequest("127.0.0.1", newKey(t), ""))
	var raw bytes.Buffer
	for {
		line, err := c.br.ReadString('\n')
		if err != nil {
			t.Fatalf("reading response: %v (so far %q)", err, raw.String())
		}
		raw.WriteString(line)
		if line == "\r\n" {
			break
		}
	}
	want := "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: bogus\r\n" +
		"X-A: 1\r\nX-A: 1b\r\nX-B: 2\r\n\r\n"
	if raw.String() != want {
		t.Fatalf("response:\n%q\nwant:\n%q", raw.String(), want)
	}
}

func TestRejectResponse(t *testing.T) {
	s := NewServer(t, func(c *Conn) {
		if _, err := c.ReadRequest(); err != nil {
			return
		}
		c.Reject(http.StatusUnauthorized, http.Header{"WWW-Authenticate": {`Basic realm="x"`}}, "nope")
	})
	c := dialClient(t, s.Addr())
	c.writeRaw(upgradeRequest("127.0.0.1", newKey(t), ""))
	resp := c.readResponse()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 401 || string(body) != "nope" || resp.Header.Get("Www-Authenticate") != `Basic realm="x"` {
		t.Fatalf("got %d %q %v", resp.StatusCode, body, resp.Header)
	}
}

// TestServerCloseUnblocksScripts checks that Close makes blocked reads fail,
// releases scripts waiting on Done, and waits for all of them.
func TestServerCloseUnblocksScripts(t *testing.T) {
	const n = 3
	started := make(chan struct{}, n)
	returned := make(chan string, n)
	s := NewServer(t, func(c *Conn) {
		started <- struct{}{}
		if s := c.NetConn().LocalAddr().String(); s == "" {
			t.Error("no local address")
		}
		if c.Reader() == nil {
			t.Error("nil reader")
		}
		_, err := c.ReadFrame()
		if err == nil {
			returned <- "read succeeded"
			return
		}
		<-c.Done() // must already be closed, or closed soon, by Close
		returned <- "ok"
	})
	for range n {
		dialClient(t, s.Addr())
		<-started
	}
	if s.Conns() != n {
		t.Fatalf("Conns = %d, want %d", s.Conns(), n)
	}
	s.Close()
	if len(returned) != n {
		t.Fatalf("Close returned with %d of %d scripts finished", len(returned), n)
	}
	for range n {
		if r := <-returned; r != "ok" {
			t.Fatal(r)
		}
	}
	s.Close() // idempotent
}

// TestServerCloseWhileWaitingOnDone checks a script that holds the
// connection open by waiting on Done.
func TestServerCloseWhileWaitingOnDone(t *testing.T) {
	started := make(chan struct{})
	s := NewServer(t, func(c *Conn) {
		close(started)
		<-c.Done()
	})
	dialClient(t, s.Addr())
	<-started
	s.Close()
}

func TestServerClosesConnWhenScriptReturns(t *testing.T) {
	s := NewServer(t, func(c *Conn) { c.WriteRaw([]byte("bye")) })
	c := dialClient(t, s.Addr())
	got, err := io.ReadAll(c.br)
	if err != nil || string(got) != "bye" {
		t.Fatalf("got %q, %v", got, err)
	}
}

func TestManyConnections(t *testing.T) {
	s := NewServer(t, Echo)
	const n = 20
	clients := make([]*testClient, n)
	for i := range clients {
		clients[i] = dialClient(t, s.Addr())
		clients[i].handshake("")
	}
	for i, c := range clients {
		c.send(Text(fmt.Sprint("hello ", i)))
	}
	for i, c := range clients {
		c.expectFrame(OpText, []byte(fmt.Sprint("hello ", i)))
	}
	if s.Conns() != n {
		t.Fatalf("Conns = %d, want %d", s.Conns(), n)
	}
}
