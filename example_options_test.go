package lomond_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/coder/websocket"
	"github.com/lomond-go/lomond"
	"github.com/lomond-go/lomond/events"
)

// printTexts prints every text message and closes the session after n.
func printTexts(n int) lomond.HandlerFunc {
	seen := 0
	return func(ws *lomond.WebSocket, ev events.Event) {
		if ev, ok := ev.(*events.Text); ok {
			fmt.Println(ev.Text)
			if seen++; seen == n {
				_ = ws.Close(lomond.StatusNormal, "")
			}
		}
	}
}

// runOnce runs one session of a new WebSocket on url and prints Run's error,
// if any.
func runOnce(url string, h lomond.EventHandler, opts ...lomond.Option) {
	ws, err := lomond.New(url, opts...)
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

// holdServer accepts websocket connections and then neither reads nor
// writes: it answers no ping and no close.
func holdServer() *exampleServer {
	return startServer(func(ctx context.Context, n int, w http.ResponseWriter, r *http.Request) {
		if c := accept(w, r); c != nil {
			defer c.CloseNow()
			<-ctx.Done()
		}
	})
}

// headerServer reports the named request headers, one message each, then
// echoes.
func headerServer(opts *websocket.AcceptOptions, names ...string) *exampleServer {
	return startServer(func(ctx context.Context, n int, w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, opts)
		if err != nil {
			return
		}
		defer c.CloseNow()
		for _, name := range names {
			if !say(ctx, c, name+": "+strings.Join(r.Header.Values(name), ", ")) {
				return
			}
		}
		echo(ctx, c)
	})
}

func ExampleWithProtocols() {
	srv := startServer(func(ctx context.Context, n int, w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, &websocket.AcceptOptions{Subprotocols: []string{"v1.feed"}})
		if err != nil {
			return
		}
		defer c.CloseNow()
		echo(ctx, c)
	})
	defer srv.Close()

	// Offered in order of preference; this server speaks only v1.
	runOnce(srv.URL, lomond.HandlerFunc(func(ws *lomond.WebSocket, ev events.Event) {
		if ev, ok := ev.(*events.Ready); ok {
			fmt.Println("protocol:", ev.Protocol)
			_ = ws.Close(lomond.StatusNormal, "")
		}
	}), lomond.WithProtocols("v2.feed", "v1.feed"))

	_, err := lomond.New(srv.URL, lomond.WithProtocols("v1 feed"))
	fmt.Println(err)
	// Output:
	// protocol: v1.feed
	// lomond: invalid option: subprotocol "v1 feed" is not a valid token
}

func ExampleWithHeader() {
	srv := headerServer(nil, "Authorization", "X-Trace")
	defer srv.Close()

	runOnce(srv.URL, printTexts(2),
		lomond.WithHeader("Authorization", "Bearer abc123"),
		lomond.WithHeader("X-Trace", "a"),
		lomond.WithHeader("X-Trace", "b"), // values accumulate
	)

	_, err := lomond.New(srv.URL, lomond.WithHeader("Sec-WebSocket-Key", "x"))
	fmt.Println(err)
	// Output:
	// Authorization: Bearer abc123
	// X-Trace: a, b
	// lomond: invalid option: header Sec-Websocket-Key is set by the handshake
}

func ExampleWithUserAgent() {
	srv := headerServer(nil, "User-Agent")
	defer srv.Close()

	runOnce(srv.URL, printTexts(1), lomond.WithUserAgent("ticker-bot/2.1"))
	// Output:
	// User-Agent: ticker-bot/2.1
}

func ExampleWithOrigin() {
	// A browser-facing server that checks Origin.
	srv := headerServer(&websocket.AcceptOptions{OriginPatterns: []string{"app.example.com"}}, "Origin")
	defer srv.Close()

	runOnce(srv.URL, printTexts(1), lomond.WithOrigin("https://app.example.com"))
	// Output:
	// Origin: https://app.example.com
}

func ExampleWithCompression() {
	srv := startServer(func(ctx context.Context, n int, w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, &websocket.AcceptOptions{CompressionMode: websocket.CompressionContextTakeover})
		if err != nil {
			return
		}
		defer c.CloseNow()
		echo(ctx, c)
	})
	defer srv.Close()

	big := strings.Repeat("all work and no play ", 200)
	runOnce(srv.URL, lomond.HandlerFunc(func(ws *lomond.WebSocket, ev events.Event) {
		switch ev := ev.(type) {
		case *events.Ready:
			fmt.Println("extensions:", ev.Extensions)
			_ = ws.SendText(big)
		case *events.Text:
			fmt.Println("echo intact:", ev.Text == big) // decompressed before delivery
			_ = ws.Close(lomond.StatusNormal, "")
		}
	}), lomond.WithCompression(lomond.CompressionNoContextTakeover))
	// Output:
	// extensions: [permessage-deflate]
	// echo intact: true
}

func ExampleWithCompressionOptions() {
	srv := startServer(func(ctx context.Context, n int, w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, &websocket.AcceptOptions{CompressionMode: websocket.CompressionContextTakeover})
		if err != nil {
			return
		}
		defer c.CloseNow()
		echo(ctx, c)
	})
	defer srv.Close()

	runOnce(srv.URL, lomond.HandlerFunc(func(ws *lomond.WebSocket, ev events.Event) {
		switch ev := ev.(type) {
		case *events.Ready:
			fmt.Println("agreed:", ev.Response.Header.Get("Sec-WebSocket-Extensions"))
			_ = ws.SendText("short messages are compressed too")
		case *events.Text:
			fmt.Println("echo:", ev.Text)
			_ = ws.Close(lomond.StatusNormal, "")
		}
	}), lomond.WithCompressionOptions(lomond.CompressionOptions{
		ServerNoContextTakeover: true, // the client keeps no window between messages
		Threshold:               -1,   // compress every message
	}))
	// Output:
	// agreed: permessage-deflate; server_no_context_takeover
	// echo: short messages are compressed too
}

func ExampleWithReadLimit() {
	srv := startServer(func(ctx context.Context, n int, w http.ResponseWriter, r *http.Request) {
		if c := accept(w, r); c != nil {
			defer c.CloseNow()
			if say(ctx, c, "small", strings.Repeat("x", 2048)) {
				echo(ctx, c)
			}
		}
	})
	defer srv.Close()

	ws, err := lomond.New(srv.URL, lomond.WithReadLimit(1024))
	if err != nil {
		fmt.Println(err)
		return
	}
	err = ws.Run(context.Background(), lomond.HandlerFunc(func(ws *lomond.WebSocket, ev events.Event) {
		switch ev := ev.(type) {
		case *events.Text:
			fmt.Println("text:", ev.Text)
		case *events.ProtocolError:
			fmt.Println("protocol error, close code", ev.Code)
		}
	}))
	var pe *lomond.ProtocolError
	fmt.Println(errors.As(err, &pe), lomond.CloseStatus(err))
	// Output:
	// text: small
	// protocol error, close code 1009
	// true 1009
}

func ExampleWithBorrowedBinary() {
	srv := startServer(func(ctx context.Context, n int, w http.ResponseWriter, r *http.Request) {
		if c := accept(w, r); c != nil {
			defer c.CloseNow()
			for _, b := range []byte{1, 2, 3} {
				if c.Write(ctx, websocket.MessageBinary, []byte{b, b}) != nil {
					return
				}
			}
			echo(ctx, c)
		}
	})
	defer srv.Close()

	var kept [][]byte
	runOnce(srv.URL, lomond.HandlerFunc(func(ws *lomond.WebSocket, ev events.Event) {
		if ev, ok := ev.(*events.Binary); ok {
			// ev.Data is reused for the next message: copy what you keep.
			kept = append(kept, bytes.Clone(ev.Data))
			if len(kept) == 3 {
				_ = ws.Close(lomond.StatusNormal, "")
			}
		}
	}), lomond.WithBorrowedBinary())
	fmt.Println(kept)
	// Output:
	// [[1 1] [2 2] [3 3]]
}

func ExampleWithPollInterval() {
	srv := echoServer()
	defer srv.Close()

	polls := 0
	runOnce(srv.URL, lomond.HandlerFunc(func(ws *lomond.WebSocket, ev events.Event) {
		switch ev.(type) {
		case *events.Poll: // right after Ready, then every interval
			// Polls go on until the close reply; on a loaded machine one
			// more may come first, so only the first three are printed.
			if polls++; polls <= 3 {
				fmt.Println("poll", polls)
			}
			if polls == 3 {
				_ = ws.Close(lomond.StatusNormal, "")
			}
		case *events.Closed:
			fmt.Println("closed")
		}
	}), lomond.WithPollInterval(5*time.Millisecond), lomond.WithPingRate(0))
	// Output:
	// poll 1
	// poll 2
	// poll 3
	// closed
}

func ExampleWithPingRate() {
	srv := echoServer()
	defer srv.Close()

	pongs := 0
	runOnce(srv.URL, lomond.HandlerFunc(func(ws *lomond.WebSocket, ev events.Event) {
		if ev, ok := ev.(*events.Pong); ok {
			// The answer to an automatic ping carries the round-trip time.
			// Only the first is printed: another may arrive before the
			// close reply.
			if pongs++; pongs == 1 {
				fmt.Println("pong, RTT measured:", ev.RTT > 0)
				_ = ws.Close(lomond.StatusNormal, "")
			}
		}
	}), lomond.WithPingRate(5*time.Millisecond), lomond.WithPollInterval(0))
	// Output:
	// pong, RTT measured: true
}

func ExampleWithPingTimeout() {
	srv := holdServer() // alive at the TCP level, but never answers a ping
	defer srv.Close()

	ws, err := lomond.New(srv.URL, lomond.WithPollInterval(0),
		lomond.WithPingRate(10*time.Millisecond), lomond.WithPingTimeout(20*time.Millisecond))
	if err != nil {
		fmt.Println(err)
		return
	}
	err = ws.Run(context.Background(), lomond.HandlerFunc(func(ws *lomond.WebSocket, ev events.Event) {
		switch ev := ev.(type) {
		case *events.Unresponsive:
			fmt.Println("unresponsive")
		case *events.Disconnected:
			fmt.Println("disconnected, graceful:", ev.Graceful)
		}
	}))
	fmt.Println(errors.Is(err, lomond.ErrUnresponsive))
	// Output:
	// unresponsive
	// disconnected, graceful: false
	// true
}

func ExampleWithAutoPong() {
	// The server pings once, and says so when the pong arrives.
	srv := startServer(func(ctx context.Context, n int, w http.ResponseWriter, r *http.Request) {
		c := accept(w, r)
		if c == nil {
			return
		}
		defer c.CloseNow()
		pinged := make(chan struct{})
		go func() {
			defer close(pinged)
			pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			if c.Ping(pctx) == nil {
				say(ctx, c, "pong received")
			}
		}()
		echo(ctx, c) // a ping needs the connection read meanwhile
		<-pinged
	})
	defer srv.Close()

	runOnce(srv.URL, lomond.HandlerFunc(func(ws *lomond.WebSocket, ev events.Event) {
		switch ev := ev.(type) {
		case *events.Ping:
			fmt.Println("ping: answering by hand")
			_ = ws.SendPong(ev.Data)
		case *events.Text:
			fmt.Println(ev.Text)
			_ = ws.Close(lomond.StatusNormal, "")
		}
	}), lomond.WithAutoPong(false), lomond.WithPingRate(0), lomond.WithPollInterval(0))
	// Output:
	// ping: answering by hand
	// pong received
}

func ExampleWithCloseTimeout() {
	srv := holdServer() // never answers the close
	defer srv.Close()

	ws, err := lomond.New(srv.URL, lomond.WithCloseTimeout(20*time.Millisecond))
	if err != nil {
		fmt.Println(err)
		return
	}
	err = ws.Run(context.Background(), lomond.HandlerFunc(func(ws *lomond.WebSocket, ev events.Event) {
		switch ev := ev.(type) {
		case *events.Ready:
			_ = ws.Close(lomond.StatusNormal, "")
		case *events.Disconnected:
			fmt.Println("disconnected, graceful:", ev.Graceful)
		}
	}))
	fmt.Println(errors.Is(err, lomond.ErrCloseTimeout))
	// Output:
	// disconnected, graceful: false
	// true
}

func ExampleWithHandshakeTimeout() {
	// An HTTP server that never answers the upgrade request.
	srv := startServer(func(ctx context.Context, n int, w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done(): // the client gave up
		case <-ctx.Done():
		}
	})
	defer srv.Close()

	ws, err := lomond.New(srv.URL, lomond.WithHandshakeTimeout(20*time.Millisecond))
	if err != nil {
		fmt.Println(err)
		return
	}
	err = ws.Run(context.Background(), lomond.HandlerFunc(func(ws *lomond.WebSocket, ev events.Event) {
		fmt.Println(ev.Name())
	}))
	fmt.Println(errors.Is(err, lomond.ErrHandshakeTimeout))
	// Output:
	// connecting
	// connected
	// disconnected
	// true
}

func ExampleWithDialTimeout() {
	// A dialer that never connects stands for a black-holed address.
	hang := func(ctx context.Context, network, addr string) (net.Conn, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	ws, err := lomond.New("ws://127.0.0.1:9/", lomond.WithDialer(hang), lomond.WithDialTimeout(20*time.Millisecond))
	if err != nil {
		fmt.Println(err)
		return
	}
	err = ws.Run(context.Background(), lomond.HandlerFunc(func(ws *lomond.WebSocket, ev events.Event) {
		if ev, ok := ev.(*events.ConnectFail); ok {
			fmt.Println(ev.Reason)
		}
	}))
	fmt.Println(errors.Is(err, context.DeadlineExceeded))
	// Output:
	// unable to connect; timed out; context deadline exceeded
	// true
}

func ExampleWithDialer() {
	srv := echoServer()
	defer srv.Close()

	var d net.Dialer
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		fmt.Println("dialing", network) // a unix socket, a SOCKS dialer, a pipe...
		return d.DialContext(ctx, network, addr)
	}
	runOnce(srv.URL, lomond.HandlerFunc(func(ws *lomond.WebSocket, ev events.Event) {
		if _, ok := ev.(*events.Ready); ok {
			fmt.Println("ready")
			_ = ws.Close(lomond.StatusNormal, "")
		}
	}), lomond.WithDialer(dial))
	// Output:
	// dialing tcp
	// ready
}

func ExampleWithLogger() {
	srv := echoServer()
	defer srv.Close()

	// Text records on stdout at Info (lifecycle and failures; messages are
	// Debug), without the time, with a fixed URL and without the session's
	// length, so that the output is the same on every run.
	logger := slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{
		Level: slog.LevelInfo,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			switch a.Key {
			case slog.TimeKey, "session":
				return slog.Attr{}
			case "url":
				a.Value = slog.StringValue("ws://server/")
			}
			return a
		},
	}))
	runOnce(srv.URL, lomond.HandlerFunc(func(ws *lomond.WebSocket, ev events.Event) {
		if _, ok := ev.(*events.Ready); ok {
			_ = ws.SendText("payloads are never logged")
			_ = ws.Close(lomond.StatusNormal, "")
		}
	}), lomond.WithLogger(logger))
	// Output:
	// level=INFO msg="websocket connecting" event=connecting url=ws://server/
	// level=INFO msg="websocket connected" event=connected url=ws://server/
	// level=INFO msg="websocket ready" event=ready url=ws://server/
	// level=INFO msg="websocket closed" event=closed url=ws://server/ code=1000 reason=""
	// level=INFO msg="websocket disconnected" event=disconnected url=ws://server/ reason=closed graceful=true
}
