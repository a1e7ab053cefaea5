package lomond_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/coder/websocket"
	"github.com/lomond-go/lomond"
	"github.com/lomond-go/lomond/events"
)

// runEcho runs one session of a new WebSocket against a fresh echo server,
// with h as the handler, and prints Run's error if there is one.
func runEcho(h lomond.EventHandler, opts ...lomond.Option) {
	srv := echoServer()
	defer srv.Close()
	ws, err := lomond.New(srv.URL, slices.Concat(quiet, opts)...)
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := ws.Run(ctx, h); err != nil {
		fmt.Println("Run:", err)
	}
}

func ExampleWebSocket_SendText() {
	runEcho(lomond.HandlerFunc(func(ws *lomond.WebSocket, ev events.Event) {
		switch ev := ev.(type) {
		case *events.Ready:
			_ = ws.SendText("héllo")
			fmt.Println(errors.Is(ws.SendText("\xff"), lomond.ErrInvalidUTF8)) // refused, nothing sent
		case *events.Text:
			fmt.Println(ev.Text)
			_ = ws.Close(lomond.StatusNormal, "")
		}
	}))
	// Output:
	// true
	// héllo
}

func ExampleWebSocket_SendBinary() {
	runEcho(lomond.HandlerFunc(func(ws *lomond.WebSocket, ev events.Event) {
		switch ev := ev.(type) {
		case *events.Ready:
			buf := []byte{0xca, 0xfe}
			_ = ws.SendBinary(buf)
			buf[0] = 0 // the library keeps nothing: buf may be reused at once
		case *events.Binary:
			fmt.Printf("% x\n", ev.Data)
			_ = ws.Close(lomond.StatusNormal, "")
		}
	}))
	// Output:
	// ca fe
}

func ExampleWebSocket_SendJSON() {
	type subscribe struct {
		Op      string   `json:"op"`
		Symbols []string `json:"symbols"`
	}
	runEcho(lomond.HandlerFunc(func(ws *lomond.WebSocket, ev events.Event) {
		switch ev := ev.(type) {
		case *events.Ready:
			_ = ws.SendJSON(subscribe{Op: "subscribe", Symbols: []string{"BTC", "ETH"}})
			fmt.Println(ws.SendJSON(func() {})) // not encodable: nothing sent
		case *events.Text:
			fmt.Println(ev.Text)
			_ = ws.Close(lomond.StatusNormal, "")
		}
	}))
	// Output:
	// lomond: SendJSON: json: unsupported type: func()
	// {"op":"subscribe","symbols":["BTC","ETH"]}
}

func ExampleWebSocket_SendPing() {
	runEcho(lomond.HandlerFunc(func(ws *lomond.WebSocket, ev events.Event) {
		switch ev := ev.(type) {
		case *events.Ready:
			_ = ws.SendPing([]byte("are you there?"))
		case *events.Pong:
			// RTT is set only for the automatic pings (WithPingRate).
			fmt.Printf("pong %q\n", ev.Data)
			_ = ws.Close(lomond.StatusNormal, "")
		}
	}))
	// Output:
	// pong "are you there?"
}

func ExampleWebSocket_SendPong() {
	runEcho(lomond.HandlerFunc(func(ws *lomond.WebSocket, ev events.Event) {
		switch ev := ev.(type) {
		case *events.Ready:
			// An unsolicited pong is a one-way heartbeat: no answer comes.
			fmt.Println(ws.SendPong([]byte("still here")))
			fmt.Println(ws.SendPong(make([]byte, 126)))
			_ = ws.SendText("the session goes on")
		case *events.Text:
			fmt.Println(ev.Text)
			_ = ws.Close(lomond.StatusNormal, "")
		}
	}))
	// Output:
	// <nil>
	// lomond: control frame payload longer than 125 bytes
	// the session goes on
}

func ExampleWebSocket_Close() {
	ws, err := lomond.New("ws://127.0.0.1:1/", quiet...)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(ws.Close(lomond.StatusNormal, "")) // no session yet

	runEcho(lomond.HandlerFunc(func(ws *lomond.WebSocket, ev events.Event) {
		switch ev := ev.(type) {
		case *events.Ready:
			// Codes are checked before anything is sent: 1005 and 1006
			// are reserved for reporting, never sent.
			fmt.Println(ws.Close(lomond.StatusNoStatus, ""))
			fmt.Println(ws.Close(lomond.StatusNormal, strings.Repeat("x", 124)))
			// 4000-4999 are for applications.
			fmt.Println(ws.Close(4000, "shutting down"))
			fmt.Println(ws.Close(lomond.StatusNormal, "again"))
		case *events.Closed:
			fmt.Println("closed", ev.Code, ev.Reason) // the server's reply
		case *events.Disconnected:
			fmt.Println("graceful:", ev.Graceful)
		}
	}))
	// Output:
	// lomond: not connected
	// lomond: invalid close code: 1005
	// lomond: close reason longer than 123 bytes
	// <nil>
	// lomond: websocket is closing
	// closed 4000 shutting down
	// graceful: true
}

func ExampleCloseStatus() {
	// The server ends the session with 1008 (policy violation).
	srv := startServer(func(ctx context.Context, n int, w http.ResponseWriter, r *http.Request) {
		if c := accept(w, r); c != nil {
			defer c.CloseNow()
			_ = c.Close(websocket.StatusPolicyViolation, "quota exceeded")
		}
	})
	defer srv.Close()

	ws, err := lomond.New(srv.URL, quiet...)
	if err != nil {
		fmt.Println(err)
		return
	}
	err = ws.Run(context.Background(), lomond.BaseHandler{})
	var ce *lomond.CloseError
	if errors.As(err, &ce) {
		fmt.Println(ce.Code, ce.Reason)
	}
	fmt.Println(lomond.CloseStatus(err) == lomond.StatusPolicyViolation)
	fmt.Println(lomond.CloseStatus(errors.New("not a close"))) // -1
	// Output:
	// 1008 quota exceeded
	// true
	// -1
}

// Example_errors shows the sentinel errors, matched with errors.Is: input
// refused before anything is sent, and sends in each state of a session.
func Example_errors() {
	_, err := lomond.New("ftp://example.com/")
	fmt.Println(errors.Is(err, lomond.ErrInvalidURL))
	_, err = lomond.New("ws://example.com/", lomond.WithPingRate(-time.Second))
	fmt.Println(errors.Is(err, lomond.ErrInvalidOption))

	srv := echoServer()
	defer srv.Close()
	ws, err := lomond.New(srv.URL, quiet...)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(errors.Is(ws.SendText("early"), lomond.ErrNotConnected))
	fmt.Println(errors.Is(ws.Run(context.Background(), nil), lomond.ErrInvalidHandler))

	h := lomond.HandlerFunc(func(ws *lomond.WebSocket, ev events.Event) {
		switch ev.(type) {
		case *events.Ready:
			fmt.Println(errors.Is(ws.SendText("\xff"), lomond.ErrInvalidUTF8))
			fmt.Println(errors.Is(ws.SendPing(make([]byte, 126)), lomond.ErrControlTooLarge))
			fmt.Println(errors.Is(ws.Close(999, ""), lomond.ErrInvalidCloseCode))
			fmt.Println(errors.Is(ws.Close(1000, strings.Repeat("x", 124)), lomond.ErrReasonTooLong))
			fmt.Println(errors.Is(ws.Run(context.Background(), lomond.BaseHandler{}), lomond.ErrAlreadyRunning))
			_ = ws.Close(lomond.StatusNormal, "bye")
			fmt.Println(errors.Is(ws.SendText("late"), lomond.ErrClosing))
		case *events.Closed:
			fmt.Println(errors.Is(ws.SendText("too late"), lomond.ErrClosed))
		}
	})
	fmt.Println(ws.Run(context.Background(), h)) // nil: the client closed and the server replied
	fmt.Println(errors.Is(ws.SendText("after"), lomond.ErrNotConnected))
	// Output:
	// true
	// true
	// true
	// true
	// true
	// true
	// true
	// true
	// true
	// true
	// true
	// <nil>
	// true
}

func ExampleWebSocket_State() {
	srv := echoServer()
	defer srv.Close()
	ws, err := lomond.New(srv.URL, quiet...)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("before Run:", ws.State())
	h := lomond.HandlerFunc(func(ws *lomond.WebSocket, ev events.Event) {
		switch ev.(type) {
		case *events.Connecting, *events.Connected, *events.Ready, *events.Closed:
			fmt.Println(ev.Name()+":", ws.State())
		}
		if _, ok := ev.(*events.Ready); ok {
			_ = ws.Close(lomond.StatusNormal, "")
			fmt.Println("after Close:", ws.State())
		}
	})
	_ = ws.Run(context.Background(), h)
	fmt.Println("after Run:", ws.State())
	// Output:
	// before Run: idle
	// connecting: connecting
	// connected: handshake
	// ready: ready
	// after Close: closing
	// closed: closed
	// after Run: idle
}

func ExampleWebSocket_URL() {
	ws, err := lomond.New("wss://example.com?stream=ticker#top")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(ws.URL()) // the path defaults to "/"; the fragment is never sent
	// Output:
	// wss://example.com/?stream=ticker
}

func ExampleWebSocket_Subprotocol() {
	srv := startServer(func(ctx context.Context, n int, w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, &websocket.AcceptOptions{Subprotocols: []string{"v1.feed"}})
		if err != nil {
			return
		}
		defer c.CloseNow()
		echo(ctx, c)
	})
	defer srv.Close()

	ws, err := lomond.New(srv.URL, lomond.WithProtocols("v2.feed", "v1.feed"))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("before: %q\n", ws.Subprotocol())
	h := lomond.HandlerFunc(func(ws *lomond.WebSocket, ev events.Event) {
		if _, ok := ev.(*events.Ready); ok {
			fmt.Printf("ready: %q\n", ws.Subprotocol())
			_ = ws.Close(lomond.StatusNormal, "")
		}
	})
	if err := ws.Run(context.Background(), h); err != nil {
		fmt.Println(err)
	}
	// Output:
	// before: ""
	// ready: "v1.feed"
}

func ExampleWebSocket_Err() {
	ws, err := lomond.New(refusedURL(), quiet...)
	if err != nil {
		fmt.Println(err)
		return
	}
	// A range loop has no return value: Err says why it ended.
	for ev := range ws.Events(context.Background()) {
		fmt.Println(ev.Name())
	}
	var ce *lomond.ConnectError
	fmt.Println(errors.As(ws.Err(), &ce))
	// Output:
	// connecting
	// connect_fail
	// true
}
