package main

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/gorilla/websocket"
	"github.com/lomond-go/lomond/bench/fixture"
)

// gorillaClient is github.com/gorilla/websocket: NextReader, and the message
// read into one reused buffer (ReadMessage would allocate each message).
func gorillaClient() *client {
	return &client{
		name: "gorilla",
		idle: true,
		stream: func(ctx context.Context, addr string, w workload, m *meter) error {
			c, _, err := websocket.DefaultDialer.DialContext(ctx, "ws://"+addr+w.path(), nil)
			if err != nil {
				return err
			}
			defer c.Close()
			stop := context.AfterFunc(ctx, func() { _ = c.NetConn().Close() })
			defer stop()
			var payload []byte
			if w.echo || w.send {
				payload = fixture.Payload(w.size)
			}
			buf := make([]byte, max(w.size, 512))
			m.begin()
			closing := false
			if w.send {
				for !m.done() {
					if err := c.WriteMessage(websocket.BinaryMessage, payload); err != nil {
						return err
					}
					m.message()
				}
				msg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "")
				if err := c.WriteControl(websocket.CloseMessage, msg, time.Now().Add(5*time.Second)); err != nil {
					return err
				}
				closing = true
			}
			if w.echo {
				if err := c.WriteMessage(websocket.BinaryMessage, payload); err != nil {
					return err
				}
			}
			for {
				_, r, err := c.NextReader()
				n := 0
				if err == nil {
					n, err = readAll(r, &buf)
				}
				if err != nil {
					// After our close frame, gorilla's close handler
					// fails to answer the server's reply (ErrCloseSent):
					// that is the end of the handshake.
					if websocket.IsCloseError(err, websocket.CloseNormalClosure) || closing && errors.Is(err, websocket.ErrCloseSent) {
						return nil
					}
					return err
				}
				if err := checkPayload(buf[:n], w.size); err != nil {
					return err
				}
				if m.message() {
					if m.clientCloses {
						closing = true
						msg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "")
						if err := c.WriteControl(websocket.CloseMessage, msg, time.Now().Add(5*time.Second)); err != nil {
							return err
						}
						_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
					}
					continue
				}
				if w.echo && !m.done() {
					if err := c.WriteMessage(websocket.BinaryMessage, payload); err != nil {
						return err
					}
				}
			}
		},
		hold: func(ctx context.Context, addr string, ready func(error)) {
			c, _, err := websocket.DefaultDialer.DialContext(ctx, "ws://"+addr+"/hold", nil)
			if err != nil {
				ready(err)
				return
			}
			ready(nil)
			stop := context.AfterFunc(ctx, func() { _ = c.NetConn().Close() })
			defer stop()
			_, _, _ = c.NextReader()
			_ = c.Close()
		},
	}
}

// readAll reads r to EOF into *buf, growing it as needed, and returns the
// number of bytes read.
func readAll(r io.Reader, buf *[]byte) (int, error) {
	n := 0
	for {
		if n == len(*buf) {
			*buf = append(*buf, make([]byte, len(*buf))...)
		}
		m, err := r.Read((*buf)[n:])
		n += m
		if errors.Is(err, io.EOF) {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}
