// Command handler shows lomond's handler model: an application handler that
// embeds BaseHandler and overrides the events it cares about, composed with a
// logging plugin (an Observer, which sees every event) by lomond.Compose.
//
// It starts an echo server on 127.0.0.1 (lomondtest's), sends three messages, closes the
// connection once their echoes are back, and exits:
//
//	go run ./examples/handler
package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/lomond-go/lomond"
	"github.com/lomond-go/lomond/events"
	"github.com/lomond-go/lomond/lomondtest"
)

// app is the application: it implements the four core methods of
// lomond.EventHandler (BaseHandler supplies OnBinary, which it ignores).
type app struct {
	lomond.BaseHandler
	messages []string
	echoed   int
}

func (a *app) OnReady(ws *lomond.WebSocket, ev *events.Ready) {
	for _, m := range a.messages {
		if err := ws.SendText(m); err != nil {
			fmt.Println("app: send failed:", err)
			_ = ws.Close(lomond.StatusNormal, "send failed")
			return
		}
	}
}

func (a *app) OnText(ws *lomond.WebSocket, ev *events.Text) {
	a.echoed++
	fmt.Printf("app: echo %d of %d: %q\n", a.echoed, len(a.messages), ev.Text)
	if a.echoed == len(a.messages) {
		_ = ws.Close(lomond.StatusNormal, "all done")
	}
}

func (a *app) OnClosed(ws *lomond.WebSocket, ev *events.Closed) {
	fmt.Printf("app: closed with %d %q\n", ev.Code, ev.Reason)
}

// OnDisconnected is one of the optional per-event interfaces
// (lomond.DisconnectedHandler).
func (a *app) OnDisconnected(ws *lomond.WebSocket, ev *events.Disconnected) {
	fmt.Printf("app: disconnected (graceful=%v)\n", ev.Graceful)
}

// logger is a plugin: an Observer receives every event, in order, before the
// handlers composed after it.
type logger struct{ start time.Time }

func (l logger) OnEvent(ws *lomond.WebSocket, ev events.Event) {
	fmt.Printf("log: %6.3fs %-12s %v\n", ev.ReceivedTime().Sub(l.start).Seconds(), ev.Name(), ev)
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "handler:", err)
		os.Exit(1)
	}
}

func run() error {
	srv := lomondtest.NewServer(nil) // no script: it echoes; nil: not in a test
	defer srv.Close()

	ws, err := lomond.New(srv.URL, append(srv.ClientOptions(), lomond.WithPollInterval(0))...)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	a := &app{messages: []string{"one", "two", "three"}}
	h := lomond.Compose(logger{start: time.Now()}, a)
	// Run returns nil when the client closed and the server replied.
	return ws.Run(ctx, h)
}
