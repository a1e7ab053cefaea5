package main

import (
	"context"
	"errors"

	"github.com/coder/websocket"
	"github.com/lomond-go/lomond/bench/fixture"
)

// coderClient is github.com/coder/websocket: Reader with one long-lived
// context (no per-read cancellation cost) and the message read into one
// reused buffer (Read would allocate each message).
func coderClient() *client {
	return &client{
		name: "coder",
		idle: true,
		stream: func(ctx context.Context, addr string, w workload, m *meter) error {
			c, _, err := websocket.Dial(ctx, "ws://"+addr+w.path(), nil)
			if err != nil {
				return err
			}
			defer c.CloseNow()
			c.SetReadLimit(16 << 20)
			stop := context.AfterFunc(ctx, func() { _ = c.CloseNow() })
			defer stop()
			bg := context.Background()
			var payload []byte
			if w.echo || w.send {
				payload = fixture.Payload(w.size)
			}
			buf := make([]byte, max(w.size, 512))
			m.begin()
			if w.send {
				for !m.done() {
					if err := c.Write(bg, websocket.MessageBinary, payload); err != nil {
						return err
					}
					m.message()
				}
				if err := c.Close(websocket.StatusNormalClosure, ""); err != nil && !errors.Is(err, context.Canceled) {
					return err
				}
				return nil
			}
			if w.echo {
				if err := c.Write(bg, websocket.MessageBinary, payload); err != nil {
					return err
				}
			}
			for {
				_, r, err := c.Reader(bg)
				if err != nil {
					if websocket.CloseStatus(err) == websocket.StatusNormalClosure {
						return nil
					}
					return err
				}
				n, err := readAll(r, &buf)
				if err != nil {
					return err
				}
				if err := checkPayload(buf[:n], w.size); err != nil {
					return err
				}
				if m.message() {
					if m.clientCloses {
						// Close writes the close frame and reads until
						// the server's reply (bounded by coder's 5 s).
						if err := c.Close(websocket.StatusNormalClosure, ""); err != nil && !errors.Is(err, context.Canceled) {
							return err
						}
						return nil
					}
					continue
				}
				if w.echo && !m.done() {
					if err := c.Write(bg, websocket.MessageBinary, payload); err != nil {
						return err
					}
				}
			}
		},
		hold: func(ctx context.Context, addr string, ready func(error)) {
			c, _, err := websocket.Dial(ctx, "ws://"+addr+"/hold", nil)
			if err != nil {
				ready(err)
				return
			}
			ready(nil)
			_, _, _ = c.Reader(ctx)
			_ = c.CloseNow()
		},
	}
}
