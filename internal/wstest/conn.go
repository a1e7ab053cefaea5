package wstest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/textproto"
	"sort"
	"sync"
	"time"
)

// Conn is the server side of one accepted connection, handed to a script.
// Reads go through a bufio.Reader, so bytes the client sent right after its
// handshake are not lost. Writes are serialised, so a script may write from
// several goroutines. When the Server is closed the underlying connection is
// closed and every pending or future read or write fails.
type Conn struct {
	nc   net.Conn
	br   *bufio.Reader
	done <-chan struct{}
	wmu  sync.Mutex

	// Reassembly state of ReadMessage, kept across calls so that a control
	// frame interleaved in a fragmented message can be returned on its own.
	fragging bool
	fragOp   byte
	fragBuf  []byte
}

func newConn(nc net.Conn, done <-chan struct{}) *Conn {
	return &Conn{nc: nc, br: bufio.NewReader(nc), done: done}
}

// NetConn returns the underlying connection (a *tls.Conn for TLS servers).
// Reading from it directly bypasses the buffered reader; prefer Reader.
func (c *Conn) NetConn() net.Conn { return c.nc }

// Reader returns the buffered reader all Conn reads go through, for scripts
// that want to read raw bytes.
func (c *Conn) Reader() *bufio.Reader { return c.br }

// Done returns a channel that is closed when the Server starts closing.
// Scripts that want to hold a connection open without reading can block on
// it.
func (c *Conn) Done() <-chan struct{} { return c.done }

// ReadRequest reads and parses the client's HTTP request (normally the
// WebSocket upgrade request) with http.ReadRequest. It does not validate it;
// see CheckUpgrade.
func (c *Conn) ReadRequest() (*http.Request, error) {
	return http.ReadRequest(c.br)
}

// Accept writes a "HTTP/1.1 101 Switching Protocols" response to req with
// Upgrade: websocket, Connection: Upgrade and the Sec-WebSocket-Accept
// computed from req's Sec-WebSocket-Key, followed by the extra headers in
// sorted order. An extra header with the same canonical name as one of the
// three defaults replaces it (so hostile scripts can send a wrong accept
// key); one with no values removes it. Header values are written verbatim.
func (c *Conn) Accept(req *http.Request, extra http.Header) error {
	if req == nil {
		return errors.New("wstest: Accept with nil request")
	}
	// ex maps canonical names to values; a present key with no values means
	// "omit this header". names keeps one spelling per canonical name.
	ex := make(map[string][]string, len(extra))
	var names []string
	for k, v := range extra {
		ck := textproto.CanonicalMIMEHeaderKey(k)
		if _, dup := ex[ck]; !dup {
			names = append(names, k)
		}
		ex[ck] = append(ex[ck], v...)
	}
	var b bytes.Buffer
	b.WriteString("HTTP/1.1 101 Switching Protocols\r\n")
	defaults := []struct{ name, value string }{
		{"Upgrade", "websocket"},
		{"Connection", "Upgrade"},
		{"Sec-WebSocket-Accept", AcceptKey(req.Header.Get("Sec-WebSocket-Key"))},
	}
	for _, d := range defaults {
		ck := textproto.CanonicalMIMEHeaderKey(d.name)
		vs, override := ex[ck]
		if !override {
			vs = []string{d.value}
		}
		delete(ex, ck)
		for _, v := range vs {
			fmt.Fprintf(&b, "%s: %s\r\n", d.name, v)
		}
	}
	sort.Strings(names)
	for _, k := range names {
		ck := textproto.CanonicalMIMEHeaderKey(k)
		vs, ok := ex[ck]
		if !ok {
			continue
		}
		delete(ex, ck)
		for _, v := range vs {
			fmt.Fprintf(&b, "%s: %s\r\n", k, v)
		}
	}
	b.WriteString("\r\n")
	return c.WriteRaw(b.Bytes())
}

// Handshake reads the upgrade request and accepts it with no extra headers.
// If the request is not a valid WebSocket upgrade (see CheckUpgrade) it
// answers 400 Bad Request instead and returns the validation error along
// with the request.
func (c *Conn) Handshake() (*http.Request, error) {
	req, err := c.ReadRequest()
	if err != nil {
		return nil, err
	}
	if err := CheckUpgrade(req); err != nil {
		c.Reject(http.StatusBadRequest, nil, err.Error())
		return req, err
	}
	return req, c.Accept(req, nil)
}

// Reject writes a complete non-101 HTTP response with the given status,
// extra headers and a text/plain body, with Connection: close. It does not
// close the connection.
func (c *Conn) Reject(status int, extra http.Header, body string) error {
	var b bytes.Buffer
	fmt.Fprintf(&b, "HTTP/1.1 %d %s\r\n", status, http.StatusText(status))
	h := http.Header{
		"Content-Type":   {"text/plain; charset=utf-8"},
		"Content-Length": {fmt.Sprint(len(body))},
		"Connection":     {"close"},
	}
	for k, v := range extra {
		h[textproto.CanonicalMIMEHeaderKey(k)] = v
	}
	if err := h.Write(&b); err != nil {
		return err
	}
	b.WriteString("\r\n")
	b.WriteString(body)
	return c.WriteRaw(b.Bytes())
}

// WriteRaw writes b to the connection as is.
func (c *Conn) WriteRaw(b []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_, err := c.nc.Write(b)
	return err
}

// WriteFrame writes f.Encode() to the connection.
func (c *Conn) WriteFrame(f Frame) error {
	return c.WriteRaw(f.Encode())
}

// ReadFrame reads one frame from the client. Frame.Masked and Frame.MaskKey
// record how it was sent; Frame.Payload is returned unmasked. It returns
// io.EOF if the client closed cleanly between frames.
func (c *Conn) ReadFrame() (Frame, error) {
	return readFrame(c.br)
}

// ReadMessage reads the next message. Control frames (OpClose, OpPing,
// OpPong) are returned on their own, even when they arrive between the
// fragments of a data message; data messages (OpText, OpBinary) are
// returned reassembled. Nothing is answered automatically. Fragmented
// control frames, unexpected continuations, a new data frame inside a
// fragmented message and reserved opcodes are reported as errors.
func (c *Conn) ReadMessage() (opcode byte, payload []byte, err error) {
	for {
		f, err := c.ReadFrame()
		if err != nil {
			return 0, nil, err
		}
		switch f.Opcode {
		case OpClose, OpPing, OpPong:
			if !f.Fin {
				return 0, nil, fmt.Errorf("wstest: fragmented control frame (opcode %#x)", f.Opcode)
			}
			return f.Opcode, f.Payload, nil
		case OpText, OpBinary:
			if c.fragging {
				return 0, nil, fmt.Errorf("wstest: data frame (opcode %#x) inside a fragmented message", f.Opcode)
			}
			if f.Fin {
				return f.Opcode, f.Payload, nil
			}
			c.fragging, c.fragOp = true, f.Opcode
			c.fragBuf = append([]byte{}, f.Payload...)
		case OpContinuation:
			if !c.fragging {
				return 0, nil, errors.New("wstest: continuation frame without a message to continue")
			}
			c.fragBuf = append(c.fragBuf, f.Payload...)
			if len(c.fragBuf) > MaxFramePayload {
				return 0, nil, fmt.Errorf("%w (reassembled message)", errFrameTooLarge)
			}
			if f.Fin {
				op, p := c.fragOp, c.fragBuf
				c.fragging, c.fragOp, c.fragBuf = false, 0, nil
				return op, p, nil
			}
		default:
			return 0, nil, fmt.Errorf("wstest: reserved opcode %#x", f.Opcode)
		}
	}
}

// ExpectClose reads frames, discarding everything else, until a close frame
// arrives, and returns its code and reason (code 0 for an empty payload).
func (c *Conn) ExpectClose() (code int, reason string, err error) {
	for {
		f, err := c.ReadFrame()
		if err != nil {
			return 0, "", err
		}
		if f.Opcode == OpClose {
			code, reason = ParseClose(f.Payload)
			return code, reason, nil
		}
	}
}

// SetDeadline sets the read and write deadline of the connection.
func (c *Conn) SetDeadline(t time.Time) error { return c.nc.SetDeadline(t) }

// Close closes the connection. For TLS connections this sends close_notify
// first.
func (c *Conn) Close() error { return c.nc.Close() }
