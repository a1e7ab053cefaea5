package interop

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/rs/zerolog"
	"go.uber.org/goleak"

	"github.com/lomond-go/lomond"
	"github.com/lomond-go/lomond/events"
)

// newToxiproxy starts an in-process toxiproxy on 127.0.0.1 in front of
// upstream (host:port) and stops it, closing its connections, when the
// test ends. Its address is p.Listen.
func newToxiproxy(t *testing.T, upstream string) *toxiproxy.Proxy {
	t.Helper()
	srv := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(nil), zerolog.Nop())
	p := toxiproxy.NewProxy(srv, "ws", "127.0.0.1:0", upstream)
	if err := p.Start(); err != nil {
		t.Fatalf("starting toxiproxy: %v", err)
	}
	t.Cleanup(p.Stop)
	return p
}

// addToxic adds a toxic given as toxiproxy's JSON. It applies to the
// connections already open as well as to new ones.
func addToxic(p *toxiproxy.Proxy, spec string) error {
	_, err := p.Toxics.AddToxicJson(strings.NewReader(spec))
	return err
}

func mustAddToxic(t *testing.T, p *toxiproxy.Proxy, spec string) {
	t.Helper()
	if err := addToxic(p, spec); err != nil {
		t.Fatalf("adding toxic %s: %v", spec, err)
	}
}

// faultSetup starts an echo server and a toxiproxy in front of it, and
// returns the proxy and the ws:// URL of path through it.
func faultSetup(t *testing.T, path string) (*echoServer, *toxiproxy.Proxy, string) {
	t.Helper()
	srv := newEchoServer(t, nil)
	p := newToxiproxy(t, srv.addr())
	return srv, p, "ws://" + p.Listen + path
}

// without returns names without every occurrence of name.
func without(names []string, name string) []string {
	var out []string
	for _, n := range names {
		if n != name {
			out = append(out, n)
		}
	}
	return out
}

// TestFaultLatency: 100 ms each way. Every message arrives intact, each
// echo takes at least 200 ms, and automatic pings measure an RTT of at
// least 200 ms.
func TestFaultLatency(t *testing.T) {
	_, p, url := faultSetup(t, "/")
	mustAddToxic(t, p, `{"name":"lat_down","type":"latency","stream":"downstream","attributes":{"latency":100}}`)
	mustAddToxic(t, p, `{"name":"lat_up","type":"latency","stream":"upstream","attributes":{"latency":100}}`)

	msgs := []msg{{"text", smallText}, {"binary", smallBinary}, {"text", text70000}}
	var echoed, measured bool
	e := &echoer{t: t, msgs: msgs, after: func(ws *lomond.WebSocket) {
		echoed = true
		if measured {
			_ = ws.Close(lomond.StatusNormal, "done")
		}
	}}
	rec := runSession(t, url, func(ws *lomond.WebSocket, ev events.Event) {
		e.onEvent(ws, ev)
		if pong, ok := ev.(*events.Pong); ok && pong.RTT > 0 && !measured {
			measured = true
			if echoed {
				_ = ws.Close(lomond.StatusNormal, "done")
			}
		}
	}, lomond.WithPingRate(300*time.Millisecond), lomond.WithPingTimeout(10*time.Second))
	e.done(t)

	if got, want := without(rec.names, "pong"), []string{"connecting", "connected", "ready",
		"text", "binary", "text", "closed", "disconnected"}; !equalNames(got, want) {
		t.Errorf("events without pongs:\n got  %v\n want %v", got, want)
	}
	rec.wantGracefulEnd(t)
	if e.minReply < 200*time.Millisecond {
		t.Errorf("fastest echo took %v, want >= 200ms through 100ms of latency each way", e.minReply)
	}
	pongs := all[*events.Pong](rec)
	if len(pongs) == 0 {
		t.Fatal("no Pong for the automatic pings")
	}
	for _, pong := range pongs {
		if pong.RTT != 0 && pong.RTT < 200*time.Millisecond {
			t.Errorf("Pong RTT %v, want >= 200ms", pong.RTT)
		}
	}
	t.Logf("fastest echo %v; %d pongs, first RTT %v", e.minReply, len(pongs), pongs[0].RTT)
}

func equalNames(a, b []string) bool {
	return strings.Join(a, ",") == strings.Join(b, ",")
}

// TestFaultSlicer: both directions cut into chunks of at most 7 bytes
// (the handshake too). Every message arrives intact, in order.
func TestFaultSlicer(t *testing.T) {
	for _, c := range compressionModes[:2] {
		t.Run("compression="+c.name, func(t *testing.T) {
			_, p, url := faultSetup(t, "/")
			for _, dir := range []string{"upstream", "downstream"} {
				mustAddToxic(t, p, `{"name":"slice_`+dir+`","type":"slicer","stream":"`+dir+
					`","attributes":{"average_size":7,"size_variation":0,"delay":0}}`)
			}
			msgs := []msg{
				{"text", smallText},
				{"binary", smallBinary},
				{"text", []byte{}},
				{"text", text70000},
				{"binary", makeBinary(128<<10, 2)},
				{"ping", []byte("sliced ping")},
			}
			rec := echoSession(t, url, msgs, lomond.WithCompression(c.mode))
			wantExtensions(t, first[*events.Ready](t, rec), c.mode != lomond.CompressionOff)
		})
	}
}

// countingDialer returns a dialer whose connections count the bytes the
// client reads, and a channel closed once more than threshold were read.
func countingDialer(threshold int64) (lomond.DialFunc, <-chan struct{}) {
	reached := make(chan struct{})
	var once sync.Once
	var total atomic.Int64
	d := &net.Dialer{}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &countingConn{Conn: c, onRead: func(n int) {
			if total.Add(int64(n)) > threshold {
				once.Do(func() { close(reached) })
			}
		}}, nil
	}, reached
}

// countingConn reports how many bytes each Read returned.
type countingConn struct {
	net.Conn
	onRead func(int)
}

func (c *countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.onRead(n)
	return n, err
}

// TestFaultResetPeerMidMessage: the connection is reset (TCP RST) in the
// middle of a 1 MiB message: the server has sent its first half (as a
// non-final fragment) and the client has read 128 KiB of it. The session
// ends with Disconnected(graceful=false) carrying the reset, no partial
// message is delivered, and nothing leaks.
func TestFaultResetPeerMidMessage(t *testing.T) {
	// Registered first, so it runs after every other cleanup: the proxy and
	// the server are stopped by then.
	t.Cleanup(func() { goleak.VerifyNone(t, toxiproxyStuck...) })
	srv, p, url := faultSetup(t, "/half")
	// toxiproxy sends an RST (SO_LINGER 0) only on connections that start
	// while a reset_peer toxic exists. This one, with toxicity 0, never acts
	// itself: it only makes the later reset a real one.
	mustAddToxic(t, p, `{"name":"linger","type":"reset_peer","stream":"downstream","toxicity":0,"attributes":{"timeout":0}}`)

	dial, reached := countingDialer(128 << 10) // well into the first half
	injected := make(chan error, 1)
	ended := make(chan struct{})
	go func() {
		select {
		case <-reached:
		case <-ended:
			injected <- errors.New("the session ended before the client read 128 KiB")
			return
		}
		err := addToxic(p, `{"name":"reset","type":"reset_peer","stream":"downstream","attributes":{"timeout":0}}`)
		close(srv.release) // the rest of the message now meets the reset
		injected <- err
	}()

	rec := runSession(t, url, func(ws *lomond.WebSocket, ev events.Event) {
		if _, ok := ev.(*events.Ready); ok {
			if err := ws.SendBinary(binary1MiB); err != nil {
				t.Errorf("SendBinary: %v", err)
			}
		}
	}, lomond.WithDialer(dial))
	close(ended)
	if err := <-injected; err != nil {
		t.Fatal(err)
	}
	rec.wantNames(t, "connecting", "connected", "ready", "disconnected")
	err := rec.wantAbruptEnd(t)
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("Disconnected.Err = %v, want a connection reset", err)
	}
	t.Logf("Disconnected.Err: %v; Run: %v", err, rec.err)
}

// TestFaultPeerStopsAnswering: after Ready, nothing the client sends
// reaches the server any more (a dead peer, TCP still open). The automatic
// ping gets no pong: Unresponsive, then Disconnected(graceful=false), and
// Run returns ErrUnresponsive.
func TestFaultPeerStopsAnswering(t *testing.T) {
	_, p, url := faultSetup(t, "/")
	const rate, timeout = 200 * time.Millisecond, 400 * time.Millisecond
	var readyAt time.Time
	rec := runSession(t, url, func(ws *lomond.WebSocket, ev events.Event) {
		if r, ok := ev.(*events.Ready); ok {
			readyAt = r.Received
			mustAddToxic(t, p, `{"name":"blackhole","type":"timeout","stream":"upstream","attributes":{"timeout":0}}`)
		}
	}, lomond.WithPingRate(rate), lomond.WithPingTimeout(timeout), lomond.WithCloseTimeout(time.Second))

	rec.wantNames(t, "connecting", "connected", "ready", "unresponsive", "disconnected")
	if !errors.Is(rec.err, lomond.ErrUnresponsive) {
		t.Errorf("Run returned %v, want ErrUnresponsive", rec.err)
	}
	err := rec.wantAbruptEnd(t)
	if !errors.Is(err, lomond.ErrUnresponsive) {
		t.Errorf("Disconnected.Err = %v, want ErrUnresponsive", err)
	}
	u := first[*events.Unresponsive](t, rec)
	if u.Timeout != timeout {
		t.Errorf("Unresponsive.Timeout = %v, want %v", u.Timeout, timeout)
	}
	// The first ping goes out one ping interval after Ready; the timeout
	// counts from there.
	if after := u.Received.Sub(readyAt); after < rate+timeout-50*time.Millisecond || after > 10*time.Second {
		t.Errorf("Unresponsive %v after Ready, want about %v", after, rate+timeout)
	}
}

// TestFaultBandwidth: the server's answers are limited to 64 KB/s. A
// 64 KiB message takes about a second, arrives intact, and a message sent
// after it arrives after it.
func TestFaultBandwidth(t *testing.T) {
	_, p, url := faultSetup(t, "/")
	mustAddToxic(t, p, `{"name":"bw","type":"bandwidth","stream":"downstream","attributes":{"rate":64}}`)
	msgs := []msg{{"binary", makeBinary(64<<10, 3)}, {"text", smallText}}
	e := &echoer{t: t, msgs: msgs}
	rec := runSession(t, url, e.onEvent)
	e.done(t)
	rec.wantNames(t, "connecting", "connected", "ready", "binary", "text", "closed", "disconnected")
	rec.wantGracefulEnd(t)
	if e.maxReply < 800*time.Millisecond {
		t.Errorf("the 64 KiB echo took %v at 64 KB/s, want about 1 s", e.maxReply)
	}
	t.Logf("64 KiB echo took %v", e.maxReply)
}

// TestFaultLimitData: the stream from the server ends (TCP FIN) after
// 1000 bytes, in the middle of a 4 KiB message: Disconnected(graceful=
// false) with an unexpected EOF, and no partial message.
func TestFaultLimitData(t *testing.T) {
	_, p, url := faultSetup(t, "/")
	rec := runSession(t, url, func(ws *lomond.WebSocket, ev events.Event) {
		if _, ok := ev.(*events.Ready); ok {
			mustAddToxic(t, p, `{"name":"limit","type":"limit_data","stream":"downstream","attributes":{"bytes":1000}}`)
			if err := ws.SendBinary(makeBinary(4096, 4)); err != nil {
				t.Errorf("SendBinary: %v", err)
			}
		}
	})
	rec.wantNames(t, "connecting", "connected", "ready", "disconnected")
	err := rec.wantAbruptEnd(t)
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("Disconnected.Err = %v, want an unexpected EOF", err)
	}
}
