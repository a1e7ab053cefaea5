package protocol

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

// TestMain checks that no test leaves a goroutine behind
// (TestDeflateConcurrentSessions starts some). If the package gets a
// main_test.go, this belongs there.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestDeflateOfferString(t *testing.T) {
	tests := []struct {
		offer DeflateOffer
		want  string
	}{
		{DeflateOffer{}, "permessage-deflate; client_max_window_bits"},
		{DeflateOffer{ClientNoContextTakeover: true}, "permessage-deflate; client_no_context_takeover; client_max_window_bits"},
		{DeflateOffer{ServerNoContextTakeover: true}, "permessage-deflate; server_no_context_takeover; client_max_window_bits"},
		{DeflateOffer{ServerMaxWindowBits: 10}, "permessage-deflate; server_max_window_bits=10; client_max_window_bits"},
		{
			DeflateOffer{ClientNoContextTakeover: true, ServerNoContextTakeover: true, ServerMaxWindowBits: 8},
			"permessage-deflate; client_no_context_takeover; server_no_context_takeover; server_max_window_bits=8; client_max_window_bits",
		},
	}
	for _, tt := range tests {
		if got := tt.offer.String(); got != tt.want {
			t.Errorf("%+v: got %q, want %q", tt.offer, got, tt.want)
		}
		// Our own parser reads what we send.
		exts, err := parseExtensionList([]string{tt.offer.String()})
		if err != nil || len(exts) != 1 || exts[0].name != DeflateExtension {
			t.Errorf("%q does not parse back: %v, %v", tt.want, exts, err)
		}
	}
}

func TestDeflateOfferValidate(t *testing.T) {
	for _, bits := range []int{0, 8, 9, 12, 15} {
		if err := (DeflateOffer{ServerMaxWindowBits: bits}).Validate(); err != nil {
			t.Errorf("bits %d: %v", bits, err)
		}
	}
	for _, bits := range []int{-1, 1, 7, 16, 100} {
		err := DeflateOffer{ServerMaxWindowBits: bits}.Validate()
		if !errors.Is(err, ErrInvalidOffer) || !strings.HasPrefix(err.Error(), "lomond: ") || strings.Count(err.Error(), "lomond:") != 1 {
			t.Errorf("bits %d: %v, want ErrInvalidOffer", bits, err)
		}
	}
}

func TestNegotiateDeflate(t *testing.T) {
	def := DeflateParams{ServerMaxWindowBits: 15, ClientMaxWindowBits: 15}
	with := func(f func(*DeflateParams)) DeflateParams { p := def; f(&p); return p }
	tests := []struct {
		name   string
		offer  DeflateOffer
		header []string
		want   DeflateParams
		on     bool
	}{
		{"no header", DeflateOffer{}, nil, DeflateParams{}, false},
		{"empty header", DeflateOffer{}, []string{""}, DeflateParams{}, false},
		{"empty elements", DeflateOffer{}, []string{" , ,\t", ""}, DeflateParams{}, false},
		{"plain", DeflateOffer{}, []string{"permessage-deflate"}, def, true},
		{"surrounding empty elements", DeflateOffer{}, []string{", permessage-deflate ,"}, def, true},
		{"on a later line", DeflateOffer{}, []string{"", "permessage-deflate"}, def, true},
		{"both no context takeover", DeflateOffer{}, []string{"permessage-deflate; server_no_context_takeover; client_no_context_takeover"},
			with(func(p *DeflateParams) { p.ServerNoContextTakeover, p.ClientNoContextTakeover = true, true }), true},
		{"client no takeover offered, answer plain", DeflateOffer{ClientNoContextTakeover: true}, []string{"permessage-deflate"},
			with(func(p *DeflateParams) { p.ClientNoContextTakeover = true }), true},
		{"server no takeover requested, answer plain: the server keeps context", DeflateOffer{ServerNoContextTakeover: true}, []string{"permessage-deflate"},
			def, true},
		{"server window as requested", DeflateOffer{ServerMaxWindowBits: 10}, []string{"permessage-deflate; server_max_window_bits=10"},
			with(func(p *DeflateParams) { p.ServerMaxWindowBits = 10 }), true},
		{"server window smaller than requested", DeflateOffer{ServerMaxWindowBits: 12}, []string{"permessage-deflate; server_max_window_bits=9"},
			with(func(p *DeflateParams) { p.ServerMaxWindowBits = 9 }), true},
		{"server window not requested (RFC 7692 7.1.2.1 allows it)", DeflateOffer{}, []string{"permessage-deflate; server_max_window_bits=8"},
			with(func(p *DeflateParams) { p.ServerMaxWindowBits = 8 }), true},
		{"server window requested, not answered", DeflateOffer{ServerMaxWindowBits: 10}, []string{"permessage-deflate"}, def, true},
		{"client window", DeflateOffer{}, []string{"permessage-deflate; client_max_window_bits=9"},
			with(func(p *DeflateParams) { p.ClientMaxWindowBits = 9 }), true},
		{"quoted values", DeflateOffer{ServerMaxWindowBits: 15}, []string{`permessage-deflate; client_max_window_bits="12"; server_max_window_bits="1\5"`},
			with(func(p *DeflateParams) { p.ClientMaxWindowBits = 12 }), true},
		{"whitespace everywhere", DeflateOffer{}, []string{" \tpermessage-deflate ;server_no_context_takeover\t; client_max_window_bits = 11 , "},
			with(func(p *DeflateParams) { p.ServerNoContextTakeover, p.ClientMaxWindowBits = true, 11 }), true},
		{"names in any case", DeflateOffer{}, []string{"PerMessage-Deflate; Server_No_Context_Takeover; CLIENT_MAX_WINDOW_BITS=10"},
			with(func(p *DeflateParams) { p.ServerNoContextTakeover, p.ClientMaxWindowBits = true, 10 }), true},
		{"everything", DeflateOffer{ServerMaxWindowBits: 9, ServerNoContextTakeover: true, ClientNoContextTakeover: true},
			[]string{"permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=9; client_max_window_bits=8"},
			DeflateParams{ServerNoContextTakeover: true, ClientNoContextTakeover: true, ServerMaxWindowBits: 9, ClientMaxWindowBits: 8}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, on, err := NegotiateDeflate(tt.offer, tt.header)
			if err != nil || on != tt.on || p != tt.want {
				t.Fatalf("got %+v, %v, %v; want %+v, %v", p, on, err, tt.want, tt.on)
			}
		})
	}
}

func TestNegotiateDeflateInvalid(t *testing.T) {
	tests := []struct {
		name   string
		offer  DeflateOffer
		header []string
		says   string // in the error message
	}{
		{"extension not offered", DeflateOffer{}, []string{"x-webkit-deflate-frame"}, `extension "x-webkit-deflate-frame" was not offered`},
		{"another extension too", DeflateOffer{}, []string{"permessage-deflate, foo"}, `extension "foo" was not offered`},
		{"twice in one line", DeflateOffer{}, []string{"permessage-deflate, permessage-deflate"}, "accepted 2 times"},
		{"twice on two lines", DeflateOffer{}, []string{"permessage-deflate", "permessage-deflate; server_no_context_takeover"}, "accepted 2 times"},
		{"unknown parameter", DeflateOffer{}, []string{"permessage-deflate; foo"}, `unknown parameter "foo"`},
		{"unknown parameter with value", DeflateOffer{}, []string{"permessage-deflate; mem_level=8"}, `unknown parameter "mem_level"`},
		{"repeated parameter", DeflateOffer{}, []string{"permessage-deflate; server_no_context_takeover; server_no_context_takeover"}, "server_no_context_takeover repeated"},
		{"repeated in another case", DeflateOffer{}, []string{"permessage-deflate; client_max_window_bits=9; Client_Max_Window_Bits=10"}, "client_max_window_bits repeated"},
		{"flag with a value", DeflateOffer{}, []string{"permessage-deflate; server_no_context_takeover=1"}, "takes no value"},
		{"flag with a quoted value", DeflateOffer{}, []string{`permessage-deflate; client_no_context_takeover="x"`}, "takes no value"},
		{"client window without value", DeflateOffer{}, []string{"permessage-deflate; client_max_window_bits"}, "client_max_window_bits needs a value"},
		{"server window without value", DeflateOffer{ServerMaxWindowBits: 10}, []string{"permessage-deflate; server_max_window_bits"}, "server_max_window_bits needs a value"},
		{"window 7", DeflateOffer{}, []string{"permessage-deflate; client_max_window_bits=7"}, "not in 8..15"},
		{"window 16", DeflateOffer{}, []string{"permessage-deflate; server_max_window_bits=16"}, "not in 8..15"},
		{"window 100", DeflateOffer{}, []string{"permessage-deflate; client_max_window_bits=100"}, "invalid value"},
		{"leading zero", DeflateOffer{}, []string{"permessage-deflate; client_max_window_bits=09"}, "invalid value"},
		{"zero", DeflateOffer{}, []string{"permessage-deflate; client_max_window_bits=0"}, "invalid value"},
		{"sign", DeflateOffer{}, []string{"permessage-deflate; client_max_window_bits=+9"}, "invalid value"},
		{"negative", DeflateOffer{}, []string{"permessage-deflate; client_max_window_bits=-9"}, "invalid value"},
		{"not a number", DeflateOffer{}, []string{"permessage-deflate; client_max_window_bits=ten"}, "invalid value"},
		{"decimal", DeflateOffer{}, []string{"permessage-deflate; client_max_window_bits=9.5"}, "invalid value"},
		{"server window larger than requested", DeflateOffer{ServerMaxWindowBits: 10}, []string{"permessage-deflate; server_max_window_bits=11"}, "larger than the 10 requested"},
		{"missing semicolon", DeflateOffer{}, []string{"permessage-deflate server_no_context_takeover"}, "expected ';' or ','"},
		{"empty parameter", DeflateOffer{}, []string{"permessage-deflate;"}, "expected parameter name"},
		{"double semicolon", DeflateOffer{}, []string{"permessage-deflate;; server_no_context_takeover"}, "expected parameter name"},
		{"parameters without extension", DeflateOffer{}, []string{"; server_no_context_takeover"}, "expected extension name"},
		{"empty value", DeflateOffer{}, []string{"permessage-deflate; client_max_window_bits="}, "expected parameter value"},
		{"empty quoted value", DeflateOffer{}, []string{`permessage-deflate; client_max_window_bits=""`}, "not a token"},
		{"quoted value not a token", DeflateOffer{}, []string{`permessage-deflate; client_max_window_bits="1 0"`}, "not a token"},
		{"unterminated quote", DeflateOffer{}, []string{`permessage-deflate; client_max_window_bits="10`}, "unterminated quoted string"},
		{"unterminated escape", DeflateOffer{}, []string{`permessage-deflate; client_max_window_bits="10\`}, "unterminated quoted string"},
		{"two values", DeflateOffer{}, []string{"permessage-deflate; client_max_window_bits=9=10"}, "expected ';' or ','"},
		{"separator as name", DeflateOffer{}, []string{"permessage-deflate; =9"}, "expected parameter name"},
		{"control byte", DeflateOffer{}, []string{"permessage-deflate\x00"}, "expected ';' or ','"},
		{"non-ASCII", DeflateOffer{}, []string{"permessage-déflate"}, "expected ';' or ','"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, on, err := NegotiateDeflate(tt.offer, tt.header)
			if !errors.Is(err, ErrExtensionResponse) {
				t.Fatalf("got %+v, %v, %v; want ErrExtensionResponse", p, on, err)
			}
			if on || p != (DeflateParams{}) {
				t.Errorf("with the error: %+v, enabled %v; want zero values", p, on)
			}
			msg := err.Error()
			if !strings.Contains(msg, tt.says) {
				t.Errorf("error %q does not say %q", msg, tt.says)
			}
			if !strings.HasPrefix(msg, "lomond: invalid Sec-WebSocket-Extensions response: ") || strings.Count(msg, "lomond:") != 1 {
				t.Errorf("error %q: want one lomond: prefix", msg)
			}
		})
	}
}

// TestNegotiatedSession: what NegotiateDeflate returns configures a Deflater
// and an Inflater that understand each other (here the client's own
// messages, as a server would read them).
func TestNegotiatedSession(t *testing.T) {
	h := http.Header{}
	h.Add("Sec-WebSocket-Extensions", "permessage-deflate; client_max_window_bits=9; server_no_context_takeover")
	p, on, err := NegotiateDeflate(DeflateOffer{ServerNoContextTakeover: true}, h.Values("Sec-WebSocket-Extensions"))
	if err != nil || !on {
		t.Fatal(on, err)
	}
	d := NewDeflater(p, DefaultDeflateLevel)
	// The server's view: it receives with the client's parameters.
	f := NewInflater(DeflateParams{ServerMaxWindowBits: p.ClientMaxWindowBits, ServerNoContextTakeover: p.ClientNoContextTakeover})
	for _, m := range []string{"hello", strings.Repeat("hello websocket ", 100), ""} {
		got, err := f.Inflate(nil, d.Deflate(nil, []byte(m)), -1)
		if err != nil || string(got) != m {
			t.Fatalf("%q: got %q, %v", m, got, err)
		}
	}
}

func ExampleNegotiateDeflate() {
	offer := DeflateOffer{ServerMaxWindowBits: 10}
	fmt.Println(offer)
	// The server's 101 response had this header:
	answer := []string{"permessage-deflate; server_max_window_bits=10; client_max_window_bits=12"}
	p, enabled, err := NegotiateDeflate(offer, answer)
	fmt.Println(enabled, err)
	fmt.Println(p)
	// Output:
	// permessage-deflate; server_max_window_bits=10; client_max_window_bits
	// true <nil>
	// permessage-deflate; server_max_window_bits=10; client_max_window_bits=12
}
