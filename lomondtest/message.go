package lomondtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"unicode/utf8"
)

// Message is a message the client sent.
type Message struct {
	// Binary is true for a binary message, false for text.
	Binary bool
	// Data is the payload.
	Data []byte
}

// String renders the message for failure messages: text "hello", or
// binary 000102 (hex), long payloads cut.
func (m Message) String() string {
	const limit = 64
	if !m.Binary {
		s := string(m.Data)
		if len(s) > limit {
			cut := limit
			for cut > 0 && !utf8.RuneStart(s[cut]) {
				cut--
			}
			return fmt.Sprintf("text %q... (%d bytes)", s[:cut], len(s))
		}
		return fmt.Sprintf("text %q", s)
	}
	if len(m.Data) > limit/2 {
		return fmt.Sprintf("binary %x... (%d bytes)", m.Data[:limit/2], len(m.Data))
	}
	return fmt.Sprintf("binary %x", m.Data)
}

// Matcher decides whether a message is the one a step expects. Make one
// with Text, Binary, JSON or Match.
type Matcher struct {
	what  string
	match func(Message) bool
}

// String says what the matcher expects, as failure messages show it.
func (m Matcher) String() string { return m.what }

// Text matches a text message equal to s.
func Text(s string) Matcher {
	want := Message{Data: []byte(s)}
	return Matcher{what: want.String(), match: func(m Message) bool {
		return !m.Binary && string(m.Data) == s
	}}
}

// Binary matches a binary message equal to b.
func Binary(b []byte) Matcher {
	want := Message{Binary: true, Data: append([]byte(nil), b...)}
	return Matcher{what: want.String(), match: func(m Message) bool {
		return m.Binary && bytes.Equal(m.Data, want.Data)
	}}
}

// JSON matches a message (text or binary) holding JSON equal to v, whatever
// its spacing and key order: both are decoded and compared as values. v is
// a JSON document when it is a string, []byte or json.RawMessage, and is
// encoded with encoding/json otherwise (a map, a struct, a slice...). A v
// that is neither valid JSON nor encodable matches nothing, and says so in
// the failure message.
func JSON(v any) Matcher {
	var doc []byte
	var err error
	switch x := v.(type) {
	case string:
		doc = []byte(x)
	case []byte:
		doc = x
	case json.RawMessage:
		doc = x
	default:
		doc, err = json.Marshal(v)
	}
	var want any
	if err == nil {
		err = json.Unmarshal(doc, &want)
	}
	if err != nil {
		return Matcher{
			what:  fmt.Sprintf("JSON (but the expected value is not JSON: %v)", err),
			match: func(Message) bool { return false },
		}
	}
	canon, _ := json.Marshal(want) // sorted keys: readable and stable
	return Matcher{what: "JSON " + string(canon), match: func(m Message) bool {
		var got any
		if json.Unmarshal(m.Data, &got) != nil {
			return false
		}
		return reflect.DeepEqual(got, want)
	}}
}

// Match matches the messages for which f returns true; what describes them
// in failure messages ("a subscribe request").
func Match(what string, f func(Message) bool) Matcher {
	if f == nil {
		return Matcher{what: what + " (but the predicate is nil)", match: func(Message) bool { return false }}
	}
	return Matcher{what: what, match: f}
}

// Matches reports whether m is a message mt accepts: the check Expect
// makes, for the messages a test reads from Conn.Messages. A zero Matcher
// matches nothing.
func (mt Matcher) Matches(m Message) bool {
	return mt.match != nil && mt.match(m)
}
