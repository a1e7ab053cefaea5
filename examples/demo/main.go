// Command demo prints every event of a lomond session as it happens.
//
// With no arguments it starts an echo server on 127.0.0.1 (lomondtest's: no
// network beyond loopback), connects to it, sends a text message, a binary
// message and a ping when the session is Ready, and closes once the echoes
// and the pong are back:
//
//	go run ./examples/demo
//
// With a URL it connects there instead and prints events until the server
// closes the connection or Ctrl-C closes it gracefully. Lines typed on stdin
// are sent as text messages:
//
//	go run ./examples/demo -poll 2s -ping 10s wss://example.com/feed
//
// It exits with status 1 when the session fails. For a complete
// command-line client (headers, TLS, proxies, JSON output, reconnection,
// exit statuses for scripts), see cmd/lomond and docs/cli.md.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"time"

	"github.com/lomond-go/lomond"
	"github.com/lomond-go/lomond/events"
	"github.com/lomond-go/lomond/lomondtest"
)

func main() {
	poll := flag.Duration("poll", lomond.DefaultPollInterval, "how often Poll is emitted (0: never)")
	ping := flag.Duration("ping", lomond.DefaultPingRate, "how often the client pings the server (0: never)")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: demo [-poll d] [-ping d] [ws://host/path]\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	opts := []lomond.Option{lomond.WithPollInterval(*poll), lomond.WithPingRate(*ping)}

	var err error
	switch flag.NArg() {
	case 0:
		err = demo(opts)
	case 1:
		err = connect(flag.Arg(0), opts)
	default:
		flag.Usage()
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

// printer prints each event with the time since start.
type printer struct{ start time.Time }

func (p printer) print(ev events.Event) {
	line := fmt.Sprintf("%7.3fs %v", ev.ReceivedTime().Sub(p.start).Seconds(), ev)
	if pong, ok := ev.(*events.Pong); ok && pong.RTT > 0 {
		line += fmt.Sprintf("  rtt=%v", pong.RTT)
	}
	fmt.Println(line)
}

// demo runs one scripted session against an embedded echo server.
func demo(opts []lomond.Option) error {
	srv := lomondtest.NewServer(nil) // no script: it echoes; nil: not in a test
	defer srv.Close()

	ws, err := lomond.New(srv.URL, append(srv.ClientOptions(), opts...)...)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	p := printer{start: time.Now()}
	pending := 3 // the text echo, the binary echo and the pong
	var sendErr error
	h := lomond.HandlerFunc(func(ws *lomond.WebSocket, ev events.Event) {
		p.print(ev)
		switch ev := ev.(type) {
		case *events.Ready:
			sendErr = errors.Join(
				ws.SendText("hello"),
				ws.SendBinary([]byte{0, 1, 2, 3}),
				ws.SendPing([]byte("are you there?")),
			)
			if sendErr != nil {
				_ = ws.Close(lomond.StatusNormal, "send failed")
			}
		case *events.Text, *events.Binary:
			pending--
		case *events.Pong:
			if string(ev.Data) == "are you there?" {
				pending--
			}
		}
		if pending == 0 {
			pending = -1
			_ = ws.Close(lomond.StatusNormal, "goodbye")
		}
	})
	if err := ws.Run(ctx, h); err != nil {
		return err
	}
	if sendErr != nil {
		return sendErr
	}
	if pending != -1 {
		return errors.New("the session ended before every echo came back")
	}
	return nil
}

// connect runs one session against url until the server closes it or the
// user presses Ctrl-C.
func connect(url string, opts []lomond.Option) error {
	ws, err := lomond.New(url, opts...)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	p := printer{start: time.Now()}
	var stdin sync.Once
	err = ws.Run(ctx, lomond.HandlerFunc(func(ws *lomond.WebSocket, ev events.Event) {
		p.print(ev)
		if _, ok := ev.(*events.Ready); ok {
			stdin.Do(func() { go sendLines(ws) })
		}
	}))
	switch lomond.CloseStatus(err) {
	case lomond.StatusNormal, lomond.StatusGoingAway:
		return nil // the server closed the connection in good order
	}
	return err
}

// sendLines sends each line of stdin as a text message. Sends are safe from
// any goroutine.
func sendLines(ws *lomond.WebSocket) {
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		if err := ws.SendText(sc.Text()); err != nil {
			fmt.Fprintln(os.Stderr, "demo: not sent:", err)
		}
	}
}
