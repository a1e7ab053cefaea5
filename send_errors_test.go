package lomond

import (
	"errors"
	"strings"
	"testing"
)

func newIdle(t *testing.T) *WebSocket {
	t.Helper()
	ws, err := New("ws://127.0.0.1:1/")
	if err != nil {
		t.Fatal(err)
	}
	return ws
}

// TestSendBeforeRun checks every send on a WebSocket that never ran.
func TestSendBeforeRun(t *testing.T) {
	ws := newIdle(t)
	sends := []struct {
		name string
		call func() error
	}{
		{"SendText", func() error { return ws.SendText("hello") }},
		{"SendText empty", func() error { return ws.SendText("") }},
		{"SendBinary", func() error { return ws.SendBinary([]byte{1, 2, 3}) }},
		{"SendBinary nil", func() error { return ws.SendBinary(nil) }},
		{"SendJSON", func() error { return ws.SendJSON(map[string]int{"a": 1}) }},
		{"SendPing", func() error { return ws.SendPing([]byte("p")) }},
		{"SendPing nil", func() error { return ws.SendPing(nil) }},
		{"SendPing 125", func() error { return ws.SendPing(make([]byte, 125)) }},
		{"SendPong", func() error { return ws.SendPong([]byte("p")) }},
		{"Close", func() error { return ws.Close(StatusNormal, "goodbye") }},
		{"Close 4999", func() error { return ws.Close(4999, "") }},
		{"Close 123-byte reason", func() error { return ws.Close(StatusNormal, strings.Repeat("r", 123)) }},
	}
	for _, s := range sends {
		if err := s.call(); !errors.Is(err, ErrNotConnected) {
			t.Errorf("%s before Run = %v, want ErrNotConnected", s.name, err)
		}
	}
	if ws.State() != StateIdle {
		t.Errorf("State = %v, want idle", ws.State())
	}
	if ws.Subprotocol() != "" {
		t.Errorf("Subprotocol = %q, want empty", ws.Subprotocol())
	}
}

func TestCloseValidation(t *testing.T) {
	ws := newIdle(t)
	for _, code := range []int{-1, 0, 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000, 65535} {
		if err := ws.Close(code, ""); !errors.Is(err, ErrInvalidCloseCode) {
			t.Errorf("Close(%d) = %v, want ErrInvalidCloseCode", code, err)
		}
	}
	// Valid codes pass validation and fail only for want of a session.
	for _, code := range []int{1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 4000, 4999} {
		if err := ws.Close(code, "bye"); !errors.Is(err, ErrNotConnected) {
			t.Errorf("Close(%d) = %v, want ErrNotConnected", code, err)
		}
	}
	if err := ws.Close(StatusNormal, strings.Repeat("r", 124)); !errors.Is(err, ErrReasonTooLong) {
		t.Errorf("Close with a 124-byte reason = %v, want ErrReasonTooLong", err)
	}
	// 62 two-byte runes: 124 bytes, though only 62 characters.
	if err := ws.Close(StatusNormal, strings.Repeat("é", 62)); !errors.Is(err, ErrReasonTooLong) {
		t.Errorf("Close with a 124-byte UTF-8 reason = %v, want ErrReasonTooLong", err)
	}
	for _, reason := range []string{"\xff", "ok\xc3", "\xed\xa0\x80"} {
		if err := ws.Close(StatusNormal, reason); !errors.Is(err, ErrInvalidUTF8) {
			t.Errorf("Close reason %q = %v, want ErrInvalidUTF8", reason, err)
		}
	}
	// The code is checked first.
	if err := ws.Close(1005, "\xff"); !errors.Is(err, ErrInvalidCloseCode) {
		t.Errorf("Close(1005, invalid) = %v, want ErrInvalidCloseCode", err)
	}
}

func TestSendValidation(t *testing.T) {
	ws := newIdle(t)
	for _, text := range []string{"\xff", "abc\xc3", "\xed\xa0\x80", "\xc0\xaf"} {
		if err := ws.SendText(text); !errors.Is(err, ErrInvalidUTF8) {
			t.Errorf("SendText(%q) = %v, want ErrInvalidUTF8", text, err)
		}
	}
	for _, n := range []int{126, 1000} {
		if err := ws.SendPing(make([]byte, n)); !errors.Is(err, ErrControlTooLarge) {
			t.Errorf("SendPing(%d bytes) = %v, want ErrControlTooLarge", n, err)
		}
		if err := ws.SendPong(make([]byte, n)); !errors.Is(err, ErrControlTooLarge) {
			t.Errorf("SendPong(%d bytes) = %v, want ErrControlTooLarge", n, err)
		}
	}
	for _, v := range []any{make(chan int), func() {}, complex(1, 2)} {
		err := ws.SendJSON(v)
		if err == nil || errors.Is(err, ErrNotConnected) {
			t.Errorf("SendJSON(%T) = %v, want an encoding error", v, err)
		}
	}
	// nil encodes as JSON null: only the missing session is an error.
	if err := ws.SendJSON(nil); !errors.Is(err, ErrNotConnected) {
		t.Errorf("SendJSON(nil) = %v, want ErrNotConnected", err)
	}
}
