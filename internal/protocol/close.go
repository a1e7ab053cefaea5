package protocol

import (
	"encoding/binary"
	"unicode/utf8"
)

// CloseNoStatus is the code reported for a close frame without a payload
// (RFC 6455 section 7.4.1); it is never sent.
const CloseNoStatus = 1005

// ParseClose reads a close frame's payload: an empty payload means 1005 (no
// status); otherwise a two-byte code that may be sent on the wire and a UTF-8
// reason.
func ParseClose(p []byte) (code int, reason string, err *Error) {
	switch len(p) {
	case 0:
		return CloseNoStatus, "", nil
	case 1:
		return 0, "", violation(CloseProtocolError, "invalid close payload")
	}
	code = int(binary.BigEndian.Uint16(p))
	if !ReceivableCloseCode(code) {
		return code, "", violation(CloseProtocolError, "invalid close code")
	}
	if !utf8.Valid(p[2:]) {
		return code, "", violation(CloseInvalidPayload, "invalid UTF-8 in close reason")
	}
	return code, string(p[2:]), nil
}

// ReceivableCloseCode reports whether a peer may send code in a close frame:
// 1000-1003, 1007-1014 and 3000-4999 (RFC 6455 section 7.4, and the IANA
// registry's 1012-1014).
func ReceivableCloseCode(code int) bool {
	switch {
	case code >= 1000 && code <= 1003, code >= 1007 && code <= 1014:
		return true
	case code >= 3000 && code <= 4999:
		return true
	}
	return false
}

// AppendClosePayload appends a close frame's payload: nothing for code 0,
// else the code and reason.
func AppendClosePayload(b []byte, code int, reason string) []byte {
	if code == 0 {
		return b
	}
	b = binary.BigEndian.AppendUint16(b, uint16(code))
	return append(b, reason...)
}
