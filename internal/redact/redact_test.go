package redact

import (
	"reflect"
	"strings"
	"testing"
)

func TestURL(t *testing.T) {
	p := Policy{Names: []string{"ticket"}}
	cases := []struct {
		raw, want string
		secrets   []string
	}{
		{"wss://h/p?token=abcd1234&room=lobby", "wss://h/p?token=REDACTED&room=lobby", []string{"abcd1234"}},
		{"wss://h/?TICKET=t1cket&x=1", "wss://h/?TICKET=REDACTED&x=1", []string{"t1cket"}},
		{"wss://h/?X-Amz-Signature=s1gnature&X-Amz-Credential=cr3dential", "wss://h/?X-Amz-Signature=REDACTED&X-Amz-Credential=REDACTED",
			[]string{"s1gnature", "cr3dential"}},
		{"wss://h/?access_token=a%2Bb%3Dcc", "wss://h/?access_token=REDACTED", []string{"a%2Bb%3Dcc", "a+b=cc"}},
		{"http://user:passw0rd@proxy:3128", "http://proxy:3128", []string{"passw0rd"}},
		{"wss://h/#frag", "wss://h/", nil},
		{"wss://h/?api_key=", "wss://h/?api_key=", nil},   // nothing to hide
		{"wss://h/?key=ab", "wss://h/?key=REDACTED", nil}, // masked, too short to scrub elsewhere
		{"ws://h/%zz", Mask, nil},
		{"", "", nil},
	}
	for _, c := range cases {
		got, secrets := p.URL(c.raw)
		if got != c.want || !reflect.DeepEqual(secrets, c.secrets) {
			t.Errorf("URL(%q) = %q %q, want %q %q", c.raw, got, secrets, c.want, c.secrets)
		}
	}
	all := Policy{Names: []string{"*"}}
	if got, _ := all.URL("wss://h/?room=lobby&n=1"); got != "wss://h/?room=REDACTED&n=REDACTED" {
		t.Errorf(`"*" policy: %q`, got)
	}
}

func TestText(t *testing.T) {
	p := Policy{}
	s := `lomond: connect to wss://h/?token=t0ken-123&a=b failed: proxy http://me:pw1234@p:1 said no; token t0ken-123 and Bearer xyz-secret`
	got := p.Text(s, []string{"xyz-secret"})
	for _, leak := range []string{"t0ken-123", "pw1234", "me:", "xyz-secret"} {
		if strings.Contains(got, leak) {
			t.Errorf("Text left %q in %q", leak, got)
		}
	}
	if !strings.Contains(got, "wss://h/?token=REDACTED&a=b") || !strings.Contains(got, "http://p:1") {
		t.Errorf("Text = %q: URLs not cleaned in place", got)
	}
	if got := p.Text("plain text", []string{"ab"}); got != "plain text" {
		t.Errorf("a short secret garbled the text: %q", got)
	}
}

func TestSensitive(t *testing.T) {
	p := Policy{}
	for _, name := range []string{"token", "access_token", "apiKey", "client_secret", "password", "sig", "SessionId", "jwt", "auth"} {
		if !p.Sensitive(name) {
			t.Errorf("%q is not sensitive", name)
		}
	}
	for _, name := range []string{"room", "page", "limit", "v"} {
		if p.Sensitive(name) {
			t.Errorf("%q is sensitive", name)
		}
	}
}
