package lomond

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/lomond-go/lomond/events"
	"github.com/lomond-go/lomond/internal/testkit"
	"github.com/lomond-go/lomond/internal/wstest"
)

// The write side under pressure: sends bounded by a context, sends blocked
// on a server that stops reading, and what such a send may never do to the
// connection (corrupt the stream, poison later writes, hold up the read
// loop, the close handshake or the send queue's flush).

// smallSocketBuffer is the socket buffer size these tests ask for on both
// ends of a link, so that a server that stops reading blocks the client's
// writes after a few KiB.
const smallSocketBuffer = 8 << 10

// blockingLink dials TCP connections with a small send buffer, and reports
// on bigWrite when a write of more than one full frame's payload begins: a
// large message's first frame, which a server that does not read leaves
// stuck.
type blockingLink struct {
	once     sync.Once
	bigWrite chan struct{}
}

func newBlockingLink() *blockingLink { return &blockingLink{bigWrite: make(chan struct{})} }

func (l *blockingLink) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetWriteBuffer(smallSocketBuffer)
	}
	return &watchedConn{Conn: c, link: l}, nil
}

// watchedConn is a client connection whose large writes are reported.
type watchedConn struct {
	net.Conn
	link *blockingLink
}

func (c *watchedConn) Write(p []byte) (int, error) {
	if len(p) > maxFrame {
		c.link.once.Do(func() { close(c.link.bigWrite) })
	}
	return c.Conn.Write(p)
}

// shrinkReadBuffer gives the server's end of a link a small receive buffer.
func shrinkReadBuffer(nc net.Conn) {
	if tc, ok := nc.(*net.TCPConn); ok {
		_ = tc.SetReadBuffer(smallSocketBuffer)
	}
}

// startBlockedSend starts a SendBinary far larger than the socket buffers
// on its own goroutine and waits until its first frame is being written:
// on a server that does not read, the send is then stuck inside a frame.
// The send's result arrives on the returned channel.
func startBlockedSend(t *testing.T, ws *WebSocket, link *blockingLink) <-chan error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- ws.SendBinary(make([]byte, 4<<20)) }()
	select {
	case <-link.bigWrite:
	case err := <-done:
		t.Fatalf("the large send returned %v before it could block", err)
	case <-time.After(testkit.Timeout):
		t.Fatal("the large send never started writing")
	}
	return done
}

// runInBackground runs ws.Run(ctx, h) on its own goroutine; the test's
// cleanup waits for it (a failed test must not leave it running).
func runInBackground(t *testing.T, ctx context.Context, ws *WebSocket, h EventHandler) <-chan error {
	t.Helper()
	done := make(chan error, 1)
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		done <- ws.Run(ctx, h)
	}()
	t.Cleanup(func() {
		select {
		case <-finished:
		case <-time.After(3 * testkit.Timeout):
			t.Error("Run did not return by the end of the test")
		}
	})
	return done
}

// readyHandler returns a handler that closes ready at Ready and passes
// every event to also, if not nil.
func readyHandler(ready chan<- struct{}, also func(ws *WebSocket, ev events.Event)) HandlerFunc {
	return func(ws *WebSocket, ev events.Event) {
		if ev.Name() == events.NameReady {
			close(ready)
		}
		if also != nil {
			also(ws, ev)
		}
	}
}

// sendOutcome is a message the client sent and what the send returned.
type sendOutcome struct {
	text string
	err  error
}

// checkReceivedInOrder checks what a server received against what the
// client sent: every message received is one that was sent, in the order
// sent, and every send that returned nil was received. A send that failed
// may or may not have been received.
func checkReceivedInOrder(t *testing.T, sent []sendOutcome, received []string) {
	t.Helper()
	var missing []int
	k := 0
	for i, got := range received {
		j := k
		for j < len(sent) && sent[j].text != got {
			j++
		}
		if j == len(sent) {
			t.Errorf("server received message %d, %s, which the client did not send (or not in this order)", i, shortText(got))
			return
		}
		for ; k < j; k++ {
			if sent[k].err == nil {
				missing = append(missing, k)
			}
		}
		k = j + 1
	}
	for ; k < len(sent); k++ {
		if sent[k].err == nil {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		t.Errorf("%d sends returned nil but the server never received them, the first send %d (%s)",
			len(missing), missing[0], shortText(sent[missing[0]].text))
	}
}

// shortText quotes the start of a long message.
func shortText(s string) string {
	if len(s) > 40 {
		return fmt.Sprintf("%q... (%d bytes)", s[:40], len(s))
	}
	return fmt.Sprintf("%q", s)
}

// pausedCoderServer is coder/websocket's server (an independent
// implementation) with permessage-deflate and context takeover, on
// 127.0.0.1 with a small receive buffer. It accepts one connection and
// reads nothing until resume is called; then it reads every message until
// the connection ends and reports them on done.
type pausedCoderServer struct {
	url        string
	resume     func()
	done       chan coderReading
	resumeOnce sync.Once
}

// smallBufferListener gives accepted connections a small receive buffer.
type smallBufferListener struct{ net.Listener }

func (l smallBufferListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		shrinkReadBuffer(c)
	}
	return c, err
}

func startPausedCoderServer(t *testing.T) *pausedCoderServer {
	t.Helper()
	s := &pausedCoderServer{done: make(chan coderReading, 1)}
	resumed := make(chan struct{})
	s.resume = func() { s.resumeOnce.Do(func() { close(resumed) }) }
	stop := make(chan struct{})
	var wg sync.WaitGroup
	hs := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		wg.Add(1)
		defer wg.Done()
		c, err := websocket.Accept(w, r, &websocket.AcceptOptions{CompressionMode: websocket.CompressionContextTakeover})
		if err != nil {
			s.done <- coderReading{err: err}
			return
		}
		defer c.CloseNow()
		handled := make(chan struct{})
		defer close(handled)
		go func() {
			select {
			case <-stop:
				c.CloseNow()
			case <-handled:
			}
		}()
		c.SetReadLimit(-1)
		select {
		case <-resumed:
		case <-stop:
			s.done <- coderReading{err: errors.New("server stopped before it resumed reading")}
			return
		}
		s.done <- readCoderTexts(c)
	}))
	hs.Listener = smallBufferListener{hs.Listener}
	hs.Start()
	t.Cleanup(func() {
		close(stop)
		hs.Close()
		wg.Wait()
	})
	s.url = "ws" + strings.TrimPrefix(hs.URL, "http") + "/"
	return s
}

// variedText returns n bytes of text that compresses, but not trivially:
// words drawn at random, deterministically.
func variedText(n int) string {
	words := strings.Fields("alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike " +
		"november oscar papa quebec romeo sierra tango uniform victor whiskey xray yankee zulu 0 1 2 3 4 5 6 7 8 9")
	r := rand.New(rand.NewPCG(1, 2))
	var b strings.Builder
	for b.Len() < n {
		b.WriteString(words[r.IntN(len(words))])
		b.WriteByte(' ')
	}
	return b.String()[:n]
}

// TestWriterContextSendKeepsCompressionInStep: with permessage-deflate and
// context takeover, a SendTextContext whose context ends before its message
// is written must leave the compressor as if the message had never been
// offered: the server's decompressor and ours stay in step, so every later
// message arrives as sent (not "corrupt input", not different text).
func TestWriterContextSendKeepsCompressionInStep(t *testing.T) {
	t.Run("ContextEndingUnderBackpressure", func(t *testing.T) {
		srv := startPausedCoderServer(t)
		link := newBlockingLink()
		ws := newTestWS(t, srv.url, WithCompression(CompressionContextTakeover), WithDialer(link.dial))
		ready := make(chan struct{})
		runDone := runInBackground(t, context.Background(), ws, readyHandler(ready, nil))
		testkit.Recv(t, ready, "Ready")

		// Fill the link with small compressed messages until one cannot be
		// written before its context ends; the server resumes reading then.
		pad := strings.Repeat("lorem ipsum dolor sit amet ", 8)
		var sent []sendOutcome
		filled := false
		for i := 0; i < 200000 && !filled; i++ {
			text := fmt.Sprintf("%07d %s", i, pad)
			ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
			context.AfterFunc(ctx, func() {
				if errors.Is(ctx.Err(), context.DeadlineExceeded) {
					srv.resume()
				}
			})
			err := ws.SendTextContext(ctx, text)
			filled = errors.Is(ctx.Err(), context.DeadlineExceeded)
			cancel()
			sent = append(sent, sendOutcome{text, err})
		}
		if !filled {
			t.Fatal("the link never filled: no send waited for its context to end")
		}
		srv.resume()
		// Later messages repeat the last one: the compressor refers back to
		// it, which the server has only if it was written.
		last := sent[len(sent)-1].text
		for i := 0; i < 20; i++ {
			text := fmt.Sprintf("%s again %d", last, i)
			sent = append(sent, sendOutcome{text, ws.SendText(text)})
		}
		checkReceivedInOrder(t, sent, closeAndRead(t, ws, runDone, srv.done).texts)
	})

	t.Run("ContextEndingWhileCompressing", func(t *testing.T) {
		srv := startPausedCoderServer(t)
		srv.resume()
		ws := newTestWS(t, srv.url, WithCompression(CompressionContextTakeover), WithReadLimit(NoReadLimit))
		ready := make(chan struct{})
		runDone := runInBackground(t, context.Background(), ws, readyHandler(ready, nil))
		testkit.Recv(t, ready, "Ready")

		big := variedText(1 << 20)
		var sent []sendOutcome
		for i := 0; i < 2; i++ {
			// The context ends while the message is being compressed.
			text := fmt.Sprintf("%d %s", i, big)
			ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
			sent = append(sent, sendOutcome{text, ws.SendTextContext(ctx, text)})
			cancel()
			// The next message repeats the end of the big one.
			text = fmt.Sprintf("%s again %d", big[len(big)-20000:], i)
			sent = append(sent, sendOutcome{text, ws.SendText(text)})
		}
		checkReceivedInOrder(t, sent, closeAndRead(t, ws, runDone, srv.done).texts)
	})
}

// holdThenStopReading is a server script: it sends the text "hold" (the
// client's handler blocks on it, so the session goroutine cannot end the
// session meanwhile) and then never reads, with a small receive buffer.
func holdThenStopReading(c *wstest.Conn) {
	shrinkReadBuffer(c.NetConn())
	if _, err := c.Handshake(); err != nil {
		return
	}
	if c.WriteFrame(wstest.Text("hold")) != nil {
		return
	}
	<-c.Done()
}

// holdOnce returns an event hook that, at the first text "hold", closes
// held and blocks until release is closed.
func holdOnce(held, release chan struct{}) func(ws *WebSocket, ev events.Event) {
	var once sync.Once
	return func(_ *WebSocket, ev events.Event) {
		if e, ok := ev.(*events.Text); ok && e.Text == "hold" {
			once.Do(func() {
				close(held)
				<-release
			})
		}
	}
}

// breakWriteStream cuts the write stream inside a frame: a 1 MiB send to a
// server that does not read cannot finish, so it ends (by its context, or
// by the stall timeout) with part of its first frame written.
func breakWriteStream(t *testing.T, ws *WebSocket) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := ws.SendBinaryContext(ctx, make([]byte, 1<<20)); err == nil {
		t.Fatal("a 1 MiB send to a server that does not read reported success")
	}
}

// TestWriterBrokenStreamFailsLaterSends: once a frame was cut short, nothing
// more can be written on the connection: a later send must not report
// success (nor tell send observers "sent") for a message it never wrote.
// Under WithSendQueue the message waits in the queue for the next session.
func TestWriterBrokenStreamFailsLaterSends(t *testing.T) {
	const after = "after the break"
	t.Run("PlainSendReturnsAnError", func(t *testing.T) {
		srv := wstest.NewServer(t, holdThenStopReading)
		link := newBlockingLink()
		obs := &sentLog{}
		ws := newTestWS(t, srv.URL(), WithDialer(link.dial), WithPingTimeout(500*time.Millisecond),
			WithCloseTimeout(time.Second), WithPlugins(obs))
		held, release := make(chan struct{}), make(chan struct{})
		runDone := runInBackground(t, context.Background(), ws, HandlerFunc(holdOnce(held, release)))
		testkit.Recv(t, held, "the server's hold message")

		breakWriteStream(t, ws)
		err := ws.SendText(after)
		sentReports := obs.count(after, events.Sent)
		close(release)
		if err == nil {
			t.Error("SendText after a frame was cut short = nil, want an error (nothing more can be written)")
		}
		if sentReports != 0 {
			t.Errorf("send observers were told %q was sent %d times; it was never written", after, sentReports)
		}
		testkit.Recv(t, runDone, "Run's return")
	})

	t.Run("QueuedSendIsQueuedNotReportedSent", func(t *testing.T) {
		var conns atomic.Int32
		got := make(chan string, 16)
		srv := wstest.NewServer(t, func(c *wstest.Conn) {
			if conns.Add(1) == 1 {
				holdThenStopReading(c)
				return
			}
			if _, err := c.Handshake(); err != nil {
				return
			}
			testkit.ServeMessages(c, func(op byte, p []byte) {
				if op == wstest.OpText {
					got <- string(p)
				}
			})
		})
		link := newBlockingLink()
		obs := &sentLog{}
		ws := newQuietWS(t, srv.URL(), WithDialer(link.dial), WithPingTimeout(500*time.Millisecond),
			WithCloseTimeout(time.Second), WithSendQueue(8, RejectNewest), WithPlugins(obs))
		held, release := make(chan struct{}), make(chan struct{})
		hold := holdOnce(held, release)
		run := goPersist(t, ws, func(ws *WebSocket, ev events.Event, _ context.CancelFunc) { hold(ws, ev) },
			constantBackOff(10*time.Millisecond))
		testkit.Recv(t, held, "the server's hold message")

		breakWriteStream(t, ws)
		err := ws.SendText(after)
		queued := ws.Queued()
		sentReports := obs.count(after, events.Sent)
		close(release)
		if err != nil {
			t.Errorf("SendText after a frame was cut short, with a send queue = %v, want nil (queued)", err)
		}
		if queued != 1 {
			t.Errorf("Queued() right after = %d, want 1: the message must wait for the next session", queued)
		}
		if sentReports != 0 {
			t.Errorf("send observers were told %q was sent before any session could write it", after)
		}
		select {
		case m := <-got:
			if m != after {
				t.Errorf("the next session's server got %q first, want %q", m, after)
			}
		case <-time.After(5 * time.Second):
			t.Errorf("%q never reached the next session's server: it was neither written nor queued", after)
		}
		if err := run.stop(t); err != nil {
			t.Errorf("Persist = %v", err)
		}
		if n := obs.count(after, events.Sent); n > 1 {
			t.Errorf("send observers were told %q was sent %d times, want once (by the next session's flush)", after, n)
		}
	})
}

// frameLog is what a checking server read from the client: text messages,
// ping and pong payloads, and the first invalid frame or read error.
type frameLog struct {
	mu      sync.Mutex
	texts   []string
	pings   []string
	pongs   []string
	err     error
	closed  bool // the client's close frame arrived (and was answered)
	changed chan struct{}
}

func newFrameLog() *frameLog { return &frameLog{changed: make(chan struct{}, 1)} }

func (l *frameLog) update(f func()) {
	l.mu.Lock()
	f()
	l.mu.Unlock()
	select {
	case l.changed <- struct{}{}:
	default:
	}
}

// waitFor waits until cond (called under the lock) holds, for at most d.
func (l *frameLog) waitFor(d time.Duration, cond func() bool) bool {
	timeout := time.NewTimer(d)
	defer timeout.Stop()
	for {
		l.mu.Lock()
		ok := cond()
		l.mu.Unlock()
		if ok {
			return true
		}
		select {
		case <-l.changed:
		case <-timeout.C:
			return false
		}
	}
}

// readCheckedFrames reads the client's frames until its close frame (which
// it answers) or an error, checking every frame as a server must: masked,
// no reserved bits (no extension), a known opcode, control frames whole
// and at most 125 bytes, continuations only inside a fragmented message.
// Garbage in the stream, such as a frame cut short and followed by
// another, fails one of these checks (or the read).
func readCheckedFrames(c *wstest.Conn, l *frameLog) {
	fail := func(err error) { l.update(func() { l.err = err }) }
	var msg []byte
	fragmented := false
	for n := 0; ; n++ {
		f, err := c.ReadFrame()
		if err != nil {
			fail(fmt.Errorf("frame %d: %w", n, err))
			return
		}
		switch {
		case !f.Masked:
			fail(fmt.Errorf("frame %d: not masked", n))
			return
		case f.RSV1 || f.RSV2 || f.RSV3:
			fail(fmt.Errorf("frame %d: reserved bits set", n))
			return
		}
		switch f.Opcode {
		case wstest.OpPing, wstest.OpPong, wstest.OpClose:
			if !f.Fin || len(f.Payload) > 125 {
				fail(fmt.Errorf("frame %d: control frame (opcode %#x) fragmented or %d bytes", n, f.Opcode, len(f.Payload)))
				return
			}
		}
		switch f.Opcode {
		case wstest.OpPing:
			l.update(func() { l.pings = append(l.pings, string(f.Payload)) })
		case wstest.OpPong:
			l.update(func() { l.pongs = append(l.pongs, string(f.Payload)) })
		case wstest.OpClose:
			_ = c.WriteFrame(wstest.Frame{Fin: true, Opcode: wstest.OpClose, Payload: f.Payload})
			l.update(func() { l.closed = true })
			return
		case wstest.OpText, wstest.OpContinuation:
			if (f.Opcode == wstest.OpText) == fragmented {
				fail(fmt.Errorf("frame %d: opcode %#x out of sequence", n, f.Opcode))
				return
			}
			msg = append(msg, f.Payload...)
			fragmented = !f.Fin
			if f.Fin {
				text := string(msg)
				msg = nil
				l.update(func() { l.texts = append(l.texts, text) })
			}
		default:
			fail(fmt.Errorf("frame %d: unexpected opcode %#x", n, f.Opcode))
			return
		}
	}
}

// TestWriterLateContextTimerLeavesConnectionHealthy: a SendTextContext
// whose context ends just as its message is written must leave nothing
// behind: no write deadline in the past for later writes. After many such
// sends, a plain send and the automatic pong must still go out, and the
// session must still be ready. Pings and the ping timeout are off, so that
// nothing else would reset a stale deadline.
func TestWriterLateContextTimerLeavesConnectionHealthy(t *testing.T) {
	log := newFrameLog()
	conns := make(chan *wstest.Conn, 1)
	srv := wstest.NewServer(t, func(c *wstest.Conn) {
		if _, err := c.Handshake(); err != nil {
			return
		}
		conns <- c
		readCheckedFrames(c, log)
	})
	ws := newTestWS(t, srv.URL(), WithPingRate(0), WithPingTimeout(0), WithCloseTimeout(2*time.Second))
	ready := make(chan struct{})
	runDone := runInBackground(t, context.Background(), ws, readyHandler(ready, nil))
	testkit.Recv(t, ready, "Ready")
	c := testkit.Recv(t, conns, "the server's connection")

	// Contexts that end around the time the send completes: by deadlines
	// of a few microseconds, or cancelled by another goroutine.
	r := rand.New(rand.NewPCG(3, 4))
	text := strings.Repeat("x", 512)
	for i := 0; i < 4000; i++ {
		var err error
		if i%2 == 0 {
			ctx, cancel := context.WithTimeout(context.Background(), time.Duration(r.IntN(60))*time.Microsecond)
			err = ws.SendTextContext(ctx, text)
			cancel()
		} else {
			ctx, cancel := context.WithCancel(context.Background())
			go cancel()
			err = ws.SendTextContext(ctx, text)
			cancel()
		}
		if err != nil && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
			t.Errorf("SendTextContext %d = %v, want nil or the context's error", i, err)
			break
		}
	}

	if err := ws.SendText("after the loop"); err != nil {
		t.Errorf("SendText after the context sends = %v, want nil", err)
	} else if !log.waitFor(5*time.Second, func() bool { return slices.Contains(log.texts, "after the loop") }) {
		t.Error("the server never received the plain send after the context sends")
	}
	if err := c.WriteFrame(wstest.Ping([]byte("still there?"))); err != nil {
		t.Fatalf("server: ping: %v", err)
	}
	if !log.waitFor(5*time.Second, func() bool { return slices.Contains(log.pongs, "still there?") }) {
		t.Error("the server's ping got no pong")
	}
	if st := ws.State(); st != StateReady {
		t.Errorf("State = %v, want ready", st)
	}
	log.mu.Lock()
	if log.err != nil {
		t.Errorf("server: %v", log.err)
	}
	log.mu.Unlock()
	_ = ws.Close(StatusNormal, "done")
	testkit.Recv(t, runDone, "Run's return")
}

// TestWriterContextCutNeverTruncatesAnotherFrame: pings and context-bound
// sends from several goroutines, on a link that a paused server has filled,
// with the contexts ending while frames are stuck: whatever a context does
// to its own send, the frames of other goroutines go out whole. The server
// reads only valid frames, every ping payload intact, and every send that
// returned nil arrives.
func TestWriterContextCutNeverTruncatesAnotherFrame(t *testing.T) {
	log := newFrameLog()
	resume := make(chan struct{})
	var resumeOnce sync.Once
	resumeReading := func() { resumeOnce.Do(func() { close(resume) }) }
	srv := wstest.NewServer(t, func(c *wstest.Conn) {
		shrinkReadBuffer(c.NetConn())
		if !testkit.HandshakeThenAwait(c, resume) {
			return
		}
		readCheckedFrames(c, log)
	})
	link := newBlockingLink()
	ws := newTestWS(t, srv.URL(), WithDialer(link.dial), WithPingTimeout(0), WithCloseTimeout(2*time.Second))
	ready := make(chan struct{})
	runDone := runInBackground(t, context.Background(), ws, readyHandler(ready, nil))
	testkit.Recv(t, ready, "Ready")

	const pingers, pings, texters, texts = 4, 500, 2, 5
	pingSent := make([][]sendOutcome, pingers)
	textSent := make([][]sendOutcome, texters)
	var pingWG, textWG sync.WaitGroup
	for g := range pingers {
		pingWG.Add(1)
		go func() {
			defer pingWG.Done()
			for i := range pings {
				p := fmt.Sprintf("ping %d-%03d ", g, i)
				p += strings.Repeat(".", 125-len(p))
				pingSent[g] = append(pingSent[g], sendOutcome{p, ws.SendPing([]byte(p))})
			}
		}()
	}
	for g := range texters {
		textWG.Add(1)
		go func() {
			defer textWG.Done()
			for i := range texts {
				m := fmt.Sprintf("text %d-%d ", g, i) + strings.Repeat("t", 1000)
				ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
				textSent[g] = append(textSent[g], sendOutcome{m, ws.SendTextContext(ctx, m)})
				cancel()
			}
		}()
	}
	// The server reads again once the context sends returned, or after a
	// second (a send that must finish what it started waits for it).
	textsDone := make(chan struct{})
	go func() {
		textWG.Wait()
		close(textsDone)
	}()
	select {
	case <-textsDone:
	case <-time.After(time.Second):
	}
	resumeReading()
	sendersDone := make(chan struct{})
	go func() {
		pingWG.Wait()
		textWG.Wait()
		close(sendersDone)
	}()
	testkit.Recv(t, sendersDone, "the senders' return")
	_ = ws.Close(StatusNormal, "done")
	testkit.Recv(t, runDone, "Run's return")
	log.waitFor(5*time.Second, func() bool { return log.closed || log.err != nil })

	log.mu.Lock()
	defer log.mu.Unlock()
	if log.err != nil {
		t.Errorf("server: %v", log.err)
	}
	sentPings := map[string]bool{}
	var nilPings []string
	for _, outs := range pingSent {
		for _, o := range outs {
			sentPings[o.text] = true
			if o.err == nil {
				nilPings = append(nilPings, o.text)
			}
		}
	}
	for _, p := range log.pings {
		if !sentPings[p] {
			t.Errorf("server received a ping the client never sent: %q", p)
		}
	}
	for _, p := range nilPings {
		if !slices.Contains(log.pings, p) {
			t.Errorf("SendPing(%q) returned nil but the server never received it", strings.TrimRight(p, "."))
			break
		}
	}
	var allTexts []sendOutcome
	for _, outs := range textSent {
		allTexts = append(allTexts, outs...)
	}
	for _, m := range log.texts {
		if !slices.ContainsFunc(allTexts, func(o sendOutcome) bool { return o.text == m }) {
			t.Errorf("server received a text the client never sent: %s", shortText(m))
		}
	}
	for _, o := range allTexts {
		if o.err == nil && !slices.Contains(log.texts, o.text) {
			t.Errorf("SendTextContext(%s) returned nil but the server never received it", shortText(o.text))
		}
	}
}

// TestWriterStuckSendDoesNotDelayServerClose: a server that stops reading
// and then closes. The read loop must not wait behind the send stuck on it:
// the Closing event comes at once, and the session ends within about one
// close timeout (its reply cannot go out while the send is stuck), never
// waiting for the caller's context. Pings and the ping timeout are off, so
// nothing else bounds the stuck send.
func TestWriterStuckSendDoesNotDelayServerClose(t *testing.T) {
	closeNow := make(chan struct{})
	srv := wstest.NewServer(t, func(c *wstest.Conn) {
		shrinkReadBuffer(c.NetConn())
		if !testkit.HandshakeThenAwait(c, closeNow) {
			return
		}
		if c.WriteFrame(wstest.Close(StatusNormal, "bye")) != nil {
			return
		}
		<-c.Done() // never reads
	})
	link := newBlockingLink()
	ws := newTestWS(t, srv.URL(), WithDialer(link.dial), WithPingRate(0), WithPingTimeout(0),
		WithCloseTimeout(time.Second))
	ready := make(chan struct{})
	closing := make(chan time.Time, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Second)
	defer cancel()
	runDone := runInBackground(t, ctx, ws, readyHandler(ready, func(_ *WebSocket, ev events.Event) {
		if ev.Name() == events.NameClosing {
			closing <- time.Now()
		}
	}))
	testkit.Recv(t, ready, "Ready")
	sendDone := startBlockedSend(t, ws, link)

	start := time.Now()
	close(closeNow)
	select {
	case at := <-closing:
		if d := at.Sub(start); d > 500*time.Millisecond {
			t.Errorf("Closing came %v after the server's close, want at once", d)
		}
	case err := <-runDone:
		t.Fatalf("Run returned %v without a Closing event", err)
	case <-time.After(4 * time.Second):
		t.Error("no Closing event within 4s of the server's close: the read loop waits behind the stuck send")
	}
	select {
	case <-runDone:
		if d := time.Since(start); d > 4*time.Second {
			t.Errorf("Run returned %v after the server's close, want about one close timeout (1s)", d)
		}
		if ctx.Err() != nil {
			t.Error("Run returned only when the caller's context ended")
		}
	case <-time.After(testkit.Timeout):
		t.Fatal("Run did not return")
	}
	if err := testkit.Recv(t, sendDone, "the stuck send's return"); err == nil {
		t.Error("the stuck 4 MiB send reported success")
	}
}

// TestWriterQueueFlushDoesNotStarveReading: after a reconnection, Persist
// flushes its send queue while a producer keeps queueing faster than the
// link carries. The flush must not keep the session goroutine from reading
// and from reporting the session ready: WaitReady returns, and a message
// the server sends is delivered, while the producer goes on.
func TestWriterQueueFlushDoesNotStarveReading(t *testing.T) {
	var conns atomic.Int32
	srv := wstest.NewServer(t, func(c *wstest.Conn) {
		shrinkReadBuffer(c.NetConn())
		if _, err := c.Handshake(); err != nil {
			return
		}
		if conns.Add(1) == 1 {
			return // the first connection drops at once: Persist reconnects
		}
		if c.WriteFrame(wstest.Text("hello after the reconnection")) != nil {
			return
		}
		// A slow link: one message a millisecond.
		pace := time.NewTicker(time.Millisecond)
		defer pace.Stop()
		for {
			select {
			case <-pace.C:
			case <-c.Done():
				return
			}
			op, p, err := c.ReadMessage()
			if err != nil {
				return
			}
			if op == wstest.OpClose {
				_ = c.WriteFrame(wstest.Frame{Fin: true, Opcode: wstest.OpClose, Payload: p})
				return
			}
		}
	})
	ws := newQuietWS(t, srv.URL(), WithSendQueue(256, DropOldest), WithDialer(newBlockingLink().dial))
	run := goPersist(t, ws, nil, constantBackOff(10*time.Millisecond))

	stopProducing := make(chan struct{})
	producerDone := make(chan struct{})
	go func() {
		defer close(producerDone)
		text := strings.Repeat("p", 1024)
		for {
			select {
			case <-stopProducing:
				return
			default:
			}
			_ = ws.SendText(text)
		}
	}()
	defer func() {
		close(stopProducing)
		<-producerDone
	}()

	run.rec.WaitCount(t, events.NameConnected, 2)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := ws.WaitReady(ctx); err != nil {
		t.Errorf("WaitReady after the reconnection = %v: the queue's flush keeps the session from being ready", err)
	}
	// Timing out here means the queue's flush keeps the session from
	// reading: the server's message is never delivered.
	text := testkit.WaitFor[*events.Text](t, run.rec)
	if text.Text != "hello after the reconnection" {
		t.Errorf("Text = %q, want the server's message", text.Text)
	}
}

// TestWriterCloseWithBlockedSend: Close while a send is stuck on a server
// that does not read returns at once (the close handshake started; its
// frame goes out when the writer reaches a frame boundary), and the session
// ends within one close timeout. The stuck send fails saying the
// connection ended, not with a misleading transport timeout.
func TestWriterCloseWithBlockedSend(t *testing.T) {
	t.Run("CloseWithBlockedSendEndsWithinOneCloseTimeout", func(t *testing.T) {
		srv := wstest.NewServer(t, func(c *wstest.Conn) {
			shrinkReadBuffer(c.NetConn())
			if _, err := c.Handshake(); err != nil {
				return
			}
			<-c.Done() // never reads
		})
		link := newBlockingLink()
		ws := newTestWS(t, srv.URL(), WithDialer(link.dial), WithCloseTimeout(time.Second))
		ready := make(chan struct{})
		runDone := runInBackground(t, context.Background(), ws, readyHandler(ready, nil))
		testkit.Recv(t, ready, "Ready")
		sendDone := startBlockedSend(t, ws, link)

		start := time.Now()
		err := ws.Close(StatusNormal, "bye")
		if d := time.Since(start); d > 500*time.Millisecond {
			t.Errorf("Close took %v with a send blocked, want it to return at once", d)
		}
		if err != nil {
			t.Errorf("Close = %v, want nil (the close handshake started)", err)
		}
		select {
		case err := <-runDone:
			if d := time.Since(start); d > 1900*time.Millisecond {
				t.Errorf("Run returned %v after Close, want within one close timeout (1s)", d)
			}
			if !errors.Is(err, ErrCloseTimeout) {
				t.Errorf("Run = %v, want ErrCloseTimeout (the server never replied)", err)
			}
		case <-time.After(testkit.Timeout):
			t.Fatal("Run did not return after Close")
		}
		err = testkit.Recv(t, sendDone, "the blocked send's return")
		if err == nil {
			t.Error("the blocked 4 MiB send reported success")
		} else if strings.Contains(err.Error(), "i/o timeout") {
			t.Errorf("the blocked send = %q, want an error saying the connection ended", err)
		}
	})
}

// cutWatcher dials TCP connections that report on cut when the session
// cuts them short: a deadline that has already passed, or Close.
type cutWatcher struct {
	once sync.Once
	cut  chan struct{}
}

func newCutWatcher() *cutWatcher { return &cutWatcher{cut: make(chan struct{})} }

func (w *cutWatcher) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	return &cutWatchedConn{Conn: c, w: w}, nil
}

func (w *cutWatcher) signal() { w.once.Do(func() { close(w.cut) }) }

// waitCut waits, at most a second, until the connection was cut.
func (w *cutWatcher) waitCut() {
	select {
	case <-w.cut:
	case <-time.After(time.Second):
	}
}

type cutWatchedConn struct {
	net.Conn
	w *cutWatcher
}

func (c *cutWatchedConn) note(t time.Time) {
	if !t.IsZero() && !t.After(time.Now()) {
		c.w.signal()
	}
}

func (c *cutWatchedConn) SetDeadline(t time.Time) error {
	err := c.Conn.SetDeadline(t)
	c.note(t)
	return err
}

func (c *cutWatchedConn) SetReadDeadline(t time.Time) error {
	err := c.Conn.SetReadDeadline(t)
	c.note(t)
	return err
}

func (c *cutWatchedConn) Close() error {
	err := c.Conn.Close()
	c.w.signal()
	return err
}

// TestWriterCancelDuringOnConnected: cancelling the context, or Stop under
// Persist, from OnConnected ends the session promptly, although the server
// never answers the upgrade: the opening handshake must not wait out its
// timeout (10 s by default). OnConnected returns only once the session
// acted on the cancellation (or after a second), so that the handshake
// starts after it.
func TestWriterCancelDuringOnConnected(t *testing.T) {
	neverAnswers := func(c *wstest.Conn) {
		if _, err := c.ReadRequest(); err != nil {
			return
		}
		<-c.Done()
	}
	t.Run("CancelInOnConnectedEndsRunPromptly", func(t *testing.T) {
		srv := wstest.NewServer(t, neverAnswers)
		cw := newCutWatcher()
		ws := newTestWS(t, srv.URL(), WithDialer(cw.dial))
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var returned time.Time
		runDone := runInBackground(t, ctx, ws, HandlerFunc(func(_ *WebSocket, ev events.Event) {
			if ev.Name() == events.NameConnected {
				cancel()
				cw.waitCut()
				returned = time.Now()
			}
		}))
		select {
		case err := <-runDone:
			if d := time.Since(returned); d > 2*time.Second {
				t.Errorf("Run returned %v after OnConnected cancelled, want promptly", d)
			}
			if errors.Is(err, ErrHandshakeTimeout) {
				t.Errorf("Run = %v, want the cancellation, not the handshake timeout", err)
			}
		case <-time.After(testkit.Timeout + 5*time.Second):
			t.Fatal("Run did not return")
		}
	})

	t.Run("StopInOnConnectedEndsPersistPromptly", func(t *testing.T) {
		srv := wstest.NewServer(t, neverAnswers)
		cw := newCutWatcher()
		ws := newTestWS(t, srv.URL(), WithDialer(cw.dial))
		var returned time.Time
		run := goPersist(t, ws, func(ws *WebSocket, ev events.Event, _ context.CancelFunc) {
			if ev.Name() == events.NameConnected {
				if err := ws.Stop(StatusNormal, "bye"); err != nil {
					t.Errorf("Stop = %v", err)
				}
				cw.waitCut()
				returned = time.Now()
			}
		})
		select {
		case run.err = <-run.done:
			run.finished = true
			if d := time.Since(returned); d > 2*time.Second {
				t.Errorf("Persist returned %v after OnConnected called Stop, want promptly", d)
			}
			if run.err != nil {
				t.Errorf("Persist = %v, want nil (stopped)", run.err)
			}
		case <-time.After(4 * time.Second):
			t.Fatal("Persist did not return within 4s of OnConnected calling Stop")
		}
		if n := run.rec.Count(events.NameConnected); n != 1 {
			t.Errorf("%d Connected events, want 1 (no reconnection after Stop)", n)
		}
	})
}

// The write lock under contention: at most one holder at a time, waiters
// bounded by contexts give up without taking it or losing a wake meant for
// another, and every waiter without a bound gets it in the end.
func TestWriteLockContention(t *testing.T) {
	var w writer
	w.init(nil, 0)
	var holders, maxHolders, acquired, gaveUp atomic.Int32
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				var ctx context.Context
				cancel := func() {}
				if (g+i)%3 == 0 {
					ctx, cancel = context.WithTimeout(context.Background(), time.Duration(rand.IntN(50))*time.Microsecond)
				}
				if err := w.acquire(ctx); err != nil {
					cancel()
					gaveUp.Add(1)
					continue
				}
				cancel()
				n := holders.Add(1)
				for m := maxHolders.Load(); n > m && !maxHolders.CompareAndSwap(m, n); m = maxHolders.Load() {
				}
				if i%10 == 0 {
					time.Sleep(10 * time.Microsecond) // hold it a while: others wait
				}
				holders.Add(-1)
				acquired.Add(1)
				w.unlock()
			}
		}()
	}
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("waiters still waiting: a wake was lost")
	}
	if maxHolders.Load() != 1 {
		t.Errorf("%d holders at once", maxHolders.Load())
	}
	if acquired.Load()+gaveUp.Load() != 16*200 {
		t.Errorf("%d acquired + %d gave up, want %d", acquired.Load(), gaveUp.Load(), 16*200)
	}
	if w.locked() || w.waiters.Load() != 0 {
		t.Errorf("after the last unlock: locked %v, %d waiters", w.locked(), w.waiters.Load())
	}
}

// TestStuckWriterCannotHangTheSession: a server that stops reading while
// the client sends a large message, and then pings, must not hang the
// session: the read loop does not wait for the stuck send (the pong is owed,
// not waited for), and cancelling the context ends Run within about the
// close timeout, failing the stuck send.
func TestStuckWriterCannotHangTheSession(t *testing.T) {
	pingNow := make(chan struct{})
	srv := wstest.NewServer(t, func(c *wstest.Conn) {
		if !testkit.HandshakeThenAwait(c, pingNow) {
			return
		}
		if c.WriteFrame(wstest.Ping([]byte("are you there"))) != nil {
			return
		}
		<-c.Done() // never read: the client's send stays stuck
	})
	ws, err := New(srv.URL(), WithPollInterval(0), WithPingRate(0), WithoutProxy(),
		WithCloseTimeout(500*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sendDone := make(chan error, 1)
	gotPing := make(chan struct{})
	runDone := make(chan error, 1)
	go func() {
		runDone <- ws.Run(ctx, HandlerFunc(func(ws *WebSocket, ev events.Event) {
			switch ev.(type) {
			case *events.Ready:
				go func() { sendDone <- ws.SendBinary(make([]byte, 16<<20)) }()
			case *events.Ping:
				close(gotPing)
			}
		}))
	}()
	testkit.Eventually(t, "the big send holds the send lock", func() bool {
		s := ws.sess.Load()
		return s != nil && State(s.state.Load()) == StateReady && s.w.locked()
	})
	close(pingNow)
	select {
	case <-gotPing: // the read loop did not wait for the stuck send
	case <-time.After(5 * time.Second):
		t.Fatal("the Ping event never came: the read loop is stuck behind the send")
	}
	start := time.Now()
	cancel()
	select {
	case <-runDone:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after the context was cancelled")
	}
	// Bounded: the stuck send by the close timeout, then the close frame,
	// then the wait for the reply (3 x 500 ms), plus the race detector's
	// slow masking of 16 MiB.
	if d := time.Since(start); d > 8*time.Second {
		t.Errorf("Run took %v after cancel, want a few close timeouts", d)
	}
	select {
	case err := <-sendDone:
		if err == nil {
			t.Error("the stuck 16 MiB send reported success")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the stuck send never returned")
	}
}

// locked reports whether the write lock is taken: for tests that must wait
// until a send holds it.
func (w *writer) locked() bool { return w.held.Load() }
