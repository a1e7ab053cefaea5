package lomond

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/lomond-go/lomond/events"
	"github.com/lomond-go/lomond/internal/wstest"
)

// Tests of readbuf.go: the read buffer's sizes and the direct read of large
// payloads.

// busyWatcher records the read buffer's size on the session goroutine: at
// the end of a burst of messages, then at each poll until the buffer is
// given back.
type busyWatcher struct {
	BaseHandler
	burst     int
	n         int
	busyAt    int       // buffer size when the burst ended
	burstEnd  time.Time // when it ended
	idleAfter time.Duration
}

func (h *busyWatcher) OnBinary(ws *WebSocket, _ *events.Binary) {
	h.n++
	if h.n == h.burst {
		h.busyAt, h.burstEnd = len(ws.sess.Load().rb.buf), time.Now()
	}
}

func (h *busyWatcher) OnPoll(ws *WebSocket, _ *events.Poll) {
	if h.busyAt == 0 || h.idleAfter != 0 {
		return
	}
	if len(ws.sess.Load().rb.buf) <= idleReadBufferSize {
		h.idleAfter = time.Since(h.burstEnd)
		_ = ws.Close(StatusNormal, "")
	}
}

// The read buffer is the small one inside the session while the connection
// is idle, the busy one during a burst, and is given back once the
// connection has been idle for idleAfter.
func TestReadBufferBusyThenIdle(t *testing.T) {
	const burst = 500
	srv := wstest.NewServer(t, func(c *wstest.Conn) {
		if _, err := c.Handshake(); err != nil {
			return
		}
		var frames []wstest.Frame
		for range burst {
			frames = append(frames, wstest.Binary(bytes.Repeat([]byte{'x'}, 1<<10)))
		}
		if err := c.WriteRaw(wstest.EncodeAll(frames...)); err != nil {
			return
		}
		if code, reason, err := c.ExpectClose(); err == nil {
			_ = c.WriteFrame(wstest.Close(code, reason))
		}
	})
	ws := newTestWS(t, srv.URL(), WithPollInterval(50*time.Millisecond), WithPingRate(0))
	h := &busyWatcher{burst: burst}
	ctx, cancel := context.WithTimeout(context.Background(), idleAfter+10*time.Second)
	defer cancel()
	if err := ws.Run(ctx, h); err != nil {
		t.Fatal(err)
	}
	if h.busyAt != busyReadBufferSize {
		t.Errorf("read buffer of %d bytes during the burst, want the busy one (%d)", h.busyAt, busyReadBufferSize)
	}
	if h.idleAfter == 0 {
		t.Fatal("the busy buffer was never given back")
	}
	if h.idleAfter < idleAfter/2 || h.idleAfter > idleAfter+5*time.Second {
		t.Errorf("busy buffer given back %v after the burst, want about %v", h.idleAfter, idleAfter)
	}
}

// readSizes is a connection that records the size of every read asked of
// it.
type readSizes struct {
	net.Conn
	mu    sync.Mutex
	sizes []int
}

func (c *readSizes) Read(p []byte) (int, error) {
	c.mu.Lock()
	c.sizes = append(c.sizes, len(p))
	c.mu.Unlock()
	return c.Conn.Read(p)
}

// recordReads returns a dialer whose connection records its reads, and
// that connection (once dialled).
func recordReads() (conn *readSizes, dial func(ctx context.Context, network, addr string) (net.Conn, error)) {
	conn = &readSizes{}
	return conn, func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		conn.Conn = c
		return conn, nil
	}
}

// A large payload's bytes past the read buffer are read straight into the
// message (a read asks for more than the buffer holds), and arrive intact
// whether they come in one piece or many.
func TestLargePayloadReadDirectly(t *testing.T) {
	const size = 1 << 20
	payload := make([]byte, size)
	for i := range payload {
		payload[i] = byte(i * 7)
	}
	for _, borrowed := range []bool{false, true} {
		t.Run(fmt.Sprintf("borrowed=%v", borrowed), func(t *testing.T) {
			srv := wstest.NewServer(t, func(c *wstest.Conn) {
				if _, err := c.Handshake(); err != nil {
					return
				}
				b := wstest.EncodeAll(wstest.Binary(payload), wstest.Binary(payload[:100]))
				for len(b) > 0 { // in uneven pieces
					n := min(len(b), 100_000)
					if c.WriteRaw(b[:n]) != nil {
						return
					}
					b = b[n:]
				}
				if code, reason, err := c.ExpectClose(); err == nil {
					_ = c.WriteFrame(wstest.Close(code, reason))
				}
			})
			conn, dial := recordReads()
			opts := []Option{WithDialer(dial), WithReadLimit(2 << 20)}
			if borrowed {
				opts = append(opts, WithBorrowedBinary())
			}
			ws := newTestWS(t, srv.URL(), opts...)
			var got [][]byte
			h := HandlerFunc(func(ws *WebSocket, ev events.Event) {
				if b, ok := ev.(*events.Binary); ok {
					got = append(got, bytes.Clone(b.Data))
					if len(got) == 2 {
						_ = ws.Close(StatusNormal, "")
					}
				}
			})
			if err := ws.Run(context.Background(), h); err != nil {
				t.Fatal(err)
			}
			if len(got) != 2 || !bytes.Equal(got[0], payload) || !bytes.Equal(got[1], payload[:100]) {
				t.Fatalf("messages differ from what was sent (%d received)", len(got))
			}
			direct := false
			for _, n := range conn.sizes {
				direct = direct || n > busyReadBufferSize
			}
			if !direct {
				t.Errorf("no read larger than the read buffer (%d reads): the payload was copied through it", len(conn.sizes))
			}
		})
	}
}

// Medium messages (16 KiB here) are read through the buffer, several in a
// read: a payload remainder read directly is followed by a read that fills
// the buffer, not by a small one for the next header (which cost 1.5 reads
// a message; a full buffer holds about four). After a large message (read
// with small header reads, so that the next large payload is read
// directly), the first medium frame ends the small reads.
func TestMediumMessagesReadThroughTheBuffer(t *testing.T) {
	const size, count = 16 << 10, 200
	payload := bytes.Repeat([]byte{'m'}, size)
	for _, large := range []bool{false, true} {
		t.Run(fmt.Sprintf("after a large message=%v", large), func(t *testing.T) {
			srv := wstest.NewServer(t, func(c *wstest.Conn) {
				if _, err := c.Handshake(); err != nil {
					return
				}
				var frames []wstest.Frame
				if large {
					frames = append(frames, wstest.Binary(bytes.Repeat([]byte{'L'}, 1<<20)))
				}
				for range count {
					frames = append(frames, wstest.Binary(payload))
				}
				if c.WriteRaw(wstest.EncodeAll(frames...)) != nil {
					return
				}
				if code, reason, err := c.ExpectClose(); err == nil {
					_ = c.WriteFrame(wstest.Close(code, reason))
				}
			})
			conn, dial := recordReads()
			ws := newTestWS(t, srv.URL(), WithDialer(dial), WithPingRate(0), WithReadLimit(2<<20))
			got, reads := 0, 0
			readsSoFar := func() int {
				conn.mu.Lock()
				defer conn.mu.Unlock()
				return len(conn.sizes)
			}
			h := HandlerFunc(func(ws *WebSocket, ev events.Event) {
				switch ev := ev.(type) {
				case *events.Ready:
					reads = -readsSoFar() // count from here: the frames only
				case *events.Binary:
					if len(ev.Data) == 1<<20 {
						reads = -readsSoFar() // the medium frames only
						return
					}
					if !bytes.Equal(ev.Data, payload) {
						t.Errorf("message %d differs from what was sent", got)
					}
					if got++; got == count {
						reads += readsSoFar()
						_ = ws.Close(StatusNormal, "")
					}
				}
			})
			if err := ws.Run(context.Background(), h); err != nil {
				t.Fatal(err)
			}
			if got != count {
				t.Fatalf("%d medium messages, want %d", got, count)
			}
			t.Logf("%d reads for %d messages of %d bytes", reads, count, size)
			if reads > count {
				t.Errorf("%d reads for %d messages: a small read per message", reads, count)
			}
		})
	}
}
