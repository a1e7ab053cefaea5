package lomondtest_test

import (
	"strings"
	"testing"

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
