package events

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"
)

// allEvents lists one value of every event type with lomond's name for it.
var allEvents = []struct {
	ev   Event
	name string
}{
	{&Connecting{}, "connecting"},
	{&ConnectFail{}, "connect_fail"},
	{&Connected{}, "connected"},
	{&Rejected{}, "rejected"},
	{&Ready{}, "ready"},
	{&Poll{}, "poll"},
	{&Ping{}, "ping"},
	{&Pong{}, "pong"},
	{&Text{}, "text"},
	{&Binary{}, "binary"},
	{&Closing{}, "closing"},
	{&Closed{}, "closed"},
	{&Unresponsive{}, "unresponsive"},
	{&ProtocolError{}, "protocol_error"},
	{&Disconnected{}, "disconnected"},
	{&BackOff{}, "back_off"},
	{&Stream{}, "stream"},
}

func TestNames(t *testing.T) {
	seen := map[string]bool{}
	for _, c := range allEvents {
		if got := c.ev.Name(); got != c.name {
			t.Errorf("%T.Name() = %q, want %q", c.ev, got, c.name)
		}
		if seen[c.name] {
			t.Errorf("name %q used twice", c.name)
		}
		seen[c.name] = true
	}
}

func TestZeroValuesRenderWithoutPanic(t *testing.T) {
	for _, c := range allEvents {
		if s := c.ev.String(); s == "" {
			t.Errorf("%T.String() is empty", c.ev)
		}
	}
}

func TestReceivedTime(t *testing.T) {
	before := time.Now()
	m := Stamp()
	after := time.Now()
	if m.Received.Before(before) || m.Received.After(after) {
		t.Fatalf("Stamp() = %v, want between %v and %v", m.Received, before, after)
	}
	fixed := time.Date(2024, 5, 6, 7, 8, 9, 10, time.UTC)
	for _, c := range allEvents {
		ev := withMeta(c.ev, Meta{Received: fixed})
		if got := ev.ReceivedTime(); !got.Equal(fixed) {
			t.Errorf("%T.ReceivedTime() = %v, want %v", ev, got, fixed)
		}
	}
}

// withMeta returns a fresh event of ev's type carrying m.
func withMeta(ev Event, m Meta) Event {
	switch ev.(type) {
	case *Connecting:
		return &Connecting{Meta: m}
	case *ConnectFail:
		return &ConnectFail{Meta: m}
	case *Connected:
		return &Connected{Meta: m}
	case *Rejected:
		return &Rejected{Meta: m}
	case *Ready:
		return &Ready{Meta: m}
	case *Poll:
		return &Poll{Meta: m}
	case *Ping:
		return &Ping{Meta: m}
	case *Pong:
		return &Pong{Meta: m}
	case *Text:
		return &Text{Meta: m}
	case *Binary:
		return &Binary{Meta: m}
	case *Closing:
		return &Closing{Meta: m}
	case *Closed:
		return &Closed{Meta: m}
	case *Unresponsive:
		return &Unresponsive{Meta: m}
	case *ProtocolError:
		return &ProtocolError{Meta: m}
	case *Disconnected:
		return &Disconnected{Meta: m}
	case *BackOff:
		return &BackOff{Meta: m}
	case *Stream:
		return &Stream{Meta: m}
	}
	panic("unknown event type")
}

func TestString(t *testing.T) {
	resp101 := &http.Response{Status: "101 Switching Protocols", StatusCode: 101}
	cases := []struct {
		ev   Event
		want string
	}{
		{&Connecting{URL: "ws://example.com/"}, `Connecting(url='ws://example.com/')`},
		{&ConnectFail{Reason: "unable to connect"}, `ConnectFail(reason='unable to connect')`},
		{&Connected{URL: "ws://h/"}, `Connected(url='ws://h/')`},
		{&Connected{URL: "ws://h/", Proxy: "http://p:3128"}, `Connected(url='ws://h/', proxy='http://p:3128')`},
		{&Rejected{StatusCode: 403, Status: "403 Forbidden", Reason: "websocket upgrade failed (code=403)"},
			`Rejected(response=<response HTTP/1.1 403 Forbidden>, reason='websocket upgrade failed (code=403)')`},
		{&Ready{Response: resp101},
			`Ready(response=<response HTTP/1.1 101 Switching Protocols>, protocol=None, extensions=set())`},
		{&Ready{},
			`Ready(response=<response HTTP/1.1 101 Switching Protocols>, protocol=None, extensions=set())`},
		{&Ready{Response: resp101, Protocol: "chat", Extensions: []string{"permessage-deflate"}},
			`Ready(response=<response HTTP/1.1 101 Switching Protocols>, protocol='chat', extensions={'permessage-deflate'})`},
		{&Poll{}, `Poll()`},
		{&Ping{Data: []byte("xyz")}, `Ping(data=b'xyz')`},
		{&Ping{}, `Ping(data=b'')`},
		{&Pong{Data: []byte("unsolicited")}, `Pong(data=b'unsolicited')`},
		{&Pong{Data: []byte{0, 1, 0xff}, RTT: time.Second}, `Pong(data=b'\x00\x01\xff')`},
		{&Text{Text: "hi"}, `Text(text='hi')`},
		{&Text{Text: ""}, `Text(text='')`},
		{&Text{Text: strings.Repeat("A", 24)}, `Text(text='` + strings.Repeat("A", 24) + `')`},
		{&Text{Text: strings.Repeat("A", 30)}, `Text(text='` + strings.Repeat("A", 24) + `…' + 6 chars)`},
		{&Text{Text: strings.Repeat("é", 25)}, `Text(text='` + strings.Repeat("é", 24) + `…' + 1 chars)`},
		{&Binary{Data: []byte("plain binary")}, `Binary(data=b'plain binary')`},
		{&Binary{Data: []byte(strings.Repeat("B", 24))}, `Binary(data=b'` + strings.Repeat("B", 24) + `')`},
		{&Binary{Data: []byte(strings.Repeat("B", 30))}, `Binary(data=b'` + strings.Repeat("B", 24) + `…' + 6 bytes)`},
		{&Binary{Data: make([]byte, 100)}, `Binary(data=b'` + strings.Repeat(`\x00`, 24) + `…' + 76 bytes)`},
		{&Closing{Code: 1000, Reason: "bye"}, `Closing(code=1000, reason='bye')`},
		{&Closing{Code: 1005}, `Closing(code=None, reason='')`},
		{&Closed{Code: 1000, Reason: "goodbye"}, `Closed(code=1000, reason='goodbye')`},
		{&Closed{Code: 1005}, `Closed(code=None, reason='')`},
		{&Closed{Code: 4000, Reason: "app"}, `Closed(code=4000, reason='app')`},
		{&Unresponsive{Timeout: time.Second}, `Unresponsive()`},
		{&ProtocolError{Err: errors.New("server sent masked frame"), Code: 1002},
			`ProtocolError(error='server sent masked frame', critical=False)`},
		{&ProtocolError{Err: errors.New("invalid utf8"), Code: 1007, Critical: true},
			`ProtocolError(error='invalid utf8', critical=True)`},
		{&ProtocolError{}, `ProtocolError(error=None, critical=False)`},
		{&Disconnected{Reason: "closed", Graceful: true}, `Disconnected(reason='closed', graceful=True)`},
		{&Disconnected{Reason: "socket fail; connection lost"},
			`Disconnected(reason='socket fail; connection lost', graceful=False)`},
		{&BackOff{Delay: 1500 * time.Millisecond}, `BackOff(delay=1.5)`},
		{&BackOff{Delay: time.Second}, `BackOff(delay=1.0)`},
		{&BackOff{Delay: 800 * time.Millisecond}, `BackOff(delay=0.8)`},
		{&BackOff{Delay: 1234 * time.Millisecond}, `BackOff(delay=1.2)`},
		{&BackOff{}, `BackOff(delay=0.0)`},
		{&BackOff{Delay: time.Millisecond}, `BackOff(delay=0.001)`},
		{&BackOff{Delay: 49500 * time.Microsecond}, `BackOff(delay=0.0495)`},
		{&BackOff{Delay: 50 * time.Millisecond}, `BackOff(delay=0.1)`},
		{&BackOff{Delay: time.Nanosecond}, `BackOff(delay=0.000000001)`},
	}
	for _, c := range cases {
		if got := c.ev.String(); got != c.want {
			t.Errorf("%T.String()\n got %s\nwant %s", c.ev, got, c.want)
		}
	}
}

// TestStringQuoting checks that quoting follows Python's repr rules.
func TestStringQuoting(t *testing.T) {
	cases := []struct {
		ev   Event
		want string
	}{
		// Python picks double quotes when the text holds ' and no ".
		{&Text{Text: "it's"}, `Text(text="it's")`},
		{&Text{Text: `say "hi"`}, `Text(text='say "hi"')`},
		{&Text{Text: `it's "x"`}, `Text(text='it\'s "x"')`},
		{&Text{Text: `back\slash`}, `Text(text='back\\slash')`},
		{&Text{Text: "a\tb\nc\rd"}, `Text(text='a\tb\nc\rd')`},
		{&Text{Text: "\x00\x07\x1b\x7f"}, `Text(text='\x00\x07\x1b\x7f')`},
		{&Text{Text: "héllo wörld ☃ 😀"}, `Text(text='héllo wörld ☃ 😀')`},
		{&Text{Text: "\u00a0\u200b"}, `Text(text='\xa0\u200b')`},
		{&Text{Text: "\ufffd"}, "Text(text='\ufffd')"},
		{&Text{Text: "bad\xffbyte"}, `Text(text='bad\ufffdbyte')`},
		{&Closing{Code: 1000, Reason: "don't"}, `Closing(code=1000, reason="don't")`},
		{&Binary{Data: []byte("it's")}, `Binary(data=b"it's")`},
		{&Binary{Data: []byte("a\tb\nc\rd\\")}, `Binary(data=b'a\tb\nc\rd\\')`},
		{&Binary{Data: []byte(`'"`)}, `Binary(data=b'\'"')`},
		{&Binary{Data: []byte(strings.Repeat("'", 25))}, `Binary(data=b"` + strings.Repeat("'", 24) + `…" + 1 bytes)`},
	}
	for _, c := range cases {
		if got := c.ev.String(); got != c.want {
			t.Errorf("%T.String()\n got %s\nwant %s", c.ev, got, c.want)
		}
	}
}

// TestTruncationKeepsRunesWhole checks that a long text is cut on a rune
// boundary, so the repr stays valid UTF-8.
func TestTruncationKeepsRunesWhole(t *testing.T) {
	s := (&Text{Text: strings.Repeat("😀", 40)}).String()
	want := `Text(text='` + strings.Repeat("😀", 24) + `…' + 16 chars)`
	if s != want {
		t.Fatalf("got %s\nwant %s", s, want)
	}
}

func TestTextJSON(t *testing.T) {
	ev := &Text{Text: `{"a": 1, "b": ["x", "y"]}`}
	var v struct {
		A int      `json:"a"`
		B []string `json:"b"`
	}
	if err := ev.JSON(&v); err != nil {
		t.Fatalf("JSON: %v", err)
	}
	if v.A != 1 || len(v.B) != 2 || v.B[0] != "x" || v.B[1] != "y" {
		t.Fatalf("JSON decoded %+v", v)
	}

	var anyV any
	if err := (&Text{Text: "[1,2]"}).JSON(&anyV); err != nil {
		t.Fatalf("JSON array: %v", err)
	}
	if arr, ok := anyV.([]any); !ok || len(arr) != 2 {
		t.Fatalf("JSON array decoded %#v", anyV)
	}

	for _, bad := range []string{"", "not json", `{"a":`, "{} trailing"} {
		var x any
		if err := (&Text{Text: bad}).JSON(&x); err == nil {
			t.Errorf("JSON(%q) = nil error, want an error", bad)
		}
	}
	if err := ev.JSON(nil); err == nil {
		t.Error("JSON(nil) = nil error, want an error")
	}
}
