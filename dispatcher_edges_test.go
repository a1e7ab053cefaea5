package lomond

import (
	"bytes"
	"context"
	"errors"
	"log"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lomond-go/lomond/events"
	"github.com/lomond-go/lomond/internal/wstest"
)

// Regression tests for the defects in the dispatcher's edges (sends after
// Disconnected, panics before Ready, the subprotocol race, net/http's log
// lines, sends bounded by a context). Each failed against the engine-based
// dispatcher as its comment says ("Today: ..." is that dispatcher).

// TestSendInDisconnectedIsNotConnected (item 4): after Disconnected the
// session has ended, so a send from the Disconnected handler returns
// ErrNotConnected, whether the session ended with a completed close or a
// dropped connection. Today: ErrClosed after a completed close.
func TestSendInDisconnectedIsNotConnected(t *testing.T) {
	cases := map[string]func(c *wstest.Conn){
		"completed close": func(c *wstest.Conn) {
			if _, err := c.Handshake(); err == nil {
				_ = c.WriteFrame(wstest.Close(StatusNormal, "bye"))
				_, _, _ = c.ExpectClose()
			}
		},
		"client close": rcAnswerClose,
		"dropped TCP": func(c *wstest.Conn) {
			_, _ = c.Handshake()
		},
	}
	for name, script := range cases {
		t.Run(name, func(t *testing.T) {
			srv := wstest.NewServer(t, script)
			var sendErr, pingErr, closeErr error
			seen := false
			rec, _ := tdRun(t, tdNew(t, srv.URL(), WithoutProxy(), WithPollInterval(0)), func(ws *WebSocket, ev events.Event) {
				switch ev.(type) {
				case *events.Ready:
					if name == "client close" {
						_ = ws.Close(StatusNormal, "bye")
					}
				case *events.Disconnected:
					seen = true
					sendErr, pingErr, closeErr = ws.SendText("late"), ws.SendPing(nil), ws.Close(StatusNormal, "")
				}
			})
			if !seen {
				t.Fatalf("no Disconnected; events %v", rec.names())
			}
			for what, err := range map[string]error{"SendText": sendErr, "SendPing": pingErr, "Close": closeErr} {
				if !errors.Is(err, ErrNotConnected) {
					t.Errorf("%s in OnDisconnected = %v, want ErrNotConnected", what, err)
				}
			}
		})
	}
}

// TestPanicBeforeReadyEndsWithDisconnected (item 7): a panic in
// OnConnected (or OnConnecting) ends the session like a panic in OnReady:
// Disconnected is still delivered and Run returns the *PanicError. Today
// the session ends without Disconnected.
func TestPanicBeforeReadyEndsWithDisconnected(t *testing.T) {
	for _, at := range []string{events.NameConnecting, events.NameConnected, events.NameReady} {
		t.Run(at, func(t *testing.T) {
			srv := wstest.NewServer(t, rcAnswerClose)
			rec, err := tdRun(t, tdNew(t, srv.URL(), WithoutProxy(), WithCloseTimeout(2*time.Second)), func(_ *WebSocket, ev events.Event) {
				if ev.Name() == at {
					panic("test panic in " + at)
				}
			})
			var pe *PanicError
			if !errors.As(err, &pe) {
				t.Fatalf("Run = %v, want a *PanicError", err)
			}
			names := rec.names()
			if len(names) == 0 || names[len(names)-1] != events.NameDisconnected {
				t.Errorf("events %v, want Disconnected last", names)
			}
		})
	}
}

// TestSubprotocolNoRace (item 7): ws.Subprotocol() from another goroutine
// while the dispatcher connects must not race (run with -race). Today it
// reads the session's engine connection while the dispatcher sets it.
func TestSubprotocolNoRace(t *testing.T) {
	srv := wstest.NewServer(t, func(c *wstest.Conn) {
		req, err := c.ReadRequest()
		if err != nil {
			return
		}
		if c.Accept(req, http.Header{"Sec-WebSocket-Protocol": {"v2"}}) != nil {
			return
		}
		_ = c.WriteFrame(wstest.Close(StatusNormal, "bye"))
		_, _, _ = c.ExpectClose()
	})
	ws := tdNew(t, srv.URL(), WithoutProxy(), WithProtocols("v1", "v2"))
	for i := 0; i < 20; i++ {
		done := make(chan struct{})
		var wg sync.WaitGroup
		wg.Add(1)
		seen := ""
		go func() {
			defer wg.Done()
			for {
				select {
				case <-done:
					return
				default:
				}
				if p := ws.Subprotocol(); p != "" {
					seen = p
				}
			}
		}()
		var ready string
		_, _ = tdRun(t, ws, func(ws *WebSocket, ev events.Event) {
			if ev.Name() == events.NameReady {
				ready = ws.Subprotocol()
			}
		})
		close(done)
		wg.Wait()
		if ready != "v2" {
			t.Fatalf("Subprotocol in OnReady = %q, want v2", ready)
		}
		if seen != "" && seen != "v2" {
			t.Fatalf("Subprotocol from another goroutine = %q", seen)
		}
	}
}

// TestNoNetHTTPLogLines (item 9): nothing the client does writes to the
// standard logger; everything goes to WithLogger. A server that answers a
// rejected upgrade with more bytes than the response makes net/http log
// "Unsolicited response received on idle HTTP channel" to stderr today.
func TestNoNetHTTPLogLines(t *testing.T) {
	var buf bytes.Buffer
	var mu sync.Mutex
	old := log.Writer()
	log.SetOutput(writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return buf.Write(p)
	}))
	defer log.SetOutput(old)
	srv := wstest.NewServer(t, func(c *wstest.Conn) {
		if _, err := c.ReadRequest(); err != nil {
			return
		}
		_ = c.WriteRaw([]byte("HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n" +
			"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"))
		<-c.Done()
	})
	for i := 0; i < 5; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		var rej *RejectedError
		err := tdNew(t, srv.URL(), WithoutProxy()).Run(ctx, HandlerFunc(func(*WebSocket, events.Event) {}))
		cancel()
		if !errors.As(err, &rej) {
			t.Fatalf("Run = %v, want a *RejectedError", err)
		}
	}
	// net/http's reader notices the extra bytes on its own goroutine; give
	// it a generous moment (it logs within microseconds when it does).
	deadline := time.Now().Add(500 * time.Millisecond)
	for time.Now().Before(deadline) {
		mu.Lock()
		n := buf.Len()
		mu.Unlock()
		if n > 0 {
			break
		}
		time.Sleep(10 * time.Millisecond) // polling a log buffer; nothing signals an absent line
	}
	mu.Lock()
	defer mu.Unlock()
	if s := buf.String(); strings.TrimSpace(s) != "" {
		t.Errorf("the client wrote to the standard logger:\n%s", s)
	}
}

type writerFunc func(p []byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// TestSendContextWaitingBehindBlockedSend (item 11): a SendTextContext that
// waits behind another send blocked on a server that does not read returns
// ctx's error when ctx ends, writes nothing, and leaves the connection up:
// once the server reads again, the other send completes and the session
// goes on. Today's simple implementation drops the connection instead.
func TestSendContextWaitingBehindBlockedSend(t *testing.T) {
	resume := make(chan struct{})
	got := make(chan string, 4)
	srv := wstest.NewServer(t, func(c *wstest.Conn) {
		if _, err := c.Handshake(); err != nil {
			return
		}
		select {
		case <-resume:
		case <-c.Done():
			return
		}
		for {
			op, p, err := c.ReadMessage()
			if err != nil {
				return
			}
			switch op {
			case wstest.OpBinary:
				got <- "binary"
			case wstest.OpText:
				got <- string(p)
			case wstest.OpClose:
				_ = c.WriteFrame(wstest.Frame{Fin: true, Opcode: wstest.OpClose, Payload: p})
				return
			}
		}
	})
	ws := tdNew(t, srv.URL(), WithoutProxy(), WithPollInterval(0), WithPingRate(0))
	runDone := make(chan error, 1)
	ready := make(chan struct{})
	go func() {
		runDone <- ws.Run(context.Background(), HandlerFunc(func(_ *WebSocket, ev events.Event) {
			if ev.Name() == events.NameReady {
				close(ready)
			}
		}))
	}()
	rcRecv(t, ready, "Ready")
	bigDone := make(chan error, 1)
	go func() { bigDone <- ws.SendBinary(make([]byte, 32<<20)) }()
	// Wait until the big send holds the send lock.
	deadline := time.Now().Add(5 * time.Second)
	for {
		s := ws.sess.Load()
		if s != nil && s.w.locked() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the big send never took the lock")
		}
		time.Sleep(time.Millisecond) // polling the lock's state; no event signals it
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := ws.SendTextContext(ctx, "small")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("SendTextContext = %v, want context.DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("SendTextContext returned after %v, want about 200ms", d)
	}
	close(resume)
	// 32 MiB through a test server that unmasks in Go: generous under -race
	// on a loaded machine.
	var bigErr error
	select {
	case bigErr = <-bigDone:
	case <-time.After(60 * time.Second):
		t.Fatal("timed out waiting for the big send")
	}
	if err := bigErr; err != nil {
		t.Fatalf("the big send = %v, want it written once the server reads", err)
	}
	if m := rcRecv(t, got, "the big message"); m != "binary" {
		t.Fatalf("server got %q first, want the big binary message", m)
	}
	if err := ws.SendText("after"); err != nil {
		t.Fatalf("SendText after = %v, want the session still up", err)
	}
	if m := rcRecv(t, got, "the next message"); m != "after" {
		t.Errorf("server got %q, want \"after\" (and never \"small\")", m)
	}
	_ = ws.Close(StatusNormal, "bye")
	if err := rcRecv(t, runDone, "Run's return"); err != nil {
		t.Errorf("Run = %v", err)
	}
}
