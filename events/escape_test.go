package events

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"unicode"
)

// hostile is text a server controls (a status line, a close reason, a
// subprotocol): terminal escapes, a bell, a bidi override, invalid UTF-8.
const hostile = "ok \x1b[2J\x1b[31mred\a\u202eevil\xff\r\n"

// TestStringEscapesServerText: no String shows a control or bidi-format
// character, whatever the server sent. Before the fix Rejected and Ready
// printed the status text raw.
func TestStringEscapesServerText(t *testing.T) {
	err := errors.New(hostile)
	resp := &http.Response{Status: "101 " + hostile}
	evs := []Event{
		&Connecting{URL: "ws://h/" + hostile},
		&ConnectFail{URL: hostile, Reason: hostile, Err: err},
		&Connected{URL: hostile, Proxy: hostile},
		&Rejected{StatusCode: 403, Status: "403 " + hostile, Reason: hostile, Header: http.Header{"X": {hostile}}, Body: []byte(hostile), Err: err},
		&Ready{Response: resp, Protocol: hostile, Extensions: []string{hostile}},
		&Poll{},
		&Ping{Data: []byte(hostile)},
		&Pong{Data: []byte(hostile)},
		&Text{Text: hostile},
		&Binary{Data: []byte(hostile)},
		&Closing{Code: 4000, Reason: hostile},
		&Closed{Code: 4000, Reason: hostile},
		&Unresponsive{},
		&ProtocolError{Err: err, Code: 1002},
		&Disconnected{Reason: hostile, Err: err},
		&BackOff{Cause: err},
		&Stream{Binary: true},
	}
	if len(evs) != len(allEvents) {
		t.Fatalf("%d events here, %d event types: cover every type", len(evs), len(allEvents))
	}
	for _, ev := range evs {
		s := ev.String()
		for _, r := range s {
			if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
				t.Errorf("%s.String() shows %U raw: %q", ev.Name(), r, s)
				break
			}
		}
		if strings.Contains(s, "\xff") {
			t.Errorf("%s.String() shows invalid UTF-8: %q", ev.Name(), s)
		}
	}
	if s := (&Rejected{Status: "403 " + hostile}).String(); !strings.Contains(s, `403 ok \x1b[2J\x1b[31mred\x07\u202eevil\ufffd\r\n`) {
		t.Errorf("Rejected.String() = %q, want the status escaped as a Python repr would", s)
	}
}
