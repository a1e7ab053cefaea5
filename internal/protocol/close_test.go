package protocol

import (
	"encoding/binary"
	"testing"
)

// Close frames, sans I/O: the header checks every control frame shares,
// then the payload (ParseClose, AppendClosePayload) on bytes alone.

func TestCloseFrame(t *testing.T) {
	controlFrameCases(t, OpClose)
	t.Run("EmptyPayloadIsNoStatus", func(t *testing.T) {
		code, reason, err := ParseClose(nil)
		if err != nil || code != CloseNoStatus || reason != "" {
			t.Errorf("ParseClose(empty) = %d %q %v, want 1005, no reason", code, reason, err)
		}
	})
	t.Run("CodeAndReasonParse", func(t *testing.T) {
		code, reason, err := ParseClose(AppendClosePayload(nil, 1001, "going away"))
		if err != nil || code != 1001 || reason != "going away" {
			t.Errorf("ParseClose = %d %q %v, want 1001 \"going away\"", code, reason, err)
		}
	})
	t.Run("OneBytePayloadFails1002", func(t *testing.T) {
		_, _, err := ParseClose([]byte{3})
		wantViolation(t, err, CloseProtocolError, "invalid close payload")
	})
	t.Run("UnsendableCodesFail1002", func(t *testing.T) {
		for _, code := range []int{0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535} {
			_, _, err := ParseClose(binary.BigEndian.AppendUint16(nil, uint16(code)))
			if err == nil || err.Code != CloseProtocolError || err.Reason != "invalid close code" {
				t.Errorf("ParseClose(code %d) = %v, want 1002 \"invalid close code\"", code, err)
			}
		}
	})
	t.Run("ReceivableCodesParse", func(t *testing.T) {
		for _, code := range []int{1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 4999} {
			if !ReceivableCloseCode(code) {
				t.Errorf("ReceivableCloseCode(%d) = false", code)
			}
			if got, _, err := ParseClose(AppendClosePayload(nil, code, "")); err != nil || got != code {
				t.Errorf("ParseClose(code %d) = %d %v", code, got, err)
			}
		}
	})
	t.Run("InvalidUTF8ReasonFails1007", func(t *testing.T) {
		_, _, err := ParseClose(AppendClosePayload(nil, 1000, "bad \xff"))
		wantViolation(t, err, CloseInvalidPayload, "invalid UTF-8 in close reason")
	})
	t.Run("CodeZeroAppendsNoPayload", func(t *testing.T) {
		if got := AppendClosePayload([]byte("x"), 0, "ignored"); string(got) != "x" {
			t.Errorf("AppendClosePayload(code 0) = %q, want nothing appended", got)
		}
	})
}
