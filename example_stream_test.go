package lomond_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing/iotest"
	"time"

	"github.com/coder/websocket"
	"github.com/lomond-go/lomond"
	"github.com/lomond-go/lomond/events"
)

// streamEcho is a coder/websocket server on 127.0.0.1 that echoes each
// message as it arrives (it never holds one whole either).
func streamEcho() *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, &websocket.AcceptOptions{CompressionMode: websocket.CompressionContextTakeover})
		if err != nil {
			return
		}
		defer c.CloseNow()
		c.SetReadLimit(-1)
		for {
			typ, rd, err := c.Reader(r.Context())
			if err != nil {
				return
			}
			wr, err := c.Writer(r.Context(), typ)
			if err != nil {
				return
			}
			if _, err := io.Copy(wr, rd); err != nil || wr.Close() != nil {
				return
			}
		}
	}))
}

// zeros is an endless source of zero bytes.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// counter receives every message as a stream and counts its bytes: memory
// holds one buffer, whatever the size of the message, and the read limit
// does not apply.
type counter struct {
	lomond.BaseHandler
}

func (counter) OnStream(ws *lomond.WebSocket, ev *events.Stream) {
	n, err := io.Copy(io.Discard, ev.Reader)
	fmt.Printf("received %d MiB (binary %v), err %v\n", n>>20, ev.Binary, err)
	_ = ws.Close(lomond.StatusNormal, "done")
}

func ExampleStreamHandler() {
	srv := streamEcho()
	defer srv.Close()
	ws, err := lomond.New(srv.URL, lomond.WithPingRate(0), lomond.WithPollInterval(0),
		lomond.WithReadLimit(1<<20)) // 1 MiB: whole messages only
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sent := make(chan error, 1)
	go func() {
		if err := ws.WaitReady(ctx); err != nil {
			sent <- err
			return
		}
		// 16 MiB from a reader, in 64 KiB fragments: never held whole.
		sent <- ws.SendBinaryStream(ctx, io.LimitReader(zeros{}, 16<<20))
	}()
	fmt.Println("Run:", ws.Run(ctx, counter{}))
	fmt.Println("sent:", <-sent)
	// Output:
	// received 16 MiB (binary true), err <nil>
	// Run: <nil>
	// sent: <nil>
}

// lines reads each text message line by line as it arrives.
type lines struct {
	lomond.BaseHandler
}

func (lines) OnReady(ws *lomond.WebSocket, _ *events.Ready) {
	// Sending from the session's goroutine is fine for a message the
	// server reads as it comes; a long one would hold the goroutine that
	// reads the echo.
	w, err := ws.TextWriter(context.Background())
	if err != nil {
		fmt.Println(err)
		return
	}
	for i := 1; i <= 1000; i++ {
		fmt.Fprintf(w, "row %d,%s\n", i, strings.Repeat("x", i%7))
	}
	fmt.Println("Close:", w.Close())
}

func (lines) OnStream(ws *lomond.WebSocket, ev *events.Stream) {
	sc := bufio.NewScanner(ev.Reader)
	n, last := 0, ""
	for sc.Scan() {
		n, last = n+1, sc.Text()
	}
	fmt.Printf("%d lines, the last %q, compressed %v, err %v\n", n, last, ev.Compressed, sc.Err())
	_ = ws.Close(lomond.StatusNormal, "done")
}

func ExampleWebSocket_TextWriter() {
	srv := streamEcho()
	defer srv.Close()
	ws, err := lomond.New(srv.URL, lomond.WithPingRate(0), lomond.WithPollInterval(0),
		lomond.WithCompression(lomond.CompressionContextTakeover))
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	fmt.Println("Run:", ws.Run(ctx, lines{}))
	// Output:
	// Close: <nil>
	// 1000 lines, the last "row 1000,xxxxxx", compressed true, err <nil>
	// Run: <nil>
}

// echoed prints each message it streams back, whole (they are short).
type echoed struct {
	lomond.BaseHandler
	send func(ws *lomond.WebSocket) error
}

func (h echoed) OnReady(ws *lomond.WebSocket, _ *events.Ready) {
	fmt.Println("send:", h.send(ws))
}

func (echoed) OnStream(ws *lomond.WebSocket, ev *events.Stream) {
	b, err := io.ReadAll(io.LimitReader(ev.Reader, 1<<10))
	fmt.Printf("echo: %q (binary %v), err %v\n", b, ev.Binary, err)
	_ = ws.Close(lomond.StatusNormal, "done")
}

// runStreamEcho runs one session against streamEcho with h.
func runStreamEcho(h lomond.EventHandler) {
	srv := streamEcho()
	defer srv.Close()
	ws, err := lomond.New(srv.URL, lomond.WithPingRate(0), lomond.WithPollInterval(0))
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	fmt.Println("Run:", ws.Run(ctx, h))
}

func ExampleWebSocket_SendTextStream() {
	runStreamEcho(echoed{send: func(ws *lomond.WebSocket) error {
		// Any io.Reader: a file, a pipe, an HTTP body.
		return ws.SendTextStream(context.Background(), strings.NewReader("streamed text"))
	}})
	// Output:
	// send: <nil>
	// echo: "streamed text" (binary false), err <nil>
	// Run: <nil>
}

func ExampleWebSocket_SendBinaryStream() {
	runStreamEcho(echoed{send: func(ws *lomond.WebSocket) error {
		err := ws.SendBinaryStream(context.Background(), io.MultiReader(
			strings.NewReader("\x01\x02"), strings.NewReader("\x03")))
		// A reader that fails before anything was sent: nothing is sent.
		failed := ws.SendBinaryStream(context.Background(), iotest.ErrReader(errors.New("disk error")))
		fmt.Println("failed:", failed)
		return err
	}})
	// Output:
	// failed: disk error
	// send: <nil>
	// echo: "\x01\x02\x03" (binary true), err <nil>
	// Run: <nil>
}

func ExampleWebSocket_BinaryWriter() {
	runStreamEcho(echoed{send: func(ws *lomond.WebSocket) error {
		w, err := ws.BinaryWriter(context.Background())
		if err != nil {
			return err
		}
		for i := byte(0); i < 4; i++ {
			if _, err := w.Write([]byte{i}); err != nil {
				return err // the message is over: see ErrMessageAbandoned
			}
		}
		return w.Close() // sends the last fragment
	}})
	// Output:
	// send: <nil>
	// echo: "\x00\x01\x02\x03" (binary true), err <nil>
	// Run: <nil>
}
