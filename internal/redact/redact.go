// Package redact removes credentials from URLs and from text that may
// quote them (error messages, reasons), for the logging plugins.
package redact

import (
	"net/url"
	"regexp"
	"strings"
)

// Mask replaces a redacted value.
const Mask = "REDACTED"

// defaultSensitive are parts of query parameter names that mark their
// values as secrets: token, access_token, api_key, X-Amz-Signature,
// X-Amz-Credential, password, session_id, ... Matching is by substring and
// case-insensitive, so it errs on the side of hiding.
var defaultSensitive = []string{
	"token", "key", "secret", "passw", "pwd", "auth", "sig", "session", "jwt", "credential", "cookie",
}

// Policy says which query parameters hold secrets.
type Policy struct {
	// Names are extra parameter names (case-insensitive, whole names)
	// whose values are secrets; "*" makes every value a secret.
	Names []string
}

// Sensitive reports whether the query parameter name holds a secret.
func (p Policy) Sensitive(name string) bool {
	lower := strings.ToLower(name)
	for _, n := range p.Names {
		if n == "*" || strings.EqualFold(n, name) {
			return true
		}
	}
	for _, part := range defaultSensitive {
		if strings.Contains(lower, part) {
			return true
		}
	}
	return false
}

// URL returns raw without userinfo and with the value of every sensitive
// query parameter replaced by Mask, and the secrets it removed (each as
// written in raw and, if different, decoded), so that other text can be
// scrubbed of them. Unparsable input is returned as Mask: it cannot be
// shown to be clean.
func (p Policy) URL(raw string) (clean string, secrets []string) {
	if raw == "" {
		return "", nil
	}
	u, err := url.Parse(raw)
	if err != nil {
		return Mask, nil
	}
	if u.User != nil {
		if pw, ok := u.User.Password(); ok {
			secrets = append(secrets, pw)
		}
		u.User = nil
	}
	if u.RawQuery != "" {
		parts := strings.Split(u.RawQuery, "&")
		for i, kv := range parts {
			k, v, ok := strings.Cut(kv, "=")
			name, err := url.QueryUnescape(k)
			if err != nil {
				name = k
			}
			if !ok || v == "" || !p.Sensitive(name) {
				continue
			}
			secrets = append(secrets, v)
			if dv, err := url.QueryUnescape(v); err == nil && dv != v {
				secrets = append(secrets, dv)
			}
			parts[i] = k + "=" + Mask
		}
		u.RawQuery = strings.Join(parts, "&")
	}
	u.Fragment, u.RawFragment = "", ""
	return u.String(), nonEmpty(secrets)
}

// minSecret is the shortest secret scrubbed from free text: replacing every
// occurrence of one or two characters would garble the text and hide
// nothing. In URLs, values are masked by position, whatever their length.
const minSecret = 4

func nonEmpty(ss []string) []string {
	var out []string
	for _, s := range ss {
		if len(s) >= minSecret && s != Mask {
			out = append(out, s)
		}
	}
	return out
}

// urlInText matches a URL quoted in text, up to a space or a quote.
var urlInText = regexp.MustCompile(`[A-Za-z][A-Za-z0-9+.-]*://[^\s"'<>]+`)

// Text returns s with every URL in it cleaned as by URL, and every secret
// (from secrets, or found in those URLs) replaced by Mask.
func (p Policy) Text(s string, secrets []string) string {
	if strings.Contains(s, "://") {
		var found []string
		s = urlInText.ReplaceAllStringFunc(s, func(raw string) string {
			clean, sec := p.URL(raw)
			found = append(found, sec...)
			return clean
		})
		secrets = append(found, secrets...)
	}
	for _, sec := range secrets {
		if len(sec) >= minSecret && strings.Contains(s, sec) {
			s = strings.ReplaceAll(s, sec, Mask)
		}
	}
	return s
}
