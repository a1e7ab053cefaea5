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
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strings"
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
