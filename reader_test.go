package lomond

import (
	"bytes"
	"compress/flate"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lomond-go/lomond/events"
	"github.com/lomond-go/lomond/internal/wstest"
)

// Tests of the read side against bad input: a frame header may announce
// any 63-bit length, and with no read limit (or the largest one) nothing
// may be sized from that length before the bytes arrive. A server that
// announces a huge frame, sends a few bytes and hangs up is a lost
// connection: no panic, no giant allocation.

// hugeFrameEnv names the case a child process of TestHugeFrameHeader runs.
// Each case runs in a child process: reading such a header could end the
// process (a fatal out-of-memory no recover catches), and the parent must
// report that as a test failure.
const hugeFrameEnv = "LOMOND_TEST_HUGE_FRAME_CASE"

// hugeFrameCase is one way of announcing a huge frame.
type hugeFrameCase struct {
	length     uint64 // announced payload length
	text       bool
	borrowed   bool // WithBorrowedBinary
	fragmented bool // a first fragment of 2 bytes, then the continuation: length in all
	compressed bool // permessage-deflate, with WithReadLimit(math.MaxInt64)
}

func (c hugeFrameCase) name() string {
	kind := "Binary"
	switch {
	case c.text:
		kind = "Text"
	case c.borrowed:
		kind = "BorrowedBinary"
	}
	shape := "Whole"
	if c.fragmented {
		shape = "Fragmented"
	}
	z := "Plain"
	if c.compressed {
		z = "Compressed"
	}
	return fmt.Sprintf("%s%s%sOf%d", kind, shape, z, c.length)
}

func hugeFrameCases() []hugeFrameCase {
	var cs []hugeFrameCase
	for _, length := range []uint64{math.MaxInt64, 1 << 46, 1 << 40} {
		for _, kind := range []struct{ text, borrowed bool }{{true, false}, {false, false}, {false, true}} {
			for _, fragmented := range []bool{false, true} {
				for _, compressed := range []bool{false, true} {
					cs = append(cs, hugeFrameCase{length, kind.text, kind.borrowed, fragmented, compressed})
				}
			}
		}
	}
	return cs
}

func TestHugeFrameHeader(t *testing.T) {
	if name := os.Getenv(hugeFrameEnv); name != "" {
		for _, c := range hugeFrameCases() {
			if c.name() == name {
				runHugeFrameCase(t, c)
				return
			}
		}
		t.Fatalf("no case %q", name)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Skipf("cannot find the test binary to run the cases in: %v", err)
	}
	for _, c := range hugeFrameCases() {
		t.Run("IsALostConnection"+c.name(), func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, exe, "-test.run=^TestHugeFrameHeader$", "-test.count=1", "-test.timeout=25s")
			cmd.Env = append(os.Environ(), hugeFrameEnv+"="+c.name())
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Errorf("the case failed (%v):\n%s", err, summary(out))
			}
		})
	}
}

// summary keeps the lines of a child's output that say what went wrong.
func summary(out []byte) string {
	var keep []string
	lines := strings.Split(string(out), "\n")
	for i, l := range lines {
		switch {
		case strings.HasPrefix(l, "panic:"), strings.HasPrefix(l, "fatal error:"):
			keep = append(keep, lines[i:min(i+3, len(lines))]...)
		case strings.Contains(l, "reader_test.go:"):
			keep = append(keep, l)
		}
	}
	if len(keep) == 0 {
		return string(out)
	}
	return strings.Join(keep, "\n")
}

// runHugeFrameCase runs one case in this process: a server announces a
// huge frame, sends a few bytes of it and hangs up.
func runHugeFrameCase(t *testing.T, c hugeFrameCase) {
	srv, done := scriptServer(t, func(conn *wstest.Conn) {
		req, err := conn.ReadRequest()
		if err != nil {
			t.Errorf("server: %v", err)
			return
		}
		var extra http.Header
		if c.compressed {
			extra = http.Header{"Sec-Websocket-Extensions": {"permessage-deflate"}}
		}
		if err := conn.Accept(req, extra); err != nil {
			t.Errorf("server: %v", err)
			return
		}
		op := byte(wstest.OpBinary)
		if c.text {
			op = wstest.OpText
		}
		var b []byte
		if c.fragmented {
			b = wstest.Frame{Opcode: op, RSV1: c.compressed, Payload: []byte("ab")}.Encode()
			b = append(b, hugeHeader(true, false, wstest.OpContinuation, c.length-2)...)
		} else {
			b = hugeHeader(true, c.compressed, op, c.length)
		}
		b = append(b, "cdef"...)
		_ = conn.WriteRaw(b)
		// Return: the connection ends inside the frame.
	})
	opts := []Option{WithReadLimit(NoReadLimit)}
	if c.compressed {
		opts = []Option{WithReadLimit(math.MaxInt64), WithCompression(CompressionContextTakeover)}
	}
	if c.borrowed {
		opts = append(opts, WithBorrowedBinary())
	}
	ws := newTestWS(t, srv.URL(), opts...)
	log := &evLog{}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	err := ws.Run(ctx, log.handler())
	runtime.ReadMemStats(&after)
	waitScript(t, done)

	var pe *ProtocolError
	switch {
	case c.length > maxMessageSize:
		// More than any memory holds: refused at the header, as over a
		// read limit would be.
		if !errors.As(err, &pe) || pe.Code != StatusMessageTooBig {
			t.Errorf("Run = %v, want a *ProtocolError 1009", err)
		}
	case !errors.Is(err, io.ErrUnexpectedEOF):
		t.Errorf("Run = %v, want a lost connection (wrapping io.ErrUnexpectedEOF)", err)
	default:
		if d := lastEvent[*events.Disconnected](t, log); d.Reason != "connection lost" {
			t.Errorf("Disconnected.Reason = %q, want \"connection lost\"", d.Reason)
		}
	}
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 64<<20 {
		t.Errorf("the session allocated %d MiB for a frame of which 4 bytes arrived, want under 64 MiB", grew>>20)
	}
}

// hugeHeader returns a server frame header announcing length bytes in the
// 64-bit form.
func hugeHeader(fin, rsv1 bool, op byte, length uint64) []byte {
	b0 := op
	if fin {
		b0 |= 0x80
	}
	if rsv1 {
		b0 |= 0x40
	}
	return binary.BigEndian.AppendUint64([]byte{b0, 127}, length)
}

func TestLargestReadLimit(t *testing.T) {
	t.Run("ReceivesAnOrdinaryCompressedMessage", func(t *testing.T) {
		const msg = "an ordinary message, compressed, under the largest read limit"
		srv, done := scriptServer(t, func(c *wstest.Conn) {
			req, err := c.ReadRequest()
			if err != nil {
				t.Errorf("server: %v", err)
				return
			}
			if err := c.Accept(req, http.Header{"Sec-Websocket-Extensions": {"permessage-deflate"}}); err != nil {
				t.Errorf("server: %v", err)
				return
			}
			var buf bytes.Buffer
			fw, _ := flate.NewWriter(&buf, flate.BestSpeed)
			srvWrite(t, c, wstest.Frame{Fin: true, RSV1: true, Opcode: wstest.OpText, Payload: deflateMessage(t, fw, &buf, msg)},
				wstest.Close(StatusNormal, "done"))
			_, _, _ = c.ExpectClose()
		})
		ws := newTestWS(t, srv.URL(), WithReadLimit(math.MaxInt64), WithCompression(CompressionContextTakeover))
		log := &evLog{}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		err := func() (err error) {
			defer func() {
				if v := recover(); v != nil {
					err = fmt.Errorf("Run panicked: %v", v)
				}
			}()
			return ws.Run(ctx, log.handler())
		}()
		waitScript(t, done)
		if CloseStatus(err) != StatusNormal {
			t.Errorf("Run = %v, want the server's close 1000", err)
		}
		if got := lastEvent[*events.Text](t, log); got.Text != msg {
			t.Errorf("Text = %q, want %q", got.Text, msg)
		}
	})
}

func TestFragmentedMessageGrowth(t *testing.T) {
	t.Run("ManySmallFragmentsCostLinearMemory", func(t *testing.T) {
		const size, frag = 1 << 20, 16
		payload := bytes.Repeat([]byte("0123456789abcdef"), size/16)
		srv, done := scriptServer(t, func(c *wstest.Conn) {
			if !srvHandshake(t, c) {
				return
			}
			var b []byte
			for off := 0; off < size; off += frag {
				op := byte(wstest.OpContinuation)
				if off == 0 {
					op = wstest.OpText
				}
				b = append(b, wstest.Frame{Fin: off+frag == size, Opcode: op, Payload: payload[off : off+frag]}.Encode()...)
			}
			if c.WriteRaw(b) == nil {
				srvExpectClose(t, c, StatusNormal, "bye")
				_ = c.WriteFrame(wstest.Close(StatusNormal, "bye"))
			}
		})
		ws := newTestWS(t, srv.URL())
		var got string
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		err := ws.Run(context.Background(), HandlerFunc(func(ws *WebSocket, ev events.Event) {
			if e, ok := ev.(*events.Text); ok {
				runtime.ReadMemStats(&after)
				got = e.Text
				_ = ws.Close(StatusNormal, "bye")
			}
		}))
		waitScript(t, done)
		if err != nil {
			t.Fatalf("Run = %v", err)
		}
		if got != string(payload) {
			t.Fatalf("got %d bytes, want the %d-byte message whole", len(got), size)
		}
		// Doubling allocates about 2x the message in all; growing by each
		// fragment would allocate about size*size/(2*frag): 32 GiB here.
		if grew := after.TotalAlloc - before.TotalAlloc; grew > 64<<20 {
			t.Errorf("assembling a 1 MiB message of 16-byte fragments allocated %d MiB, want a few", grew>>20)
		}
	})
}

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
			var conn *readSizes
			dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
				c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
				if err != nil {
					return nil, err
				}
				conn = &readSizes{Conn: c}
				return conn, nil
			}
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

// The fast path of whole buffered frames hands over to the general path for
// everything else, in order: pings among small messages are each answered,
// a 16-bit length is read, and invalid UTF-8 in a small text still fails
// the session with 1007.
func TestReadFastInterleaved(t *testing.T) {
	for _, borrowed := range []bool{false, true} {
		t.Run(fmt.Sprintf("borrowed=%v", borrowed), func(t *testing.T) {
			pongs := make(chan string, 4)
			codes := make(chan int, 1)
			srv := wstest.NewServer(t, func(c *wstest.Conn) {
				if _, err := c.Handshake(); err != nil {
					return
				}
				long := bytes.Repeat([]byte{'l'}, 300)
				if c.WriteRaw(wstest.EncodeAll(
					wstest.Binary([]byte("a")), wstest.Ping([]byte("p1")), wstest.Text("héllo"),
					wstest.Binary(long), wstest.Ping([]byte("p2")), wstest.Binary([]byte("b")),
					wstest.Frame{Fin: true, Opcode: wstest.OpText, Payload: []byte{0xff, 'x'}},
				)) != nil {
					return
				}
				for {
					f, err := c.ReadFrame()
					if err != nil {
						return
					}
					switch f.Opcode {
					case wstest.OpPong:
						pongs <- string(f.Payload)
					case wstest.OpClose:
						code, _ := wstest.ParseClose(f.Payload)
						codes <- code
						_ = c.WriteFrame(wstest.Close(code, ""))
						return
					}
				}
			})
			opts := []Option{WithPingRate(0)}
			if borrowed {
				opts = append(opts, WithBorrowedBinary())
			}
			ws := newTestWS(t, srv.URL(), opts...)
			var got []string
			h := HandlerFunc(func(_ *WebSocket, ev events.Event) {
				switch e := ev.(type) {
				case *events.Binary:
					got = append(got, fmt.Sprintf("bin %d %c", len(e.Data), e.Data[0]))
				case *events.Text:
					got = append(got, "text "+e.Text)
				case *events.Ping:
					got = append(got, "ping "+string(e.Data))
				}
			})
			err := ws.Run(context.Background(), h)
			var pe *ProtocolError
			if !errors.As(err, &pe) || pe.Code != StatusInvalidPayload {
				t.Fatalf("Run: %v, want a protocol error 1007", err)
			}
			want := "bin 1 a|ping p1|text héllo|bin 300 l|ping p2|bin 1 b"
			if s := strings.Join(got, "|"); s != want {
				t.Errorf("events %q, want %q", s, want)
			}
			if c := rcRecv(t, codes, "the client's close"); c != StatusInvalidPayload {
				t.Errorf("close code %d, want %d", c, StatusInvalidPayload)
			}
			for _, want := range []string{"p1", "p2"} {
				if p := rcRecv(t, pongs, "a pong"); p != want {
					t.Errorf("pong %q, want %q", p, want)
				}
			}
		})
	}
}
