package main

import (
	"context"
	"errors"

	"github.com/lomond-go/lomond/bench/fixture"
	"github.com/lxzan/gws"
)

// gwsClient is github.com/lxzan/gws: ReadLoop on the caller's goroutine,
// OnMessage per message, the message's pooled buffer returned with Close.
func gwsClient() *client {
	return &client{
		name: "gws",
		idle: true,
		stream: func(ctx context.Context, addr string, w workload, m *meter) error {
			h := &gwsHandler{m: m, w: w, sent: make(chan struct{})}
			if w.echo || w.send {
				h.payload = fixture.Payload(w.size)
			}
			c, _, err := gws.NewClient(h, &gws.ClientOption{Addr: "ws://" + addr + w.path()})
			if err != nil {
				return err
			}
			stop := context.AfterFunc(ctx, func() { _ = c.NetConn().Close() })
			defer stop()
			c.ReadLoop() // OnOpen, every OnMessage, then OnClose
			if h.started {
				<-h.sent
			}
			return errors.Join(h.err, h.sendErr)
		},
		hold: func(ctx context.Context, addr string, ready func(error)) {
			c, _, err := gws.NewClient(gws.BuiltinEventHandler{}, &gws.ClientOption{Addr: "ws://" + addr + "/hold"})
			if err != nil {
				ready(err)
				return
			}
			ready(nil)
			stop := context.AfterFunc(ctx, func() { _ = c.WriteClose(1000, nil) })
			defer stop()
			c.ReadLoop()
		},
	}
}

type gwsHandler struct {
	gws.BuiltinEventHandler
	m       *meter
	w       workload
	payload []byte
	err     error
	sendErr error
	started bool
	sent    chan struct{}
}

func (h *gwsHandler) OnOpen(c *gws.Conn) {
	h.m.begin()
	switch {
	case h.w.send:
		h.started = true
		go h.sendLoop(c)
	case h.w.echo:
		h.send(c)
	}
}

// sendLoop sends messages until the run is over, then closes.
func (h *gwsHandler) sendLoop(c *gws.Conn) {
	defer close(h.sent)
	for !h.m.done() {
		if err := c.WriteMessage(gws.OpcodeBinary, h.payload); err != nil {
			h.sendErr = err
			return
		}
		h.m.message()
	}
	_ = c.WriteClose(1000, nil)
}

func (h *gwsHandler) OnMessage(c *gws.Conn, msg *gws.Message) {
	err := checkPayload(msg.Bytes(), h.w.size)
	_ = msg.Close()
	if err != nil && h.err == nil {
		h.err = err
		_ = c.WriteClose(1000, nil)
		return
	}
	if h.m.message() {
		if h.m.clientCloses {
			_ = c.WriteClose(1000, nil)
		}
		return
	}
	if h.w.echo && !h.m.done() {
		h.send(c)
	}
}

// OnClose records an abnormal end: a close other than the normal one, or a
// connection lost before the run was over.
func (h *gwsHandler) OnClose(_ *gws.Conn, err error) {
	if h.err != nil {
		return
	}
	var ce *gws.CloseError
	switch {
	case errors.As(err, &ce) && ce.Code == 1000:
	case h.m.done():
	default:
		h.err = err
	}
}

func (h *gwsHandler) send(c *gws.Conn) {
	if err := c.WriteMessage(gws.OpcodeBinary, h.payload); err != nil && h.err == nil {
		h.err = err
	}
}
