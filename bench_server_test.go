package lomond

import (
	"bufio"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/lomond-go/lomond/internal/protocol"
)

// benchServer is the loopback server the benchmarks run against: a
// hand-rolled upgrade, then either a push loop (GET /push?size=N&text=1)
// that writes a pre-encoded buffer of unmasked frames with large writes
// until the client closes, or a sink (GET /sink) that discards the client's
// frames. Its per-message cost is a few nanoseconds, so what the benchmarks
// measure is the client.
type benchServer struct {
	ln    net.Listener
	wg    sync.WaitGroup
	mu    sync.Mutex
	conns map[net.Conn]struct{}
	bufs  sync.Map // "size/text" -> []byte of pre-encoded frames
}

func newBenchServer(tb testing.TB) *benchServer {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	s := &benchServer{ln: ln, conns: map[net.Conn]struct{}{}}
	s.wg.Add(1)
	go s.accept()
	return s
}

// url returns the websocket URL of path on the server.
func (s *benchServer) url(path string) string {
	return "ws://" + s.ln.Addr().String() + path
}

// close stops the server and waits for every connection goroutine.
func (s *benchServer) close() {
	_ = s.ln.Close()
	s.mu.Lock()
	for c := range s.conns {
		_ = c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

func (s *benchServer) accept() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		s.conns[c] = struct{}{}
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer func() {
				s.mu.Lock()
				delete(s.conns, c)
				s.mu.Unlock()
				_ = c.Close()
			}()
			s.serve(c.(*net.TCPConn))
		}()
	}
}

const wsGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

func (s *benchServer) serve(c *net.TCPConn) {
	br := bufio.NewReaderSize(c, 256<<10)
	req, err := http.ReadRequest(br)
	if err != nil {
		return
	}
	sum := sha1.Sum([]byte(req.Header.Get("Sec-WebSocket-Key") + wsGUID))
	resp := "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Accept: " + base64.StdEncoding.EncodeToString(sum[:]) + "\r\n\r\n"
	if _, err := io.WriteString(c, resp); err != nil {
		return
	}
	switch req.URL.Path {
	case "/push":
		size, _ := strconv.Atoi(req.URL.Query().Get("size"))
		s.push(c, br, s.frames(size, req.URL.Query().Get("text") == "1"))
	case "/sink":
		s.sink(c, br)
	}
}

// frames returns a buffer of whole unmasked frames of size bytes each, at
// least 256 KiB long, so one write(2) carries many messages.
func (s *benchServer) frames(size int, text bool) []byte {
	key := strconv.Itoa(size) + "/" + strconv.FormatBool(text)
	if b, ok := s.bufs.Load(key); ok {
		return b.([]byte)
	}
	op := byte(opBinary)
	if text {
		op = opText
	}
	payload := make([]byte, size)
	for i := range payload {
		payload[i] = 'a' + byte(i%26) // ASCII: valid UTF-8, like most JSON
	}
	frame := appendServerFrame(nil, op, payload)
	n := max(1, (256<<10)/len(frame))
	buf := make([]byte, 0, n*len(frame))
	for range n {
		buf = append(buf, frame...)
	}
	s.bufs.Store(key, buf)
	return buf
}

// appendServerFrame appends a final, unmasked frame.
func appendServerFrame(b []byte, op byte, payload []byte) []byte {
	b = append(b, 0x80|op)
	switch n := len(payload); {
	case n <= 125:
		b = append(b, byte(n))
	case n <= 0xffff:
		b = append(b, 126, byte(n>>8), byte(n))
	default:
		b = binary.BigEndian.AppendUint64(append(b, 127), uint64(n))
	}
	return append(b, payload...)
}

// push writes buf again and again until the client's close frame arrives
// (then it finishes the current write, which ends on a frame boundary, and
// answers the close) or the connection fails (the client dropped it).
func (s *benchServer) push(c *net.TCPConn, br *bufio.Reader, buf []byte) {
	var closeCode atomic.Int32
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		_ = readClientFrames(br, func(code int) { closeCode.Store(int32(code)) })
	}()
	for closeCode.Load() == 0 {
		if _, err := c.Write(buf); err != nil {
			_ = c.Close()
			<-readDone
			return
		}
	}
	s.closeReply(c, int(closeCode.Load()))
	<-readDone
}

// sink discards the client's frames until its close frame, answers it, and
// waits for the client to drop the connection.
func (s *benchServer) sink(c *net.TCPConn, br *bufio.Reader) {
	_ = readClientFrames(br, func(code int) { s.closeReply(c, code) })
}

// closeReply echoes the client's close code and half-closes the connection,
// so the client sees the reply and then EOF, without a reset.
func (s *benchServer) closeReply(c *net.TCPConn, code int) {
	var p []byte
	if code != StatusNoStatus {
		p = binary.BigEndian.AppendUint16(nil, uint16(code))
	}
	_, _ = c.Write(appendServerFrame(nil, protocol.OpClose, p))
	_ = c.CloseWrite()
}

// readClientFrames reads masked client frames, discarding their payloads,
// and calls onClose with the code of a close frame (1005 for none). It
// returns at EOF or on an error.
func readClientFrames(br *bufio.Reader, onClose func(code int)) error {
	var hdr [14]byte
	for {
		if _, err := io.ReadFull(br, hdr[:2]); err != nil {
			return err
		}
		op, n := hdr[0]&0x0f, uint64(hdr[1]&0x7f)
		size := 2
		switch n {
		case 126:
			size += 2
		case 127:
			size += 8
		}
		if hdr[1]&0x80 == 0 {
			return errors.New("bench server: unmasked client frame")
		}
		size += 4
		if _, err := io.ReadFull(br, hdr[2:size]); err != nil {
			return err
		}
		switch n {
		case 126:
			n = uint64(binary.BigEndian.Uint16(hdr[2:]))
		case 127:
			n = binary.BigEndian.Uint64(hdr[2:])
		}
		if op != protocol.OpClose {
			if _, err := br.Discard(int(n)); err != nil {
				return err
			}
			continue
		}
		p := make([]byte, n)
		if _, err := io.ReadFull(br, p); err != nil {
			return err
		}
		mask := [4]byte(hdr[size-4 : size])
		for i := range p {
			p[i] ^= mask[i&3]
		}
		code := StatusNoStatus
		if len(p) >= 2 {
			code = int(binary.BigEndian.Uint16(p))
		}
		onClose(code)
	}
}
