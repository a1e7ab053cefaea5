package lomondtest

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/lomond-go/lomond/lomondtest/internal/link"
)

// The faults a client must survive, for package fault (which makes Steps
// of them through internal/link): the connection's internals stay out of
// this package's API.

func init() {
	link.FaultsOf = func(conn any) link.Faults { return faults{conn.(*Conn)} }
}

// faults is a connection's side of package fault.
type faults struct{ c *Conn }

func (f faults) Reject(status int, header []string) error { return f.c.reject(status, header) }
func (f faults) StallHandshake() error                    { return f.c.stallHandshake() }
func (f faults) Drop(reset bool) error                    { return f.c.dropStep(reset) }
func (f faults) IgnorePings()                             { f.c.ignorePings.Store(true) }
func (f faults) ProtocolViolation() error                 { return f.c.protocolViolation() }
func (f faults) SendRaw(b []byte) error                   { return f.c.sendRaw(b) }

func (f faults) Trickle(pause time.Duration) error {
	if pause <= 0 {
		return fmt.Errorf("Trickle(%v): the pause must be positive", pause)
	}
	f.c.nc.trickle.Store(int64(pause))
	return nil
}

// reject answers the upgrade request with status and headers instead of
// 101 (fault.Reject).
func (c *Conn) reject(status int, header []string) error {
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

// stallHandshake holds the connection without answering the upgrade
// (fault.StallHandshake).
func (c *Conn) stallHandshake() error {
	if err := c.hijack(); err != nil {
		return fmt.Errorf("stall the handshake: %w", err)
	}
	c.drain()
	return nil
}

// dropStep closes the TCP connection, with a reset if asked (fault.Drop,
// fault.Reset).
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

// protocolViolation sends a frame with a reserved opcode
// (fault.ProtocolViolation).
func (c *Conn) protocolViolation() error {
	if _, err := c.socket(); err != nil {
		return fmt.Errorf("protocol violation: %w", err)
	}
	return c.writeRaw([]byte{0x83, 0x00}) // FIN, opcode 3 (reserved), empty
}

// sendRaw writes b as is, hijacking the connection first before the
// handshake (fault.SendRaw).
func (c *Conn) sendRaw(b []byte) error {
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
