package lomond

import (
	"bytes"
	"compress/flate"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/lomond-go/lomond/events"
	"github.com/lomond-go/lomond/internal/wstest"
)

// Issue #15, item 16: in a compressed message, the DEFLATE data after a
// block with BFINAL set was dropped without a word, and the message was
// delivered cut at that block. RFC 7692 section 7.2.1 lets blocks follow a
// final block in the same message ("The next DEFLATE block follows the
// padded data if any"): they are part of the message. Data there that is not
// valid DEFLATE fails the connection with 1007: a message is never delivered
// cut short.

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
			srv, done := scriptServer(t, func(c *wstest.Conn) {
				if !deflateAccept(t, c, params) {
					return
				}
				srvWrite(t, c,
					wstest.Frame{Fin: true, RSV1: true, Opcode: wstest.OpText, Payload: payload},
					wstest.Frame{Fin: false, RSV1: true, Opcode: wstest.OpText, Payload: payload[:len(finalHello)]},
					wstest.Frame{Fin: true, Opcode: wstest.OpContinuation, Payload: payload[len(finalHello):]},
					wstest.Frame{Fin: true, RSV1: true, Opcode: wstest.OpText, Payload: rfc7692Hello},
					wstest.Close(1000, "done"))
				srvExpectClose(t, c, 1000, "done")
			})
			ws := newTestWS(t, srv.URL(), WithCompression(CompressionContextTakeover))
			l := &evLog{}
			err := ws.Run(context.Background(), l.handler())
			waitScript(t, done)
			if CloseStatus(err) != 1000 {
				t.Errorf("Run = %v, want the server's close 1000", err)
			}
			want := opening(srv.URL())
			want[2] = `ready 101 protocol="" extensions=["permessage-deflate"]`
			expectLines(t, l, seq(want, []string{`text "Hello World"`, `text "Hello World"`, `text "Hello"`,
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
			srv, done := scriptServer(t, func(c *wstest.Conn) {
				if !deflateAccept(t, c, "") {
					return
				}
				// The close right behind it ends the session either way:
				// a client that takes the message replies 1000.
				srvWrite(t, c, wstest.Frame{Fin: true, RSV1: true, Opcode: wstest.OpText,
					Payload: append(bytes.Clone(finalHello), tt.trailer...)},
					wstest.Close(1000, "done"))
				if code, _, err := c.ExpectClose(); err != nil || code != 1007 {
					t.Errorf("server saw close %d (%v), want 1007", code, err)
				}
			})
			ws := newTestWS(t, srv.URL(), WithCompression(CompressionContextTakeover))
			l := &evLog{}
			err := ws.Run(context.Background(), l.handler())
			waitScript(t, done)
			var pe *ProtocolError
			if !errors.As(err, &pe) || pe.Code != 1007 {
				t.Fatalf("Run = %v, want a *ProtocolError 1007", err)
			}
			if ev := lastEvent[*events.ProtocolError](t, l); !strings.HasPrefix(ev.Err.Error(), "invalid compressed data") {
				t.Errorf("ProtocolError.Err = %q, want the stable reason", ev.Err)
			}
			for _, ev := range l.evs {
				if txt, ok := ev.(*events.Text); ok {
					t.Errorf("a Text event %q was delivered", txt.Text)
				}
			}
		})
	}
}
