package lomond_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
	"github.com/lomond-go/lomond"
	"github.com/lomond-go/lomond/events"
)

// exampleEchoServer starts a websocket echo server on 127.0.0.1 and returns
// its ws:// URL and a function that stops it and waits for its handlers.
func exampleEchoServer() (string, func()) {
	var wg sync.WaitGroup
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		wg.Add(1)
		defer wg.Done()
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		ctx := context.Background()
		for {
			typ, data, err := c.Read(ctx)
			if err != nil {
				return // includes the client's close, which the engine answers
			}
			if err := c.Write(ctx, typ, data); err != nil {
				return
			}
		}
	}))
	return "ws" + strings.TrimPrefix(srv.URL, "http"), func() {
		srv.Close()
		wg.Wait()
	}
}

// quiet turns off Poll and automatic pings, so the output is the same on
// every run.
var quiet = []lomond.Option{lomond.WithPollInterval(0), lomond.WithPingRate(0)}

func ExampleNew() {
	_, err := lomond.New("ftp://example.com/feed")
	fmt.Println(errors.Is(err, lomond.ErrInvalidURL))
	fmt.Println(err)

	ws, err := lomond.New("wss://example.com/feed", lomond.WithProtocols("v1.feed"))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(ws.URL(), ws.State()) // New does no I/O

	// http:// and https:// are taken as ws:// and wss://.
	ws, err = lomond.New("https://example.com/feed")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(ws.URL())
	// Output:
	// true
	// lomond: invalid websocket URL: scheme "ftp" is not ws, wss, http or https
	// wss://example.com/feed idle
	// wss://example.com/feed
}

// greeter sends "hello" when ready and closes when the echo comes back.
type greeter struct {
	lomond.BaseHandler
}

func (greeter) OnConnecting(ws *lomond.WebSocket, ev *events.Connecting) {
	fmt.Println("connecting")
}

func (greeter) OnConnected(ws *lomond.WebSocket, ev *events.Connected) {
	fmt.Println("connected")
}

func (greeter) OnReady(ws *lomond.WebSocket, ev *events.Ready) {
	fmt.Println("ready")
	if err := ws.SendText("hello"); err != nil {
		fmt.Println(err)
	}
}

func (greeter) OnText(ws *lomond.WebSocket, ev *events.Text) {
	fmt.Println("text", ev.Text)
	if err := ws.Close(lomond.StatusNormal, "bye"); err != nil {
		fmt.Println(err)
	}
}

func (greeter) OnClosed(ws *lomond.WebSocket, ev *events.Closed) {
	fmt.Println("closed", ev.Code, ev.Reason)
}

func (greeter) OnDisconnected(ws *lomond.WebSocket, ev *events.Disconnected) {
	fmt.Println("disconnected, graceful:", ev.Graceful)
}

func ExampleWebSocket_Run() {
	url, stop := exampleEchoServer()
	defer stop()

	ws, err := lomond.New(url, quiet...)
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// Run returns nil: the client closed and the server replied.
	err = ws.Run(ctx, greeter{})
	fmt.Println("run returned", err)
	// Output:
	// connecting
	// connected
	// ready
	// text hello
	// closed 1000 bye
	// disconnected, graceful: true
	// run returned <nil>
}

func ExampleWebSocket_Events() {
	url, stop := exampleEchoServer()
	defer stop()

	ws, err := lomond.New(url, quiet...)
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	for ev := range ws.Events(ctx) {
		switch ev := ev.(type) {
		case *events.Ready:
			_ = ws.SendText("hello")
		case *events.Text:
			fmt.Println(ev) // String reads like lomond's repr
			_ = ws.Close(lomond.StatusNormal, "bye")
			continue
		case *events.Closed:
			fmt.Println(ev)
			continue
		case *events.Disconnected:
			fmt.Println(ev)
			continue
		}
		fmt.Println(ev.Name()) // events not handled above; new kinds may appear
	}
	// Output:
	// connecting
	// connected
	// ready
	// Text(text='hello')
	// Closed(code=1000, reason='bye')
	// Disconnected(reason='closed', graceful=True)
}

// eventLog is a plugin: as an Observer it sees every event.
type eventLog struct{}

func (eventLog) OnEvent(ws *lomond.WebSocket, ev events.Event) {
	fmt.Println("log:", ev.Name())
}

// oneShot sends one message and closes when it comes back.
type oneShot struct {
	lomond.BaseHandler
}

func (oneShot) OnReady(ws *lomond.WebSocket, ev *events.Ready) { _ = ws.SendText("ping me") }

func (oneShot) OnText(ws *lomond.WebSocket, ev *events.Text) {
	fmt.Println("app: got", ev.Text)
	_ = ws.Close(lomond.StatusNormal, "done")
}

func ExampleCompose() {
	url, stop := exampleEchoServer()
	defer stop()

	ws, err := lomond.New(url, quiet...)
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// Each event reaches the plugin, then the application.
	if err := ws.Run(ctx, lomond.Compose(eventLog{}, oneShot{})); err != nil {
		fmt.Println(err)
	}
	// Output:
	// log: connecting
	// log: connected
	// log: ready
	// log: text
	// app: got ping me
	// log: closed
	// log: disconnected
}

func ExampleHandlerFunc() {
	url, stop := exampleEchoServer()
	defer stop()

	ws, err := lomond.New(url, quiet...)
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	h := lomond.HandlerFunc(func(ws *lomond.WebSocket, ev events.Event) {
		switch ev := ev.(type) {
		case *events.Ready:
			_ = ws.SendBinary([]byte{1, 2, 3})
		case *events.Binary:
			fmt.Println("binary", ev.Data)
			_ = ws.Close(lomond.StatusNormal, "")
		case *events.Closed:
			fmt.Println("closed", ev.Code)
		case *events.Disconnected:
			fmt.Println("disconnected", ev.Reason)
		}
	})
	if err := ws.Run(ctx, h); err != nil {
		fmt.Println(err)
	}
	// Output:
	// binary [1 2 3]
	// closed 1000
	// disconnected closed
}

// Cancelling Run's context with a CloseCause closes the session with that
// code and reason instead of 1001 "going away".
func ExampleCloseCause() {
	url, stop := exampleEchoServer()
	defer stop()
	ws, err := lomond.New(url, lomond.WithPollInterval(0), lomond.WithPingRate(0))
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	err = ws.Run(ctx, lomond.HandlerFunc(func(ws *lomond.WebSocket, ev events.Event) {
		switch e := ev.(type) {
		case *events.Ready:
			cancel(lomond.CloseCause(4000, "maintenance"))
		case *events.Closed:
			fmt.Println("closed with code", e.Code)
		}
	}))
	fmt.Println("Run:", err)
	// Output:
	// closed with code 4000
	// Run: <nil>
}
