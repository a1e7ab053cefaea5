package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/lomond-go/lomond"
)

// pumpInput sends standard input: one text message per line (or one binary
// message per hex line, or all of it as one binary message), each once a
// session is ready; at the end of input it closes the session, unless
// --count decides when to stop.
func (c *client) pumpInput(ctx context.Context, r io.Reader) {
	if c.s.binary == binaryRaw {
		data, err := io.ReadAll(r)
		if err != nil {
			c.out.warn("reading standard input: %v", err)
		}
		if len(data) > 0 && !c.send(ctx, true, data, "standard input") {
			return
		}
		c.endOfInput(ctx)
		return
	}
	br := bufio.NewReader(r)
	for n := 1; ; n++ {
		line, err := br.ReadBytes('\n')
		if len(line) > 0 {
			line = bytes.TrimSuffix(bytes.TrimSuffix(line, []byte("\n")), []byte("\r"))
			if c.s.slash && bytes.HasPrefix(line, []byte("/")) {
				if bytes.HasPrefix(line, []byte("//")) {
					line = line[1:] // "//text" sends "/text"
				} else {
					if !c.command(ctx, n, string(line)) {
						return
					}
					continue
				}
			}
			binary, data := false, line
			if c.s.binary == binaryHex {
				var herr error
				if data, herr = decodeHex(string(line)); herr != nil {
					c.out.warn("line %d not sent: %v", n, herr)
					continue
				}
				binary = true
			}
			if !c.send(ctx, binary, data, fmt.Sprintf("line %d", n)) {
				return
			}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				c.out.warn("reading standard input: %v", err)
			}
			break
		}
	}
	c.endOfInput(ctx)
}

// send sends one message once a session is ready (see deliver).
func (c *client) send(ctx context.Context, binary bool, data []byte, what string) bool {
	return c.deliver(ctx, what, func() error {
		if binary {
			return c.ws.SendBinary(data)
		}
		return c.ws.SendText(string(data))
	})
}

// deliver runs send (a message, a ping, a pong or a close) once a session
// is ready. With --persist, what the session went away before it was
// written waits for the next one. what names it in a warning ("line 3").
// It reports false when the input should stop (the run is ending).
func (c *client) deliver(ctx context.Context, what string, send func() error) bool {
	after := 0
	for {
		gen, err := c.gate.wait(ctx, after)
		if err != nil {
			return false
		}
		err = send()
		gone := errors.Is(err, lomond.ErrNotConnected) || errors.Is(err, lomond.ErrClosing) || errors.Is(err, lomond.ErrClosed)
		switch {
		case err == nil:
			return true
		case gone && c.stopping.Load():
			return false // the client is closing: the rest of the input is not wanted
		case gone && c.s.persist:
			after = gen
		default:
			c.out.warn("%s not sent: %s", what, trimPrefix(err))
			return true
		}
	}
}

// endOfInput closes the session with code 1000 when the input ends, unless
// --count is given: then the count ends it. With --wait-quiet it closes
// once no message has come for that long (or at the count, if first).
func (c *client) endOfInput(ctx context.Context) {
	if c.s.count > 0 && c.quiet == nil {
		return
	}
	if !c.s.persist {
		// Close once ready, so that an empty input still shows the session.
		if _, err := c.gate.wait(ctx, 0); err != nil {
			return
		}
	}
	if c.quiet != nil {
		c.out.note("end of input: closing once no message comes for %v", c.s.waitQuiet)
		c.quiet.start()
		return
	}
	c.out.note("end of input: closing")
	c.stop(c.ws, "end of input")
}
