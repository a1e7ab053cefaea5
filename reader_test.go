package lomond

import (
	"bufio"
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
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/lomond-go/lomond/events"
	"github.com/lomond-go/lomond/internal/protocol"
	"github.com/lomond-go/lomond/internal/testkit"
	"github.com/lomond-go/lomond/internal/wstest"
)

// Tests of reader.go: the read side against bad input (huge frame headers,
// protocol violations, invalid UTF-8, the read limit), messages cut off,
// borrowed binary messages, the close handshake as the reader sees it, and
// a fuzzed frame reader.

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
	srv, done := testkit.ScriptServer(t, func(conn *wstest.Conn) {
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
	log := new(testkit.EventRecorder)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	err := ws.Run(ctx, recording(log, nil))
	runtime.ReadMemStats(&after)
	testkit.WaitScript(t, done)

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
		if d := testkit.Last[*events.Disconnected](t, log); d.Reason != "connection lost" {
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
		srv, done := testkit.ScriptServer(t, func(c *wstest.Conn) {
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
			testkit.Write(t, c, wstest.Frame{Fin: true, RSV1: true, Opcode: wstest.OpText, Payload: deflateMessage(t, fw, &buf, msg)},
				wstest.Close(StatusNormal, "done"))
			_, _, _ = c.ExpectClose()
		})
		ws := newTestWS(t, srv.URL(), WithReadLimit(math.MaxInt64), WithCompression(CompressionContextTakeover))
		log := new(testkit.EventRecorder)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		err := func() (err error) {
			defer func() {
				if v := recover(); v != nil {
					err = fmt.Errorf("Run panicked: %v", v)
				}
			}()
			return ws.Run(ctx, recording(log, nil))
		}()
		testkit.WaitScript(t, done)
		if CloseStatus(err) != StatusNormal {
			t.Errorf("Run = %v, want the server's close 1000", err)
		}
		if got := testkit.Last[*events.Text](t, log); got.Text != msg {
			t.Errorf("Text = %q, want %q", got.Text, msg)
		}
	})
}

func TestFragmentedMessageGrowth(t *testing.T) {
	t.Run("ManySmallFragmentsCostLinearMemory", func(t *testing.T) {
		const size, frag = 1 << 20, 16
		payload := bytes.Repeat([]byte("0123456789abcdef"), size/16)
		srv, done := testkit.ScriptServer(t, func(c *wstest.Conn) {
			if !testkit.Handshake(t, c) {
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
				testkit.ExpectClose(t, c, StatusNormal, "bye")
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
		testkit.WaitScript(t, done)
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

// TestBorrowedBinary: with WithBorrowedBinary, binary messages arrive intact
// in one reused event (valid during the call), text is still owned, and the
// buffer grows for a large message.
func TestBorrowedBinary(t *testing.T) {
	sizes := []int{10, 5000, 200 << 10, 3}
	srv := wstest.NewServer(t, func(c *wstest.Conn) {
		if _, err := c.Handshake(); err != nil {
			return
		}
		for i, n := range sizes {
			if c.WriteFrame(wstest.Binary(bytes.Repeat([]byte{byte('a' + i)}, n))) != nil {
				return
			}
		}
		_ = c.WriteFrame(wstest.Text("owned"))
		_ = c.WriteFrame(wstest.Close(1000, ""))
		_, _, _ = c.ExpectClose()
	})
	ws, err := New(srv.URL(), WithBorrowedBinary(), WithPollInterval(0), WithPingRate(0), WithoutProxy(), WithReadLimit(1<<20))
	if err != nil {
		t.Fatal(err)
	}
	var first *events.Binary
	var got []int
	var text *events.Text
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err = ws.Run(ctx, HandlerFunc(func(_ *WebSocket, ev events.Event) {
		switch e := ev.(type) {
		case *events.Binary:
			if first == nil {
				first = e
			} else if e != first {
				t.Error("borrowed binary events are not the one reused event")
			}
			i := len(got)
			if !bytes.Equal(e.Data, bytes.Repeat([]byte{byte('a' + i)}, sizes[i])) {
				t.Errorf("message %d corrupted", i)
			}
			got = append(got, len(e.Data))
		case *events.Text:
			text = e
		}
	}))
	if CloseStatus(err) != 1000 {
		t.Fatalf("Run = %v", err)
	}
	if len(got) != len(sizes) {
		t.Fatalf("got %d binary messages, want %d", len(got), len(sizes))
	}
	if text == nil || text.Text != "owned" {
		t.Fatalf("text = %v", text)
	}
}

// byteConn is a transport whose server side is a fixed byte string: the
// answer to the upgrade request (computed from its key) and then frames.
// It never blocks, so a fuzzed session always ends.
type byteConn struct {
	deflate bool
	frames  []byte
	in      *bytes.Reader
}

func (c *byteConn) Write(p []byte) (int, error) {
	if c.in == nil {
		req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(p)))
		if err != nil {
			return 0, err
		}
		resp := "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
			"Sec-WebSocket-Accept: " + protocol.AcceptKey(req.Header.Get("Sec-WebSocket-Key")) + "\r\n"
		if c.deflate {
			resp += "Sec-WebSocket-Extensions: permessage-deflate\r\n"
		}
		c.in = bytes.NewReader(append([]byte(resp+"\r\n"), c.frames...))
	}
	return len(p), nil
}

func (c *byteConn) Read(p []byte) (int, error) {
	if c.in == nil {
		return 0, io.EOF
	}
	return c.in.Read(p)
}

func (c *byteConn) Close() error { return nil }

func (c *byteConn) LocalAddr() net.Addr { return &net.TCPAddr{} }

func (c *byteConn) RemoteAddr() net.Addr { return &net.TCPAddr{} }

func (c *byteConn) SetDeadline(time.Time) error { return nil }

func (c *byteConn) SetReadDeadline(time.Time) error { return nil }

func (c *byteConn) SetWriteDeadline(time.Time) error { return nil }

// FuzzFrameReader: whatever frames a server sends, the session never
// panics and always ends; it delivers only valid UTF-8 text, no message
// over the read limit, and (uncompressed) never more bytes than it read.
func FuzzFrameReader(f *testing.F) {
	enc := func(frames ...[]byte) []byte { return bytes.Join(frames, nil) }
	f.Add(enc([]byte{0x81, 0x02, 'h', 'i'}, []byte{0x88, 0x02, 0x03, 0xe8}), false)
	f.Add(enc([]byte{0x01, 0x01, 'a'}, []byte{0x89, 0x00}, []byte{0x80, 0x01, 'b'}), false)
	f.Add(enc([]byte{0x82, 0x7e, 0x00, 0x04, 1, 2, 3, 4}), false)
	f.Add(enc([]byte{0x81, 0x64}, bytes.Repeat([]byte("a"), 16)), false)
	f.Add(enc([]byte{0xc1, 0x08}, rfc7692Hello), true)
	f.Add(enc([]byte{0x41, 0x07}, rfc7692Hello[:7], []byte{0x80, 0x01, 0x00}), true)
	f.Add(enc([]byte{0x81, 0x03, 0xed, 0xa0, 0x80}), false)
	f.Add(enc([]byte{0x88, 0x01, 0x03}), false)
	f.Fuzz(func(t *testing.T, frames []byte, deflate bool) {
		conn := &byteConn{deflate: deflate, frames: frames}
		opts := []Option{WithoutProxy(), WithPollInterval(0), WithPingRate(0), WithReadLimit(1 << 16),
			WithCloseTimeout(time.Second),
			WithDialer(func(context.Context, string, string) (net.Conn, error) { return conn, nil })}
		if deflate {
			opts = append(opts, WithCompression(CompressionContextTakeover))
		}
		ws, err := New("ws://fuzz.invalid/", opts...)
		if err != nil {
			t.Fatal(err)
		}
		delivered := 0
		_ = ws.Run(context.Background(), HandlerFunc(func(ws *WebSocket, ev events.Event) {
			switch e := ev.(type) {
			case *events.Text:
				if !utf8.ValidString(e.Text) {
					t.Fatalf("invalid UTF-8 delivered: %q", e.Text)
				}
				delivered += len(e.Text)
				if len(e.Text) > 1<<16 {
					t.Fatalf("a %d-byte text passed the read limit", len(e.Text))
				}
			case *events.Binary:
				delivered += len(e.Data)
				if len(e.Data) > 1<<16 {
					t.Fatalf("a %d-byte binary passed the read limit", len(e.Data))
				}
			case *events.Closed:
				if strings.ContainsRune(e.Reason, utf8.RuneError) && !utf8.ValidString(e.Reason) {
					t.Fatalf("invalid close reason delivered")
				}
			}
		}))
		if !deflate && delivered > len(frames) {
			t.Fatalf("delivered %d payload bytes from %d bytes read", delivered, len(frames))
		}
	})
}

// TestCutOffMessageIsNeverDelivered: a connection that ends inside a frame
// is a lost connection, never a (shortened) message.
func TestCutOffMessageIsNeverDelivered(t *testing.T) {
	hdr100 := []byte{0x81, 100} // text, FIN, 100 bytes announced
	cases := map[string][]byte{
		"16 of 100 payload bytes": append(append([]byte(nil), hdr100...), bytes.Repeat([]byte("a"), 16)...),
		"header only":             hdr100,
		"half a header":           {0x81, 126, 0x01},
	}
	for name, cut := range cases {
		t.Run(name, func(t *testing.T) {
			srv, done := testkit.ScriptServer(t, func(c *wstest.Conn) {
				if testkit.Handshake(t, c) && testkit.Write(t, c, wstest.Text("whole")) {
					_ = c.WriteRaw(cut)
				}
				// The script returns: the server closes TCP (FIN).
			})
			l, err := runAgainstScript(t, srv, done, nil)
			if !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Errorf("Run = %v, want an error wrapping io.ErrUnexpectedEOF", err)
			}
			testkit.ExpectLines(t, l, testkit.Seq(testkit.Opening(srv.URL()), []string{`text "whole"`, "disconnected graceful=false err=true"}))
			if d := testkit.Last[*events.Disconnected](t, l); d.Reason != "connection lost" {
				t.Errorf("Disconnected.Reason = %q, want %q", d.Reason, "connection lost")
			}
		})
	}
}

// rfc7692Hello is the payload of RFC 7692 section 7.2.3.4: "Hello" in a
// DEFLATE block with BFINAL set, then an empty block's header and padding.
var rfc7692Hello = []byte{0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00}

// TestViolationsReportedTruly: every violation ends as one ProtocolError
// with the code of the close frame sent, a stable reason, and no other
// library's text.
func TestViolationsReportedTruly(t *testing.T) {
	huge := []byte{0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 1} // 2^63+1 bytes
	overLimit := wstest.Binary(make([]byte, 200)).Encode()
	maskedAfter := wstest.Frame{Fin: true, Opcode: wstest.OpText, Masked: true, Payload: []byte("m")}.Encode()
	cases := []struct {
		name       string
		bad        []byte
		clientSide func(ws *WebSocket)
		code       int
		reason     string
	}{
		{name: "frame length over 2^63", bad: huge, code: 1002, reason: "frame length too large"},
		{name: "close code 2999", bad: wstest.Close(2999, "").Encode(), code: 1002, reason: "invalid close code"},
		{name: "over the read limit, then a masked frame", bad: append(overLimit, maskedAfter...), code: 1009,
			reason: "message larger than the read limit (100 bytes)"},
		{name: "masked frame after the client's close", bad: maskedAfter, code: 1002, reason: "masked frame",
			clientSide: func(ws *WebSocket) { _ = ws.Close(1000, "bye") }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ready := make(chan struct{})
			srv, done := testkit.ScriptServer(t, func(c *wstest.Conn) {
				if !testkit.Handshake(t, c) {
					return
				}
				if tc.clientSide != nil {
					<-ready
					if !testkit.ExpectClose(t, c, 1000, "bye") {
						return
					}
				}
				_ = c.WriteRaw(tc.bad)
				if tc.clientSide == nil {
					if code, _, err := c.ExpectClose(); err != nil || code != tc.code {
						t.Errorf("server saw close %d (%v), want %d", code, err, tc.code)
					}
				}
				_ = c.WriteFrame(wstest.Close(1000, ""))
			})
			lHook := func(ws *WebSocket, ev events.Event) {
				if _, ok := ev.(*events.Ready); ok && tc.clientSide != nil {
					tc.clientSide(ws)
					close(ready)
				}
			}
			l, err := runAgainstScript(t, srv, done, lHook, WithReadLimit(100))
			var pe *ProtocolError
			if !errors.As(err, &pe) || pe.Code != tc.code {
				t.Fatalf("Run = %v, want a *ProtocolError %d", err, tc.code)
			}
			n := 0
			for _, ev := range l.All() {
				if e, ok := ev.(*events.ProtocolError); ok {
					n++
					if e.Code != tc.code || e.Err.Error() != tc.reason {
						t.Errorf("ProtocolError %d %q, want %d %q", e.Code, e.Err, tc.code, tc.reason)
					}
				}
			}
			if n != 1 {
				t.Errorf("%d ProtocolError events, want 1", n)
			}
			if d := testkit.Last[*events.Disconnected](t, l); d.Reason != "protocol error" {
				t.Errorf("Disconnected.Reason = %q, want %q", d.Reason, "protocol error")
			}
		})
	}
}

var _ = binary.BigEndian

// TestClosingHandlerSendsAndChoosesTheReply: as in lomond, the Closing
// handler may still send, and may choose the reply to the server's close.
func TestClosingHandlerSendsAndChoosesTheReply(t *testing.T) {
	srv, done := testkit.ScriptServer(t, func(c *wstest.Conn) {
		if !testkit.Handshake(t, c) || !testkit.Write(t, c, wstest.Close(1000, "bye")) {
			return
		}
		if testkit.ExpectMessage(t, c, wstest.OpText, "last words") {
			testkit.ExpectClose(t, c, 4001, "client override")
		}
	})
	ws := newTestWS(t, srv.URL())
	var sendErr, closeErr, lateErr error
	l := new(testkit.EventRecorder)
	lHook := func(ws *WebSocket, ev events.Event) {
		switch ev.(type) {
		case *events.Closing:
			sendErr = ws.SendText("last words")
			closeErr = ws.Close(4001, "client override")
			lateErr = ws.SendText("too late")
		}
	}
	err := ws.Run(context.Background(), recording(l, lHook))
	testkit.WaitScript(t, done)
	if sendErr != nil || closeErr != nil {
		t.Errorf("in the Closing handler: SendText = %v, Close = %v; want nil, nil", sendErr, closeErr)
	}
	if !errors.Is(lateErr, ErrClosing) {
		t.Errorf("SendText after the reply = %v, want ErrClosing", lateErr)
	}
	if CloseStatus(err) != 1000 {
		t.Errorf("Run = %v, want the server's close 1000", err)
	}
	testkit.ExpectLines(t, l, testkit.Seq(testkit.Opening(srv.URL()), []string{`closing 1000 "bye"`, `closed 1000 "bye"`, "disconnected graceful=true err=false"}))
}

// TestFloodAfterCloseIsCut: a server that answers the client's close with
// an endless stream of messages instead of a close reply is not waited for
// beyond the drain bound after the close timeout.
func TestFloodAfterCloseIsCut(t *testing.T) {
	old := maxJudgeDrain
	maxJudgeDrain = 1 << 20
	defer func() { maxJudgeDrain = old }()
	srv, done := testkit.ScriptServer(t, func(c *wstest.Conn) {
		if !testkit.Handshake(t, c) || !testkit.ExpectClose(t, c, 1000, "bye") {
			return
		}
		batch := bytes.Repeat(wstest.Text("flood").Encode(), 1000)
		for c.WriteRaw(batch) == nil {
		}
	})
	ws := newTestWS(t, srv.URL(), WithCloseTimeout(100*time.Millisecond))
	texts := 0
	start := time.Now()
	err := ws.Run(context.Background(), HandlerFunc(func(ws *WebSocket, ev events.Event) {
		switch ev.(type) {
		case *events.Ready:
			_ = ws.Close(1000, "bye")
		case *events.Text:
			texts++
		}
	}))
	testkit.WaitScript(t, done)
	if !errors.Is(err, ErrCloseTimeout) {
		t.Errorf("Run = %v, want ErrCloseTimeout", err)
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("Run took %v", d)
	}
	t.Logf("%d texts delivered before the cut, in %v", texts, time.Since(start))
}

// closeSeen is what a server script saw after provoking the client: the
// client's close frame, or the error that ended the read instead.
type closeSeen struct {
	code   int
	reason string
	err    error
}

// TestProtocolViolations: for each way a server can break the protocol, the
// client fails the connection with the right close code: ProtocolError,
// then Disconnected (not graceful), and Run returns a *ProtocolError.
func TestProtocolViolations(t *testing.T) {
	cases := []struct {
		name string
		bad  []byte
		// withHandshake sends bad right after the 101 response, in the same
		// write; otherwise after a normal handshake.
		withHandshake bool
		code          int
	}{
		{name: "masked server frame", code: StatusProtocolError,
			bad: wstest.Frame{Fin: true, Opcode: wstest.OpText, Masked: true, MaskKey: [4]byte{1, 2, 3, 4}, Payload: []byte("hi")}.Encode()},
		{name: "masked frame after a good one", code: StatusProtocolError,
			bad: wstest.EncodeAll(wstest.Text("fine"),
				wstest.Frame{Fin: true, Opcode: wstest.OpBinary, Masked: true, MaskKey: [4]byte{9, 9, 9, 9}, Payload: []byte("masked")})},
		{name: "reserved opcode 3", code: StatusProtocolError,
			bad: wstest.Frame{Fin: true, Opcode: 3, Payload: []byte("x")}.Encode()},
		{name: "RSV2 bit", code: StatusProtocolError,
			bad: wstest.Frame{Fin: true, RSV2: true, Opcode: wstest.OpText, Payload: []byte("x")}.Encode()},
		{name: "fragmented ping", code: StatusProtocolError,
			bad: wstest.Frame{Fin: false, Opcode: wstest.OpPing, Payload: []byte("x")}.Encode()},
		{name: "close code 1005 on the wire", code: StatusProtocolError,
			bad: wstest.Close(1005, "").Encode()},
		{name: "1-byte close payload", code: StatusProtocolError,
			bad: wstest.Frame{Fin: true, Opcode: wstest.OpClose, Payload: []byte{3}}.Encode()},
		{name: "continuation without start", code: StatusProtocolError,
			bad: wstest.Frame{Fin: true, Opcode: wstest.OpContinuation, Payload: []byte("x")}.Encode()},
		{name: "junk right after the 101", code: StatusProtocolError, withHandshake: true,
			bad: []byte("JUNK that is not a frame\r\n")},
		{name: "invalid UTF-8 in a text frame", code: StatusInvalidPayload,
			bad: wstest.Text("ok \xff not ok").Encode()},
		{name: "invalid UTF-8 in a later fragment", code: StatusInvalidPayload,
			// The message never ends: the client must fail at once.
			bad: wstest.EncodeAll(
				wstest.Frame{Fin: false, Opcode: wstest.OpText, Payload: []byte("a valid prefix, ")},
				wstest.Frame{Fin: false, Opcode: wstest.OpContinuation, Payload: []byte("then \xc3\x28 bad")})},
		{name: "invalid byte ending a non-final fragment", code: StatusInvalidPayload,
			// 0xFF can never start a code point: no need to wait for more.
			bad: wstest.Frame{Fin: false, Opcode: wstest.OpText, Payload: []byte("abc\xff")}.Encode()},
		{name: "impossible sequence start ending a non-final fragment", code: StatusInvalidPayload,
			// F4 90 starts no valid code point (F4 allows 80-8F next): fail
			// now, not when the rest of the sequence arrives (Autobahn 6.4.2).
			bad: wstest.Frame{Fin: false, Opcode: wstest.OpText, Payload: []byte("abc\xf4\x90")}.Encode()},
		{name: "invalid UTF-8 in a close reason", code: StatusInvalidPayload,
			bad: wstest.Close(1000, "bad \xff reason").Encode()},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			seen := make(chan closeSeen, 1)
			srv, done := testkit.ScriptServer(t, func(c *wstest.Conn) {
				if tc.withHandshake {
					req, err := c.ReadRequest()
					if err != nil || c.WriteRaw(raw101(req, tc.bad)) != nil {
						t.Errorf("server: handshake: %v", err)
						return
					}
				} else if !testkit.Handshake(t, c) || c.WriteRaw(tc.bad) != nil {
					return
				}
				code, reason, err := c.ExpectClose()
				seen <- closeSeen{code, reason, err}
				if err == nil {
					_ = c.WriteFrame(wstest.Close(code, "")) // a polite server answers
					testkit.Drain(t, c)
				}
			})
			ws := newTestWS(t, srv.URL())
			l := new(testkit.EventRecorder)
			// A guard: if the client never reacts, the cancel makes it close
			// with 1001, and the checks below fail instead of hanging.
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			start := time.Now()
			err := ws.Run(ctx, recording(l, nil))
			testkit.WaitScript(t, done)
			if elapsed := time.Since(start); elapsed > 5*time.Second {
				t.Errorf("Run took %v", elapsed)
			}
			var pe *ProtocolError
			if !errors.As(err, &pe) || pe.Code != tc.code {
				t.Fatalf("Run = %v, want *ProtocolError with code %d", err, tc.code)
			}
			want := testkit.Opening(srv.URL())
			if strings.HasPrefix(tc.name, "masked frame after") {
				want = append(want, `text "fine"`)
			}
			testkit.ExpectLines(t, l, testkit.Seq(want, []string{
				"protocol_error " + strconv.Itoa(tc.code), "disconnected graceful=false err=true",
			}))
			if ev := testkit.Last[*events.ProtocolError](t, l); ev.Err == nil {
				t.Error("ProtocolError.Err is nil")
			}
			if d := testkit.Last[*events.Disconnected](t, l); !errors.As(d.Err, &pe) || pe.Code != tc.code {
				t.Errorf("Disconnected.Err = %v, want the *ProtocolError", d.Err)
			}
			var s closeSeen
			select {
			case s = <-seen:
			default:
				t.Fatal("the server script ended before it read a close frame")
			}
			if s.err != nil || s.code != tc.code {
				t.Errorf("server saw close %d %q (err %v), want close %d", s.code, s.reason, s.err, tc.code)
			} else {
				t.Logf("server saw close %d %q", s.code, s.reason)
			}
		})
	}
}

// TestProtocolUTF8SplitCodePoint: a code point split across fragments is
// valid.
func TestProtocolUTF8SplitCodePoint(t *testing.T) {
	srv, done := testkit.ScriptServer(t, func(c *wstest.Conn) {
		if !testkit.Handshake(t, c) {
			return
		}
		frames := []wstest.Frame{
			{Fin: false, Opcode: wstest.OpText, Payload: []byte("caf\xc3")},
			{Fin: true, Opcode: wstest.OpContinuation, Payload: []byte("\xa9!")},
			{Fin: false, Opcode: wstest.OpText, Payload: []byte("\xf0\x9f")},
			{Fin: false, Opcode: wstest.OpContinuation, Payload: []byte("\x98")},
			{Fin: true, Opcode: wstest.OpContinuation, Payload: []byte("\x80")},
		}
		for _, f := range frames { // one write each: one read each
			if !testkit.Write(t, c, f) {
				return
			}
		}
		if testkit.Write(t, c, wstest.Close(1000, "")) && testkit.ExpectClose(t, c, 1000, "") {
			testkit.ExpectEOF(t, c)
		}
	})
	l, err := runAgainstScript(t, srv, done, nil)
	if CloseStatus(err) != 1000 {
		t.Fatalf("Run = %v, want *CloseError 1000", err)
	}
	testkit.ExpectLines(t, l, testkit.Seq(testkit.Opening(srv.URL()), []string{
		`text "café!"`, `text "😀"`,
		`closing 1000 ""`, `closed 1000 ""`, "disconnected graceful=true err=false",
	}))
}

// TestProtocolReadLimit: a message at the limit is delivered; one byte more
// fails the connection with 1009.
func TestProtocolReadLimit(t *testing.T) {
	const limit = 1024
	seen := make(chan closeSeen, 1)
	srv, done := testkit.ScriptServer(t, func(c *wstest.Conn) {
		if !testkit.Handshake(t, c) || !testkit.Write(t, c, wstest.Text(strings.Repeat("a", limit))) ||
			!testkit.Write(t, c, wstest.Text(strings.Repeat("b", 2*limit))) {
			return
		}
		code, reason, err := c.ExpectClose()
		seen <- closeSeen{code, reason, err}
	})
	l, err := runAgainstScript(t, srv, done, nil, WithReadLimit(limit))
	var pe *ProtocolError
	if !errors.As(err, &pe) || pe.Code != StatusMessageTooBig {
		t.Fatalf("Run = %v, want *ProtocolError with code 1009", err)
	}
	testkit.ExpectLines(t, l, testkit.Seq(testkit.Opening(srv.URL()), []string{
		"text <1024 bytes>", "protocol_error 1009", "disconnected graceful=false err=true",
	}))
	select {
	case s := <-seen:
		if s.err != nil || s.code != StatusMessageTooBig {
			t.Errorf("server saw close %d %q (err %v), want 1009", s.code, s.reason, s.err)
		}
	default:
		t.Error("the server script ended before it read a close frame")
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
			if c := testkit.Recv(t, codes, "the client's close"); c != StatusInvalidPayload {
				t.Errorf("close code %d, want %d", c, StatusInvalidPayload)
			}
			for _, want := range []string{"p1", "p2"} {
				if p := testkit.Recv(t, pongs, "a pong"); p != want {
					t.Errorf("pong %q, want %q", p, want)
				}
			}
		})
	}
}
