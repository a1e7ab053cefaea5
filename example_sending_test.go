package lomond_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/lomond-go/lomond"
	"github.com/lomond-go/lomond/events"
)

// A producer may send before the first connection: the queue holds the
// messages, and the first session flushes them after OnReady, in the order
// they were sent.
func ExampleWithSendQueue() {
	url, stop := exampleEchoServer()
	defer stop()

	ws, err := lomond.New(url, append(quiet, lomond.WithSendQueue(100, lomond.RejectNewest))...)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, m := range []string{"one", "two"} {
		if err := ws.SendText(m); err != nil { // no session yet: queued
			fmt.Println(err)
		}
	}
	fmt.Println("queued:", ws.Queued())

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	echoes := 0
	err = ws.Run(ctx, lomond.HandlerFunc(func(ws *lomond.WebSocket, ev events.Event) {
		switch ev := ev.(type) {
		case *events.Ready:
			_ = ws.SendText("three") // joins the queue behind "one" and "two"
		case *events.Text:
			fmt.Println("echo:", ev.Text)
			if echoes++; echoes == 3 {
				_ = ws.Close(lomond.StatusNormal, "bye")
			}
		}
	}))
	fmt.Println("run returned", err)
	// Output:
	// queued: 2
	// echo: one
	// echo: two
	// echo: three
	// run returned <nil>
}

// A queue bounded in bytes as well as in messages: large messages cannot
// make its memory unbounded. DropOldest drops as many of the oldest
// messages as it takes to fit the new one; a message larger than the bound
// is refused whatever the policy.
func ExampleWithSendQueueBytes() {
	url, stop := exampleEchoServer()
	defer stop()

	ws, err := lomond.New(url, append(quiet,
		lomond.WithSendQueue(100, lomond.DropOldest),
		lomond.WithSendQueueBytes(10))...)
	if err != nil {
		fmt.Println(err)
		return
	}
	_ = ws.SendText("hello")     // 5 bytes: queued
	_ = ws.SendText("world")     // 10 bytes queued: the bound
	err = ws.SendText("goodbye") // 7 more bytes: both older messages go
	var dropped *lomond.DroppedError
	if errors.As(err, &dropped) {
		fmt.Printf("dropped %q and %d more\n", dropped.Dropped.Data, len(dropped.More))
	}
	err = ws.SendText("far too long") // 12 bytes can never fit: refused
	fmt.Println(errors.Is(err, lomond.ErrQueueFull), err)
	fmt.Println("messages:", ws.Queued(), "bytes:", ws.QueuedBytes())

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = ws.Run(ctx, lomond.HandlerFunc(func(ws *lomond.WebSocket, ev events.Event) {
		if ev, ok := ev.(*events.Text); ok {
			fmt.Println("echo:", ev.Text)
			_ = ws.Close(lomond.StatusNormal, "bye")
		}
	}))
	fmt.Println("run returned", err)
	// Output:
	// dropped "hello" and 1 more
	// true lomond: send queue full: a message of 12 bytes is larger than the queue's bound of 10 bytes
	// messages: 1 bytes: 7
	// echo: goodbye
	// run returned <nil>
}

// QueuedBytes tells how much payload waits in the queue: what
// WithSendQueueBytes bounds.
func ExampleWebSocket_QueuedBytes() {
	ws, err := lomond.New(refusedURL(), append(quiet, lomond.WithSendQueue(10, lomond.RejectNewest))...)
	if err != nil {
		fmt.Println(err)
		return
	}
	_ = ws.SendText("hello")              // no session yet: queued
	_ = ws.SendBinary([]byte{1, 2, 3, 4}) // queued too
	fmt.Println("messages:", ws.Queued(), "bytes:", ws.QueuedBytes())
	ws.Unsent() // take them back
	fmt.Println("messages:", ws.Queued(), "bytes:", ws.QueuedBytes())
	// Output:
	// messages: 2 bytes: 9
	// messages: 0 bytes: 0
}

// Stop ends Persist for good from a handler (ws.Close would only end the
// connection, and Persist would connect again).
func ExampleWebSocket_Stop() {
	url, stop := exampleEchoServer()
	defer stop()

	ws, err := lomond.New(url, quiet...)
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = ws.Persist(ctx, lomond.HandlerFunc(func(ws *lomond.WebSocket, ev events.Event) {
		fmt.Println(ev.Name())
		switch ev := ev.(type) {
		case *events.Ready:
			_ = ws.SendText("last words")
		case *events.Text:
			fmt.Println("echo:", ev.Text)
			_ = ws.Stop(lomond.StatusNormal, "done for today")
		}
	}))
	fmt.Println("persist returned", err)
	// Output:
	// connecting
	// connected
	// ready
	// text
	// echo: last words
	// closed
	// disconnected
	// persist returned <nil>
}

// Query values that are secrets are sent, and shown as xxxxx in events,
// errors and logs.
func ExampleWithSensitiveQueryKeys() {
	refuse := func(context.Context, string, string) (net.Conn, error) {
		return nil, errors.New("no network in this example")
	}
	ws, err := lomond.New("wss://feed.example/v1?room=lobby&token=s3cr3t&sig=f00d",
		lomond.WithSensitiveQueryKeys("sig"), lomond.WithDialer(refuse), lomond.WithoutProxy())
	if err != nil {
		fmt.Println(err)
		return
	}
	err = ws.Run(context.Background(), lomond.HandlerFunc(func(_ *lomond.WebSocket, ev events.Event) {
		fmt.Println(ev)
	}))
	fmt.Println(err)
	// Output:
	// Connecting(url='wss://feed.example/v1?room=lobby&token=xxxxx&sig=xxxxx')
	// ConnectFail(reason='unable to connect; no network in this example')
	// lomond: connect to wss://feed.example/v1?room=lobby&token=xxxxx&sig=xxxxx failed: unable to connect; no network in this example
}

// SendTextContext bounds a send by a context: it gives up when the context
// ends first (here it has already ended, so nothing is sent).
func ExampleWebSocket_SendTextContext() {
	url, stop := exampleEchoServer()
	defer stop()
	ws, err := lomond.New(url, quiet...)
	if err != nil {
		fmt.Println(err)
		return
	}
	err = ws.Run(context.Background(), lomond.HandlerFunc(func(ws *lomond.WebSocket, ev events.Event) {
		switch ev := ev.(type) {
		case *events.Ready:
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			fmt.Println("send:", ws.SendTextContext(ctx, "within a second"))
			ended, end := context.WithCancel(context.Background())
			end()
			fmt.Println("ended context:", ws.SendTextContext(ended, "never sent"))
		case *events.Text:
			fmt.Println("echo:", ev.Text)
			_ = ws.Close(lomond.StatusNormal, "")
		}
	}))
	fmt.Println("run returned", err)
	// Output:
	// send: <nil>
	// ended context: context canceled
	// echo: within a second
	// run returned <nil>
}

func ExampleWebSocket_SendBinaryContext() {
	url, stop := exampleEchoServer()
	defer stop()
	ws, err := lomond.New(url, quiet...)
	if err != nil {
		fmt.Println(err)
		return
	}
	_ = ws.Run(context.Background(), lomond.HandlerFunc(func(ws *lomond.WebSocket, ev events.Event) {
		switch ev := ev.(type) {
		case *events.Ready:
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			_ = ws.SendBinaryContext(ctx, []byte{1, 2, 3})
		case *events.Binary:
			fmt.Println("echo:", ev.Data)
			_ = ws.Close(lomond.StatusNormal, "")
		}
	}))
	// Output:
	// echo: [1 2 3]
}

// WithSendRate paces sends: here 50 messages a second with a burst of 2, so
// the third and fourth sends each wait their turn (about 20 ms).
func ExampleWithSendRate() {
	url, stop := exampleEchoServer()
	defer stop()
	ws, err := lomond.New(url, append(quiet, lomond.WithSendRate(50, 2))...)
	if err != nil {
		fmt.Println(err)
		return
	}
	echoes := 0
	_ = ws.Run(context.Background(), lomond.HandlerFunc(func(ws *lomond.WebSocket, ev events.Event) {
		switch ev.(type) {
		case *events.Ready:
			start := time.Now()
			for i := 0; i < 4; i++ {
				_ = ws.SendText(fmt.Sprint("m", i))
			}
			fmt.Println("paced:", time.Since(start) >= 30*time.Millisecond)
		case *events.Text:
			if echoes++; echoes == 4 {
				fmt.Println("all echoed")
				_ = ws.Close(lomond.StatusNormal, "")
			}
		}
	}))
	// Output:
	// paced: true
	// all echoed
}
