package lomond

import (
	"bytes"
	"compress/flate"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/lomond-go/lomond/events"
	"github.com/lomond-go/lomond/internal/wstest"
)

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

// TestCompressionServerKeepsContext is the regression test for a defect the
// interop suite found with tornado: offered no context takeover, a server
// may answer plain "permessage-deflate" and keep its compression context
// across messages. The client must follow the answer, not its own offer.
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
		for {
			typ, b, err := c.Read(context.Background())
			if err != nil {
				return // the client's close was answered by Read
			}
			if err := c.Write(context.Background(), typ, b); err != nil {
				return
			}
		}
	}))
	t.Cleanup(func() {
		hs.Close()
		wg.Wait()
	})
	return "ws" + strings.TrimPrefix(hs.URL, "http") + "/"
}
