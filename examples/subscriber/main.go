// Command subscriber is a long-running subscriber that survives its server
// being restarted.
//
// It starts an embedded feed server on 127.0.0.1 (no network beyond
// loopback) and runs lomond's Persist against it. The handler subscribes in
// OnReady, which runs again on every new connection, and prints every
// event. After a few messages the server is restarted on the same port:
// first gracefully (close code 1012, "service restart"), then as a crash
// (every connection dropped). Each time the server stays down for 300 ms,
// so the output shows the session's end, BackOff, ConnectFail for the
// attempts made while it is down, and the new Ready. No connection lasts
// the 10 s stability period, so the attempt count and the delays keep
// growing across restarts instead of starting over. After the third session
// the program cancels its context, Persist closes the connection (code
// 1001) and returns nil:
//
//	go run ./examples/subscriber
package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"
	"github.com/lomond-go/lomond"
	"github.com/lomond-go/lomond/events"
)

// perSession is how many messages each session receives before the next
// step (a restart, or the end).
const perSession = 3

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "subscriber:", err)
		os.Exit(1)
	}
}

func run() error {
	feed := &feedServer{}
	if err := feed.start(); err != nil {
		return err
	}
	defer feed.stop(false)

	ws, err := lomond.New(feed.url(), lomond.WithPollInterval(0))
	if err != nil {
		return err
	}
	// A safety net: the program ends on its own well before this.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	sub := &subscriber{start: time.Now(), enough: make(chan struct{}, 1)}
	done := make(chan error, 1)
	go func() {
		done <- ws.Persist(ctx, sub,
			// Short delays so that the example runs quickly; the default
			// starts at 1 s and doubles up to 30 s.
			lomond.WithBackOff(func() backoff.BackOff {
				b := backoff.NewExponentialBackOff()
				b.InitialInterval = 100 * time.Millisecond
				b.Multiplier = 2
				b.RandomizationFactor = 0.5
				b.MaxInterval = time.Second
				b.MaxElapsedTime = 0 // never give up
				return b
			}))
	}()

	steps := []func(){
		func() { sub.note("server: graceful restart (close 1012)"); feed.restart(true) },
		func() { sub.note("server: crash, then restart on the same port"); feed.restart(false) },
		func() { sub.note("client: enough, cancelling the context"); cancel() },
	}
	for _, step := range steps {
		select {
		case <-sub.enough:
			step()
		case err := <-done:
			return fmt.Errorf("Persist ended early: %v", err)
		}
	}
	if err := <-done; err != nil {
		return fmt.Errorf("Persist: %w", err)
	}
	sub.note(fmt.Sprintf("done: %d sessions, %d messages", sub.sessions, sub.messages))
	return nil
}

// subscriber prints every event (it is an Observer) and subscribes on every
// new connection (OnReady). Its methods run on the Persist goroutine, one
// at a time.
type subscriber struct {
	lomond.BaseHandler
	start    time.Time
	enough   chan struct{} // a session received perSession messages
	mu       sync.Mutex    // orders printing with the main goroutine's notes
	sessions int
	messages int
	inThis   int
}

// OnEvent prints ev with the time since start.
func (s *subscriber) OnEvent(_ *lomond.WebSocket, ev events.Event) {
	line := fmt.Sprintf("%7.3fs %v", ev.ReceivedTime().Sub(s.start).Seconds(), ev)
	if bo, ok := ev.(*events.BackOff); ok {
		line += fmt.Sprintf("  attempt=%d", bo.Attempt)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	fmt.Println(line)
}

// OnReady subscribes. A new connection starts with no subscription, so
// this runs on every Ready.
func (s *subscriber) OnReady(ws *lomond.WebSocket, _ *events.Ready) {
	s.sessions++
	s.inThis = 0
	if err := ws.SendJSON(map[string]string{"op": "subscribe"}); err != nil {
		s.note("subscribe failed: " + err.Error())
	}
}

// OnText counts the feed's messages (OnEvent has printed them).
func (s *subscriber) OnText(*lomond.WebSocket, *events.Text) {
	s.messages++
	if s.inThis++; s.inThis == perSession {
		select {
		case s.enough <- struct{}{}:
		default:
		}
	}
}

// note prints a line of the program's own.
func (s *subscriber) note(msg string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fmt.Printf("%7.3fs --- %s\n", time.Since(s.start).Seconds(), msg)
}

// feedServer is the embedded server: after a {"op":"subscribe"} message it
// sends {"server":N,"seq":M} every 100 ms, where N counts the restarts.
//
// http.Server.Close does not close hijacked connections, and every
// websocket is one, so the server tracks its websockets and closes them
// itself when it stops.
type feedServer struct {
	addr string

	mu     sync.Mutex
	srv    *http.Server
	gen    int
	down   bool
	socks  map[*websocket.Conn]struct{}
	active sync.WaitGroup // running handlers
}

func (f *feedServer) url() string { return "ws://" + f.addr + "/feed" }

// start listens on 127.0.0.1: a new port the first time, the same one after.
func (f *feedServer) start() error {
	addr := f.addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	f.addr = ln.Addr().String()
	srv := &http.Server{Handler: http.HandlerFunc(f.serve), ReadHeaderTimeout: 5 * time.Second}
	f.mu.Lock()
	f.srv, f.down = srv, false
	f.gen++
	f.socks = map[*websocket.Conn]struct{}{}
	f.mu.Unlock()
	go func() { _ = srv.Serve(ln) }()
	return nil
}

// stop closes the listener and every websocket, gracefully (close 1012,
// "service restart", waiting for the client's reply) or not (TCP dropped,
// as when a process dies), and waits for the handlers to return.
func (f *feedServer) stop(graceful bool) {
	f.mu.Lock()
	if f.down {
		f.mu.Unlock()
		return
	}
	f.down = true
	srv, socks := f.srv, f.socks
	f.socks = nil
	f.mu.Unlock()

	_ = srv.Close() // the listener and plain HTTP connections only
	for c := range socks {
		if graceful {
			_ = c.Close(websocket.StatusServiceRestart, "service restart")
		} else {
			_ = c.CloseNow()
		}
	}
	f.active.Wait()
}

// restart stops the server, keeps it down for a moment (the client's
// attempts meanwhile are refused), and starts it again on the same port.
func (f *feedServer) restart(graceful bool) {
	f.stop(graceful)
	time.Sleep(300 * time.Millisecond) // the restart takes a while
	if err := f.start(); err != nil {
		fmt.Fprintln(os.Stderr, "subscriber: restart:", err)
	}
}

// serve runs one subscription.
func (f *feedServer) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	if f.down {
		f.mu.Unlock()
		http.Error(w, "restarting", http.StatusServiceUnavailable)
		return
	}
	f.active.Add(1)
	gen := f.gen
	f.mu.Unlock()
	defer f.active.Done()

	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	defer c.CloseNow()
	if !f.track(c) {
		return // stop began while this connection was being accepted
	}

	ctx := context.Background()
	var req struct {
		Op string `json:"op"`
	}
	if err := wsjson.Read(ctx, c, &req); err != nil {
		return
	}
	if req.Op != "subscribe" {
		_ = c.Close(websocket.StatusPolicyViolation, "subscribe first")
		return
	}
	ctx = c.CloseRead(ctx) // done when the connection closes
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for seq := 1; ; seq++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		msg := fmt.Sprintf(`{"server":%d,"seq":%d}`, gen, seq)
		if err := c.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
			if !errors.Is(err, net.ErrClosed) && ctx.Err() == nil {
				fmt.Fprintln(os.Stderr, "feed: write:", err)
			}
			return
		}
	}
}

// track registers c so that stop closes it; it reports false when the
// server is already stopping.
func (f *feedServer) track(c *websocket.Conn) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return false
	}
	f.socks[c] = struct{}{}
	return true
}
