// Command subscriber is a long-running subscriber that survives its server
// being restarted.
//
// It starts an embedded feed server on 127.0.0.1 (lomondtest's, no network
// beyond loopback) and runs lomond's Persist against it. The handler
// subscribes in OnReady, which runs again on every new connection, and
// prints every event. After a few messages the server is restarted on the
// same port: first gracefully (close code 1012, "service restart"), then as
// a crash (every connection dropped). Each time the server stays down for
// 300 ms, so the output shows the session's end, BackOff, ConnectFail for
// the attempts made while it is down, and the new Ready. No connection
// lasts the 10 s stability period, so the attempt count and the delays keep
// growing across restarts instead of starting over. After the third session
// the program cancels its context, Persist closes the connection (code
// 1001) and returns nil:
//
//	go run ./examples/subscriber
package main

import (
	"context"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/lomond-go/lomond"
	"github.com/lomond-go/lomond/events"
	"github.com/lomond-go/lomond/lomondtest"
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
	// nil: not in a test, so the program closes the server itself.
	srv := lomondtest.NewServer(nil, feed)
	defer srv.Close()

	ws, err := lomond.New(srv.URL+"/feed", append(srv.ClientOptions(), lomond.WithPollInterval(0))...)
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
		func() {
			sub.note("server: graceful restart (close 1012)")
			srv.Shutdown(lomond.StatusServiceRestart, "service restart")
			restart(srv)
		},
		func() {
			sub.note("server: crash, then restart on the same port")
			srv.Stop()
			restart(srv)
		},
		func() { sub.note("client: enough, cancelling the context"); cancel() },
	}
	for _, step := range steps {
		select {
		case <-sub.enough:
			step()
		case err := <-done:
			return fmt.Errorf("persist ended early: %v", err)
		}
	}
	if err := <-done; err != nil {
		return fmt.Errorf("persist: %w", err)
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

// restart keeps the stopped server down for a moment (the client's
// attempts meanwhile are refused) and starts it again on the same port.
func restart(srv *lomondtest.Server) {
	time.Sleep(300 * time.Millisecond) // the restart takes a while
	srv.Start()
}

// feed is the embedded server's script for every connection: after a
// {"op":"subscribe"} message it sends {"conn":N,"seq":M} every 100 ms,
// where N numbers the connections, until the connection ends.
func feed(c *lomondtest.Conn) error {
	if err := lomondtest.Expect(lomondtest.JSON(`{"op": "subscribe"}`))(c); err != nil {
		return err
	}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for seq := 1; ; seq++ {
		select {
		case <-c.Done():
			return nil
		case <-tick.C:
		}
		msg := map[string]int{"conn": c.Number(), "seq": seq}
		if err := lomondtest.SendJSON(msg)(c); err != nil {
			return nil // the connection is going away
		}
	}
}
