package lomondtest_test

import (
	"context"
	"fmt"
	"time"

	"github.com/lomond-go/lomond"
	"github.com/lomond-go/lomond/events"
	"github.com/lomond-go/lomond/lomondtest"
	"github.com/lomond-go/lomond/lomondtest/fault"
)

// Examples have no *testing.T, so they pass nil to NewServer and close the
// server themselves; a test passes t (see the package documentation).

// A conversation: the server expects the greeter's hello, answers, and
// expects the greeter to close. The recorder and the server's record tell
// what happened on each side.
func Example() {
	srv := lomondtest.NewServer(nil, lomondtest.Script(
		lomondtest.Expect(lomondtest.Text("hello")),
		lomondtest.SendText("hi"),
		lomondtest.ExpectClose(1000, "thanks"),
	))
	defer srv.Close()

	rec := lomondtest.NewRecorder()
	ctx, cancel := context.WithTimeout(context.Background(), lomondtest.Timeout)
	defer cancel()
	err := srv.Client().Run(ctx, lomond.Compose(&greeter{}, rec))
	fmt.Println("Run:", err)
	fmt.Println("client saw:", rec.Names())

	conn := srv.Conns()[0]
	code, reason, _ := conn.ClientClose()
	fmt.Println("server saw:", conn.Messages(), code, reason)
	// Output:
	// Run: <nil>
	// client saw: [connecting connected ready text closed disconnected]
	// server saw: [text "hello"] 1000 thanks
}

// With no script, the server echoes.
func ExampleNewServer() {
	srv := lomondtest.NewServer(nil)
	defer srv.Close()

	ctx, cancel := context.WithTimeout(context.Background(), lomondtest.Timeout)
	defer cancel()
	ws := srv.Client()
	for ev := range ws.Events(ctx) {
		if _, ok := ev.(*events.Ready); ok {
			_ = ws.SendText("anyone there?")
		}
		if tx, ok := ev.(*events.Text); ok {
			fmt.Println("echo:", tx.Text)
			break // leaving the loop closes the session
		}
	}
	fmt.Println(srv.Conns()[0].Messages())
	// Output:
	// echo: anyone there?
	// [text "anyone there?"]
}

// A reconnect without waiting: the first connection is dropped after the
// handshake, the second says hello. BackOff counts the one delay Persist
// asked for.
func ExampleBackOff() {
	srv := lomondtest.NewServer(nil,
		lomondtest.Script(lomondtest.Accept(), fault.Drop()),
		lomondtest.SendText("hello again"),
	)
	defer srv.Close()

	b := &lomondtest.BackOff{}
	ctx, cancel := context.WithTimeout(context.Background(), lomondtest.Timeout)
	defer cancel()
	start := time.Now()
	for ev := range srv.Client().PersistEvents(ctx, b.Option()) {
		fmt.Println(ev.Name())
		if ev.Name() == "text" {
			break
		}
	}
	fmt.Println("attempts:", b.Attempts(), "fast:", time.Since(start) < time.Second)
	// Output:
	// connecting
	// connected
	// ready
	// disconnected
	// back_off
	// connecting
	// connected
	// ready
	// text
	// attempts: 1 fast: true
}

// A TLS server: the client trusts its CA through ClientOptions, which
// Client includes.
func ExampleNewTLSServer() {
	srv := lomondtest.NewTLSServer(nil, lomondtest.CloseWith(1001, "going away"))
	defer srv.Close()

	ctx, cancel := context.WithTimeout(context.Background(), lomondtest.Timeout)
	defer cancel()
	err := srv.Client().Run(ctx, lomondtest.NewRecorder())
	fmt.Println(srv.URL[:6], srv.Certificate().Subject.CommonName)
	fmt.Println(err)
	// Output:
	// wss:// lomondtest CA
	// lomond: server closed the connection: code 1001, reason "going away"
}

// What the server saw on a connection: the upgrade request, the messages,
// the client's close.
func ExampleConn() {
	srv := lomondtest.NewServer(nil, lomondtest.Script(
		lomondtest.Accept(lomondtest.Subprotocols("feed.v2")),
		lomondtest.Expect(lomondtest.JSON(`{"op": "subscribe", "topic": "ticks"}`)),
		lomondtest.CloseWith(1000, "bye"),
	))
	defer srv.Close()

	ws, _ := lomond.New(srv.URL+"/feed", append(srv.ClientOptions(),
		lomond.WithProtocols("feed.v1", "feed.v2"), lomond.WithHeader("Authorization", "Bearer abc"))...)
	ctx, cancel := context.WithTimeout(context.Background(), lomondtest.Timeout)
	defer cancel()
	_ = ws.Run(ctx, lomond.HandlerFunc(func(ws *lomond.WebSocket, ev events.Event) {
		if ev.Name() == "ready" {
			_ = ws.SendJSON(map[string]string{"topic": "ticks", "op": "subscribe"})
		}
	}))

	c := srv.Conns()[0]
	code, reason, ok := c.ClientClose()
	fmt.Println(c.Request().URL.Path, c.Request().Header.Get("Authorization"), c.Subprotocol())
	fmt.Println(c.Messages())
	fmt.Println(code, reason, ok)
	// Output:
	// /feed Bearer abc feed.v2
	// [text "{\"op\":\"subscribe\",\"topic\":\"ticks\"}"]
	// 1000 bye true
}
