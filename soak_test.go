package lomond_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/coder/websocket"
	"github.com/lomond-go/lomond"
	"github.com/lomond-go/lomond/events"
	"github.com/lomond-go/lomond/internal/testconn"
)

// The soak: six goroutines send 1 B to 200 KiB messages, some bounded by
// contexts of 0.1 to 50 ms, through a proxy that pauses now and then and
// cuts each connection once, to an independent server (coder/websocket),
// with compression off, with and without context takeover, under Run and
// under Persist with a send queue. The client's transport is a
// testconn.Conn, so every byte it wrote is known: decoded per connection,
// it proves that every acknowledged message (its send returned nil and its
// observer said "sent") was written whole and intact, and the server checks
// every message it reads.
//
// Every message carries a 34-byte header (sender, sequence number, body
// length, CRC-32 of the body), so the smallest is 34 bytes, not 1.
//
// By default each mode runs for a moment; LOMOND_SOAK=75s runs each for
// that long, and LOMOND_SOAK_SEED=n makes the same messages, sizes,
// contexts, pauses and cuts (the timing, and so the outcome, still varies).

const (
	soakSenders   = 6
	soakMaxSize   = 200 << 10
	soakQueueSize = 64
)

// soakMode is one configuration of client and server.
type soakMode struct {
	name         string
	client       lomond.Compression
	server       websocket.CompressionMode
	persist      bool // Persist with a send queue; otherwise Run, again and again
	wantDeflate  bool
	wantTakeover bool // the client keeps its compressor between messages
}

var soakModes = []soakMode{
	{name: "run/off", client: lomond.CompressionOff, server: websocket.CompressionContextTakeover},
	{name: "run/takeover", client: lomond.CompressionContextTakeover, server: websocket.CompressionContextTakeover,
		wantDeflate: true, wantTakeover: true},
	{name: "run/no-takeover", client: lomond.CompressionNoContextTakeover, server: websocket.CompressionNoContextTakeover,
		wantDeflate: true},
	// The client offers takeover; the server answers client_no_context_takeover.
	{name: "run/server-declines-takeover", client: lomond.CompressionContextTakeover, server: websocket.CompressionNoContextTakeover,
		wantDeflate: true},
	// The client offers compression; the server declines it.
	{name: "persist/off", client: lomond.CompressionContextTakeover, server: websocket.CompressionDisabled, persist: true},
	{name: "persist/takeover", client: lomond.CompressionContextTakeover, server: websocket.CompressionContextTakeover, persist: true,
		wantDeflate: true, wantTakeover: true},
	{name: "persist/no-takeover", client: lomond.CompressionNoContextTakeover, server: websocket.CompressionContextTakeover, persist: true,
		wantDeflate: true},
}

// soakSettings are the knobs of a run: short by default, long with
// LOMOND_SOAK.
type soakSettings struct {
	duration time.Duration // per mode
	seed     uint64
	minCut   int64 // bytes from the client before the proxy cuts a connection
	maxCut   int64
	// pingTimeout bounds a stalled write too: the proxy's long pauses
	// exceed it, so the stall path is soaked as well.
	pingTimeout time.Duration
}

func soakConfig(t *testing.T) soakSettings {
	s := soakSettings{duration: 1200 * time.Millisecond, minCut: 16 << 10, maxCut: 384 << 10, pingTimeout: 400 * time.Millisecond}
	if v := os.Getenv("LOMOND_SOAK"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			t.Fatalf("LOMOND_SOAK=%q: want a duration such as 75s", v)
		}
		s.duration, s.pingTimeout = d, time.Second
		s.minCut, s.maxCut = 256<<10, 16<<20
	}
	s.seed = uint64(time.Now().UnixNano())
	if v := os.Getenv("LOMOND_SOAK_SEED"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("LOMOND_SOAK_SEED=%q: %v", v, err)
		}
		s.seed = n
	}
	return s
}

func TestSoak(t *testing.T) {
	cfg := soakConfig(t)
	t.Logf("LOMOND_SOAK_SEED=%d, %v per mode", cfg.seed, cfg.duration)
	for i, m := range soakModes {
		t.Run(strings.ReplaceAll(m.name, "/", "_"), func(t *testing.T) {
			runSoak(t, m, cfg, cfg.seed+uint64(i)<<32)
		})
	}
}

// soakKey names a message: its sender and its sequence number.
type soakKey struct{ sender, seq int }

func (k soakKey) String() string { return fmt.Sprintf("%d/%d", k.sender, k.seq) }

// soakHeaderLen is the length of "soak SS QQQQQQQQQ LLLLLL CCCCCCCC\n".
const soakHeaderLen = 34

// soakMessage is a header (sender, sequence number, body length and
// CRC-32 of the body) and a body of size-soakHeaderLen bytes: words, so
// that messages compress and refer to each other's window, and for binary
// messages runs of random bytes. The body is a function of the seed, the
// key, its length and the type, so that a message can be made again to
// compare with what arrived.
func soakMessage(seed uint64, k soakKey, size int, text bool) []byte {
	n := max(size-soakHeaderLen, 0)
	body := soakBody(seed, k, n, text)
	h := fmt.Sprintf("soak %02d %09d %06d %08x\n", k.sender, k.seq, n, crc32.ChecksumIEEE(body))
	return append([]byte(h), body...)
}

func soakBody(seed uint64, k soakKey, n int, text bool) []byte {
	r := rand.New(rand.NewPCG(seed^uint64(k.sender)<<48, uint64(k.seq)))
	body := make([]byte, 0, n+16)
	for len(body) < n {
		if !text && r.IntN(4) == 0 {
			for range 1 + r.IntN(64) {
				body = append(body, byte(r.Uint32()))
			}
			continue
		}
		body = append(body, soakWords[r.IntN(len(soakWords))]...)
		body = append(body, ' ')
	}
	return body[:n]
}

var soakWords = strings.Fields(`lorem ipsum dolor sit amet consectetur adipiscing elit sed do
	eiusmod tempor incididunt ut labore et dolore magna aliqua websocket frame message
	deflate window takeover context sender queue persist proxy pause cut soak`)

// parseSoakHeader reads a message's key; ok is false if the header is not
// one of ours.
func parseSoakHeader(p []byte) (k soakKey, n int, sum uint32, ok bool) {
	if len(p) < soakHeaderLen || p[soakHeaderLen-1] != '\n' {
		return k, 0, 0, false
	}
	var s uint64
	if _, err := fmt.Sscanf(string(p[:soakHeaderLen-1]), "soak %d %d %d %x", &k.sender, &k.seq, &n, &s); err != nil {
		return k, 0, 0, false
	}
	return k, n, uint32(s), true
}

// checkSoakMessage reports a message's key and whether it is intact: its
// header parses and its body has the length and checksum it says.
func checkSoakMessage(p []byte) (soakKey, bool) {
	k, n, sum, ok := parseSoakHeader(p)
	if !ok {
		return k, false
	}
	body := p[soakHeaderLen:]
	return k, len(body) == n && crc32.ChecksumIEEE(body) == sum
}

// soakSend is one send and what it returned.
type soakSend struct {
	key  soakKey
	size int
	text bool
	ctx  time.Duration // the context's timeout; 0: a plain send
	err  error
	at   time.Duration // when the send returned, since the senders started
}

// soakObserver records what the send observers heard of each message.
type soakObserver struct {
	mu      sync.Mutex
	results map[soakKey][]events.OutboundResult
	unknown int // data messages without our header
}

func (o *soakObserver) OnSend(_ *lomond.WebSocket, ev *events.Outbound) {
	if ev.Kind != events.KindText && ev.Kind != events.KindBinary {
		return
	}
	k, _, _, ok := parseSoakHeader(ev.Data)
	o.mu.Lock()
	defer o.mu.Unlock()
	if !ok {
		o.unknown++
		return
	}
	o.results[k] = append(o.results[k], ev.Result)
}

// soakServer is the independent server: it reads every message, checks it
// and keeps a digest of it, per connection; every 16th message it answers
// "ack". The analysis holds each connection's messages against what the
// proxy forwarded to it, decoded.
type soakServer struct {
	srv    *httptest.Server
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu    sync.Mutex
	conns []*soakServerConn
}

// soakServerConn is what the server read on one connection.
type soakServerConn struct {
	wsKey   string // Sec-WebSocket-Key: names the connection in the proxy's record
	got     []soakGot
	ending  string // how reading ended
	cut     bool   // the connection ended without a close handshake
	damaged string // the read error, when it says the stream was damaged
}

// soakGot is a digest of a message the server read.
type soakGot struct {
	n    int
	sum  uint32
	key  soakKey
	ok   bool
	text bool
}

func newSoakServer(mode websocket.CompressionMode, writeTimeout time.Duration) *soakServer {
	s := &soakServer{}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.wg.Add(1)
		defer s.wg.Done()
		sc := &soakServerConn{wsKey: r.Header.Get("Sec-WebSocket-Key")}
		c, err := websocket.Accept(w, r, &websocket.AcceptOptions{CompressionMode: mode})
		if err != nil {
			return
		}
		defer c.CloseNow()
		c.SetReadLimit(1 << 20)
		s.mu.Lock()
		s.conns = append(s.conns, sc)
		s.mu.Unlock()
		for n := 1; ; n++ {
			typ, data, err := c.Read(s.ctx)
			if err != nil {
				s.ended(sc, err)
				return
			}
			k, ok := checkSoakMessage(data)
			g := soakGot{n: len(data), sum: crc32.ChecksumIEEE(data), key: k, ok: ok, text: typ == websocket.MessageText}
			s.mu.Lock()
			sc.got = append(sc.got, g)
			s.mu.Unlock()
			if n%16 == 0 {
				// A write that times out closes the connection: its
				// reading is over too (and what it would say is noise).
				wctx, cancel := context.WithTimeout(s.ctx, writeTimeout)
				err := c.Write(wctx, websocket.MessageText, []byte("ack"))
				cancel()
				if err != nil {
					s.mu.Lock()
					sc.ending, sc.cut = "ack not written", true
					s.mu.Unlock()
					return
				}
			}
		}
	}))
	return s
}

// ended records how a connection's reading ended: the end of the
// connection (a cut, a close, the client's close handshake) is expected;
// anything else says the stream was damaged (a bad frame, a bad deflate
// stream, bad UTF-8, a message over the limit), or cut short (the
// analysis tells which).
func (s *soakServer) ended(sc *soakServerConn, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sc.cut = true
	switch {
	case s.ctx.Err() != nil:
		sc.ending = "server stopped"
	case websocket.CloseStatus(err) != -1:
		sc.ending, sc.cut = fmt.Sprintf("client closed %d", websocket.CloseStatus(err)), false
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		sc.ending = "EOF"
	case errors.Is(err, net.ErrClosed), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		sc.ending = "connection closed"
	default:
		sc.ending, sc.damaged = "read error", err.Error()
	}
}

func (s *soakServer) close() {
	s.cancel()
	s.srv.Close()
	s.wg.Wait()
}

// soakHandler counts the server's acks and the sessions.
type soakHandler struct {
	lomond.BaseHandler
	acks, ready atomic.Int64
}

func (h *soakHandler) OnReady(*lomond.WebSocket, *events.Ready) { h.ready.Add(1) }
func (h *soakHandler) OnText(_ *lomond.WebSocket, ev *events.Text) {
	if ev.Text == "ack" {
		h.acks.Add(1)
	}
}

// soakCounts are what a run found.
type soakCounts struct {
	sent, acked, ackedFromQueue, failed   int
	ctxSends, ctxExpired                  int
	queued, dropped, unsent, queueFailed  int
	written, received, notReceived        int
	cutShort                              int
	sessions, connections, cuts, acks     int
	lost, duplicated, reordered           int
	resurrected, limbo, inconsistent      int
	phantom                               int
	corruptStreams, corruptWritten        int
	corruptServer, serverBadReads         int
	serverOnlyErrors                      int // the server failed to read what decodes intact
	unfinishedStreams, negotiationMisfits int
	outOfStep                             int // streams written on after a frame was cut short
}

// runSoak runs one mode; cfg.seed is the run's, seed the mode's.
func runSoak(t *testing.T, m soakMode, cfg soakSettings, seed uint64) {
	srv := newSoakServer(m.server, cfg.pingTimeout)
	defer srv.close()

	var cutMu sync.Mutex
	cutRand := rand.New(rand.NewPCG(seed, 1))
	proxy, err := testconn.NewProxy(srv.srv.Listener.Addr().String(), testconn.ProxyOptions{
		Buffer: 64 << 10,
		Record: true,
		CutAfter: func(int) int64 {
			cutMu.Lock()
			defer cutMu.Unlock()
			return cfg.minCut + cutRand.Int64N(cfg.maxCut-cfg.minCut)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()

	dialer := &testconn.Dialer{WriteBuffer: 64 << 10}
	defer dialer.Close()
	obs := &soakObserver{results: map[soakKey][]events.OutboundResult{}}
	opts := []lomond.Option{
		lomond.WithCompression(m.client),
		lomond.WithDialer(dialer.Dial),
		lomond.WithPlugins(obs),
		lomond.WithPingRate(250 * time.Millisecond),
		lomond.WithPingTimeout(cfg.pingTimeout),
		lomond.WithCloseTimeout(time.Second),
		lomond.WithPollInterval(0),
	}
	if m.persist {
		opts = append(opts, lomond.WithSendQueue(soakQueueSize, lomond.DropOldest))
	}
	ws, err := lomond.New("ws://"+proxy.Addr()+"/", opts...)
	if err != nil {
		t.Fatal(err)
	}
	h := &soakHandler{}

	// The client: Persist, or Run again after every session.
	runCtx, stopRun := context.WithCancel(context.Background())
	defer stopRun()
	runDone := make(chan error, 1)
	go func() {
		if m.persist {
			runDone <- ws.Persist(runCtx, h, lomond.WithBackOff(func() backoff.BackOff {
				return backoff.NewConstantBackOff(5 * time.Millisecond)
			}))
			return
		}
		for runCtx.Err() == nil {
			_ = ws.Run(runCtx, h)
		}
		runDone <- nil
	}()

	// The proxy pauses now and then, for 2 to 200 ms; the second and
	// fourth times and one in twenty for longer than the ping timeout, so
	// that a stalled write ends its session.
	pauseStop := make(chan struct{})
	pauseDone := make(chan struct{})
	go func() {
		defer close(pauseDone)
		r := rand.New(rand.NewPCG(seed, 2))
		wait := func(d time.Duration) bool {
			tm := time.NewTimer(d)
			defer tm.Stop()
			select {
			case <-pauseStop:
				return false
			case <-tm.C:
				return true
			}
		}
		for n := 0; ; n++ {
			if !wait(time.Duration(20+r.IntN(280)) * time.Millisecond) {
				return
			}
			proxy.Pause()
			d := time.Duration(2+r.IntN(199)) * time.Millisecond
			if n == 1 || n == 3 || r.IntN(20) == 0 {
				d = cfg.pingTimeout * 3 / 2
			}
			ok := wait(d)
			proxy.Resume()
			if !ok {
				return
			}
		}
	}()

	// The senders.
	sendCtx, stopSending := context.WithTimeout(context.Background(), cfg.duration)
	defer stopSending()
	sends := make([][]soakSend, soakSenders)
	start := time.Now()
	var senders sync.WaitGroup
	for id := range soakSenders {
		senders.Add(1)
		go func() {
			defer senders.Done()
			sends[id] = soakSender(sendCtx, ws, id, seed, start)
		}()
	}
	sendersDone := make(chan struct{})
	go func() {
		senders.Wait()
		close(sendersDone)
	}()
	select {
	case <-sendersDone:
	case <-time.After(cfg.duration + 30*time.Second):
		// A send that never returns: say so, and cut everything so that
		// the test ends.
		t.Errorf("%s: a send has not returned 30 s after the senders stopped", m.name)
		proxy.Close()
		dialer.Close()
		<-sendersDone
	}
	close(pauseStop)
	<-pauseDone
	stopRun()
	if err := <-runDone; err != nil {
		t.Errorf("Persist returned %v", err)
	}
	unsent := ws.Unsent()
	proxy.Close()
	srv.close()
	dialer.Close()

	c := analyseSoak(t, m, seed, sends, obs, srv, dialer, proxy.Upstream())
	c.cuts, c.sessions, c.acks = proxy.Cuts(), int(h.ready.Load()), int(h.acks.Load())
	t.Logf("%s: %d sent, %d acknowledged (%d from the queue), %d failed (%d of %d context sends expired), "+
		"%d queued, %d dropped, %d unsent (Unsent returned %d), %d failed from the queue",
		m.name, c.sent, c.acked, c.ackedFromQueue, c.failed, c.ctxExpired, c.ctxSends,
		c.queued, c.dropped, c.unsent, len(unsent), c.queueFailed)
	t.Logf("%s: %d written intact, %d received by the server (%d acknowledged not received: cut in flight; %d cut short), "+
		"%d sessions, %d connections, %d cut by the proxy, %d acks back, %d streams unfinished",
		m.name, c.written, c.received, c.notReceived, c.cutShort, c.sessions, c.connections, c.cuts, c.acks, c.unfinishedStreams)
	t.Logf("%s: LOST %d, CORRUPT %d in the written streams (%d streams malformed, %d written on after a frame cut short), %d at the server (%d damaged reads, %d read errors of its own); "+
		"%d duplicated, %d out of order, %d dropped or unsent but written, %d queued without an outcome, "+
		"%d whose send result and observer disagree, %d forwarded but never written, %d connections negotiated wrongly",
		m.name, c.lost, c.corruptWritten, c.corruptStreams, c.outOfStep, c.corruptServer, c.serverBadReads, c.serverOnlyErrors,
		c.duplicated, c.reordered, c.resurrected, c.limbo, c.inconsistent, c.phantom, c.negotiationMisfits)

	if c.acked == 0 {
		t.Errorf("the soak did too little: %d sent, none acknowledged", c.sent)
	}
	for _, check := range []struct {
		what string
		n    int
	}{
		{"acknowledged messages lost", c.lost},
		{"corrupt messages in the written streams", c.corruptWritten},
		{"malformed written streams", c.corruptStreams},
		{"streams written on after a frame was cut short", c.outOfStep},
		{"corrupt messages at the server", c.corruptServer},
		{"damaged reads at the server", c.serverBadReads},
		{"messages written twice", c.duplicated},
		{"messages written out of order", c.reordered},
		{"dropped or unsent messages written", c.resurrected},
		{"queued messages without an outcome", c.limbo},
		{"sends whose result and observer disagree", c.inconsistent},
		{"connections where the proxy forwarded what the client did not write (a harness fault)", c.phantom},
		{"connections that negotiated other than asked", c.negotiationMisfits},
	} {
		if check.n != 0 {
			t.Errorf("%s: %d %s (LOMOND_SOAK_SEED=%d)", m.name, check.n, check.what, cfg.seed)
		}
	}
}

// soakSender sends until ctx ends and returns what each send returned.
// After a failed send it waits until a session is ready, so that a
// disconnected client does not spin.
func soakSender(ctx context.Context, ws *lomond.WebSocket, id int, seed uint64, start time.Time) []soakSend {
	r := rand.New(rand.NewPCG(seed, uint64(10+id)))
	var out []soakSend
	for seq := 0; ctx.Err() == nil; seq++ {
		size := int(math.Exp(r.Float64() * math.Log(soakMaxSize)))
		s := soakSend{key: soakKey{id, seq}, text: r.IntN(2) == 0}
		msg := soakMessage(seed, s.key, size, s.text)
		s.size = len(msg)
		if r.IntN(3) == 0 {
			s.ctx = time.Duration(100+r.IntN(49_900)) * time.Microsecond
			sctx, cancel := context.WithTimeout(context.Background(), s.ctx)
			if s.text {
				s.err = ws.SendTextContext(sctx, string(msg))
			} else {
				s.err = ws.SendBinaryContext(sctx, msg)
			}
			cancel()
		} else if s.text {
			s.err = ws.SendText(string(msg))
		} else {
			s.err = ws.SendBinary(msg)
		}
		s.at = time.Since(start)
		out = append(out, s)
		if s.err != nil && ws.WaitReady(ctx) != nil {
			break
		}
	}
	return out
}

// soakPlace is where a message was written: its connection and offset.
type soakPlace struct {
	conn  int
	start int64
}

// soakAnalysis holds each send against what the client wrote and what the
// server read.
type soakAnalysis struct {
	t       *testing.T
	m       soakMode
	seed    uint64
	c       soakCounts
	shown   int
	conns   []*testconn.Conn
	written map[soakKey][]soakPlace // intact messages in the written streams
	// afterCut counts messages written after a frame cut short: written,
	// but not where the peer can read them.
	afterCut map[soakKey]int
	// byRequest maps a connection's opening request (its
	// Sec-WebSocket-Key makes it unique) to its client connection.
	byRequest map[string]int
	options   []testconn.DecodeOptions // per client connection
	received  map[soakKey]int          // intact messages the server read
}

func (a *soakAnalysis) show(format string, args ...any) {
	if a.shown < 12 {
		a.t.Logf(format, args...)
	}
	a.shown++
}

func analyseSoak(t *testing.T, m soakMode, seed uint64, sends [][]soakSend, obs *soakObserver, srv *soakServer, dialer *testconn.Dialer, upstream []testconn.Forwarded) soakCounts {
	a := &soakAnalysis{
		t: t, m: m, seed: seed, conns: dialer.Conns(),
		written: map[soakKey][]soakPlace{}, afterCut: map[soakKey]int{},
		byRequest: map[string]int{}, received: map[soakKey]int{},
	}
	a.streams()
	a.server(srv, upstream)
	a.sends(sends, obs)
	return a.c
}

// requestOf returns the opening request at the start of a stream, or "".
func requestOf(b []byte) string {
	if i := bytes.Index(b, []byte("\r\n\r\n")); i >= 0 {
		return string(b[:i])
	}
	return ""
}

// streams decodes what the client wrote on each connection.
func (a *soakAnalysis) streams() {
	c := &a.c
	c.connections = len(a.conns)
	lastSeq := map[int]int{} // per sender, the last sequence number written
	for i, conn := range a.conns {
		neg, err := testconn.ParseResponse(conn.Received())
		if err != nil {
			neg = testconn.Negotiated{} // no upgrade: no message may follow
		} else if neg.Status == http.StatusSwitchingProtocols &&
			(neg.Deflate != a.m.wantDeflate || (neg.Deflate && neg.ClientNoContextTakeover == a.m.wantTakeover)) {
			c.negotiationMisfits++
			a.show("conn %d negotiated %+v", i, neg)
		}
		opts := testconn.OptionsFor(neg)
		a.options = append(a.options, opts)
		w := conn.Written()
		a.byRequest[requestOf(w)] = i
		// A Write that wrote some but not all it was given cut its frame
		// short: the peer reads whatever comes after as that frame's
		// payload. The stream is decoded up to there; what follows is out
		// of step.
		end := len(w)
		calls := conn.WriteCalls()
		for j, call := range calls {
			if call.N == 0 || call.N == call.Len {
				continue
			}
			end = int(call.Offset) + call.N
			if end < len(w) {
				c.outOfStep++
				a.show("conn %d: %d bytes written in %d calls after a write cut short at byte %d (%d of %d bytes: %v)",
					i, len(w)-end, len(calls)-j-1, end, call.N, call.Len, call.Err)
				// Which messages went there, for the record.
				tail, _ := testconn.DecodeClient(append([]byte("GET / HTTP/1.1\r\n\r\n"), w[end:]...),
					testconn.DecodeOptions{Deflate: neg.Deflate})
				for _, msg := range tail.Messages {
					if k, ok := checkSoakMessage(msg.Payload); ok && msg.Err == nil {
						a.afterCut[k]++
					}
				}
			}
			break
		}
		s, err := testconn.DecodeClient(w[:end], opts)
		if err != nil && !slices.ContainsFunc(s.Messages, func(msg testconn.Message) bool { return msg.Err == err }) {
			c.corruptStreams++
			a.show("conn %d (%d bytes written, %+v): %v", i, len(w), neg, err)
		}
		if s.Unfinished {
			c.unfinishedStreams++
		}
		for _, msg := range s.Messages {
			k, ok := checkSoakMessage(msg.Payload)
			if msg.Err != nil || !ok {
				c.corruptWritten++
				what := "bad checksum"
				if msg.Err != nil {
					what = msg.Err.Error()
				}
				a.show("conn %d: corrupt message at byte %d (%d bytes, compressed %v): %s", i, msg.Start, len(msg.Payload), msg.Compressed, what)
				continue
			}
			a.written[k] = append(a.written[k], soakPlace{i, msg.Start})
			if last, seen := lastSeq[k.sender]; seen && k.seq <= last {
				c.reordered++
				a.show("conn %d: %v written after %d/%d", i, k, k.sender, last)
			}
			lastSeq[k.sender] = k.seq
		}
	}
	c.written = len(a.written)
}

// server holds what the server read on each connection against what the
// proxy forwarded to it (a prefix of what the client wrote), decoded.
//
// A connection cut inside a message leaves that message unfinished, and
// coder/websocket then either fails the read (often as a corrupt deflate
// stream) or, when the cut falls in the message's last frame, returns what
// arrived as a whole message, its last read still masked: neither is
// corruption when it is the unfinished message, the last of a connection
// that was cut.
func (a *soakAnalysis) server(srv *soakServer, upstream []testconn.Forwarded) {
	c := &a.c
	// Sec-WebSocket-Key: the client connection and how much of what it
	// wrote was forwarded.
	type forwarded struct {
		conn int
		n    int64
	}
	byKey := map[string]forwarded{}
	for i, up := range upstream {
		if up.N == 0 {
			continue
		}
		req := requestOf(up.Head)
		j, ok := a.byRequest[req]
		if ok {
			w := a.conns[j].Written()
			ok = up.N <= int64(len(w)) && sha256.Sum256(w[:up.N]) == up.SHA256
		}
		if !ok {
			c.phantom++
			a.show("proxy connection %d forwarded %d bytes that are not what the client wrote", i, up.N)
			continue
		}
		if r, err := http.ReadRequest(bufio.NewReader(strings.NewReader(req + "\r\n\r\n"))); err == nil {
			byKey[r.Header.Get("Sec-WebSocket-Key")] = forwarded{j, up.N}
		}
	}
	srv.mu.Lock()
	defer srv.mu.Unlock()
	endings := map[string]int{}
	for _, sc := range srv.conns {
		endings[sc.ending]++
		fw, ok := byKey[sc.wsKey]
		if !ok {
			c.phantom++
			a.show("the server read a connection the proxy did not forward")
			continue
		}
		up := a.conns[fw.conn].Written()[:fw.n]
		s, _ := testconn.DecodeClient(up, a.options[fw.conn])
		lastCutShort := false
		for i, g := range sc.got {
			c.received++
			if g.ok {
				a.received[g.key]++
			}
			switch {
			case i < len(s.Messages):
				p := s.Messages[i].Payload
				if g.n != len(p) || g.sum != crc32.ChecksumIEEE(p) {
					c.corruptServer++
					a.show("the server read message %d of a connection other than the client wrote (%d bytes, intact %v)", i, g.n, g.ok)
				} else if !g.ok {
					c.corruptServer++ // damaged by the client: both decoders agree
				}
			case g.ok:
				// Beyond what decoded: only after a malformed stream.
			case i == len(s.Messages) && i == len(sc.got)-1 && s.Unfinished && sc.cut:
				c.cutShort++
				lastCutShort = true
			default:
				c.corruptServer++
				a.show("the server read a damaged message %d of %d on a connection (%d decoded; %d bytes, unfinished %v, ending %s)",
					i, len(sc.got), len(s.Messages), g.n, s.Unfinished, sc.ending)
			}
		}
		if sc.damaged != "" {
			switch {
			case len(sc.got) == len(s.Messages) && s.Unfinished:
				c.cutShort++ // the unfinished message
			case lastCutShort:
				// coder/websocket's complaint about the unfinished message
				// it returned ("previous message not read to completion").
			case a.intact(s, len(sc.got)):
				// The next message decodes intact from the very bytes the
				// server was sent: coder/websocket now and then fails such
				// a read live (a corrupt deflate stream) and reads the
				// same bytes replayed without fault. Not the client's.
				c.serverOnlyErrors++
				a.show("server read error after %d messages, though the next decodes intact: %s", len(sc.got), sc.damaged)
			default:
				c.serverBadReads++
				a.show("server read error after %d messages (%d decoded, unfinished %v): %s", len(sc.got), len(s.Messages), s.Unfinished, sc.damaged)
			}
		}
	}
	a.t.Logf("%s: server connections %d, their ends %v", a.m.name, len(srv.conns), endings)
}

// intact reports whether message i of s decoded whole and intact.
func (a *soakAnalysis) intact(s *testconn.Stream, i int) bool {
	if i >= len(s.Messages) || s.Messages[i].Err != nil {
		return false
	}
	_, ok := checkSoakMessage(s.Messages[i].Payload)
	return ok
}

// sends holds each send against the streams and the observer.
func (a *soakAnalysis) sends(sends [][]soakSend, obs *soakObserver) {
	c := &a.c
	obs.mu.Lock()
	defer obs.mu.Unlock()
	if obs.unknown > 0 {
		a.t.Errorf("the observer saw %d data messages without a soak header", obs.unknown)
	}
	for _, ss := range sends {
		for _, s := range ss {
			c.sent++
			if s.ctx > 0 {
				c.ctxSends++
				if errors.Is(s.err, context.DeadlineExceeded) {
					c.ctxExpired++
				}
			}
			res := obs.results[s.key]
			queued := slices.Contains(res, events.Queued)
			sentEv := slices.Contains(res, events.Sent)
			var final events.OutboundResult
			for _, r := range res {
				if r != events.Queued {
					final = r
				}
			}
			acked := sentEv || (s.err == nil && !queued)
			switch {
			case !queued && (s.err == nil) != sentEv:
				c.inconsistent++
				a.show("%v: send returned %v, observer heard %v", s.key, s.err, res)
			case queued && final == 0:
				c.limbo++
				a.show("%v: queued (send returned %v), then nothing: %v", s.key, s.err, res)
			}
			n := len(a.written[s.key])
			if queued {
				c.queued++
				switch final {
				case events.Sent:
					c.ackedFromQueue++
				case events.Dropped:
					c.dropped++
				case events.Unsent:
					c.unsent++
				case events.Failed:
					c.queueFailed++
				}
				if (final == events.Dropped || final == events.Unsent) && n > 0 {
					c.resurrected++
					a.show("%v: %v, yet written", s.key, final)
				}
			}
			switch {
			case acked:
				c.acked++
				if n == 0 {
					c.lost++
					a.show("LOST %v: %d bytes, text %v, ctx %v, returned at %v: %v, observer heard %v, written after a cut frame %d times%s",
						s.key, s.size, s.text, s.ctx, s.at.Round(time.Millisecond), s.err, res, a.afterCut[s.key], a.where(s.key))
				}
				if a.received[s.key] == 0 {
					c.notReceived++
				}
			case !queued:
				c.failed++
			}
			if n > 1 {
				c.duplicated++
				a.show("%v written %d times: %v", s.key, n, a.written[s.key])
			}
		}
	}
}

// where says where the nearest written messages of k's sender went.
func (a *soakAnalysis) where(k soakKey) string {
	var b strings.Builder
	for _, d := range []int{-1, 1} {
		for j := 1; j < 1000; j++ {
			n := soakKey{k.sender, k.seq + d*j}
			if p := a.written[n]; len(p) > 0 {
				fmt.Fprintf(&b, "; %v on conn %d at byte %d (conn: %d bytes written)", n, p[0].conn, p[0].start, a.conns[p[0].conn].WrittenLen())
				break
			}
		}
	}
	return b.String()
}
