package protocol

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// DeflateExtension is the extension token of permessage-deflate (RFC 7692
// section 7).
const DeflateExtension = "permessage-deflate"

// Window sizes of permessage-deflate, as the base-2 logarithm of the LZ77
// sliding window (RFC 7692 section 7.1.2).
const (
	// MinWindowBits is the smallest window a peer may ask for (256 bytes).
	MinWindowBits = 8
	// MaxWindowBits is the largest window, and the one used when a
	// *_max_window_bits parameter is absent (32 KiB).
	MaxWindowBits = 15
)

// The parameters of permessage-deflate (RFC 7692 section 7.1).
const (
	paramServerNoContextTakeover = "server_no_context_takeover"
	paramClientNoContextTakeover = "client_no_context_takeover"
	paramServerMaxWindowBits     = "server_max_window_bits"
	paramClientMaxWindowBits     = "client_max_window_bits"
)

var (
	// ErrInvalidOffer is wrapped by DeflateOffer.Validate for an offer that
	// may not be sent.
	ErrInvalidOffer = errors.New("lomond: invalid permessage-deflate offer")
	// ErrExtensionResponse is wrapped by NegotiateDeflate for a server's
	// Sec-WebSocket-Extensions answer that the client must refuse (RFC 6455
	// section 9.1, RFC 7692 section 7.1): the handshake is Rejected.
	ErrExtensionResponse = errors.New("lomond: invalid Sec-WebSocket-Extensions response")
)

// DeflateOffer is the permessage-deflate offer the client sends in its
// Sec-WebSocket-Extensions header. The zero value is the plain offer.
//
// client_max_window_bits is always offered, without a value: the Deflater can
// honour any window the server sets (see Deflater).
type DeflateOffer struct {
	// ClientNoContextTakeover offers client_no_context_takeover: the client
	// compresses every message on its own, so it keeps no compressor between
	// messages (whatever the server answers).
	ClientNoContextTakeover bool
	// ServerNoContextTakeover requests server_no_context_takeover: the
	// server compresses every message on its own, so the client keeps no
	// window between messages (if the server agrees).
	ServerNoContextTakeover bool
	// ServerMaxWindowBits requests server_max_window_bits=N (8..15): the
	// server's window is at most 2^N bytes, and so is the window the client
	// keeps between messages. 0 does not request it.
	ServerMaxWindowBits int
}

// Validate reports an offer that may not be sent: ServerMaxWindowBits other
// than 0 or 8..15. The error wraps ErrInvalidOffer.
func (o DeflateOffer) Validate() error {
	if o.ServerMaxWindowBits != 0 && (o.ServerMaxWindowBits < MinWindowBits || o.ServerMaxWindowBits > MaxWindowBits) {
		return fmt.Errorf("%w: server_max_window_bits %d is not in %d..%d",
			ErrInvalidOffer, o.ServerMaxWindowBits, MinWindowBits, MaxWindowBits)
	}
	return nil
}

// String returns the offer as a Sec-WebSocket-Extensions header value, for
// example "permessage-deflate; server_max_window_bits=10;
// client_max_window_bits". It does not validate the offer.
func (o DeflateOffer) String() string {
	var b strings.Builder
	b.WriteString(DeflateExtension)
	if o.ClientNoContextTakeover {
		b.WriteString("; " + paramClientNoContextTakeover)
	}
	if o.ServerNoContextTakeover {
		b.WriteString("; " + paramServerNoContextTakeover)
	}
	if o.ServerMaxWindowBits != 0 {
		b.WriteString("; " + paramServerMaxWindowBits + "=")
		b.WriteString(strconv.Itoa(o.ServerMaxWindowBits))
	}
	b.WriteString("; " + paramClientMaxWindowBits)
	return b.String()
}

// DeflateParams are the agreed parameters of a permessage-deflate session,
// as NegotiateDeflate returns them. Window bits of 0 mean 15 wherever
// DeflateParams are used.
type DeflateParams struct {
	// ServerNoContextTakeover: the server compresses every message on its
	// own, so the Inflater keeps no window between messages.
	ServerNoContextTakeover bool
	// ClientNoContextTakeover: the Deflater compresses every message on its
	// own (the server asked for it, or the client offered it).
	ClientNoContextTakeover bool
	// ServerMaxWindowBits is the server's window (8..15; 15 when the server
	// did not say): the Inflater keeps the last 2^N bytes between messages.
	ServerMaxWindowBits int
	// ClientMaxWindowBits is the window the server allows the client (8..15;
	// 15 when the server did not say): see Deflater for how it is honoured.
	ClientMaxWindowBits int
}

// String returns the parameters in the form of a Sec-WebSocket-Extensions
// element, for logs and errors; window bits of 15 are left out.
func (p DeflateParams) String() string {
	var b strings.Builder
	b.WriteString(DeflateExtension)
	if p.ServerNoContextTakeover {
		b.WriteString("; " + paramServerNoContextTakeover)
	}
	if p.ClientNoContextTakeover {
		b.WriteString("; " + paramClientNoContextTakeover)
	}
	if n := deflateWindowBits(p.ServerMaxWindowBits); n != MaxWindowBits {
		b.WriteString("; " + paramServerMaxWindowBits + "=" + strconv.Itoa(n))
	}
	if n := deflateWindowBits(p.ClientMaxWindowBits); n != MaxWindowBits {
		b.WriteString("; " + paramClientMaxWindowBits + "=" + strconv.Itoa(n))
	}
	return b.String()
}

// deflateWindowBits maps a window-bits field to 8..15: 0 (unset) and anything out of
// range mean 15.
func deflateWindowBits(n int) int {
	if n < MinWindowBits || n > MaxWindowBits {
		return MaxWindowBits
	}
	return n
}

// NegotiateDeflate checks the server's Sec-WebSocket-Extensions answer (every
// header line, as http.Header holds them) against the client's offer, which
// offered permessage-deflate and no other extension.
//
// An offer that does not validate returns its Validate error.
// With no extension in the answer it returns enabled=false and no error. It
// returns an error wrapping ErrExtensionResponse for an answer the client
// must refuse (RFC 6455 section 9.1, RFC 7692 section 7.1): a malformed
// header, an extension other than permessage-deflate, permessage-deflate more
// than once, an unknown or repeated parameter, a parameter value that is
// missing, present where none is allowed or out of 8..15, or
// server_max_window_bits larger than the client requested. Parameter and
// extension names are matched without regard to case.
//
// The answer decides, within what the RFC lets the server decide:
//   - server_no_context_takeover and server_max_window_bits may be given by
//     the server even if not requested (RFC 7692 7.1.1.1, 7.1.2.1), and may
//     be left out even if requested: the client can decompress either way,
//     so it follows the answer (a server answering plain "permessage-deflate"
//     to a request for no context takeover keeps its context, and the
//     Inflater keeps the window).
//   - client_no_context_takeover may be given by the server; the client does
//     not take over its context if either side asked.
//   - client_max_window_bits needs a value in a response (8..15); the
//     client offered it without one, so any value is accepted.
func NegotiateDeflate(offer DeflateOffer, header []string) (p DeflateParams, enabled bool, err error) {
	if err := offer.Validate(); err != nil {
		return DeflateParams{}, false, err
	}
	exts, err := parseExtensionList(header)
	if err != nil {
		return DeflateParams{}, false, err
	}
	if len(exts) == 0 {
		return DeflateParams{}, false, nil
	}
	for _, e := range exts {
		if !strings.EqualFold(e.name, DeflateExtension) {
			return DeflateParams{}, false, extResponseErr("extension %q was not offered", e.name)
		}
	}
	if len(exts) > 1 {
		return DeflateParams{}, false, extResponseErr("%s accepted %d times", DeflateExtension, len(exts))
	}
	p = DeflateParams{
		ClientNoContextTakeover: offer.ClientNoContextTakeover,
		ServerMaxWindowBits:     MaxWindowBits,
		ClientMaxWindowBits:     MaxWindowBits,
	}
	seen := make(map[string]bool, 4)
	for _, prm := range exts[0].params {
		name := strings.ToLower(prm.name)
		if seen[name] {
			return DeflateParams{}, false, extResponseErr("parameter %s repeated", name)
		}
		seen[name] = true
		switch name {
		case paramServerNoContextTakeover, paramClientNoContextTakeover:
			if prm.hasValue {
				return DeflateParams{}, false, extResponseErr("parameter %s takes no value, got %q", name, prm.value)
			}
			if name == paramServerNoContextTakeover {
				p.ServerNoContextTakeover = true
			} else {
				p.ClientNoContextTakeover = true
			}
		case paramServerMaxWindowBits, paramClientMaxWindowBits:
			n, err := parseWindowBits(name, prm)
			if err != nil {
				return DeflateParams{}, false, err
			}
			if name == paramServerMaxWindowBits {
				if offer.ServerMaxWindowBits != 0 && n > offer.ServerMaxWindowBits {
					return DeflateParams{}, false, extResponseErr("%s=%d is larger than the %d requested", name, n, offer.ServerMaxWindowBits)
				}
				p.ServerMaxWindowBits = n
			} else {
				p.ClientMaxWindowBits = n
			}
		default:
			return DeflateParams{}, false, extResponseErr("unknown parameter %q", prm.name)
		}
	}
	return p, true, nil
}

// parseWindowBits reads a *_max_window_bits value of a response: a decimal
// integer in 8..15 without leading zeroes (RFC 7692 7.1.2.1).
func parseWindowBits(name string, prm extensionParam) (int, error) {
	if !prm.hasValue {
		return 0, extResponseErr("parameter %s needs a value", name)
	}
	v := prm.value
	if len(v) < 1 || len(v) > 2 || v[0] == '0' || strings.Trim(v, "0123456789") != "" {
		return 0, extResponseErr("parameter %s has invalid value %q", name, v)
	}
	n, _ := strconv.Atoi(v) // one or two digits: cannot fail
	if n < MinWindowBits || n > MaxWindowBits {
		return 0, extResponseErr("parameter %s=%d is not in %d..%d", name, n, MinWindowBits, MaxWindowBits)
	}
	return n, nil
}

func extResponseErr(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrExtensionResponse}, args...)...)
}

// extension is one element of a Sec-WebSocket-Extensions list.
type extension struct {
	name   string
	params []extensionParam
}

// extensionParam is one ";"-separated parameter of an extension, its value
// unquoted.
type extensionParam struct {
	name     string
	value    string
	hasValue bool
}

// parseExtensionList parses Sec-WebSocket-Extensions header values (RFC 6455
// section 9.1):
//
//	extension-list  = 1#extension
//	extension       = token *( ";" extension-param )
//	extension-param = token [ "=" ( token / quoted-string ) ]
//
// with optional whitespace around the separators, empty list elements
// skipped (RFC 7230 section 7), and quoted values unescaped, which must then
// be tokens (RFC 6455 section 9.1). Several header lines form one list.
func parseExtensionList(header []string) ([]extension, error) {
	var exts []extension
	for _, line := range header {
		s := extScanner{s: line}
		for {
			s.skipSpace()
			if s.done() {
				break
			}
			if s.peek() == ',' { // empty element
				s.i++
				continue
			}
			name, err := s.token("extension name")
			if err != nil {
				return nil, err
			}
			ext := extension{name: name}
			for {
				s.skipSpace()
				if s.done() || s.peek() == ',' {
					break
				}
				if s.peek() != ';' {
					return nil, s.errorf("expected ';' or ','")
				}
				s.i++
				s.skipSpace()
				prm, err := s.param()
				if err != nil {
					return nil, err
				}
				ext.params = append(ext.params, prm)
			}
			exts = append(exts, ext)
			if !s.done() {
				s.i++ // the ','
			}
		}
	}
	return exts, nil
}

// extScanner scans one header value.
type extScanner struct {
	s string
	i int
}

func (s *extScanner) done() bool { return s.i >= len(s.s) }
func (s *extScanner) peek() byte { return s.s[s.i] }

func (s *extScanner) skipSpace() {
	for s.i < len(s.s) && (s.s[s.i] == ' ' || s.s[s.i] == '\t') {
		s.i++
	}
}

func (s *extScanner) errorf(format string, args ...any) error {
	return extResponseErr("malformed header %q at byte %d: %s", s.s, s.i, fmt.Sprintf(format, args...))
}

// token reads an RFC 7230 token.
func (s *extScanner) token(what string) (string, error) {
	start := s.i
	for s.i < len(s.s) && isExtTokenByte(s.s[s.i]) {
		s.i++
	}
	if s.i == start {
		return "", s.errorf("expected %s", what)
	}
	return s.s[start:s.i], nil
}

// param reads name [ "=" ( token / quoted-string ) ].
func (s *extScanner) param() (extensionParam, error) {
	name, err := s.token("parameter name")
	if err != nil {
		return extensionParam{}, err
	}
	prm := extensionParam{name: name}
	s.skipSpace()
	if s.done() || s.peek() != '=' {
		return prm, nil
	}
	s.i++
	s.skipSpace()
	prm.hasValue = true
	if s.done() || s.peek() != '"' {
		prm.value, err = s.token("parameter value")
		return prm, err
	}
	s.i++ // opening quote
	var v []byte
	for {
		if s.done() {
			return extensionParam{}, s.errorf("unterminated quoted string")
		}
		c := s.s[s.i]
		s.i++
		switch {
		case c == '"':
			if len(v) == 0 || !isExtToken(string(v)) {
				return extensionParam{}, s.errorf("quoted value %q is not a token", v)
			}
			prm.value = string(v)
			return prm, nil
		case c == '\\':
			if s.done() {
				return extensionParam{}, s.errorf("unterminated quoted string")
			}
			v = append(v, s.s[s.i])
			s.i++
		default:
			v = append(v, c)
		}
	}
}

// isExtTokenByte reports whether c may appear in an RFC 7230 token.
func isExtTokenByte(c byte) bool {
	return c > ' ' && c < 0x7f && strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) < 0
}

func isExtToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isExtTokenByte(s[i]) {
			return false
		}
	}
	return true
}
