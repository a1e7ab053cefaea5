package lomond

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/lomond-go/lomond/events"
	"github.com/lomond-go/lomond/internal/wstest"
)

// Sending streams to the raw-bytes server, which sees every frame: the
// fragments, the control frames between them and while the writer idles,
// the close frame after the message, and an abandoned message.

// stReady runs a client against the raw server script and returns it once
// Ready, with Run's result channel.
func stReady(t *testing.T, script func(c *wstest.Conn), opts ...Option) (*WebSocket, <-chan error, <-chan struct{}) {
	t.Helper()
	srv, done := scriptServer(t, func(c *wstest.Conn) {
		if srvHandshake(t, c) {
			script(c)
		}
	})
	ws := stWS(t, srv.URL(), opts...)
	ready := make(chan struct{})
	res := stRun(t, ws, HandlerFunc(func(_ *WebSocket, ev events.Event) {
		if _, ok := ev.(*events.Ready); ok {
			close(ready)
		}
	}))
	stRecv(t, ready, "Ready")
	return ws, res, done
}

// srvFrame reads one frame and checks its opcode, FIN and payload length
// (and payload, if want is not nil).
func srvFrame(t *testing.T, c *wstest.Conn, op byte, fin bool, n int, want []byte) bool {
	t.Helper()
	f, err := c.ReadFrame()
	if err != nil {
		t.Errorf("server: waiting for opcode %#x: %v", op, err)
		return false
	}
	if f.Opcode != op || f.Fin != fin || len(f.Payload) != n || want != nil && !bytes.Equal(f.Payload, want) {
		t.Errorf("server: got opcode %#x fin %v %d bytes, want opcode %#x fin %v %d bytes", f.Opcode, f.Fin, len(f.Payload), op, fin, n)
		return false
	}
	return true
}

// TestStreamWriterControlFrames: while a MessageWriter is open, a ping of
// the server's is answered whether the writer idles or writes (between two
// fragments), other sends wait for the message, and a Close's frame goes
// out after the message's last fragment.
func TestStreamWriterControlFrames(t *testing.T) {
	step := make(chan string)
	ws, res, done := stReady(t, func(c *wstest.Conn) {
		<-step // the writer is open and holds "abc"
		srvWrite(t, c, wstest.Ping([]byte("idle")))
		srvExpectMessage(t, c, wstest.OpPong, "idle")
		step <- "pong while idle"
		if !srvFrame(t, c, wstest.OpBinary, false, StreamFragment, nil) {
			return
		}
		srvWrite(t, c, wstest.Ping([]byte("between")))
		srvExpectMessage(t, c, wstest.OpPong, "between")
		step <- "pong between fragments"
		srvFrame(t, c, wstest.OpContinuation, true, 3+70000-StreamFragment, nil)
		srvExpectClose(t, c, StatusNormal, "bye")
		srvWrite(t, c, wstest.Close(StatusNormal, "bye"))
	})
	mw, err := ws.BinaryWriter(context.Background())
	if err != nil {
		t.Fatalf("BinaryWriter = %v", err)
	}
	if _, err := mw.Write([]byte("abc")); err != nil {
		t.Fatalf("Write = %v", err)
	}
	step <- "open"
	stRecv(t, step, "the pong while the writer idles")
	if _, err := mw.Write(make([]byte, 70000)); err != nil { // a fragment goes out
		t.Fatalf("Write = %v", err)
	}
	stRecv(t, step, "the pong between fragments")
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
	if err := stRecv(t, res, "Run's return"); err != nil {
		t.Errorf("Run = %v", err)
	}
	waitScript(t, done)
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
	ws, res, done := stReady(t, func(c *wstest.Conn) {
		srvExpectMessage(t, c, wstest.OpText, "after")
		srvFrame(t, c, wstest.OpBinary, false, StreamFragment, nil)
		srvExpectClose(t, c, StatusInternalError, "message abandoned")
		srvWrite(t, c, wstest.Close(StatusInternalError, ""))
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
	if err := stRecv(t, res, "Run's return"); err != nil {
		t.Errorf("Run = %v, want nil (the client's close completed)", err)
	}
	waitScript(t, done)
}

// TestStreamWriterContext: a writer whose context ends before its Close is
// abandoned: with nothing sent, the write lock is let go and nothing was
// written; after a fragment, the connection closes with 1011.
func TestStreamWriterContext(t *testing.T) {
	ws, res, done := stReady(t, func(c *wstest.Conn) {
		srvExpectMessage(t, c, wstest.OpText, "next")
		srvFrame(t, c, wstest.OpText, false, StreamFragment, bytes.Repeat([]byte("a"), StreamFragment))
		srvExpectClose(t, c, StatusInternalError, "message abandoned")
		srvWrite(t, c, wstest.Close(StatusInternalError, ""))
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
	if err := stRecv(t, res, "Run's return"); err != nil {
		t.Errorf("Run = %v, want nil (the client's close completed)", err)
	}
	if err := mw.Close(); !errors.Is(err, ErrMessageAbandoned) || !errors.Is(err, context.Canceled) {
		t.Errorf("Close after the cancel = %v, want ErrMessageAbandoned and context.Canceled", err)
	}
	waitScript(t, done)
}

// TestStreamSendBadInput: invalid UTF-8 in a text stream, a nil reader or
// context, and no session: clear errors, nothing sent.
func TestStreamSendBadInput(t *testing.T) {
	ws, res, done := stReady(t, func(c *wstest.Conn) {
		srvExpectMessage(t, c, wstest.OpText, "fine \u00e9")
		srvExpectClose(t, c, StatusNormal, "")
		srvWrite(t, c, wstest.Close(StatusNormal, ""))
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
	if err := stRecv(t, res, "Run's return"); err != nil {
		t.Errorf("Run = %v", err)
	}
	waitScript(t, done)
	if err := ws.SendBinaryStream(context.Background(), strings.NewReader("x")); !errors.Is(err, ErrNotConnected) {
		t.Errorf("with no session = %v, want ErrNotConnected", err)
	}
}

// TestStreamHandlerChecks: a plugin cannot read streams (New says so), nor
// can two parts of a Compose; an OnStream with the wrong signature is
// caught by Run.
func TestStreamHandlerChecks(t *testing.T) {
	sink := &streamSink{got: make(chan streamRead, 1)}
	if _, err := New("ws://127.0.0.1:1/", WithPlugins(sink)); !errors.Is(err, ErrInvalidOption) || !strings.Contains(err.Error(), "StreamHandler") {
		t.Errorf("New with a StreamHandler plugin = %v, want ErrInvalidOption naming StreamHandler", err)
	}
	ws := stWS(t, "ws://127.0.0.1:1/")
	if err := ws.Run(context.Background(), Compose(sink, &streamSink{})); !errors.Is(err, ErrInvalidHandler) || !strings.Contains(err.Error(), "StreamHandler") {
		t.Errorf("Run with two StreamHandlers = %v, want ErrInvalidHandler", err)
	}
	if err := ws.Run(context.Background(), Compose(badStream{})); !errors.Is(err, ErrInvalidHandler) || !strings.Contains(err.Error(), "OnStream has the signature") {
		t.Errorf("Run with a wrong OnStream = %v, want ErrInvalidHandler naming OnStream", err)
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
	srv, done := scriptServer(t, func(c *wstest.Conn) {
		if !srvHandshake(t, c) {
			return
		}
		<-step // the writer is open
		srvWrite(t, c, wstest.Close(4002, "server done"))
		srvFrame(t, c, wstest.OpBinary, false, StreamFragment, nil)
		srvFrame(t, c, wstest.OpContinuation, true, 1, nil)
		srvExpectClose(t, c, 4002, "server done")
	})
	ws := stWS(t, srv.URL())
	ready := make(chan struct{})
	res := stRun(t, ws, HandlerFunc(func(_ *WebSocket, ev events.Event) {
		switch ev.(type) {
		case *events.Ready:
			close(ready)
		case *events.Closing:
			close(closing)
		}
	}))
	stRecv(t, ready, "Ready")
	mw, err := ws.BinaryWriter(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	step <- struct{}{}
	stRecv(t, closing, "Closing")
	if _, err := mw.Write(make([]byte, StreamFragment+1)); err != nil {
		t.Errorf("Write after the server's close = %v (the reply waits for the message)", err)
	}
	if err := mw.Close(); err != nil {
		t.Errorf("Close = %v", err)
	}
	var ce *CloseError
	if err := stRecv(t, res, "Run's return"); !errors.As(err, &ce) || ce.Code != 4002 {
		t.Errorf("Run = %v, want the server's close 4002", err)
	}
	waitScript(t, done)
}
