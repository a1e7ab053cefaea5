package lomond_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
	"github.com/lomond-go/lomond"
	"github.com/lomond-go/lomond/events"
)

// socksProxy is a SOCKS5 proxy on 127.0.0.1 (RFC 1928, with RFC 1929
// user name and password authentication) that reports, for each CONNECT,
// the user and the address as the client sent it.
type socksProxy struct {
	Addr string
	ln   net.Listener
	wg   sync.WaitGroup
}

func startSOCKSProxy(seen chan<- string) *socksProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	p := &socksProxy{Addr: ln.Addr().String(), ln: ln}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.wg.Add(1)
			go func() {
				defer p.wg.Done()
				p.serve(c, seen)
			}()
		}
	}()
	return p
}

// Close stops the proxy and waits for its tunnels.
func (p *socksProxy) Close() {
	p.ln.Close()
	p.wg.Wait()
}

func (p *socksProxy) serve(c net.Conn, seen chan<- string) {
	defer c.Close()
	var b [260]byte
	// Greeting: the proxy asks for user name and password (method 2).
	if _, err := io.ReadFull(c, b[:2]); err != nil {
		return
	}
	if _, err := io.ReadFull(c, b[:b[1]]); err != nil {
		return
	}
	if _, err := c.Write([]byte{5, 2}); err != nil {
		return
	}
	readField := func() string {
		if _, err := io.ReadFull(c, b[:1]); err != nil {
			return ""
		}
		n := int(b[0])
		if _, err := io.ReadFull(c, b[:n]); err != nil {
			return ""
		}
		return string(b[:n])
	}
	if _, err := io.ReadFull(c, b[:1]); err != nil { // subnegotiation version
		return
	}
	user, _ := readField(), readField()
	if _, err := c.Write([]byte{1, 0}); err != nil { // any password will do here
		return
	}
	// CONNECT request: version, command, reserved, address type.
	if _, err := io.ReadFull(c, b[:4]); err != nil {
		return
	}
	var host string
	switch b[3] {
	case 1:
		if _, err := io.ReadFull(c, b[:4]); err != nil {
			return
		}
		host = net.IP(b[:4]).String()
	case 3:
		host = "name " + readField()
	default:
		return
	}
	if _, err := io.ReadFull(c, b[:2]); err != nil {
		return
	}
	port := binary.BigEndian.Uint16(b[:2])
	seen <- fmt.Sprintf("user %s asked for %s", user, host)
	target := strings.TrimPrefix(host, "name ")
	upstream, err := net.Dial("tcp", net.JoinHostPort(target, fmt.Sprint(port)))
	if err != nil {
		_, _ = c.Write([]byte{5, 5, 0, 1, 0, 0, 0, 0, 0, 0})
		return
	}
	defer upstream.Close()
	if _, err := c.Write([]byte{5, 0, 0, 1, 0, 0, 0, 0, 0, 0}); err != nil {
		return
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = io.Copy(upstream, c)
		upstream.Close()
	}()
	_, _ = io.Copy(c, upstream)
	c.Close()
	<-done
}

func ExampleWithProxy_socks5() {
	srv := echoServer()
	defer srv.Close()
	seen := make(chan string, 2)
	proxy := startSOCKSProxy(seen)
	defer proxy.Close()

	// socks5h:// hands the host name to the proxy, which resolves it;
	// socks5:// resolves it here and sends the address.
	target := strings.Replace(srv.URL, "127.0.0.1", "localhost", 1)
	for _, scheme := range []string{"socks5h", "socks5"} {
		runOnce(target, lomond.HandlerFunc(func(ws *lomond.WebSocket, ev events.Event) {
			switch ev := ev.(type) {
			case *events.Connected:
				// Credentials never appear in events, errors or logs.
				fmt.Println("via", strings.Split(ev.Proxy, ":")[0], "credentials hidden:", !strings.Contains(ev.Proxy, "secret"))
			case *events.Ready:
				_ = ws.Close(lomond.StatusNormal, "")
			}
		}), lomond.WithProxy(scheme+"://alice:secret@"+proxy.Addr))
		fmt.Println(<-seen)
	}
	// Output:
	// via socks5h credentials hidden: true
	// user alice asked for name localhost
	// via socks5 credentials hidden: true
	// user alice asked for 127.0.0.1
}

func ExampleWithCookieJar() {
	// A load balancer pins the client to a backend with a cookie set on the
	// 101, then the backend restarts: the client must come back with the
	// cookie to reach the same backend.
	srv := startServer(func(ctx context.Context, n int, w http.ResponseWriter, r *http.Request) {
		backend := "none"
		if c, err := r.Cookie("lb"); err == nil {
			backend = c.Value
		} else {
			http.SetCookie(w, &http.Cookie{Name: "lb", Value: "backend-2", Path: "/"})
		}
		c := accept(w, r)
		if c == nil {
			return
		}
		defer c.CloseNow()
		if !say(ctx, c, "cookie: "+backend) {
			return
		}
		if n == 1 {
			_ = c.Close(websocket.StatusServiceRestart, "restarting")
			return
		}
		echo(ctx, c)
	})
	defer srv.Close()

	jar, err := cookiejar.New(nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	ws, err := lomond.New(srv.URL, append(quiet, lomond.WithCookieJar(jar))...)
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	texts := 0
	h := lomond.HandlerFunc(func(ws *lomond.WebSocket, ev events.Event) {
		if ev, ok := ev.(*events.Text); ok {
			fmt.Println(ev.Text)
			if texts++; texts == 2 {
				_ = ws.Stop(lomond.StatusNormal, "done")
			}
		}
	})
	err = ws.Persist(ctx, h, fastBackOff(time.Millisecond))
	fmt.Println("Persist returned", err)
	// Output:
	// cookie: none
	// cookie: backend-2
	// Persist returned <nil>
}

func ExamplePermanent() {
	ws, err := lomond.New(refusedURL(), quiet...)
	if err != nil {
		fmt.Println(err)
		return
	}
	errRevoked := errors.New("credential revoked")
	refresh := func(ctx context.Context, a *lomond.Attempt) error {
		// An auth server that says no for good: retrying cannot help.
		return lomond.Permanent(errRevoked)
	}
	h := lomond.HandlerFunc(func(ws *lomond.WebSocket, ev events.Event) {
		if ev, ok := ev.(*events.ConnectFail); ok {
			fmt.Println("connect fail:", ev.Reason)
		}
	})
	err = ws.Persist(context.Background(), h, lomond.WithBeforeDial(refresh))
	fmt.Println(errors.Is(err, lomond.ErrPermanent), errors.Is(err, errRevoked))
	// Output:
	// connect fail: before-dial hook; credential revoked
	// true true
}
