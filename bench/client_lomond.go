package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/lomond-go/lomond"
	"github.com/lomond-go/lomond/bench/fixture"
	"github.com/lomond-go/lomond/events"
)

// lomondClient is the project's client through its public API: New with
// default options (plus WithBorrowedBinary for the borrowed variant) and Run
// with a handler.
func lomondClient(name string, borrowed bool) *client {
	options := func() []lomond.Option {
		if borrowed {
			return []lomond.Option{lomond.WithBorrowedBinary()}
		}
		return nil
	}
	return &client{
		name:   name,
		lomond: true,
		idle:   !borrowed,
		stream: func(ctx context.Context, addr string, w workload, m *meter) error {
			ws, err := lomond.New("ws://"+addr+w.path(), options()...)
			if err != nil {
				return err
			}
			h := &lomondHandler{m: m, w: w, sent: make(chan struct{})}
			if w.echo || w.send {
				h.payload = fixture.Payload(w.size)
			}
			err = ws.Run(ctx, h)
			if w.send && h.started {
				<-h.sent
			}
			var ce *lomond.CloseError
			if errors.As(err, &ce) && ce.Code == 1000 {
				err = nil // the server ended a counted push
			}
			return errors.Join(h.err, h.sendErr, err)
		},
		hold: func(ctx context.Context, addr string, ready func(error)) {
			ws, err := lomond.New("ws://"+addr+"/hold", options()...)
			if err != nil {
				ready(err)
				return
			}
			err = ws.Run(ctx, &lomondIdle{ready: ready})
			ready(fmt.Errorf("session ended before it was ready: %v", err))
		},
	}
}

type lomondHandler struct {
	lomond.BaseHandler
	m       *meter
	w       workload
	payload []byte
	err     error
	sendErr error         // the send loop's
	started bool          // the send loop started
	sent    chan struct{} // closed when the send loop is over
}

func (h *lomondHandler) OnReady(ws *lomond.WebSocket, _ *events.Ready) {
	h.m.begin()
	switch {
	case h.w.send:
		h.started = true
		go h.sendLoop(ws)
	case h.w.echo:
		h.send(ws)
	}
}

// sendLoop sends messages until the run is over, then closes.
func (h *lomondHandler) sendLoop(ws *lomond.WebSocket) {
	defer close(h.sent)
	for !h.m.done() {
		if err := ws.SendBinary(h.payload); err != nil {
			h.sendErr = err
			return
		}
		h.m.message()
	}
	_ = ws.Close(1000, "")
}

func (h *lomondHandler) OnBinary(ws *lomond.WebSocket, ev *events.Binary) {
	h.received(ws, checkPayload(ev.Data, h.w.size))
}

func (h *lomondHandler) OnText(ws *lomond.WebSocket, ev *events.Text) {
	h.received(ws, checkText(ev.Text, h.w.size))
}

func (h *lomondHandler) received(ws *lomond.WebSocket, err error) {
	if err != nil && h.err == nil {
		h.err = err
		_ = ws.Close(1000, "")
		return
	}
	if h.m.message() {
		if h.m.clientCloses {
			_ = ws.Close(1000, "")
		}
		return
	}
	if h.w.echo && !h.m.done() {
		h.send(ws)
	}
}

func (h *lomondHandler) send(ws *lomond.WebSocket) {
	if err := ws.SendBinary(h.payload); err != nil && h.err == nil {
		h.err = err
	}
}

// lomondIdle reports the session ready and then does nothing.
type lomondIdle struct {
	lomond.BaseHandler
	ready func(error)
}

func (h *lomondIdle) OnReady(*lomond.WebSocket, *events.Ready) { h.ready(nil) }
