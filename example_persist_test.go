package lomond_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/lomond-go/lomond"
	"github.com/lomond-go/lomond/events"
)

// restartingServer greets connection n with "welcome n"; the first
// connection is then closed with 1012 (service restart), as a server does
// when it is redeployed; later ones echo.
func restartingServer() *exampleServer {
	return startServer(func(ctx context.Context, n int, w http.ResponseWriter, r *http.Request) {
		c := accept(w, r)
		if c == nil {
			return
		}
		defer c.CloseNow()
		if !say(ctx, c, fmt.Sprintf("welcome %d", n)) {
			return
		}
		if n == 1 {
			_ = c.Close(lomond.StatusServiceRestart, "restart")
			return
		}
		echo(ctx, c)
	})
}

// subscriber is a Persist handler: it prints what happens and stops after
// the second connection's welcome.
type subscriber struct {
	lomond.BaseHandler
	stop context.CancelFunc
}

func (subscriber) OnReady(ws *lomond.WebSocket, ev *events.Ready) {
	fmt.Println("ready") // subscribe here: OnReady runs once per connection
}

func (s subscriber) OnText(ws *lomond.WebSocket, ev *events.Text) {
	fmt.Println("text", ev.Text)
	if ev.Text == "welcome 2" {
		s.stop()
	}
}

func (subscriber) OnClosed(ws *lomond.WebSocket, ev *events.Closed) {
	fmt.Println("closed", ev.Code, ev.Reason)
}

func (subscriber) OnBackOff(ws *lomond.WebSocket, ev *events.BackOff) {
	fmt.Printf("back off %v (attempt %d) after close code %d\n", ev.Delay, ev.Attempt, lomond.CloseStatus(ev.Cause))
}

func ExampleWebSocket_Persist() {
	srv := restartingServer()
	defer srv.Close()

	ws, err := lomond.New(srv.URL, quiet...)
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// Persist reconnects until ctx ends; then it closes the live connection
	// (1001 "going away") and returns nil.
	err = ws.Persist(ctx, subscriber{stop: cancel}, fastBackOff(time.Millisecond))
	fmt.Println("Persist returned", err)
	// Output:
	// ready
	// text welcome 1
	// closed 1012 restart
	// back off 1ms (attempt 1) after close code 1012
	// ready
	// text welcome 2
	// closed 1001 going away
	// Persist returned <nil>
}

func ExampleWebSocket_PersistEvents() {
	srv := restartingServer()
	defer srv.Close()

	ws, err := lomond.New(srv.URL, quiet...)
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

loop:
	for ev := range ws.PersistEvents(ctx, fastBackOff(time.Millisecond)) {
		switch ev := ev.(type) {
		case *events.Text:
			fmt.Println(ev)
			if ev.Text == "welcome 2" {
				break loop // closes the connection (1000) and stops reconnecting
			}
		case *events.Closed:
			fmt.Println(ev)
		case *events.BackOff:
			fmt.Println("back off, attempt", ev.Attempt)
		}
	}
	// A loop left early is a clean end: Err is nil, as after Events.
	fmt.Println("Err:", ws.Err())
	// Output:
	// Text(text='welcome 1')
	// Closed(code=1012, reason='restart')
	// back off, attempt 1
	// Text(text='welcome 2')
	// Err: <nil>
}

func ExampleWebSocket_Reconnect() {
	srv := startServer(func(ctx context.Context, n int, w http.ResponseWriter, r *http.Request) {
		if c := accept(w, r); c != nil {
			defer c.CloseNow()
			if say(ctx, c, fmt.Sprintf("connection %d", n)) {
				echo(ctx, c)
			}
		}
	})
	defer srv.Close()

	ws, err := lomond.New(srv.URL, quiet...)
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	h := lomond.HandlerFunc(func(ws *lomond.WebSocket, ev events.Event) {
		switch ev := ev.(type) {
		case *events.Text:
			fmt.Println(ev.Text)
			if ev.Text == "connection 1" {
				// Move to a fresh connection now, say after a config change:
				// close 1001, then connect at once, with no backoff.
				_ = ws.Reconnect()
			} else {
				cancel()
			}
		case *events.Closed:
			fmt.Println("closed", ev.Code, ev.Reason)
		case *events.BackOff:
			fmt.Println("back off") // not printed: Reconnect does not wait
		}
	})
	// The backoff would wait an hour: Reconnect skips it.
	if err := ws.Persist(ctx, h, fastBackOff(time.Hour)); err != nil {
		fmt.Println(err)
	}
	fmt.Println(errors.Is(ws.Reconnect(), lomond.ErrNotConnected)) // no Persist running now
	// Output:
	// connection 1
	// closed 1001 going away
	// connection 2
	// closed 1001 going away
	// true
}

func ExampleWebSocket_WaitReady() {
	srv := echoServer()
	defer srv.Close()

	ws, err := lomond.New(srv.URL, quiet...)
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	done := make(chan error)
	go func() {
		done <- ws.Persist(ctx, lomond.HandlerFunc(func(ws *lomond.WebSocket, ev events.Event) {
			switch ev := ev.(type) {
			case *events.Ready:
				fmt.Println("OnReady")
			case *events.Text:
				fmt.Println("echo:", ev.Text)
				cancel()
			}
		}))
	}()

	// Another goroutine waits for the connection before sending. WaitReady
	// returns after OnReady, so the protocol's opening goes first.
	if err := ws.WaitReady(ctx); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("WaitReady returned")
	_ = ws.SendText("sent after WaitReady")
	fmt.Println("Persist returned", <-done)
	// Output:
	// OnReady
	// WaitReady returned
	// echo: sent after WaitReady
	// Persist returned <nil>
}

func ExampleWebSocket_Queued() {
	ws, err := lomond.New(refusedURL(), append(quiet, lomond.WithSendQueue(10, lomond.RejectNewest))...)
	if err != nil {
		fmt.Println(err)
		return
	}
	h := lomond.HandlerFunc(func(ws *lomond.WebSocket, ev events.Event) {
		if _, ok := ev.(*events.Connecting); ok {
			_ = ws.SendText("hello")
			fmt.Println("queued:", ws.Queued())
		}
	})
	err = ws.Persist(context.Background(), h, lomond.WithMaxAttempts(1))
	// The queue belongs to the WebSocket: what was not sent waits for the
	// next session, or for Unsent.
	fmt.Println(errors.Is(err, lomond.ErrMaxAttempts), "queued:", ws.Queued(), "unsent:", len(ws.Unsent()))
	// Output:
	// queued: 1
	// true queued: 1 unsent: 1
}

func ExampleWebSocket_Unsent() {
	ws, err := lomond.New(refusedURL(), append(quiet, lomond.WithSendQueue(2, lomond.DropOldest))...)
	if err != nil {
		fmt.Println(err)
		return
	}
	h := lomond.HandlerFunc(func(ws *lomond.WebSocket, ev events.Event) {
		if _, ok := ev.(*events.Connecting); ok {
			_ = ws.SendText("first")
			_ = ws.SendBinary([]byte{2})
			err := ws.SendText("third") // the oldest, "first", makes room
			var dropped *lomond.DroppedError
			if errors.As(err, &dropped) {
				fmt.Printf("dropped %q\n", dropped.Dropped.Data)
			}
		}
	})
	// The server is down and one attempt is allowed: nothing is sent.
	_ = ws.Persist(context.Background(), h, lomond.WithMaxAttempts(1))
	for _, m := range ws.Unsent() {
		fmt.Printf("unsent: binary=%v %q\n", m.Binary, m.Data)
	}
	fmt.Println(len(ws.Unsent())) // Unsent forgets what it returned
	// Output:
	// dropped "first"
	// unsent: binary=true "\x02"
	// unsent: binary=false "third"
	// 0
}

func ExampleWithBeforeDial() {
	// The server accepts only the current token; the first one the client
	// holds has expired.
	srv := startServer(func(ctx context.Context, n int, w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer token-2" {
			http.Error(w, "token expired", http.StatusUnauthorized)
			return
		}
		if c := accept(w, r); c != nil {
			defer c.CloseNow()
			if say(ctx, c, "welcome") {
				echo(ctx, c)
			}
		}
	})
	defer srv.Close()

	ws, err := lomond.New(srv.URL, quiet...)
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	calls, issued := 0, 0
	newToken := func(ctx context.Context) (string, error) { // stands for a call to an auth server
		if calls++; calls == 1 {
			return "", errors.New("auth server unavailable") // down for a moment
		}
		issued++
		return fmt.Sprintf("token-%d", issued), nil
	}
	refresh := func(ctx context.Context, a *lomond.Attempt) error {
		tok, err := newToken(ctx)
		if err != nil {
			// A failed attempt: retried after the backoff. Return
			// lomond.Permanent(err) to end Persist instead.
			return fmt.Errorf("token: %w", err)
		}
		fmt.Printf("attempt %d with %s\n", a.Number, tok)
		a.Header.Set("Authorization", "Bearer "+tok)
		return nil
	}
	h := lomond.HandlerFunc(func(ws *lomond.WebSocket, ev events.Event) {
		switch ev := ev.(type) {
		case *events.ConnectFail:
			fmt.Println("connect fail:", ev.Reason)
		case *events.Rejected:
			fmt.Println("rejected:", ev.StatusCode)
		case *events.Text:
			fmt.Println(ev.Text)
			cancel()
		}
	})
	err = ws.Persist(ctx, h, lomond.WithBeforeDial(refresh), fastBackOff(time.Millisecond))
	fmt.Println("Persist returned", err)
	// Output:
	// connect fail: before-dial hook; token: auth server unavailable
	// attempt 2 with token-1
	// rejected: 401
	// attempt 3 with token-2
	// welcome
	// Persist returned <nil>
}

func ExampleWithRetryPolicy() {
	// The first connection is closed for a restart (worth retrying), the
	// second with an application code meaning "banned" (not worth it).
	srv := startServer(func(ctx context.Context, n int, w http.ResponseWriter, r *http.Request) {
		if c := accept(w, r); c != nil {
			defer c.CloseNow()
			if n == 1 {
				_ = c.Close(lomond.StatusServiceRestart, "restart")
			} else {
				_ = c.Close(4001, "banned")
			}
		}
	})
	defer srv.Close()

	ws, err := lomond.New(srv.URL, quiet...)
	if err != nil {
		fmt.Println(err)
		return
	}
	const banned = 4001
	policy := func(cause error) bool {
		return lomond.CloseStatus(cause) != banned && lomond.RetryStrict(cause)
	}
	h := lomond.HandlerFunc(func(ws *lomond.WebSocket, ev events.Event) {
		if ev, ok := ev.(*events.Closed); ok {
			fmt.Println("closed", ev.Code, ev.Reason)
		}
	})
	err = ws.Persist(context.Background(), h, lomond.WithRetryPolicy(policy), fastBackOff(time.Millisecond))
	fmt.Println(err)
	fmt.Println(errors.Is(err, lomond.ErrRetryPolicy), lomond.CloseStatus(err))
	// Output:
	// closed 1012 restart
	// closed 4001 banned
	// lomond: retry policy stopped reconnecting: lomond: server closed the connection: code 4001, reason "banned"
	// true 4001
}

func ExampleWithMaxAttempts() {
	ws, err := lomond.New(refusedURL(), quiet...) // a server that is down
	if err != nil {
		fmt.Println(err)
		return
	}
	h := lomond.HandlerFunc(func(ws *lomond.WebSocket, ev events.Event) {
		switch ev.(type) {
		case *events.ConnectFail, *events.BackOff:
			fmt.Println(ev.Name())
		}
	})
	err = ws.Persist(context.Background(), h, lomond.WithMaxAttempts(3), fastBackOff(time.Millisecond))
	var ce *lomond.ConnectError
	fmt.Println(errors.Is(err, lomond.ErrMaxAttempts), errors.As(err, &ce))
	// Output:
	// connect_fail
	// back_off
	// connect_fail
	// back_off
	// connect_fail
	// true true
}

func ExampleWithBackOff() {
	ws, err := lomond.New(refusedURL(), quiet...)
	if err != nil {
		fmt.Println(err)
		return
	}
	// Any backoff/v4 BackOff: here 5 ms between attempts, and at most two
	// retries, after which the backoff says backoff.Stop.
	twoRetries := func() backoff.BackOff {
		return backoff.WithMaxRetries(backoff.NewConstantBackOff(5*time.Millisecond), 2)
	}
	h := lomond.HandlerFunc(func(ws *lomond.WebSocket, ev events.Event) {
		if ev, ok := ev.(*events.BackOff); ok {
			fmt.Println("back off", ev.Delay, "attempt", ev.Attempt)
		}
	})
	err = ws.Persist(context.Background(), h, lomond.WithBackOff(twoRetries))
	fmt.Println(errors.Is(err, lomond.ErrBackOffStop))
	// Output:
	// back off 5ms attempt 1
	// back off 5ms attempt 2
	// true
}

func ExampleWithLomondBackOff() {
	ws, err := lomond.New(refusedURL(), quiet...)
	if err != nil {
		fmt.Println(err)
		return
	}
	// lomond's formula: min + random × min(max − min, 2^n s). lomond's own
	// values are 5 s and 30 s; milliseconds keep the example fast.
	const minWait, maxWait = time.Millisecond, 4 * time.Millisecond
	h := lomond.HandlerFunc(func(ws *lomond.WebSocket, ev events.Event) {
		if ev, ok := ev.(*events.BackOff); ok {
			fmt.Println("attempt", ev.Attempt, "delay in range:", ev.Delay >= minWait && ev.Delay <= maxWait)
		}
	})
	err = ws.Persist(context.Background(), h, lomond.WithLomondBackOff(minWait, maxWait), lomond.WithMaxAttempts(3))
	fmt.Println(errors.Is(err, lomond.ErrMaxAttempts))
	// Output:
	// attempt 1 delay in range: true
	// attempt 2 delay in range: true
	// true
}

func ExampleWithStableAfter() {
	// A server that accepts and drops every connection at once: the kind
	// that causes reconnect storms when every handshake resets the backoff.
	srv := startServer(func(ctx context.Context, n int, w http.ResponseWriter, r *http.Request) {
		if c := accept(w, r); c != nil {
			defer c.CloseNow()
			_ = c.Close(lomond.StatusTryAgainLater, "")
		}
	})
	defer srv.Close()

	attempts := func(stable time.Duration) []int {
		ws, err := lomond.New(srv.URL, quiet...)
		if err != nil {
			panic(err)
		}
		var seen []int
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		h := lomond.HandlerFunc(func(ws *lomond.WebSocket, ev events.Event) {
			if ev, ok := ev.(*events.BackOff); ok {
				if seen = append(seen, ev.Attempt); len(seen) == 3 {
					cancel()
				}
			}
		})
		_ = ws.Persist(ctx, h, lomond.WithStableAfter(stable), fastBackOff(time.Millisecond))
		return seen
	}
	// The default (10 s) counts on: the backoff grows.
	fmt.Println("stable after 10s:", attempts(10*time.Second))
	// 0 resets after every Ready, as lomond does.
	fmt.Println("stable after 0:  ", attempts(0))
	// Output:
	// stable after 10s: [1 2 3]
	// stable after 0:   [1 1 1]
}

func ExampleWithMaxRetryAfter() {
	srv := startServer(func(ctx context.Context, n int, w http.ResponseWriter, r *http.Request) {
		if n == 1 {
			w.Header().Set("Retry-After", "3600") // come back in an hour
			http.Error(w, "overloaded", http.StatusServiceUnavailable)
			return
		}
		if c := accept(w, r); c != nil {
			defer c.CloseNow()
			echo(ctx, c)
		}
	})
	defer srv.Close()

	ws, err := lomond.New(srv.URL, quiet...)
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	h := lomond.HandlerFunc(func(ws *lomond.WebSocket, ev events.Event) {
		switch ev := ev.(type) {
		case *events.Rejected:
			fmt.Println("rejected:", ev.StatusCode, "Retry-After:", ev.RetryAfter)
		case *events.BackOff:
			fmt.Println("waiting", ev.Delay)
		case *events.Ready:
			fmt.Println("ready")
			cancel()
		}
	})
	// The server's Retry-After replaces the backoff's delay, within a bound
	// (and never under the backoff's minimum: 10 ms here).
	err = ws.Persist(ctx, h, lomond.WithMaxRetryAfter(20*time.Millisecond),
		lomond.WithLomondBackOff(10*time.Millisecond, time.Second))
	fmt.Println("Persist returned", err)
	// Output:
	// rejected: 503 Retry-After: 1h0m0s
	// waiting 20ms
	// ready
	// Persist returned <nil>
}
