package testconn_test

import (
	"bytes"
	"compress/flate"
	"encoding/binary"
	"errors"
	"strings"
	"testing"

	"github.com/lomond-go/lomond/internal/testconn"
)

const request = "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n\r\n"

// frame encodes a masked client frame. first holds FIN, RSV and opcode.
func frame(first byte, payload []byte) []byte {
	b := []byte{first}
	switch n := len(payload); {
	case n < 126:
		b = append(b, 0x80|byte(n))
	case n <= 0xffff:
		b = append(b, 0x80|126)
		b = binary.BigEndian.AppendUint16(b, uint16(n))
	default:
		b = append(b, 0x80|127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	key := [4]byte{0x12, 0x34, 0x56, 0x78}
	b = append(b, key[:]...)
	for i, c := range payload {
		b = append(b, c^key[i&3])
	}
	return b
}

const (
	fin  = 0x80
	rsv1 = 0x40
)

func stream(frames ...[]byte) []byte {
	return append([]byte(request), bytes.Join(frames, nil)...)
}

func TestDecodeMessagesAndControls(t *testing.T) {
	big := bytes.Repeat([]byte{7}, 70000)
	b := stream(
		frame(testconn.OpText, []byte("hel")),
		frame(fin|testconn.OpPing, []byte("p")),
		frame(fin|testconn.OpContinuation, []byte("lo")),
		frame(fin|testconn.OpBinary, big),
		frame(fin|testconn.OpBinary, nil),
		frame(fin|testconn.OpClose, []byte{0x03, 0xe8, 'o', 'k'}),
	)
	s, err := testconn.DecodeClient(b, testconn.DecodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if string(s.Request) != request {
		t.Fatalf("Request = %q", s.Request)
	}
	if s.Unfinished {
		t.Fatal("a complete stream is Unfinished")
	}
	if len(s.Messages) != 3 {
		t.Fatalf("%d messages", len(s.Messages))
	}
	m := s.Messages[0]
	if m.Opcode != testconn.OpText || string(m.Payload) != "hello" || m.Frames != 2 || m.Compressed {
		t.Fatalf("message 0 = %+v", m)
	}
	if m.Start != int64(len(request)) {
		t.Fatalf("message 0 starts at %d", m.Start)
	}
	if !bytes.Equal(s.Messages[1].Payload, big) || s.Messages[1].Opcode != testconn.OpBinary {
		t.Fatal("message 1 differs")
	}
	if s.Messages[1].Start != m.End {
		t.Fatalf("message 1 starts at %d, message 0 ends at %d", s.Messages[1].Start, m.End)
	}
	if len(s.Messages[2].Payload) != 0 {
		t.Fatal("empty message is not empty")
	}
	if len(s.Controls) != 2 || s.Controls[0].Opcode != testconn.OpPing || s.Controls[1].Opcode != testconn.OpClose ||
		string(s.Controls[1].Payload[2:]) != "ok" {
		t.Fatalf("controls = %+v", s.Controls)
	}
	if s.Messages[2].End != s.Controls[1].Offset {
		t.Fatal("offsets do not follow the frames")
	}
}

// deflater compresses messages as RFC 7692 says: a sync flush per message,
// its 00 00 ff ff tail removed; with takeover the window goes on.
type deflater struct {
	buf      bytes.Buffer
	w        *flate.Writer
	takeover bool
}

func (d *deflater) compress(t *testing.T, p []byte) []byte {
	t.Helper()
	if d.w == nil || !d.takeover {
		d.buf.Reset()
		w, err := flate.NewWriter(&d.buf, flate.BestSpeed)
		if err != nil {
			t.Fatal(err)
		}
		d.w = w
	}
	d.buf.Reset()
	if _, err := d.w.Write(p); err != nil {
		t.Fatal(err)
	}
	if err := d.w.Flush(); err != nil {
		t.Fatal(err)
	}
	out := bytes.Clone(d.buf.Bytes())
	if !bytes.HasSuffix(out, []byte{0, 0, 0xff, 0xff}) {
		t.Fatal("no sync tail")
	}
	return out[:len(out)-4]
}

func TestDecodeDeflateContextTakeover(t *testing.T) {
	msg := []byte(strings.Repeat("the same words again and again, ", 20))
	d := &deflater{takeover: true}
	first := d.compress(t, msg)
	second := d.compress(t, msg) // refers to the first message's window
	if len(second) >= len(first) {
		t.Fatalf("the second message (%d bytes) does not use the first's window (%d)", len(second), len(first))
	}
	// Compressed, then an uncompressed message (not part of the window),
	// then compressed again, split over two frames.
	b := stream(
		frame(fin|rsv1|testconn.OpText, first),
		frame(fin|testconn.OpText, []byte("plain")),
		frame(rsv1|testconn.OpText, second[:3]),
		frame(fin|testconn.OpContinuation, second[3:]),
	)
	s, err := testconn.DecodeClient(b, testconn.DecodeOptions{Deflate: true, ContextTakeover: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Messages) != 3 {
		t.Fatalf("%d messages", len(s.Messages))
	}
	for i, want := range [][]byte{msg, []byte("plain"), msg} {
		if !bytes.Equal(s.Messages[i].Payload, want) {
			t.Fatalf("message %d = %q", i, s.Messages[i].Payload)
		}
	}
	if !s.Messages[0].Compressed || s.Messages[1].Compressed || !s.Messages[2].Compressed {
		t.Fatal("Compressed is wrong")
	}
	// Without the window, the second compressed message cannot be read.
	_, err = testconn.DecodeClient(b, testconn.DecodeOptions{Deflate: true})
	var de *testconn.DecodeError
	if !errors.As(err, &de) || !strings.Contains(err.Error(), "inflate") {
		t.Fatalf("decoding takeover without the window: %v", err)
	}
}

func TestDecodeDeflateNoContextTakeover(t *testing.T) {
	d := &deflater{}
	var frames [][]byte
	var want []string
	for i := range 5 {
		m := strings.Repeat(string(rune('a'+i)), 300+i)
		frames = append(frames, frame(fin|rsv1|testconn.OpBinary, d.compress(t, []byte(m))))
		want = append(want, m)
	}
	s, err := testconn.DecodeClient(stream(frames...), testconn.DecodeOptions{Deflate: true})
	if err != nil {
		t.Fatal(err)
	}
	for i, m := range s.Messages {
		if string(m.Payload) != want[i] {
			t.Fatalf("message %d differs", i)
		}
	}
	if len(s.Messages) != 5 {
		t.Fatalf("%d messages", len(s.Messages))
	}
}

func TestDecodeUnfinished(t *testing.T) {
	whole := frame(fin|testconn.OpText, []byte("one"))
	cut := frame(fin|testconn.OpBinary, bytes.Repeat([]byte{1}, 300))
	for n := 1; n < len(cut); n += 37 {
		s, err := testconn.DecodeClient(stream(whole, cut[:n]), testconn.DecodeOptions{})
		if err != nil {
			t.Fatalf("cut at %d: %v", n, err)
		}
		if len(s.Messages) != 1 || !s.Unfinished || s.TailOffset != s.Messages[0].End {
			t.Fatalf("cut at %d: %d messages, unfinished %v, tail at %d", n, len(s.Messages), s.Unfinished, s.TailOffset)
		}
	}
	// A fragmented message whose last frame never came.
	first := frame(testconn.OpText, []byte("frag"))
	s, err := testconn.DecodeClient(stream(whole, first, frame(fin|testconn.OpPong, nil)), testconn.DecodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Messages) != 1 || !s.Unfinished || s.TailOffset != s.Messages[0].End {
		t.Fatalf("unfinished fragmented message: %+v", s)
	}
	// The request alone, and half a request.
	if s, err := testconn.DecodeClient([]byte(request), testconn.DecodeOptions{}); err != nil || s.Unfinished || s.Request == nil {
		t.Fatalf("request alone: %+v, %v", s, err)
	}
	if s, err := testconn.DecodeClient([]byte(request[:10]), testconn.DecodeOptions{}); err != nil || !s.Unfinished || s.Request != nil {
		t.Fatalf("half a request: %+v, %v", s, err)
	}
}

func TestDecodeMalformed(t *testing.T) {
	unmasked := frame(fin|testconn.OpText, []byte("x"))
	unmasked[1] &^= 0x80
	longLen := []byte{fin | testconn.OpBinary, 0x80 | 126, 0, 5, 0, 0, 0, 0, 1, 2, 3, 4, 5}
	cases := []struct {
		name   string
		b      []byte
		opts   testconn.DecodeOptions
		reason string
	}{
		{"not a request", []byte("POST / HTTP/1.1\r\n\r\n"), testconn.DecodeOptions{}, "GET"},
		{"unmasked", stream(unmasked), testconn.DecodeOptions{}, "unmasked"},
		{"RSV2", stream(frame(fin|0x20|testconn.OpText, nil)), testconn.DecodeOptions{}, "RSV2"},
		{"RSV1 without deflate", stream(frame(fin|rsv1|testconn.OpText, nil)), testconn.DecodeOptions{}, "RSV1"},
		{"RSV1 on continuation", stream(frame(testconn.OpText, nil), frame(fin|rsv1, nil)), testconn.DecodeOptions{Deflate: true}, "RSV1"},
		{"reserved opcode", stream(frame(fin|0x3, nil)), testconn.DecodeOptions{}, "opcode"},
		{"lone continuation", stream(frame(fin|testconn.OpContinuation, nil)), testconn.DecodeOptions{}, "continuation"},
		{"message in message", stream(frame(testconn.OpText, nil), frame(fin|testconn.OpBinary, nil)), testconn.DecodeOptions{}, "inside another"},
		{"fragmented ping", stream(frame(testconn.OpPing, nil)), testconn.DecodeOptions{}, "fragmented control"},
		{"long ping", stream(frame(fin|testconn.OpPing, make([]byte, 126))), testconn.DecodeOptions{}, "125"},
		{"1-byte close", stream(frame(fin|testconn.OpClose, []byte{3})), testconn.DecodeOptions{}, "1-byte"},
		{"after close", stream(frame(fin|testconn.OpClose, nil), frame(fin|testconn.OpText, nil)), testconn.DecodeOptions{}, "after the close"},
		{"bad UTF-8", stream(frame(fin|testconn.OpText, []byte{0xff})), testconn.DecodeOptions{}, "UTF-8"},
		{"not deflate", stream(frame(fin|rsv1|testconn.OpBinary, []byte{0xff, 0xff, 0xff})), testconn.DecodeOptions{Deflate: true}, "inflate"},
		{"non-minimal length", stream(longLen), testconn.DecodeOptions{}, "16-bit"},
		{"too large", stream(frame(fin|testconn.OpBinary, make([]byte, 100))), testconn.DecodeOptions{MaxMessage: 99}, "size bound"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := testconn.DecodeClient(c.b, c.opts)
			var de *testconn.DecodeError
			if !errors.As(err, &de) || !strings.Contains(err.Error(), c.reason) {
				t.Fatalf("err = %v, want a DecodeError with %q", err, c.reason)
			}
		})
	}
	// A message whose content is wrong is kept, and decoding goes on.
	s, err := testconn.DecodeClient(stream(
		frame(fin|rsv1|testconn.OpBinary, []byte{0xff, 0xff, 0xff}),
		frame(fin|testconn.OpText, []byte{0xc3}),
		frame(fin|testconn.OpText, []byte("fine")),
	), testconn.DecodeOptions{Deflate: true, ContextTakeover: true})
	var de *testconn.DecodeError
	if !errors.As(err, &de) || !strings.Contains(err.Error(), "inflate") || len(s.Messages) != 3 {
		t.Fatalf("content errors: %+v, %v", s, err)
	}
	if s.Messages[0].Err == nil || s.Messages[1].Err == nil || s.Messages[2].Err != nil || string(s.Messages[2].Payload) != "fine" {
		t.Fatalf("content errors: messages %+v", s.Messages)
	}
	// What came before a framing error is kept.
	s, err = testconn.DecodeClient(stream(frame(fin|testconn.OpText, []byte("ok")), unmasked), testconn.DecodeOptions{})
	if !errors.As(err, &de) || len(s.Messages) != 1 || de.Offset != s.Messages[0].End {
		t.Fatalf("stream before the error: %+v, %v", s, err)
	}
}

func TestParseResponse(t *testing.T) {
	resp := "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Extensions: permessage-deflate; client_no_context_takeover; server_no_context_takeover; client_max_window_bits=10\r\n\r\n"
	n, err := testconn.ParseResponse([]byte(resp + "\x81\x00"))
	if err != nil {
		t.Fatal(err)
	}
	if n.Status != 101 || !n.Deflate || !n.ClientNoContextTakeover || n.ClientMaxWindowBits != 10 || n.HeaderLen != len(resp) {
		t.Fatalf("Negotiated = %+v", n)
	}
	if o := testconn.OptionsFor(n); !o.Deflate || o.ContextTakeover {
		t.Fatalf("OptionsFor = %+v", o)
	}
	n, err = testconn.ParseResponse([]byte("HTTP/1.1 101 Switching Protocols\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n"))
	if err != nil || !n.Deflate || n.ClientNoContextTakeover {
		t.Fatalf("plain deflate: %+v, %v", n, err)
	}
	if o := testconn.OptionsFor(n); !o.ContextTakeover {
		t.Fatal("takeover not derived")
	}
	n, err = testconn.ParseResponse([]byte("HTTP/1.1 101 Switching Protocols\r\n\r\n"))
	if err != nil || n.Deflate {
		t.Fatalf("no extension: %+v, %v", n, err)
	}
	if _, err := testconn.ParseResponse([]byte("HTTP/1.1 101 Swi")); !errors.Is(err, testconn.ErrIncompleteResponse) {
		t.Fatalf("incomplete: %v", err)
	}
	for _, bad := range []string{
		"Sec-WebSocket-Extensions: x-other\r\n",
		"Sec-WebSocket-Extensions: permessage-deflate; bogus\r\n",
		"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits=30\r\n",
		"Sec-WebSocket-Extensions: permessage-deflate, permessage-deflate\r\n",
	} {
		if _, err := testconn.ParseResponse([]byte("HTTP/1.1 101 Switching Protocols\r\n" + bad + "\r\n")); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
