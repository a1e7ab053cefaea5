package lomond

import (
	"bytes"
	"context"
	"errors"
	"hash/crc32"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/lomond-go/lomond/events"
	"github.com/lomond-go/lomond/internal/testkit"
	"github.com/lomond-go/lomond/internal/wstest"
)

// Tests of stream_writer.go: messages of any size sent through
// SendBinaryStream, SendTextStream and MessageWriter, to coder/websocket's
// server (plain and compressed) and to the raw-bytes server, which sees
// every frame: the fragments, the control frames between them and while
// the writer idles, the close frame after the message, and an abandoned
// message.

// startScripted runs a client against the raw server script and returns it once
// Ready, with Run's result channel.
func startScripted(t *testing.T, script func(c *wstest.Conn), opts ...Option) (*WebSocket, <-chan error, <-chan struct{}) {
	t.Helper()
	srv, done := testkit.ScriptServer(t, func(c *wstest.Conn) {
		if testkit.Handshake(t, c) {
			script(c)
		}
	})
	ws := newTestWS(t, srv.URL(), opts...)
	ready := make(chan struct{})
	res := goRun(t, ws, HandlerFunc(func(_ *WebSocket, ev events.Event) {
		if _, ok := ev.(*events.Ready); ok {
			close(ready)
		}
	}))
	testkit.RecvWithin(t, streamTimeout, ready, "Ready")
	return ws, res, done
}

// TestStreamWriterControlFrames: while a MessageWriter is open, a ping of
// the server's is answered whether the writer idles or writes (between two
// fragments), other sends wait for the message, and a Close's frame goes
// out after the message's last fragment.
func TestStreamWriterControlFrames(t *testing.T) {
	step := make(chan string)
	ws, res, done := startScripted(t, func(c *wstest.Conn) {
		<-step // the writer is open and holds "abc"
		testkit.Write(t, c, wstest.Ping([]byte("idle")))
		testkit.ExpectMessage(t, c, wstest.OpPong, "idle")
		step <- "pong while idle"
		if !testkit.ExpectFrame(t, c, wstest.OpBinary, false, StreamFragment, nil) {
			return
		}
		testkit.Write(t, c, wstest.Ping([]byte("between")))
		testkit.ExpectMessage(t, c, wstest.OpPong, "between")
		step <- "pong between fragments"
		testkit.ExpectFrame(t, c, wstest.OpContinuation, true, 3+70000-StreamFragment, nil)
		testkit.ExpectClose(t, c, StatusNormal, "bye")
		testkit.Write(t, c, wstest.Close(StatusNormal, "bye"))
	})
	mw, err := ws.BinaryWriter(context.Background())
	if err != nil {
		t.Fatalf("BinaryWriter = %v", err)
	}
	if _, err := mw.Write([]byte("abc")); err != nil {
		t.Fatalf("Write = %v", err)
	}
	step <- "open"
	testkit.RecvWithin(t, streamTimeout, step, "the pong while the writer idles")
	if _, err := mw.Write(make([]byte, 70000)); err != nil { // a fragment goes out
		t.Fatalf("Write = %v", err)
	}
	testkit.RecvWithin(t, streamTimeout, step, "the pong between fragments")
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := ws.SendTextContext(ctx, "meanwhile"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("SendTextContext while the message is open = %v, want it to wait (DeadlineExceeded)", err)
	}
	if err := ws.Close(StatusNormal, "bye"); err != nil {
		t.Errorf("Close = %v", err)
	}
	if err := mw.Close(); err != nil {
		t.Errorf("MessageWriter.Close = %v", err)
	}
	if err := mw.Close(); !errors.Is(err, errWriterClosed) {
		t.Errorf("second Close = %v, want errWriterClosed", err)
	}
	if _, err := mw.Write([]byte("x")); !errors.Is(err, errWriterClosed) {
		t.Errorf("Write after Close = %v, want errWriterClosed", err)
	}
	if err := testkit.RecvWithin(t, streamTimeout, res, "Run's return"); err != nil {
		t.Errorf("Run = %v", err)
	}
	testkit.WaitScript(t, done)
}

// failingReader yields n bytes, then err.
type failingReader struct {
	n   int
	err error
}

func (r *failingReader) Read(p []byte) (int, error) {
	if r.n == 0 {
		return 0, r.err
	}
	k := min(len(p), r.n)
	clear(p[:k])
	r.n -= k
	return k, nil
}

// TestStreamSendAbandoned: a reader that fails before a fragment went out
// sends nothing (the next message goes as usual); one that fails after
// ends the connection with 1011 between fragments, and the send returns
// ErrMessageAbandoned wrapping the reader's error.
func TestStreamSendAbandoned(t *testing.T) {
	boom := errors.New("disk on fire")
	ws, res, done := startScripted(t, func(c *wstest.Conn) {
		testkit.ExpectMessage(t, c, wstest.OpText, "after")
		testkit.ExpectFrame(t, c, wstest.OpBinary, false, StreamFragment, nil)
		testkit.ExpectClose(t, c, StatusInternalError, "message abandoned")
		testkit.Write(t, c, wstest.Close(StatusInternalError, ""))
	})
	if err := ws.SendBinaryStream(context.Background(), &failingReader{n: 1000, err: boom}); !errors.Is(err, boom) || errors.Is(err, ErrMessageAbandoned) {
		t.Errorf("SendBinaryStream, failing before a fragment = %v; want the reader's error, nothing abandoned", err)
	}
	if err := ws.SendText("after"); err != nil {
		t.Errorf("SendText after = %v", err)
	}
	err := ws.SendBinaryStream(context.Background(), &failingReader{n: StreamFragment + 10, err: boom})
	if !errors.Is(err, boom) || !errors.Is(err, ErrMessageAbandoned) {
		t.Errorf("SendBinaryStream, failing after a fragment = %v; want ErrMessageAbandoned and the reader's error", err)
	}
	if err := testkit.RecvWithin(t, streamTimeout, res, "Run's return"); err != nil {
		t.Errorf("Run = %v, want nil (the client's close completed)", err)
	}
	testkit.WaitScript(t, done)
}

// TestStreamWriterContext: a writer whose context ends before its Close is
// abandoned: with nothing sent, the write lock is let go and nothing was
// written; after a fragment, the connection closes with 1011.
func TestStreamWriterContext(t *testing.T) {
	ws, res, done := startScripted(t, func(c *wstest.Conn) {
		testkit.ExpectMessage(t, c, wstest.OpText, "next")
		testkit.ExpectFrame(t, c, wstest.OpText, false, StreamFragment, bytes.Repeat([]byte("a"), StreamFragment))
		testkit.ExpectClose(t, c, StatusInternalError, "message abandoned")
		testkit.Write(t, c, wstest.Close(StatusInternalError, ""))
	})
	ctx, cancel := context.WithCancel(context.Background())
	mw, err := ws.TextWriter(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(mw, "never sent"); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := ws.SendTextContext(context.Background(), "next"); err != nil { // waits for the lock, let go by the cancel
		t.Errorf("SendText after the cancel = %v", err)
	}
	if err := mw.Close(); !errors.Is(err, context.Canceled) || errors.Is(err, ErrMessageAbandoned) {
		t.Errorf("Close of the cancelled writer = %v, want context.Canceled, nothing abandoned", err)
	}

	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	mw, err = ws.TextWriter(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(mw, strings.Repeat("a", StreamFragment+1)); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := testkit.RecvWithin(t, streamTimeout, res, "Run's return"); err != nil {
		t.Errorf("Run = %v, want nil (the client's close completed)", err)
	}
	if err := mw.Close(); !errors.Is(err, ErrMessageAbandoned) || !errors.Is(err, context.Canceled) {
		t.Errorf("Close after the cancel = %v, want ErrMessageAbandoned and context.Canceled", err)
	}
	testkit.WaitScript(t, done)
}

// TestStreamSendBadInput: invalid UTF-8 in a text stream, a nil reader or
// context, and no session: clear errors, nothing sent.
func TestStreamSendBadInput(t *testing.T) {
	ws, res, done := startScripted(t, func(c *wstest.Conn) {
		testkit.ExpectMessage(t, c, wstest.OpText, "fine \u00e9")
		testkit.ExpectClose(t, c, StatusNormal, "")
		testkit.Write(t, c, wstest.Close(StatusNormal, ""))
	})
	if err := ws.SendTextStream(context.Background(), strings.NewReader("bad \xff")); !errors.Is(err, ErrInvalidUTF8) {
		t.Errorf("invalid UTF-8 = %v, want ErrInvalidUTF8", err)
	}
	if err := ws.SendTextStream(context.Background(), strings.NewReader("cut \xc3")); !errors.Is(err, ErrInvalidUTF8) {
		t.Errorf("UTF-8 cut at the end = %v, want ErrInvalidUTF8", err)
	}
	if err := ws.SendTextStream(context.Background(), nil); !errors.Is(err, ErrInvalidOption) {
		t.Errorf("nil reader = %v, want ErrInvalidOption", err)
	}
	var nilCtx context.Context // the bad input under test
	if _, err := ws.BinaryWriter(nilCtx); !errors.Is(err, ErrInvalidOption) {
		t.Errorf("nil context = %v, want ErrInvalidOption", err)
	}
	// A character cut across writes is fine.
	mw, err := ws.TextWriter(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	_, _ = mw.Write([]byte("fine \xc3"))
	_, _ = mw.Write([]byte("\xa9"))
	if err := mw.Close(); err != nil {
		t.Errorf("Close = %v", err)
	}
	if err := ws.Close(StatusNormal, ""); err != nil {
		t.Error(err)
	}
	if err := testkit.RecvWithin(t, streamTimeout, res, "Run's return"); err != nil {
		t.Errorf("Run = %v", err)
	}
	testkit.WaitScript(t, done)
	if err := ws.SendBinaryStream(context.Background(), strings.NewReader("x")); !errors.Is(err, ErrNotConnected) {
		t.Errorf("with no session = %v, want ErrNotConnected", err)
	}
}

type badStream struct{}

func (badStream) OnStream(*WebSocket, *events.Binary) {}

// TestStreamWriterServerCloses: the server's close while a message is being
// written: Closing is delivered, and the reply goes out after the
// message's last fragment.
func TestStreamWriterServerCloses(t *testing.T) {
	step := make(chan struct{})
	closing := make(chan struct{})
	srv, done := testkit.ScriptServer(t, func(c *wstest.Conn) {
		if !testkit.Handshake(t, c) {
			return
		}
		<-step // the writer is open
		testkit.Write(t, c, wstest.Close(4002, "server done"))
		testkit.ExpectFrame(t, c, wstest.OpBinary, false, StreamFragment, nil)
		testkit.ExpectFrame(t, c, wstest.OpContinuation, true, 1, nil)
		testkit.ExpectClose(t, c, 4002, "server done")
	})
	ws := newTestWS(t, srv.URL())
	ready := make(chan struct{})
	res := goRun(t, ws, HandlerFunc(func(_ *WebSocket, ev events.Event) {
		switch ev.(type) {
		case *events.Ready:
			close(ready)
		case *events.Closing:
			close(closing)
		}
	}))
	testkit.RecvWithin(t, streamTimeout, ready, "Ready")
	mw, err := ws.BinaryWriter(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	step <- struct{}{}
	testkit.RecvWithin(t, streamTimeout, closing, "Closing")
	if _, err := mw.Write(make([]byte, StreamFragment+1)); err != nil {
		t.Errorf("Write after the server's close = %v (the reply waits for the message)", err)
	}
	if err := mw.Close(); err != nil {
		t.Errorf("Close = %v", err)
	}
	var ce *CloseError
	if err := testkit.RecvWithin(t, streamTimeout, res, "Run's return"); !errors.As(err, &ce) || ce.Code != 4002 {
		t.Errorf("Run = %v, want the server's close 4002", err)
	}
	testkit.WaitScript(t, done)
}

// TestStreamSendToCoder: a message of streamSize() bytes sent by
// SendBinaryStream in fragments, read by coder/websocket as it arrives;
// the peak RSS stays bounded.
func TestStreamSendToCoder(t *testing.T) {
	size := streamSize()
	type reading struct {
		typ websocket.MessageType
		n   int64
		sum uint32
	}
	read := make(chan reading, 1)
	url, result := coderServer(t, nil, func(c *websocket.Conn) error {
		c.SetReadLimit(-1)
		typ, r, err := c.Reader(context.Background())
		if err != nil {
			return err
		}
		h := crc32.New(crc32.MakeTable(crc32.Castagnoli))
		n, err := io.Copy(h, r)
		if err != nil {
			return err
		}
		read <- reading{typ, n, h.Sum32()}
		_, _, err = c.Read(context.Background()) // the client's close
		if websocket.CloseStatus(err) != websocket.StatusNormalClosure {
			return err
		}
		return nil
	})
	ws := newTestWS(t, url)
	ready := make(chan struct{})
	done := goRun(t, ws, HandlerFunc(func(_ *WebSocket, ev events.Event) {
		if _, ok := ev.(*events.Ready); ok {
			close(ready)
		}
	}))
	testkit.RecvWithin(t, streamTimeout, ready, "Ready")
	rss := peakRSS(t)
	began := time.Now()
	if err := ws.SendBinaryStream(context.Background(), &pattern{n: size}); err != nil {
		t.Fatalf("SendBinaryStream = %v", err)
	}
	got := testkit.RecvWithin(t, streamTimeout, read, "the server's reading")
	took := time.Since(began)
	grew, peak, ok := rss()
	t.Logf("sent %d bytes in %v (%.0f MiB/s); peak RSS %d MiB, %d MiB above the start",
		got.n, took.Round(time.Millisecond), float64(got.n)/took.Seconds()/(1<<20), peak>>20, grew>>20)
	if got.typ != websocket.MessageBinary || got.n != size || got.sum != patternSum(size) {
		t.Fatalf("the server read a %v message of %d bytes, CRC %08x; want binary, %d bytes, CRC %08x", got.typ, got.n, got.sum, size, patternSum(size))
	}
	if ok && grew > maxGrowth(size) {
		t.Errorf("peak RSS grew by %d MiB for a %d MiB message: more than %d MiB", grew>>20, size>>20, maxGrowth(size)>>20)
	}
	closeStreamSession(t, ws, done, result)
}

// TestStreamCompressedToCoder: a 16 MiB text stream and a short message
// through a MessageWriter, compressed fragment by fragment (context
// takeover), read whole and right by coder/websocket.
func TestStreamCompressedToCoder(t *testing.T) {
	const size = 33 * (16 << 20 / 33) // whole units of textPattern: no character cut
	read := make(chan []streamRead, 1)
	url, result := coderServer(t, &websocket.AcceptOptions{CompressionMode: websocket.CompressionContextTakeover}, func(c *websocket.Conn) error {
		c.SetReadLimit(-1)
		var rs []streamRead
		for i := 0; i < 3; i++ {
			typ, r, err := c.Reader(context.Background())
			if err != nil {
				return err
			}
			var b bytes.Buffer
			n, err := io.Copy(&b, r)
			if err != nil {
				return err
			}
			want, _ := io.ReadAll(&textPattern{n: n})
			if !bytes.Equal(b.Bytes(), want) {
				err = errors.New("the text differs from what was sent")
			}
			rs = append(rs, streamRead{binary: typ == websocket.MessageBinary, n: n, err: err})
		}
		read <- rs
		_, _, err := c.Read(context.Background())
		if websocket.CloseStatus(err) != websocket.StatusNormalClosure {
			return err
		}
		return nil
	})
	var wire wireCount
	var written countingDialer
	ws := newTestWS(t, url, WithCompression(CompressionContextTakeover), WithPlugins(&wire), WithDialer(written.dial))
	ready := make(chan struct{})
	done := goRun(t, ws, HandlerFunc(func(_ *WebSocket, ev events.Event) {
		if _, ok := ev.(*events.Ready); ok {
			close(ready)
		}
	}))
	testkit.RecvWithin(t, streamTimeout, ready, "Ready")
	if err := ws.SendTextStream(context.Background(), &textPattern{n: size}); err != nil {
		t.Fatalf("SendTextStream = %v", err)
	}
	for _, n := range []int64{100, 0} {
		mw, err := ws.TextWriter(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(mw, &textPattern{n: n}); err != nil {
			t.Fatal(err)
		}
		if err := mw.Close(); err != nil {
			t.Fatal(err)
		}
	}
	rs := testkit.RecvWithin(t, streamTimeout, read, "the server's reading")
	for i, want := range []int64{size, 100, 0} {
		if r := rs[i]; r.err != nil || r.n != want || r.binary {
			t.Errorf("message %d: the server read %d bytes (binary %v), %v; want %d text bytes", i, r.n, r.binary, r.err, want)
		}
	}
	if n := written.n.Load(); n > size/20 {
		t.Errorf("%d bytes went on the wire for %d of repetitive text: not compressed", n, size)
	}
	if sizes := wire.sizes(); len(sizes) != 3 || sizes[0] != size {
		t.Errorf("send observers saw %v, want the three messages with their sizes", sizes)
	}
	closeStreamSession(t, ws, done, result)
}
