package lomondtest_test

import (
	"strings"
	"testing"

	"github.com/lomond-go/lomond"
	"github.com/lomond-go/lomond/events"
	"github.com/lomond-go/lomond/lomondtest"
)

func TestMessageString(t *testing.T) {
	for _, tt := range []struct {
		m    lomondtest.Message
		want string
	}{
		{lomondtest.Message{Data: []byte("hi")}, `text "hi"`},
		{lomondtest.Message{Binary: true, Data: []byte{0, 1, 0xff}}, "binary 0001ff"},
		{lomondtest.Message{Data: []byte(strings.Repeat("é", 40))}, `text "` + strings.Repeat("é", 32) + `"... (80 bytes)`},
		{lomondtest.Message{Binary: true, Data: make([]byte, 40)}, "binary " + strings.Repeat("00", 32) + "... (40 bytes)"},
	} {
		if got := tt.m.String(); got != tt.want {
			t.Errorf("String() = %s, want %s", got, tt.want)
		}
	}
}

func TestMatcherDescriptions(t *testing.T) {
	for _, tt := range []struct {
		m    lomondtest.Matcher
		want string
	}{
		{lomondtest.Text("a"), `text "a"`},
		{lomondtest.Binary([]byte{1}), "binary 01"},
		{lomondtest.JSON(map[string]any{"b": 1, "a": []int{2}}), `JSON {"a":[2],"b":1}`},
		{lomondtest.JSON([]byte(`[1, 2]`)), "JSON [1,2]"},
		{lomondtest.JSON(make(chan int)), "JSON (but the expected value is not JSON: json: unsupported type: chan int)"},
		{lomondtest.Match("a ping", nil), "a ping (but the predicate is nil)"},
	} {
		if got := tt.m.String(); got != tt.want {
			t.Errorf("String() = %s, want %s", got, tt.want)
		}
	}
}

func TestMatcherMatches(t *testing.T) {
	text := func(s string) lomondtest.Message { return lomondtest.Message{Data: []byte(s)} }
	for _, tt := range []struct {
		m    lomondtest.Matcher
		msg  lomondtest.Message
		want bool
	}{
		{lomondtest.Text("a"), text("a"), true},
		{lomondtest.Text("a"), lomondtest.Message{Binary: true, Data: []byte("a")}, false},
		{lomondtest.JSON(`{"a": 1, "b": [2]}`), text(`{"b":[2],"a":1}`), true},
		{lomondtest.JSON(`{"a": 1}`), text(`{"a": 2}`), false},
		{lomondtest.JSON(`{"a": 1}`), text(`not json`), false},
		{lomondtest.Match("short", func(m lomondtest.Message) bool { return len(m.Data) < 3 }), text("ab"), true},
		{lomondtest.Matcher{}, text("a"), false},
	} {
		if got := tt.m.Matches(tt.msg); got != tt.want {
			t.Errorf("%v.Matches(%v) = %v, want %v", tt.m, tt.msg, got, tt.want)
		}
	}
}

// AssertMessages checks what the server received with matchers, JSON
// included, and says where the messages part from them.
func TestConnAssertMessages(t *testing.T) {
	srv := lomondtest.NewServer(t, lomondtest.Script())
	ws := srv.Client()
	h := lomond.HandlerFunc(func(ws *lomond.WebSocket, ev events.Event) {
		if ev.Name() == events.NameReady {
			_ = ws.SendJSON(map[string]string{"op": "subscribe", "topic": "ticks"})
			_ = ws.SendText("bye")
			_ = ws.Close(1000, "")
		}
	})
	lomondtest.Run(t, ws, h)
	c := srv.Conn(t, 1)
	c.AssertMessages(t, lomondtest.JSON(`{"topic": "ticks", "op": "subscribe"}`), lomondtest.Text("bye"))

	ft := newFakeT(t)
	msg := ft.fatalOf(func(tb testing.TB) {
		c.AssertMessages(tb, lomondtest.JSON(`{"op": "unsubscribe"}`), lomondtest.Text("bye"))
	})
	mustContain(t, msg, "connection 1: the client's messages do not match",
		`message 1: want JSON {"op":"unsubscribe"}, got text "{\"op\":\"subscribe\",\"topic\":\"ticks\"}"`,
		`->  1 text`, `    2 text "bye"`)
	anything := lomondtest.Match("anything", func(lomondtest.Message) bool { return true })
	msg = ft.fatalOf(func(tb testing.TB) { c.AssertMessages(tb, anything) })
	mustContain(t, msg, `message 2: want no more, got text "bye"`)
	msg = ft.fatalOf(func(tb testing.TB) {
		c.AssertMessages(tb, anything, lomondtest.Text("bye"), lomondtest.Text("again"))
	})
	mustContain(t, msg, `message 3: want text "again", but the connection ended`)
}
