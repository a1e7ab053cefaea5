package lomond

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/lomond-go/lomond/events"
	"github.com/lomond-go/lomond/internal/testkit"
	"github.com/lomond-go/lomond/internal/wstest"
)

// Tests of stream_reader.go: messages of any size received through a
// StreamHandler, from coder/websocket's server (an independent
// implementation, plain and compressed) and from the raw-bytes server:
// control frames between fragments, the close handshake, abandoned streams,
// invalid text and protocol violations inside a stream, and the timers
// during a long one.

// streamRecorder receives streams with onStream and records every event's
// name; it flags an event delivered while OnStream runs (handler methods
// run one at a time).
type streamRecorder struct {
	BaseHandler
	onStream func(ws *WebSocket, ev *events.Stream)

	names  testkit.Recorder[string]
	nested testkit.Recorder[string] // names delivered while OnStream ran
	inside atomic.Bool
}

func (h *streamRecorder) OnEvent(_ *WebSocket, ev events.Event) {
	if h.inside.Load() {
		h.nested.Add(ev.Name())
	}
	h.names.Add(ev.Name())
}

func (h *streamRecorder) OnStream(ws *WebSocket, ev *events.Stream) {
	h.inside.Store(true)
	h.onStream(ws, ev)
	h.inside.Store(false)
}

// after returns the event names after the first stream, and checks that
// none was delivered inside OnStream.
func (h *streamRecorder) after(t *testing.T) []string {
	t.Helper()
	if nested := h.nested.All(); len(nested) > 0 {
		t.Errorf("events delivered while OnStream ran: %v", nested)
	}
	names := h.names.All()
	for i, n := range names {
		if n == events.NameStream {
			return names[i:]
		}
	}
	return nil
}

func frag(op byte, fin bool, payload string) wstest.Frame {
	return wstest.Frame{Fin: fin, Opcode: op, Payload: []byte(payload)}
}

// runScripted runs the raw server script and a client with h; it returns the
// client's Run result.
func runScripted(t *testing.T, script func(c *wstest.Conn), h EventHandler, opts ...Option) error {
	t.Helper()
	srv, done := testkit.ScriptServer(t, func(c *wstest.Conn) {
		if testkit.Handshake(t, c) {
			script(c)
		}
	})
	ws := newTestWS(t, srv.URL(), opts...)
	err := testkit.RecvWithin(t, streamTimeout, goRun(t, ws, h), "Run's return")
	testkit.WaitScript(t, done)
	return err
}

// TestStreamControlFramesWhileReading: a ping between fragments is
// answered while OnStream waits for the rest (the server holds the rest
// back until the pong came), pongs are taken, and the Ping and Pong events
// come after OnStream returned.
func TestStreamControlFramesWhileReading(t *testing.T) {
	read := make(chan string, 1)
	h := &streamRecorder{onStream: func(_ *WebSocket, ev *events.Stream) {
		b, err := io.ReadAll(ev.Reader)
		if err != nil {
			t.Errorf("ReadAll: %v", err)
		}
		read <- string(b)
	}}
	err := runScripted(t, func(c *wstest.Conn) {
		testkit.Write(t, c, frag(wstest.OpText, false, "caf\xc3"), wstest.Ping([]byte("p1")))
		f, err := c.ReadFrame()
		if err != nil || f.Opcode != wstest.OpPong || string(f.Payload) != "p1" {
			t.Errorf("server: got %+v, %v; want the pong p1 while the message is unfinished", f, err)
			return
		}
		testkit.Write(t, c, wstest.Pong([]byte("unasked")), frag(wstest.OpContinuation, false, "\xa9 "),
			wstest.Ping([]byte("p2")), frag(wstest.OpContinuation, true, "au lait"))
		testkit.ExpectMessage(t, c, wstest.OpPong, "p2")
		testkit.Write(t, c, wstest.Close(4000, "bye"))
		testkit.ExpectClose(t, c, 4000, "bye")
	}, h)
	if got := testkit.RecvWithin(t, streamTimeout, read, "the stream"); got != "café au lait" {
		t.Errorf("read %q, want %q", got, "café au lait")
	}
	var ce *CloseError
	if !errors.As(err, &ce) || ce.Code != 4000 {
		t.Errorf("Run = %v, want the server's close 4000", err)
	}
	want := []string{"stream", "ping", "pong", "ping", "closing", "closed", "disconnected"}
	if got := h.after(t); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("events %v, want %v", got, want)
	}
}

// TestStreamServerClosesInside: a close frame inside a message ends the
// stream with an error wrapping io.ErrUnexpectedEOF; the close handshake
// proceeds once OnStream returned.
func TestStreamServerClosesInside(t *testing.T) {
	read := make(chan error, 1)
	h := &streamRecorder{onStream: func(_ *WebSocket, ev *events.Stream) {
		b, err := io.ReadAll(ev.Reader)
		if string(b) != "abc" {
			t.Errorf("read %q before the close, want abc", b)
		}
		read <- err
	}}
	err := runScripted(t, func(c *wstest.Conn) {
		testkit.Write(t, c, frag(wstest.OpBinary, false, "abc"), wstest.Close(4001, "no more"))
		testkit.ExpectClose(t, c, 4001, "no more")
	}, h)
	if rerr := testkit.RecvWithin(t, streamTimeout, read, "the stream's end"); !errors.Is(rerr, io.ErrUnexpectedEOF) {
		t.Errorf("the reader's error = %v, want io.ErrUnexpectedEOF", rerr)
	}
	var ce *CloseError
	if !errors.As(err, &ce) || ce.Code != 4001 {
		t.Errorf("Run = %v, want the server's close 4001", err)
	}
	if got := h.after(t); strings.Join(got, " ") != "stream closing closed disconnected" {
		t.Errorf("events %v", got)
	}
}

// TestStreamClientClosesWhileReading: Close from OnStream sends the close
// frame at once (the server sees it inside the message); the handler reads
// on to the end, then the handshake completes.
func TestStreamClientClosesWhileReading(t *testing.T) {
	read := make(chan string, 1)
	h := &streamRecorder{onStream: func(ws *WebSocket, ev *events.Stream) {
		head := make([]byte, 4)
		if _, err := io.ReadFull(ev.Reader, head); err != nil {
			t.Errorf("head: %v", err)
		}
		if err := ws.Close(StatusNormal, "enough"); err != nil {
			t.Errorf("Close = %v", err)
		}
		rest, err := io.ReadAll(ev.Reader)
		if err != nil {
			t.Errorf("rest: %v", err)
		}
		read <- string(head) + string(rest)
	}}
	err := runScripted(t, func(c *wstest.Conn) {
		testkit.Write(t, c, frag(wstest.OpBinary, false, "head"))
		if testkit.ExpectClose(t, c, StatusNormal, "enough") {
			testkit.Write(t, c, frag(wstest.OpContinuation, true, "+tail"), wstest.Close(StatusNormal, "ok"))
		}
	}, h)
	if got := testkit.RecvWithin(t, streamTimeout, read, "the stream"); got != "head+tail" {
		t.Errorf("read %q", got)
	}
	if err != nil {
		t.Errorf("Run = %v, want nil (the client's close completed)", err)
	}
}

// TestStreamAbandoned: a handler that returns half-way leaves the rest to
// be discarded (a ping inside the rest still answered); the next message
// streams whole; the old reader then fails.
func TestStreamAbandoned(t *testing.T) {
	var first io.Reader
	second := make(chan string, 1)
	h := &streamRecorder{onStream: func(_ *WebSocket, ev *events.Stream) {
		if first == nil {
			first = ev.Reader
			b := make([]byte, 2)
			if _, err := io.ReadFull(ev.Reader, b); err != nil || string(b) != "he" {
				t.Errorf("first two bytes %q, %v", b, err)
			}
			return
		}
		if n, err := first.Read(make([]byte, 8)); n != 0 || err == nil || !strings.Contains(err.Error(), "after OnStream returned") {
			t.Errorf("the first stream read after its OnStream: %d, %v; want an error", n, err)
		}
		b, err := io.ReadAll(ev.Reader)
		if err != nil {
			t.Errorf("second: %v", err)
		}
		second <- string(b)
	}}
	err := runScripted(t, func(c *wstest.Conn) {
		testkit.Write(t, c, frag(wstest.OpBinary, false, "head"), frag(wstest.OpContinuation, false, strings.Repeat("x", 100<<10)),
			wstest.Ping([]byte("inside")), frag(wstest.OpContinuation, true, "tail"), wstest.Text("next"))
		testkit.ExpectMessage(t, c, wstest.OpPong, "inside")
		testkit.Write(t, c, wstest.Close(StatusNormal, ""))
		testkit.ExpectClose(t, c, StatusNormal, "")
	}, h)
	if got := testkit.RecvWithin(t, streamTimeout, second, "the second stream"); got != "next" {
		t.Errorf("second stream %q, want next", got)
	}
	var ce *CloseError
	if !errors.As(err, &ce) {
		t.Errorf("Run = %v, want the server's close", err)
	}
}

// TestStreamAbandonedOverReadLimit: what is discarded of an abandoned
// stream is bounded by the read limit: beyond it the client fails with
// 1009.
func TestStreamAbandonedOverReadLimit(t *testing.T) {
	h := &streamRecorder{onStream: func(_ *WebSocket, ev *events.Stream) {
		_, _ = ev.Reader.Read(make([]byte, 1))
	}}
	err := runScripted(t, func(c *wstest.Conn) {
		testkit.Write(t, c, frag(wstest.OpBinary, false, "0123456789"), frag(wstest.OpContinuation, true, strings.Repeat("y", 5000)))
		if testkit.ExpectClose(t, c, StatusMessageTooBig, "the unread rest of a stream is larger than the read limit (1000 bytes)") {
			testkit.Write(t, c, wstest.Close(StatusMessageTooBig, ""))
		}
	}, h, WithReadLimit(1000))
	var pe *ProtocolError
	if !errors.As(err, &pe) || pe.Code != StatusMessageTooBig {
		t.Errorf("Run = %v, want a ProtocolError 1009", err)
	}
}

// TestStreamBadInput: invalid UTF-8 inside a stream (1007), a new data
// frame inside a fragmented message (1002) and a continuation with RSV1
// (1002) fail the connection; the reader returns the *ProtocolError; a
// connection cut inside a stream is io.ErrUnexpectedEOF.
func TestStreamBadInput(t *testing.T) {
	tests := []struct {
		name   string
		frames []wstest.Frame
		code   int // 0: the server cuts the connection
	}{
		{"InvalidUTF8", []wstest.Frame{frag(wstest.OpText, false, "ok "), frag(wstest.OpContinuation, true, "\xff!")}, StatusInvalidPayload},
		{"InvalidUTF8AtTheEnd", []wstest.Frame{frag(wstest.OpText, false, "ok "), frag(wstest.OpContinuation, true, "\xe4\xb8")}, StatusInvalidPayload},
		{"NewDataFrameInside", []wstest.Frame{frag(wstest.OpText, false, "ok "), wstest.Binary([]byte("new"))}, StatusProtocolError},
		{"ContinuationWithRSV1", []wstest.Frame{frag(wstest.OpBinary, false, "ok "), {Fin: true, RSV1: true, Opcode: wstest.OpContinuation, Payload: []byte("x")}}, StatusProtocolError},
		{"ConnectionCut", []wstest.Frame{frag(wstest.OpBinary, false, "ok "), {Fin: true, Opcode: wstest.OpContinuation, Payload: []byte("abcdef")}}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rerr := make(chan error, 1)
			h := &streamRecorder{onStream: func(_ *WebSocket, ev *events.Stream) {
				_, err := io.ReadAll(ev.Reader)
				rerr <- err
			}}
			err := runScripted(t, func(c *wstest.Conn) {
				if tt.code == 0 {
					wire := wstest.EncodeAll(tt.frames...)
					_ = c.WriteRaw(wire[:len(wire)-3]) // cut inside the last frame
					return
				}
				testkit.Write(t, c, tt.frames...)
				code, _, err := c.ExpectClose()
				if err != nil || code != tt.code {
					t.Errorf("server: close %d, %v; want %d", code, err, tt.code)
				}
				testkit.Write(t, c, wstest.Close(tt.code, ""))
			}, h)
			got := testkit.RecvWithin(t, streamTimeout, rerr, "the reader's error")
			if tt.code == 0 {
				if !errors.Is(got, io.ErrUnexpectedEOF) || err == nil {
					t.Errorf("reader: %v; Run: %v; want io.ErrUnexpectedEOF and a lost connection", got, err)
				}
				return
			}
			var pe *ProtocolError
			if !errors.As(got, &pe) || pe.Code != tt.code {
				t.Errorf("the reader's error = %v, want a *ProtocolError %d", got, tt.code)
			}
			if !errors.As(err, &pe) || pe.Code != tt.code {
				t.Errorf("Run = %v, want a *ProtocolError %d", err, tt.code)
			}
		})
	}
}

// TestStreamTimersWhileReading: during a long stream (fragments every 20
// ms for 1.5 s) the keep-alive pings go out; a server that answers keeps
// the session alive, one that does not is Unresponsive within the ping
// timeout, and the reader returns ErrUnresponsive.
func TestStreamTimersWhileReading(t *testing.T) {
	for _, answer := range []bool{true, false} {
		name := "Answered"
		if !answer {
			name = "Unanswered"
		}
		t.Run(name, func(t *testing.T) {
			type result struct {
				n   int
				err error
				at  time.Duration
			}
			res := make(chan result, 1)
			began := time.Now()
			h := &streamRecorder{onStream: func(_ *WebSocket, ev *events.Stream) {
				b, err := io.ReadAll(ev.Reader)
				res <- result{len(b), err, time.Since(began)}
			}}
			err := runScripted(t, func(c *wstest.Conn) {
				pings := make(chan int, 1)
				go func() { // read the client's frames, answer its pings if asked to
					n := 0
					for {
						f, err := c.ReadFrame()
						if err != nil {
							pings <- n
							return
						}
						if f.Opcode == wstest.OpPing {
							n++
							if answer {
								_ = c.WriteFrame(wstest.Pong(f.Payload))
							}
						}
						if f.Opcode == wstest.OpClose {
							_ = c.WriteFrame(wstest.Close(StatusNormal, ""))
						}
					}
				}()
				_ = c.WriteFrame(frag(wstest.OpBinary, false, "s"))
				for end := time.Now().Add(1500 * time.Millisecond); time.Now().Before(end); {
					time.Sleep(20 * time.Millisecond) // the server's pace, not synchronisation
					if c.WriteFrame(frag(wstest.OpContinuation, false, "x")) != nil {
						break
					}
				}
				_ = c.WriteFrame(frag(wstest.OpContinuation, true, "!"))
				if answer {
					_ = c.WriteFrame(wstest.Close(StatusNormal, ""))
				}
				if n := <-pings; n < 5 {
					t.Errorf("the server saw %d pings in 1.5 s at one per 50 ms", n)
				}
			}, h, WithPingRate(50*time.Millisecond), WithPingTimeout(300*time.Millisecond))
			r := testkit.RecvWithin(t, streamTimeout, res, "the stream's end")
			if answer {
				if r.err != nil || r.n < 40 {
					t.Errorf("read %d bytes, %v; want the whole stream", r.n, r.err)
				}
				var ce *CloseError
				if !errors.As(err, &ce) {
					t.Errorf("Run = %v, want the server's close", err)
				}
				return
			}
			if !errors.Is(r.err, ErrUnresponsive) || r.at > 1400*time.Millisecond {
				t.Errorf("reader: %v after %v; want ErrUnresponsive before the stream's end", r.err, r.at)
			}
			if !errors.Is(err, ErrUnresponsive) {
				t.Errorf("Run = %v, want ErrUnresponsive", err)
			}
			if got := strings.Join(h.after(t), " "); !strings.Contains(got, "unresponsive") {
				t.Errorf("events %v, want unresponsive after the stream", got)
			}
		})
	}
}

// TestStreamCloseTimeoutWhileReading: a handler that closes and reads on
// a stream the server never ends (nor answers the close) is bounded by the
// close timeout: the reader returns ErrCloseTimeout.
func TestStreamCloseTimeoutWhileReading(t *testing.T) {
	rerr := make(chan error, 1)
	h := &streamRecorder{onStream: func(ws *WebSocket, ev *events.Stream) {
		_ = ws.Close(StatusNormal, "enough")
		_, err := io.Copy(io.Discard, ev.Reader)
		rerr <- err
	}}
	began := time.Now()
	err := runScripted(t, func(c *wstest.Conn) {
		_ = c.WriteFrame(frag(wstest.OpBinary, false, "s"))
		for c.WriteFrame(frag(wstest.OpContinuation, false, "x")) == nil {
			time.Sleep(10 * time.Millisecond) // the server's pace, not synchronisation
		}
	}, h, WithCloseTimeout(300*time.Millisecond))
	if got := testkit.RecvWithin(t, streamTimeout, rerr, "the reader's error"); !errors.Is(got, ErrCloseTimeout) {
		t.Errorf("the reader's error = %v, want ErrCloseTimeout", got)
	}
	if !errors.Is(err, ErrCloseTimeout) {
		t.Errorf("Run = %v, want ErrCloseTimeout", err)
	}
	if d := time.Since(began); d > 5*time.Second {
		t.Errorf("the session took %v to end with a 300 ms close timeout", d)
	}
}

// TestStreamHandlerPanics: a panic in OnStream half-way closes with 1011;
// the rest of the message is discarded and Run returns the *PanicError.
func TestStreamHandlerPanics(t *testing.T) {
	h := &streamRecorder{onStream: func(_ *WebSocket, ev *events.Stream) {
		_, _ = ev.Reader.Read(make([]byte, 1))
		panic("boom")
	}}
	err := runScripted(t, func(c *wstest.Conn) {
		testkit.Write(t, c, frag(wstest.OpBinary, false, "abc"), frag(wstest.OpContinuation, true, "def"))
		if testkit.ExpectClose(t, c, StatusInternalError, "handler panic") {
			testkit.Write(t, c, wstest.Close(StatusInternalError, ""))
		}
	}, h)
	var pe *PanicError
	if !errors.As(err, &pe) || pe.Value != "boom" {
		t.Errorf("Run = %v, want the *PanicError", err)
	}
}

// TestStreamReceiveFromCoder: a message of streamSize() bytes, sent by
// coder/websocket in fragments, read by OnStream as it arrives; the peak
// RSS stays bounded by the buffers, not by the message.
func TestStreamReceiveFromCoder(t *testing.T) {
	size := streamSize()
	url, result := coderServer(t, nil, coderWriteMessages(websocket.MessageBinary, &pattern{n: size}))
	ws := newTestWS(t, url, WithReadLimit(1<<20)) // the read limit does not bound a stream
	h := &streamSink{got: make(chan streamRead, 1)}
	rss := peakRSS(t)
	began := time.Now()
	done := goRun(t, ws, h)
	got := testkit.RecvWithin(t, streamTimeout, h.got, "the stream")
	took := time.Since(began)
	grew, peak, ok := rss()
	t.Logf("received %d bytes in %v (%.0f MiB/s); peak RSS %d MiB, %d MiB above the start",
		got.n, took.Round(time.Millisecond), float64(got.n)/took.Seconds()/(1<<20), peak>>20, grew>>20)
	if got.err != nil || got.n != size || !got.binary || got.compressed {
		t.Fatalf("OnStream read %d bytes (binary %v, compressed %v), %v; want %d binary bytes", got.n, got.binary, got.compressed, got.err, size)
	}
	if want := patternSum(size); got.sum != want {
		t.Fatalf("CRC %08x, want %08x", got.sum, want)
	}
	if ok && grew > maxGrowth(size) {
		t.Errorf("peak RSS grew by %d MiB for a %d MiB message: more than %d MiB", grew>>20, size>>20, maxGrowth(size)>>20)
	}
	closeStreamSession(t, ws, done, result)
}

// TestStreamCompressedFromCoder: compressed messages (context takeover,
// so each refers to the ones before) streamed from coder/websocket: the
// first is abandoned half-way and must still be decompressed to its end
// for the next to decompress right; text is checked as it streams.
func TestStreamCompressedFromCoder(t *testing.T) {
	sizes := []int64{4 << 20, 1000, 8 << 20}
	var texts []io.Reader
	for _, n := range sizes {
		texts = append(texts, &textPattern{n: n})
	}
	url, result := coderServer(t, &websocket.AcceptOptions{CompressionMode: websocket.CompressionContextTakeover},
		coderWriteMessages(websocket.MessageText, texts...))
	got := make(chan streamRead, len(sizes))
	calls := 0
	h := &streamRecorder{onStream: func(_ *WebSocket, ev *events.Stream) {
		calls++
		if calls == 1 { // abandoned half-way
			n, err := io.CopyN(io.Discard, ev.Reader, sizes[0]/2)
			got <- streamRead{binary: ev.Binary, compressed: ev.Compressed, n: n, err: err}
			return
		}
		var b bytes.Buffer
		n, err := io.Copy(&b, ev.Reader)
		want, _ := io.ReadAll(&textPattern{n: n})
		if !bytes.Equal(b.Bytes(), want) {
			err = errors.New("the text differs from what was sent")
		}
		got <- streamRead{binary: ev.Binary, compressed: ev.Compressed, n: n, err: err}
	}}
	ws := newTestWS(t, url, WithCompression(CompressionContextTakeover))
	done := goRun(t, ws, h)
	for i, size := range sizes {
		r := testkit.RecvWithin(t, streamTimeout, got, "a stream")
		want := size
		if i == 0 {
			want = size / 2
		}
		if r.err != nil || r.n != want || r.binary || r.compressed != (size > 1000) && i != 1 {
			t.Errorf("message %d: %d bytes (binary %v, compressed %v), %v; want %d text bytes", i, r.n, r.binary, r.compressed, r.err, want)
		}
	}
	closeStreamSession(t, ws, done, result)
}
