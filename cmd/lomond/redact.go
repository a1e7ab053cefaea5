package main

import (
	"encoding/base64"
	"net/url"
	"sort"
	"strings"
)

// Secrets given on the command line (URL credentials, credential headers,
// proxy credentials, credential-like query parameters) never appear in the
// output. Two layers: URLs are shown without their credentials and with
// credential-like query values replaced; and every line the CLI writes
// about the session (not the messages themselves, which are the server's
// data, printed in full) has each known secret replaced.

// redacted replaces a secret in the output.
const redacted = "REDACTED"

// minSecretLen is the shortest secret searched for in free text: replacing
// every "a" of the output would hide more than it protects.
const minSecretLen = 4

// credentialWords mark a header or query parameter whose value is a secret.
var credentialWords = []string{"auth", "token", "secret", "passw", "key", "cookie", "session", "signature", "credential", "jwt"}

// isCredentialName reports whether a header or query parameter name
// suggests a credential (Authorization, Cookie, X-Api-Key, access_token...).
func isCredentialName(name string) bool {
	n := strings.ToLower(name)
	for _, w := range credentialWords {
		if strings.Contains(n, w) {
			return true
		}
	}
	return false
}

// scrubber replaces known secrets in text.
type scrubber struct {
	secrets  []string
	replacer *strings.Replacer
}

// add records secret and its encoded forms.
func (s *scrubber) add(secret string) {
	if len(secret) < minSecretLen {
		return
	}
	s.secrets = append(s.secrets, secret, url.QueryEscape(secret), url.PathEscape(secret))
	// Longest first, so that a secret containing another goes whole. The
	// replacer is built here, while the command line is read, so that
	// scrub is safe from any goroutine.
	sorted := append([]string(nil), s.secrets...)
	sort.Slice(sorted, func(i, j int) bool { return len(sorted[i]) > len(sorted[j]) })
	pairs := make([]string, 0, 2*len(sorted))
	for _, sec := range sorted {
		pairs = append(pairs, sec, redacted)
	}
	s.replacer = strings.NewReplacer(pairs...)
}

// addHeader records the secrets in a credential header's value: the whole
// value, the credential after its scheme ("Bearer x"), the parts of Basic
// credentials and each cookie's value.
func (s *scrubber) addHeader(name, value string) {
	if !isCredentialName(name) {
		return
	}
	s.add(value)
	scheme, cred, ok := strings.Cut(strings.TrimSpace(value), " ")
	if ok {
		cred = strings.TrimSpace(cred)
		s.add(cred)
		if strings.EqualFold(scheme, "basic") {
			if dec, err := base64.StdEncoding.DecodeString(cred); err == nil {
				user, pass, _ := strings.Cut(string(dec), ":")
				s.add(string(dec))
				s.add(user)
				s.add(pass)
			}
		}
	}
	for _, c := range strings.Split(value, ";") {
		if _, v, ok := strings.Cut(c, "="); ok {
			s.add(strings.TrimSpace(v))
		}
	}
}

// addURL records the credentials and credential-like query values of raw.
func (s *scrubber) addURL(raw string) {
	u, err := url.Parse(raw)
	if err != nil {
		return
	}
	if u.User != nil {
		s.add(u.User.Username())
		if p, ok := u.User.Password(); ok {
			s.add(p)
		}
	}
	for name, values := range u.Query() {
		if isCredentialName(name) {
			for _, v := range values {
				s.add(v)
			}
		}
	}
}

// scrub returns text with every known secret replaced.
func (s *scrubber) scrub(text string) string {
	if s.replacer == nil {
		return text
	}
	return s.replacer.Replace(text)
}

// displayURL is raw as shown in output: without user information, with
// the values of credential-like query parameters replaced, then scrubbed.
func (s *scrubber) displayURL(raw string) string {
	if raw == "" {
		return ""
	}
	u, err := url.Parse(raw)
	if err != nil {
		return s.scrub(raw)
	}
	u.User = nil
	if u.RawQuery != "" {
		parts := strings.Split(u.RawQuery, "&")
		for i, p := range parts {
			k, _, hasValue := strings.Cut(p, "=")
			name, err := url.QueryUnescape(k)
			if err != nil {
				name = k
			}
			if hasValue && isCredentialName(name) {
				parts[i] = k + "=" + redacted
			}
		}
		u.RawQuery = strings.Join(parts, "&")
	}
	return s.scrub(u.String())
}
