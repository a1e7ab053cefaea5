package lomond_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/lomond-go/lomond"
	"github.com/lomond-go/lomond/events"
)

// byteCounter counts payload bytes in and out. Its counters are atomic:
// OnSend runs on the sending goroutine.
type byteCounter struct{ in, out atomic.Int64 }

func (c *byteCounter) OnText(_ *lomond.WebSocket, ev *events.Text) { c.in.Add(int64(len(ev.Text))) }

func (c *byteCounter) OnBinary(_ *lomond.WebSocket, ev *events.Binary) { c.in.Add(int64(len(ev.Data))) }

func (c *byteCounter) OnSend(_ *lomond.WebSocket, ev *events.Outbound) {
	if ev.Result == events.Sent && (ev.Kind == events.KindText || ev.Kind == events.KindBinary) {
		c.out.Add(int64(ev.Size))
	}
}

// A plugin with three methods, installed on the WebSocket: it sees the
// messages of every session, whoever consumes them (here a range loop),
// and every send.
func ExampleWithPlugins() {
	url, stop := exampleEchoServer()
	defer stop()

	counter := &byteCounter{}
	ws, err := lomond.New(url, append(quiet, lomond.WithPlugins(counter))...)
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for ev := range ws.Events(ctx) {
		switch ev.(type) {
		case *events.Ready:
			_ = ws.SendText("hello")
			_ = ws.SendBinary([]byte{1, 2, 3})
		case *events.Binary:
			_ = ws.Close(lomond.StatusNormal, "")
		}
	}
	fmt.Println("in:", counter.in.Load(), "out:", counter.out.Load())
	// Output:
	// in: 8 out: 8
}

// sendLog prints what goes out, and what became of it.
type sendLog struct{}

func (sendLog) OnSend(_ *lomond.WebSocket, ev *events.Outbound) { fmt.Println("out:", ev) }

// A SendObserver sees every outgoing message and frame with its result,
// those the library sends itself included.
func ExampleSendObserver() {
	url, stop := exampleEchoServer()
	defer stop()

	ws, err := lomond.New(url, quiet...)
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := ws.Run(ctx, lomond.Compose(sendLog{}, oneShot{})); err != nil {
		fmt.Println(err)
	}
	_ = ws.SendText("too late")
	// Output:
	// out: Outbound(kind='text', size=7, result='sent')
	// app: got ping me
	// out: Outbound(kind='close', size=6, result='sent', code=1000, reason='done')
}
