package lomondtest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/coder/websocket"
	"github.com/lomond-go/lomond"
)

// Step is one thing the server does on a connection. It returns an error
// when what happened is not what the script expected; the error fails the
// test. The kit's steps are made by the functions below; a Step of your
// own may call them (Expect(m)(c)) and wait on c.Done().
type Step func(c *Conn) error

// Script chains steps into one: they run in order, and the first that
// fails ends the script with its error, numbered ("step 2: expected ...").
func Script(steps ...Step) Step {
	return func(c *Conn) error {
		for i, step := range steps {
			if step == nil {
				return fmt.Errorf("step %d is nil", i+1)
			}
			if err := step(c); err != nil {
				return fmt.Errorf("step %d: %w", i+1, err)
			}
		}
		return nil
	}
}

// AcceptOption configures Accept.
type AcceptOption func(*acceptConfig)

type acceptConfig struct {
	protocols   []string
	compression websocket.CompressionMode
	header      http.Header
}

// Subprotocols makes the server choose the first of protocols that the
// client offers (none if it offers none of them).
func Subprotocols(protocols ...string) AcceptOption {
	return func(c *acceptConfig) { c.protocols = append([]string(nil), protocols...) }
}

// Compression makes the server accept permessage-deflate when the client
// offers it: lomond.CompressionNoContextTakeover or
// lomond.CompressionContextTakeover; lomond.CompressionOff declines it (the
// default).
func Compression(mode lomond.Compression) AcceptOption {
	return func(c *acceptConfig) {
		switch mode {
		case lomond.CompressionNoContextTakeover:
			c.compression = websocket.CompressionNoContextTakeover
		case lomond.CompressionContextTakeover:
			c.compression = websocket.CompressionContextTakeover
		default:
			c.compression = websocket.CompressionDisabled
		}
	}
}

// ResponseHeader adds a header to the 101 response.
func ResponseHeader(name, value string) AcceptOption {
	return func(c *acceptConfig) {
		if c.header == nil {
			c.header = http.Header{}
		}
		c.header.Add(name, value)
	}
}

// Accept answers the upgrade request with 101 Switching Protocols, through
// github.com/coder/websocket's Accept (any Origin is allowed). Scripts that
// start without a handshake step accept with no options; use Accept to
// choose a subprotocol, compression or response headers.
func Accept(opts ...AcceptOption) Step {
	return func(c *Conn) error {
		var cfg acceptConfig
		for _, o := range opts {
			if o != nil {
				o(&cfg)
			}
		}
		return c.accept(cfg)
	}
}

// Expect waits up to Timeout for the client's next message and checks it
// against m. Messages are consumed in order: each Expect sees the message
// after the one the previous Expect saw.
func Expect(m Matcher) Step {
	return func(c *Conn) error {
		if _, err := c.socket(); err != nil {
			return fmt.Errorf("expected %v: %w", m, err)
		}
		ctx, cancel := c.stepContext()
		defer cancel()
		got, err := c.next(ctx)
		switch {
		case errors.Is(err, context.DeadlineExceeded):
			return fmt.Errorf("expected %v, got nothing within %v", m, waitLimit)
		case err != nil:
			return fmt.Errorf("expected %v, but %v", m, err)
		case !m.Matches(got):
			return fmt.Errorf("expected %v, got %v", m, got)
		}
		return nil
	}
}

// ExpectClose waits up to Timeout for the client to close the connection
// with this code and reason, with no message before its close frame. (The
// server answers the close, as it always does.)
func ExpectClose(code int, reason string) Step {
	return func(c *Conn) error {
		want := fmt.Sprintf("the client's close (%d %q)", code, reason)
		if _, err := c.socket(); err != nil {
			return fmt.Errorf("expected %s: %w", want, err)
		}
		ctx, cancel := c.stepContext()
		defer cancel()
		got, err := c.next(ctx)
		var closed *errClosed
		switch {
		case err == nil:
			return fmt.Errorf("expected %s, got %v", want, got)
		case errors.Is(err, context.DeadlineExceeded):
			return fmt.Errorf("expected %s, got nothing within %v", want, waitLimit)
		case !errors.As(err, &closed):
			return fmt.Errorf("expected %s, but %v", want, err)
		case !closed.hasCode:
			return fmt.Errorf("expected %s, but %v", want, closed)
		case closed.code != code || closed.reason != reason:
			return fmt.Errorf("expected %s, got (%d %q)", want, closed.code, closed.reason)
		}
		return nil
	}
}

// SendText sends a text message. Like every send, it does not fail when
// the client has just left: the client's events tell what it received.
func SendText(s string) Step {
	return send(websocket.MessageText, []byte(s))
}

// SendBinary sends a binary message.
func SendBinary(b []byte) Step {
	return send(websocket.MessageBinary, append([]byte(nil), b...))
}

// SendJSON sends v encoded with encoding/json as a text message.
func SendJSON(v any) Step {
	doc, err := json.Marshal(v)
	if err != nil {
		return func(*Conn) error { return fmt.Errorf("SendJSON: %w", err) }
	}
	return send(websocket.MessageText, doc)
}

func send(typ websocket.MessageType, p []byte) Step {
	return func(c *Conn) error {
		ws, err := c.socket()
		if err != nil {
			return fmt.Errorf("sending: %w", err)
		}
		ctx, cancel := c.stepContext()
		defer cancel()
		if err := ws.Write(ctx, typ, p); err != nil && !c.endsSoon() {
			return fmt.Errorf("sending %v: %w", Message{Binary: typ == websocket.MessageBinary, Data: p}, err)
		}
		return nil // sent, or the client left first: its events tell
	}
}

// Ping sends a ping and waits up to Timeout for the client's pong.
func Ping() Step {
	return func(c *Conn) error {
		ws, err := c.socket()
		if err != nil {
			return fmt.Errorf("ping: %w", err)
		}
		ctx, cancel := c.stepContext()
		defer cancel()
		if err := ws.Ping(ctx); err != nil {
			if errors.Is(err, context.DeadlineExceeded) {
				return fmt.Errorf("no pong within %v", waitLimit)
			}
			return fmt.Errorf("ping: %w", err)
		}
		return nil
	}
}

// CloseWith starts the close handshake with code and reason and waits for
// the client's close frame (at most 5 s, the engine's limit). It fails if
// the client does not answer with a close frame. The code must be one a
// server may send (1000-1003, 1007-1014, 3000-4999), or 1005 for a close
// frame with no code; the reason at most 123 bytes.
func CloseWith(code int, reason string) Step {
	return func(c *Conn) error {
		valid := code == 1005 || (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
			(code >= 3000 && code <= 4999)
		if !valid {
			return fmt.Errorf("close (%d %q): %d is not a close code a server may send", code, reason, code)
		}
		if len(reason) > 123 || (code == 1005 && reason != "") {
			return fmt.Errorf("close (%d %q): the reason must be at most 123 bytes, and empty with 1005", code, reason)
		}
		ws, err := c.socket()
		if err != nil {
			return fmt.Errorf("close: %w", err)
		}
		closeErr := ws.Close(websocket.StatusCode(code), reason)
		<-c.readerDone
		if _, _, ok := c.ClientClose(); !ok {
			if closeErr != nil {
				return fmt.Errorf("close (%d %q): %w", code, reason, closeErr)
			}
			return fmt.Errorf("close (%d %q): the client did not answer with a close frame", code, reason)
		}
		return nil
	}
}

// Pause waits for d: a slow server. It ends early only if the server
// stops.
func Pause(d time.Duration) Step {
	return func(c *Conn) error {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
			return nil
		case <-c.ctx.Done():
			return errors.New("the server stopped during a pause")
		}
	}
}

// Echo sends every message back with its type until the client leaves:
// the well-behaved server most handler tests need, and what a server with
// no script does.
func Echo() Step {
	return func(c *Conn) error {
		ws, err := c.socket()
		if err != nil {
			return fmt.Errorf("echo: %w", err)
		}
		for {
			m, err := c.next(context.Background()) // ends with the connection
			if err != nil {
				return nil // the connection ended
			}
			typ := websocket.MessageText
			if m.Binary {
				typ = websocket.MessageBinary
			}
			ctx, cancel := c.stepContext()
			err = ws.Write(ctx, typ, m.Data)
			cancel()
			if err != nil && !c.endsSoon() {
				return fmt.Errorf("echo: sending %v: %w", m, err)
			}
		}
	}
}

// Broadcast relays every message the client sends to every connection
// playing Broadcast at the time (the sender included), until the client
// leaves: a chat room, or a feed the test drives through one connection.
func Broadcast() Step {
	return func(c *Conn) error {
		// Join before the handshake: once the client is ready, it is in.
		c.srv.joinBroadcast(c, true)
		defer c.srv.joinBroadcast(c, false)
		if _, err := c.socket(); err != nil {
			return fmt.Errorf("broadcast: %w", err)
		}
		for {
			m, err := c.next(context.Background()) // ends with the connection
			if err != nil {
				return nil
			}
			typ := websocket.MessageText
			if m.Binary {
				typ = websocket.MessageBinary
			}
			for _, member := range c.srv.broadcastMembers() {
				ws := member.accepted()
				if ws == nil {
					continue // not ready yet: the message came before it
				}
				ctx, cancel := member.stepContext()
				_ = ws.Write(ctx, typ, m.Data) // a member may be leaving
				cancel()
			}
		}
	}
}
