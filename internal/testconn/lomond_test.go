package testconn_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/lomond-go/lomond"
	"github.com/lomond-go/lomond/events"
	"github.com/lomond-go/lomond/internal/testconn"
)

// sendAll is a handler that sends msgs in order once ready, then closes.
type sendAll struct {
	lomond.BaseHandler
	msgs [][]byte
	errs chan error
}

func (h *sendAll) OnReady(ws *lomond.WebSocket, _ *events.Ready) {
	go func() { // sends from another goroutine, as an application does
		for i, m := range h.msgs {
			var err error
			if i%2 == 0 {
				err = ws.SendText(string(m))
			} else {
				err = ws.SendBinary(m)
			}
			if err != nil {
				h.errs <- err
				return
			}
		}
		h.errs <- ws.Close(lomond.StatusNormal, "done")
	}()
}

// The decoder reads what lomond writes, compressed or not, with and
// without context takeover, whole and in order: the soak relies on it.
func TestDecodeClientReadsLomond(t *testing.T) {
	var msgs [][]byte
	for i, n := range []int{0, 5, 200, 3000, 70000, 150000, 40, 33000} {
		words := strings.Repeat(fmt.Sprintf("message %d says hello again; ", i), n/20+1)
		msgs = append(msgs, []byte(words[:n]))
	}
	for _, mode := range []struct {
		name     string
		client   lomond.Compression
		server   websocket.CompressionMode
		deflate  bool
		takeover bool
	}{
		{"off", lomond.CompressionOff, websocket.CompressionContextTakeover, false, false},
		{"takeover", lomond.CompressionContextTakeover, websocket.CompressionContextTakeover, true, true},
		{"no-takeover", lomond.CompressionNoContextTakeover, websocket.CompressionNoContextTakeover, true, false},
		{"server-declines-takeover", lomond.CompressionContextTakeover, websocket.CompressionNoContextTakeover, true, false},
	} {
		t.Run(mode.name, func(t *testing.T) {
			var wg sync.WaitGroup
			got := make(chan []byte, len(msgs))
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				wg.Add(1)
				defer wg.Done()
				c, err := websocket.Accept(w, r, &websocket.AcceptOptions{CompressionMode: mode.server})
				if err != nil {
					return
				}
				defer c.CloseNow()
				c.SetReadLimit(1 << 20)
				for {
					_, data, err := c.Read(r.Context())
					if err != nil {
						return
					}
					got <- data
				}
			}))
			defer func() {
				srv.Close()
				wg.Wait()
			}()
			d := &testconn.Dialer{}
			defer d.Close()
			ws, err := lomond.New(srv.URL, lomond.WithDialer(d.Dial), lomond.WithCompression(mode.client),
				lomond.WithPingRate(0), lomond.WithPollInterval(0))
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			h := &sendAll{msgs: msgs, errs: make(chan error, 1)}
			if err := ws.Run(ctx, h); err != nil {
				t.Fatalf("Run: %v", err)
			}
			if err := <-h.errs; err != nil {
				t.Fatalf("send: %v", err)
			}
			for i := range msgs {
				if b := <-got; !bytes.Equal(b, msgs[i]) {
					t.Fatalf("the server read message %d differently", i)
				}
			}

			conns := d.Conns()
			if len(conns) != 1 {
				t.Fatalf("%d connections", len(conns))
			}
			neg, err := testconn.ParseResponse(conns[0].Received())
			if err != nil {
				t.Fatal(err)
			}
			opts := testconn.OptionsFor(neg)
			if opts.Deflate != mode.deflate || opts.ContextTakeover != mode.takeover {
				t.Fatalf("negotiated %+v, want deflate %v takeover %v", neg, mode.deflate, mode.takeover)
			}
			s, err := testconn.DecodeClient(conns[0].Written(), opts)
			if err != nil {
				t.Fatal(err)
			}
			if len(s.Messages) != len(msgs) || s.Unfinished {
				t.Fatalf("decoded %d messages (unfinished %v), want %d", len(s.Messages), s.Unfinished, len(msgs))
			}
			compressed := 0
			for i, m := range s.Messages {
				if !bytes.Equal(m.Payload, msgs[i]) {
					t.Fatalf("message %d decoded differently", i)
				}
				if m.Compressed {
					compressed++
				}
			}
			if mode.deflate != (compressed > 0) {
				t.Fatalf("%d messages compressed", compressed)
			}
			if n := len(s.Controls); n == 0 || s.Controls[n-1].Opcode != testconn.OpClose {
				t.Fatalf("the stream does not end with a close frame: %+v", s.Controls)
			}
			// The 150000-byte message goes in several frames (lomond
			// fragments long messages) unless compressed to one.
			if !mode.deflate && s.Messages[5].Frames < 2 {
				t.Fatalf("a 150000-byte message in %d frame", s.Messages[5].Frames)
			}
		})
	}
}
