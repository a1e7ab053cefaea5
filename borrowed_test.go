package lomond

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/lomond-go/lomond/events"
	"github.com/lomond-go/lomond/internal/wstest"
)

// TestBorrowedBinary: with WithBorrowedBinary, binary messages arrive intact
// in one reused event (valid during the call), text is still owned, and the
// buffer grows for a large message.
func TestBorrowedBinary(t *testing.T) {
	sizes := []int{10, 5000, 200 << 10, 3}
	srv := wstest.NewServer(t, func(c *wstest.Conn) {
		if _, err := c.Handshake(); err != nil {
			return
		}
		for i, n := range sizes {
			if c.WriteFrame(wstest.Binary(bytes.Repeat([]byte{byte('a' + i)}, n))) != nil {
				return
			}
		}
		_ = c.WriteFrame(wstest.Text("owned"))
		_ = c.WriteFrame(wstest.Close(1000, ""))
		_, _, _ = c.ExpectClose()
	})
	ws, err := New(srv.URL(), WithBorrowedBinary(), WithPollInterval(0), WithPingRate(0), WithoutProxy(), WithReadLimit(1<<20))
	if err != nil {
		t.Fatal(err)
	}
	var first *events.Binary
	var got []int
	var text *events.Text
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err = ws.Run(ctx, HandlerFunc(func(_ *WebSocket, ev events.Event) {
		switch e := ev.(type) {
		case *events.Binary:
			if first == nil {
				first = e
			} else if e != first {
				t.Error("borrowed binary events are not the one reused event")
			}
			i := len(got)
			if !bytes.Equal(e.Data, bytes.Repeat([]byte{byte('a' + i)}, sizes[i])) {
				t.Errorf("message %d corrupted", i)
			}
			got = append(got, len(e.Data))
		case *events.Text:
			text = e
		}
	}))
	if CloseStatus(err) != 1000 {
		t.Fatalf("Run = %v", err)
	}
	if len(got) != len(sizes) {
		t.Fatalf("got %d binary messages, want %d", len(got), len(sizes))
	}
	if text == nil || text.Text != "owned" {
		t.Fatalf("text = %v", text)
	}
}
