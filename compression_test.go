package lomond

import (
	"bytes"
	"compress/flate"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/lomond-go/lomond/events"
	"github.com/lomond-go/lomond/internal/protocol"
	"github.com/lomond-go/lomond/internal/testkit"
	"github.com/lomond-go/lomond/internal/wstest"
)

// Tests of permessage-deflate (compression.go, and the inflate of
// reader.go): the options, the offer, context takeover against
// coder/websocket's server, and compressed messages that are cut, corrupt or
// carry blocks after a final block.

// deflateMessage compresses p with w (whose window carries over between
// messages: context takeover) as permessage-deflate frames carry it: the
// flush marker's last four bytes removed (RFC 7692 7.2.1).
func deflateMessage(t *testing.T, w *flate.Writer, buf *bytes.Buffer, p string) []byte {
	t.Helper()
	buf.Reset()
	if _, err := w.Write([]byte(p)); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	return bytes.TrimSuffix(append([]byte(nil), buf.Bytes()...), []byte{0, 0, 0xff, 0xff})
}

// TestCompressionServerKeepsContext: offered no context takeover, a server
// (tornado does) may answer plain "permessage-deflate" and keep its
// compression context across messages. The client must follow the answer,
// not its own offer.
func TestCompressionServerKeepsContext(t *testing.T) {
	msgs := []string{
		strings.Repeat("hello websocket ", 20),
		strings.Repeat("hello websocket ", 20) + "again",
		strings.Repeat("hello websocket ", 21),
	}
	offered := make(chan string, 1)
	srv := wstest.NewServer(t, func(c *wstest.Conn) {
		req, err := c.ReadRequest()
		if err != nil {
			return
		}
		offered <- req.Header.Get("Sec-WebSocket-Extensions")
		if err := c.Accept(req, http.Header{"Sec-Websocket-Extensions": {"permessage-deflate"}}); err != nil {
			return
		}
		var buf bytes.Buffer
		fw, _ := flate.NewWriter(&buf, flate.BestSpeed)
		for _, m := range msgs {
			f := wstest.Frame{Fin: true, RSV1: true, Opcode: wstest.OpText, Payload: deflateMessage(t, fw, &buf, m)}
			if c.WriteFrame(f) != nil {
				return
			}
		}
		_ = c.WriteFrame(wstest.Close(1000, "done"))
		_, _, _ = c.ExpectClose()
	})
	for _, mode := range []Compression{CompressionNoContextTakeover, CompressionContextTakeover} {
		ws, err := New(srv.URL(), WithCompression(mode), WithPollInterval(0), WithPingRate(0), WithoutProxy())
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		var ready *events.Ready
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err = ws.Run(ctx, HandlerFunc(func(_ *WebSocket, ev events.Event) {
			switch e := ev.(type) {
			case *events.Ready:
				ready = e
			case *events.Text:
				got = append(got, e.Text)
			}
		}))
		cancel()
		if CloseStatus(err) != 1000 {
			t.Fatalf("mode %d: Run = %v, want the server's close 1000", mode, err)
		}
		offer := <-offered
		if mode == CompressionNoContextTakeover && !strings.Contains(offer, "server_no_context_takeover") {
			t.Errorf("offer %q does not ask for no context takeover", offer)
		}
		if ready == nil || len(ready.Extensions) != 1 {
			t.Errorf("mode %d: Ready.Extensions = %v", mode, ready)
		}
		if len(got) != len(msgs) {
			t.Fatalf("mode %d: got %d messages, want %d", mode, len(got), len(msgs))
		}
		for i := range msgs {
			if got[i] != msgs[i] {
				t.Errorf("mode %d: message %d corrupted", mode, i)
			}
		}
	}
}

// TestCompressionEchoCoderServer: with coder/websocket's server (an
// independent implementation) in each compression mode, messages of every
// size, compressible or not, make the round trip in both directions, and
// each comes back as sent.
func TestCompressionEchoCoderServer(t *testing.T) {
	modes := map[string]Option{
		"context takeover":    WithCompression(CompressionContextTakeover),
		"no context takeover": WithCompression(CompressionNoContextTakeover),
		"server no context takeover, all compressed, level 9": WithCompressionOptions(CompressionOptions{
			ServerNoContextTakeover: true, Threshold: -1, Level: 9}),
	}
	for name, mode := range modes {
		t.Run(name, func(t *testing.T) {
			url := coderEchoServer(t, websocket.CompressionContextTakeover)
			ws := newTestWS(t, url, mode, WithReadLimit(4<<20))
			var sent, got []string
			for i, n := range []int{0, 1, 100, 129, 600, 5000, 70000, 1 << 20} {
				var m string
				if i%2 == 0 {
					m = strings.Repeat("compressible text ", n/18+1)[:n]
				} else {
					b := make([]byte, n)
					for j := range b {
						b[j] = byte('a' + (j*7919+i)%26)
					}
					m = string(b)
				}
				sent = append(sent, m)
			}
			err := ws.Run(context.Background(), HandlerFunc(func(ws *WebSocket, ev events.Event) {
				switch e := ev.(type) {
				case *events.Ready:
					if len(e.Extensions) != 1 {
						t.Errorf("Ready.Extensions = %q, want permessage-deflate", e.Extensions)
					}
					for _, m := range sent {
						if err := ws.SendText(m); err != nil {
							t.Errorf("SendText: %v", err)
						}
					}
				case *events.Text:
					got = append(got, e.Text)
					if len(got) == len(sent) {
						_ = ws.Close(1000, "")
					}
				}
			}))
			if err != nil {
				t.Errorf("Run = %v", err)
			}
			if len(got) != len(sent) {
				t.Fatalf("%d echoes, want %d", len(got), len(sent))
			}
			for i := range sent {
				if got[i] != sent[i] {
					t.Errorf("message %d (%d bytes) came back as %d bytes", i, len(sent[i]), len(got[i]))
				}
			}
		})
	}
}

// coderEchoServer starts coder/websocket's server (an independent
// implementation) on 127.0.0.1, echoing every message, and returns its URL.
func coderEchoServer(t *testing.T, mode websocket.CompressionMode) string {
	t.Helper()
	var wg sync.WaitGroup
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		wg.Add(1)
		defer wg.Done()
		c, err := websocket.Accept(w, r, &websocket.AcceptOptions{CompressionMode: mode})
		if err != nil {
			return
		}
		defer c.CloseNow()
		c.SetReadLimit(-1)
		coderEcho(c)
	}))
	t.Cleanup(func() {
		hs.Close()
		wg.Wait()
	})
	return "ws" + strings.TrimPrefix(hs.URL, "http") + "/"
}

// finalHello is "Hello" in a DEFLATE block with BFINAL set, padded to a byte
// boundary: RFC 7692 section 7.2.3.4's payload without its last byte.
var finalHello = []byte{0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00}

// TestBlocksAfterFinalBlockAreDelivered: a message of a final block then more
// blocks arrives whole, in one frame or with the final block and the rest in
// different frames, with and without context takeover; and the next message
// after it works.
func TestBlocksAfterFinalBlockAreDelivered(t *testing.T) {
	var buf bytes.Buffer
	w, err := flate.NewWriter(&buf, flate.BestSpeed)
	if err != nil {
		t.Fatal(err)
	}
	payload := append(bytes.Clone(finalHello), deflateMessage(t, w, &buf, " World")...)
	for _, params := range []string{"", "; server_no_context_takeover"} {
		t.Run("params="+params, func(t *testing.T) {
			srv, done := testkit.ScriptServer(t, deflateFramesThenClose(t, params,
				wstest.Frame{Fin: true, RSV1: true, Opcode: wstest.OpText, Payload: payload},
				wstest.Frame{Fin: false, RSV1: true, Opcode: wstest.OpText, Payload: payload[:len(finalHello)]},
				wstest.Frame{Fin: true, Opcode: wstest.OpContinuation, Payload: payload[len(finalHello):]},
				wstest.Frame{Fin: true, RSV1: true, Opcode: wstest.OpText, Payload: rfc7692Hello}))
			l, err := runAgainstScript(t, srv, done, nil, WithCompression(CompressionContextTakeover))
			if CloseStatus(err) != 1000 {
				t.Errorf("Run = %v, want the server's close 1000", err)
			}
			testkit.ExpectLines(t, l, testkit.Seq(deflateOpening(srv.URL()), []string{`text "Hello World"`, `text "Hello World"`, `text "Hello"`,
				`closing 1000 "done"`, `closed 1000 "done"`, "disconnected graceful=true err=false"}))
		})
	}
}

// TestInvalidDataAfterFinalBlockFails1007: a message of a final block then
// bytes that are not valid DEFLATE fails the connection with 1007 "invalid
// compressed data"; no Text event delivers its first block as the message.
func TestInvalidDataAfterFinalBlockFails1007(t *testing.T) {
	for _, tt := range []struct {
		name    string
		trailer []byte
	}{
		{"ReservedBlockType", []byte{0x07}},
		{"Garbage", []byte{0xff, 0xff, 0xff, 0xff}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv, done := testkit.ScriptServer(t, func(c *wstest.Conn) {
				if !deflateAccept(t, c, "") {
					return
				}
				// The close right behind it ends the session either way:
				// a client that takes the message replies 1000.
				testkit.Write(t, c, wstest.Frame{Fin: true, RSV1: true, Opcode: wstest.OpText,
					Payload: append(bytes.Clone(finalHello), tt.trailer...)},
					wstest.Close(1000, "done"))
				if code, _, err := c.ExpectClose(); err != nil || code != 1007 {
					t.Errorf("server saw close %d (%v), want 1007", code, err)
				}
			})
			l, err := runAgainstScript(t, srv, done, nil, WithCompression(CompressionContextTakeover))
			var pe *ProtocolError
			if !errors.As(err, &pe) || pe.Code != 1007 {
				t.Fatalf("Run = %v, want a *ProtocolError 1007", err)
			}
			if ev := testkit.Last[*events.ProtocolError](t, l); !strings.HasPrefix(ev.Err.Error(), "invalid compressed data") {
				t.Errorf("ProtocolError.Err = %q, want the stable reason", ev.Err)
			}
			for _, ev := range l.All() {
				if txt, ok := ev.(*events.Text); ok {
					t.Errorf("a Text event %q was delivered", txt.Text)
				}
			}
		})
	}
}

func TestWithCompression(t *testing.T) {
	for _, m := range []Compression{CompressionOff, CompressionNoContextTakeover, CompressionContextTakeover} {
		c := newWith(t, WithCompression(m))
		if (c.compression == nil) != (m == CompressionOff) {
			t.Errorf("compression %d: options %+v", m, c.compression)
		}
		if m == CompressionNoContextTakeover && (!c.compression.ClientNoContextTakeover || !c.compression.ServerNoContextTakeover) {
			t.Errorf("no context takeover: options %+v", c.compression)
		}
	}
	for _, m := range []Compression{-1, 3, 100} {
		wantInvalidOption(t, "compression", WithCompression(m))
	}
}

func TestWithCompressionOptions(t *testing.T) {
	c := newWith(t, WithCompressionOptions(CompressionOptions{ServerMaxWindowBits: 10, ServerNoContextTakeover: true, Threshold: -1, Level: 6}))
	if c.compression == nil || c.compression.ServerMaxWindowBits != 10 || c.compression.threshold() != 0 || c.compression.level() != 6 {
		t.Errorf("options %+v", c.compression)
	}
	offer := c.deflateOffer()
	if offer == nil || offer.ServerMaxWindowBits != 10 || !offer.ServerNoContextTakeover || offer.ClientNoContextTakeover {
		t.Errorf("offer %+v", offer)
	}
	if d := newWith(t, WithCompressionOptions(CompressionOptions{})).compression; d.threshold() != 128 || d.level() != protocol.DefaultDeflateLevel {
		t.Errorf("zero options: threshold %d, level %d; want 128 and the codec's choice", d.threshold(), d.level())
	}
	for _, bad := range []CompressionOptions{{ServerMaxWindowBits: 7}, {ServerMaxWindowBits: 16}, {Level: -1}, {Level: 10}} {
		wantInvalidOption(t, fmt.Sprintf("%+v", bad), WithCompressionOptions(bad))
	}
}

// deflateAccept answers a permessage-deflate offer with params.
func deflateAccept(t *testing.T, c *wstest.Conn, params string) bool {
	req, err := c.ReadRequest()
	if err != nil {
		t.Errorf("server: %v", err)
		return false
	}
	if !strings.Contains(req.Header.Get("Sec-WebSocket-Extensions"), "permessage-deflate") {
		t.Errorf("server: no permessage-deflate offer in %q", req.Header.Get("Sec-WebSocket-Extensions"))
	}
	return c.Accept(req, http.Header{"Sec-WebSocket-Extensions": {"permessage-deflate" + params}}) == nil
}

// deflateFramesThenClose is a server script that answers a
// permessage-deflate offer with params, writes frames and a close 1000
// "done" in one write, and expects the client's close 1000 "done".
func deflateFramesThenClose(t *testing.T, params string, frames ...wstest.Frame) func(c *wstest.Conn) {
	return func(c *wstest.Conn) {
		if !deflateAccept(t, c, params) {
			return
		}
		testkit.Write(t, c, append(slices.Clip(frames), wstest.Close(1000, "done"))...)
		testkit.ExpectClose(t, c, 1000, "done")
	}
}

// deflateOpening is testkit.Opening(url) with permessage-deflate agreed in
// the Ready event.
func deflateOpening(url string) []string {
	want := testkit.Opening(url)
	want[2] = `ready 101 protocol="" extensions=["permessage-deflate"]`
	return want
}

// TestRFC7692FinalBlockMessages: the RFC's own example payload works sent
// twice, with and without context takeover, and a final block that ends
// before the message's last frame is not the end of the message.
func TestRFC7692FinalBlockMessages(t *testing.T) {
	for _, params := range []string{"", "; server_no_context_takeover"} {
		t.Run("params="+params, func(t *testing.T) {
			srv, done := testkit.ScriptServer(t, deflateFramesThenClose(t, params,
				wstest.Frame{Fin: true, RSV1: true, Opcode: wstest.OpText, Payload: rfc7692Hello},
				wstest.Frame{Fin: true, RSV1: true, Opcode: wstest.OpText, Payload: rfc7692Hello},
				// The final block in the first frame, padding in the last.
				wstest.Frame{Fin: false, RSV1: true, Opcode: wstest.OpText, Payload: rfc7692Hello[:7]},
				wstest.Frame{Fin: true, Opcode: wstest.OpContinuation, Payload: rfc7692Hello[7:]},
				wstest.Text("plain")))
			l, err := runAgainstScript(t, srv, done, nil, WithCompression(CompressionContextTakeover))
			if CloseStatus(err) != 1000 {
				t.Errorf("Run = %v, want the server's close 1000", err)
			}
			testkit.ExpectLines(t, l, testkit.Seq(deflateOpening(srv.URL()), []string{`text "Hello"`, `text "Hello"`, `text "Hello"`, `text "plain"`,
				`closing 1000 "done"`, `closed 1000 "done"`, "disconnected graceful=true err=false"}))
		})
	}
}

// TestCorruptCompressedData: a compressed message that does not inflate
// fails the connection with 1007 and a ProtocolError (it ended as "socket
// fail" with no close frame).
func TestCorruptCompressedData(t *testing.T) {
	srv, done := testkit.ScriptServer(t, func(c *wstest.Conn) {
		if !deflateAccept(t, c, "") {
			return
		}
		testkit.Write(t, c, wstest.Frame{Fin: true, RSV1: true, Opcode: wstest.OpText, Payload: []byte{0xff, 0xff, 0xff, 0xff}})
		if code, _, err := c.ExpectClose(); err != nil || code != 1007 {
			t.Errorf("server saw close %d (%v), want 1007", code, err)
		}
		_ = c.WriteFrame(wstest.Close(1007, ""))
	})
	l, err := runAgainstScript(t, srv, done, nil, WithCompression(CompressionContextTakeover))
	var pe *ProtocolError
	if !errors.As(err, &pe) || pe.Code != 1007 {
		t.Fatalf("Run = %v, want a *ProtocolError 1007", err)
	}
	if ev := testkit.Last[*events.ProtocolError](t, l); !strings.HasPrefix(ev.Err.Error(), "invalid compressed data") {
		t.Errorf("ProtocolError.Err = %q, want the stable reason", ev.Err)
	}
}
