package lomond

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

// The one redaction path: whatever the library shows (events, errors, log
// lines) goes through these functions, never a raw URL or header.
//
//   - a websocket URL is shown with the values of sensitive query keys
//     replaced by "xxxxx" (shownURL);
//   - a proxy URL is shown as scheme://host:port only: no user name (which
//     may be a token), no password, no path or query (shownProxy);
//   - the Authorization, Proxy-Authorization, Cookie and Set-Cookie headers
//     of a response the library hands out have their values replaced
//     (redactHeader);
//   - text a server controls is escaped before it reaches an Error string
//     (printable);
//   - text the library did not write, such as a before-dial hook's error,
//     has the URLs in it shown as shownURL shows them (shownText).

// redacted replaces a secret.
const redacted = "xxxxx"

// defaultSensitiveKeys are the query keys whose values are never shown.
var defaultSensitiveKeys = []string{
	"access_token", "api_key", "apikey", "auth", "client_secret", "jwt", "key",
	"password", "secret", "session", "signature", "token",
}

// sensitiveSuffixes make a query key sensitive when it ends with one of them
// (refresh_token, x-api-key, X-Amz-Signature...).
var sensitiveSuffixes = []string{"_token", "-token", "_key", "-key", "_secret", "-secret", "_signature", "-signature"}

// sensitiveKeys is the set of query keys whose values are redacted, in
// lower case.
type sensitiveKeys map[string]bool

// defaultSensitive is the default set, shared by every config that adds
// no key of its own (a map per WebSocket cost 480 bytes per connection).
var defaultSensitive = newSensitiveKeys()

func newSensitiveKeys() sensitiveKeys {
	k := sensitiveKeys{}
	for _, name := range defaultSensitiveKeys {
		k[name] = true
	}
	return k
}

func (k sensitiveKeys) has(key string) bool {
	key = strings.ToLower(key)
	if k[key] {
		return true
	}
	for _, s := range sensitiveSuffixes {
		if strings.HasSuffix(key, s) {
			return true
		}
	}
	return false
}

// WithSensitiveQueryKeys names query keys whose values are secrets (API
// keys, tokens, signatures), in addition to the defaults: access_token,
// api_key, apikey, auth, client_secret, jwt, key, password, secret, session,
// signature and token, and any key ending with _token, -token, _key, -key,
// _secret, -secret, _signature or -signature. Keys match ignoring case.
// Their values are sent as given, and shown as "xxxxx" in every event,
// error and log line. The defaults cannot be turned off: a log line that
// lacks a value is better than one that leaks it.
func WithSensitiveQueryKeys(keys ...string) Option {
	return func(c *config) error {
		for _, k := range keys {
			if !isToken(k) || strings.ContainsAny(k, "=&") {
				return optErr("sensitive query key %q is not a valid key", k)
			}
		}
		if c.sensitive == nil || c.sharedSensitive {
			// Copy on write: the defaults are shared by every WebSocket.
			own := newSensitiveKeys()
			for k := range c.sensitive {
				own[k] = true
			}
			c.sensitive, c.sharedSensitive = own, false
		}
		for _, k := range keys {
			c.sensitive[strings.ToLower(k)] = true
		}
		return nil
	}
}

// shownURL returns u as the library shows it: without user information,
// with the values of sensitive query keys replaced. The order and encoding
// of the rest of the query are kept.
func shownURL(u *url.URL, keys sensitiveKeys) string {
	if u == nil {
		return ""
	}
	c := *u
	c.User = nil
	if c.RawQuery != "" {
		parts := strings.Split(c.RawQuery, "&")
		for i, p := range parts {
			rawKey, _, _ := strings.Cut(p, "=")
			key, err := url.QueryUnescape(rawKey)
			if err != nil {
				key = rawKey
			}
			if keys.has(key) {
				parts[i] = rawKey + "=" + redacted
			}
		}
		c.RawQuery = strings.Join(parts, "&")
	}
	return c.String()
}

// urlInText matches a URL quoted in free text, up to a space or a quote.
var urlInText = regexp.MustCompile(`[A-Za-z][A-Za-z0-9+.-]*://[^\s"'<>]+`)

// shownText returns text the library did not write (a before-dial hook's
// error, which may quote the token service's URL) as the library shows it:
// every URL in it as shownURL shows one (no user information, sensitive
// query values replaced), escaped by printable.
func shownText(s string, keys sensitiveKeys) string {
	if strings.Contains(s, "://") {
		s = urlInText.ReplaceAllStringFunc(s, func(raw string) string {
			u, err := url.Parse(raw)
			if err != nil {
				return redacted // it cannot be shown to be clean
			}
			return shownURL(u, keys)
		})
	}
	return printable(s)
}

// shownProxy returns a proxy URL as the library shows it: scheme://host:port.
func shownProxy(u *url.URL) string {
	if u == nil {
		return ""
	}
	return (&url.URL{Scheme: u.Scheme, Host: u.Host}).String()
}

// sensitiveHeaders are the headers whose values redactHeader hides.
var sensitiveHeaders = []string{"Authorization", "Proxy-Authorization", "Cookie", "Set-Cookie"}

// redactHeader returns a copy of h with the values of sensitive headers
// replaced (each value by "xxxxx", so their number stays visible).
func redactHeader(h http.Header) http.Header {
	if h == nil {
		return nil
	}
	c := h.Clone()
	for _, name := range sensitiveHeaders {
		if vs, ok := c[name]; ok {
			hidden := make([]string, len(vs))
			for i := range hidden {
				hidden[i] = redacted
			}
			c[name] = hidden
		}
	}
	return c
}

// redactParseErr hides the URL that url.Parse errors quote (it may hold a
// password or a token): only the parser's complaint is kept.
func redactParseErr(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s", printable(ue.Err.Error()))
	}
	return err
}

// printable escapes what must not reach a terminal or a log line raw:
// control characters (terminal escapes, newlines), Unicode format
// characters (bidi overrides) and invalid UTF-8. Everything else is kept,
// so ordinary text reads as it was.
func printable(s string) string {
	clean := true
	for _, r := range s {
		if r == utf8.RuneError || unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	for i, w := 0, 0; i < len(s); i += w {
		var r rune
		r, w = utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && w == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || r == utf8.RuneError:
			if r <= 0xff {
				fmt.Fprintf(&b, `\x%02x`, r)
			} else {
				fmt.Fprintf(&b, `\u%04x`, r)
			}
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}
