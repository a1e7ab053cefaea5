package lomondtest

import (
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// Faults: what a client must survive. Each is a Step, so a script can put
// one on any connection: Script(Reject(503, "Retry-After", "1")) for the
// first, Script(SendText("hi"), Drop()) for the second, and so on. A
// refused connection is not among them: it never reaches the server, so it
// cannot be scripted per connection; Server.Stop refuses every connection
// until Server.Start.

// Reject answers the upgrade request with status (401, 403, 429, 503...)
// instead of 101, with the given headers as name, value pairs and the
// status text as body, and closes the connection:
//
//	lomondtest.Reject(http.StatusServiceUnavailable, "Retry-After", "1")
//	lomondtest.Reject(http.StatusUnauthorized, "WWW-Authenticate", `Bearer realm="feed"`)
func Reject(status int, header ...string) Step {
	return func(c *Conn) error {
		if status < 200 || status > 599 {
			return fmt.Errorf("Reject(%d): the status must be a final status other than 101 (200-599)", status)
		}
		if len(header)%2 != 0 {
			return fmt.Errorf("Reject(%d): headers come in name, value pairs; %q has no value", status, header[len(header)-1])
		}
		c.hs.Lock()
		defer c.hs.Unlock()
		if c.state != stateNew {
			return c.stateErrLocked(fmt.Sprintf("reject with %d", status))
		}
		h := c.w.Header()
		for i := 0; i < len(header); i += 2 {
			h.Add(header[i], header[i+1])
		}
		h.Set("Connection", "close")
		body := strconv.Itoa(status) + " " + http.StatusText(status) + "\n"
		h.Set("Content-Type", "text/plain; charset=utf-8")
		h.Set("Content-Length", strconv.Itoa(len(body)))
		c.w.WriteHeader(status)
		_, _ = c.w.Write([]byte(body))
		c.state = stateRejected
		return nil
	}
}

// StallHandshake never answers the upgrade request: the server holds the
// connection, reading and discarding, until the client gives up (its
// handshake timeout) or the server stops. Steps after it fail.
func StallHandshake() Step {
	return func(c *Conn) error {
		if err := c.hijack(); err != nil {
			return fmt.Errorf("stall the handshake: %w", err)
		}
		c.drain()
		return nil
	}
}

// Drop closes the TCP connection at once, with no close frame (and no TLS
// close_notify): a crash or a lost route. Before the handshake, the client
// sees its upgrade request unanswered. Steps after it fail.
func Drop() Step {
	return func(c *Conn) error { return c.dropStep(false) }
}

// Reset aborts the TCP connection with a reset (RST, through SO_LINGER 0)
// instead of a close: the client's next read fails with "connection reset
// by peer". Steps after it fail.
func Reset() Step {
	return func(c *Conn) error { return c.dropStep(true) }
}

func (c *Conn) dropStep(reset bool) error {
	c.hs.Lock()
	defer c.hs.Unlock()
	switch c.state {
	case stateNew:
		if err := c.hijackLocked(); err != nil {
			return err
		}
	case stateAccepted, stateRaw:
	default:
		return c.stateErrLocked("drop the connection")
	}
	c.state = stateGone
	c.nc.drop(reset)
	return nil
}

// IgnorePings makes the server stop answering the client's pings (they are
// still recorded): a server that is alive on TCP but no longer responds.
// A client with a ping timeout reports it Unresponsive. It may come before
// or after the handshake.
func IgnorePings() Step {
	return func(c *Conn) error {
		c.ignorePings.Store(true)
		return nil
	}
}

// Trickle makes every byte the server writes from now on go out on its
// own, pause after the one before: the handshake response when Trickle
// comes before it, and every frame after. It tests a client's handling of
// partial reads and slow peers.
func Trickle(pause time.Duration) Step {
	return func(c *Conn) error {
		if pause <= 0 {
			return fmt.Errorf("Trickle(%v): the pause must be positive", pause)
		}
		c.nc.trickle.Store(int64(pause))
		return nil
	}
}

// ProtocolViolation sends a frame no websocket server may send (a
// reserved opcode), accepting the upgrade first if needed. A client must
// fail the connection with close code 1002.
func ProtocolViolation() Step {
	return func(c *Conn) error {
		if _, err := c.socket(); err != nil {
			return fmt.Errorf("protocol violation: %w", err)
		}
		return c.writeRaw([]byte{0x83, 0x00}) // FIN, opcode 3 (reserved), empty
	}
}

// SendRaw writes b to the connection exactly as given. Before the
// handshake it replaces the server's response (a malformed handshake);
// after it, it goes between the frames the server sends (hand-made frames:
// 0x81 0x02 0xc3 0x28 is a text frame that is not UTF-8).
func SendRaw(b []byte) Step {
	b = append([]byte(nil), b...)
	return func(c *Conn) error {
		c.hs.Lock()
		state := c.state
		var err error
		if state == stateNew {
			err = c.hijackLocked()
		}
		c.hs.Unlock()
		if err != nil {
			return fmt.Errorf("SendRaw: %w", err)
		}
		return c.writeRaw(b)
	}
}

func (c *Conn) writeRaw(b []byte) error {
	c.hs.Lock()
	state := c.state
	c.hs.Unlock()
	if state != stateAccepted && state != stateRaw {
		c.hs.Lock()
		defer c.hs.Unlock()
		return c.stateErrLocked("write raw bytes")
	}
	if _, err := c.nc.Write(b); err != nil {
		return fmt.Errorf("writing raw bytes: %w", err)
	}
	return nil
}
