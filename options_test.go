package lomond

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"log/slog"
	"math"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Tests of options.go: every option's validation and its effect on the
// configuration.

func TestNewRejectsBadURLs(t *testing.T) {
	bad := []string{
		"",
		"example.com",
		"//example.com/",
		"ftp://example.com/",
		"WS-X://example.com/",
		"ws://",
		"ws:///path",
		"wss://:443/",
		"ws://example.com:0/",
		"ws://example.com:70000/",
		"ws://example.com:65536/",
		"ws://example.com:abc/",
		"ws://example.com:-1/",
		"ws://user@example.com/",
		"ws://user:secret@example.com/",
		"wss://user:secret@example.com:443/",
		"ws://[::1/",
		"ws://exa mple.com/",
		"ws://%zz/",
		"::::",
		"\x00ws://example.com/",
		"ws://example.com/\x7f",
	}
	for _, raw := range bad {
		ws, err := New(raw)
		if err == nil {
			t.Errorf("New(%q) = %v, want an error", raw, ws.URL())
			continue
		}
		if !errors.Is(err, ErrInvalidURL) {
			t.Errorf("New(%q) error %v does not wrap ErrInvalidURL", raw, err)
		}
		if ws != nil {
			t.Errorf("New(%q) returned a WebSocket with an error", raw)
		}
		if strings.Contains(err.Error(), "secret") {
			t.Errorf("New(%q) error leaks the password: %v", raw, err)
		}
	}
}

func TestNewRedactsPasswordInParseErrors(t *testing.T) {
	for _, raw := range []string{
		"ws://user:secret@example.com:bad/",
		"ws://user:secret@exa mple.com/",
		"ws://user:secret@[::1/",
	} {
		_, err := New(raw)
		if err == nil {
			t.Errorf("New(%q) accepted", raw)
			continue
		}
		if strings.Contains(err.Error(), "secret") {
			t.Errorf("New(%q) error leaks the password: %v", raw, err)
		}
	}
}

func TestNewAcceptsWebSocketURLs(t *testing.T) {
	cases := []struct{ in, want string }{
		{"ws://example.com", "ws://example.com/"},
		{"wss://example.com", "wss://example.com/"},
		{"ws://example.com/", "ws://example.com/"},
		{"ws://example.com/path?q=1", "ws://example.com/path?q=1"},
		{"ws://example.com/path#frag", "ws://example.com/path"},
		{"wss://example.com#frag", "wss://example.com/"},
		{"ws://example.com:1/", "ws://example.com:1/"},
		{"wss://example.com:65535/x", "wss://example.com:65535/x"},
		{"ws://127.0.0.1:8080/feed", "ws://127.0.0.1:8080/feed"},
		{"ws://[::1]:8080/", "ws://[::1]:8080/"},
		{"ws://[::1]", "ws://[::1]/"},
	}
	for _, c := range cases {
		ws, err := New(c.in)
		if err != nil {
			t.Errorf("New(%q): %v", c.in, err)
			continue
		}
		if got := ws.URL(); got != c.want {
			t.Errorf("New(%q).URL() = %q, want %q", c.in, got, c.want)
		}
		if ws.State() != StateIdle {
			t.Errorf("New(%q).State() = %v, want idle", c.in, ws.State())
		}
	}
}

func TestDefaults(t *testing.T) {
	ws, err := New("ws://example.com/")
	if err != nil {
		t.Fatal(err)
	}
	c := ws.cfg
	durations := []struct {
		name      string
		got, want time.Duration
	}{
		{"dial timeout", c.dialTimeout, DefaultDialTimeout},
		{"handshake timeout", c.handshakeTimeout, DefaultHandshakeTimeout},
		{"poll interval", c.pollInterval, DefaultPollInterval},
		{"ping rate", c.pingRate, DefaultPingRate},
		{"ping timeout", c.pingTimeout, DefaultPingTimeout},
		{"close timeout", c.closeTimeout, DefaultCloseTimeout},
	}
	for _, d := range durations {
		if d.got != d.want {
			t.Errorf("default %s = %v, want %v", d.name, d.got, d.want)
		}
	}
	if c.readLimit != DefaultReadLimit {
		t.Errorf("default read limit = %d, want %d", c.readLimit, DefaultReadLimit)
	}
	if !c.autoPong {
		t.Error("auto-pong is off by default")
	}
	if c.compression != nil {
		t.Errorf("default compression = %+v, want off", c.compression)
	}
	if c.userAgent != "lomond-go/"+Version {
		t.Errorf("default user agent = %q", c.userAgent)
	}
	if c.proxyMode != proxyFromEnv || c.proxyURL != nil {
		t.Errorf("default proxy mode = %v (%v), want from environment", c.proxyMode, c.proxyURL)
	}
	if c.tls != nil || c.dial != nil || c.host != "" || len(c.protocols) != 0 || len(c.header) != 0 {
		t.Errorf("unexpected non-zero defaults: tls=%v dial=%v host=%q protocols=%v header=%v",
			c.tls, c.dial != nil, c.host, c.protocols, c.header)
	}
	if c.logger != nil || c.plugins != nil {
		t.Errorf("default logger %v, plugins %v: want no logging and no plugins", c.logger, c.plugins)
	}
	// The documented lomond-derived values.
	if DefaultPollInterval != 5*time.Second || DefaultPingRate != 30*time.Second ||
		DefaultPingTimeout != 20*time.Second || DefaultCloseTimeout != 30*time.Second ||
		DefaultHandshakeTimeout != 10*time.Second || DefaultDialTimeout != 30*time.Second ||
		DefaultReadLimit != 16<<20 || NoReadLimit != -1 {
		t.Error("a Default* constant changed from its documented value")
	}
}

// newWith builds a WebSocket with opts and fails the test on error.
func newWith(t *testing.T, opts ...Option) *config {
	t.Helper()
	ws, err := New("wss://example.com/", opts...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return &ws.cfg
}

// wantInvalidOption asserts that New rejects opts with ErrInvalidOption.
func wantInvalidOption(t *testing.T, name string, opts ...Option) {
	t.Helper()
	ws, err := New("ws://example.com/", opts...)
	if !errors.Is(err, ErrInvalidOption) {
		t.Errorf("%s: New err = %v, want ErrInvalidOption", name, err)
	}
	if err != nil && ws != nil {
		t.Errorf("%s: New returned a WebSocket with an error", name)
	}
}

func TestWithSendQueueAndRate(t *testing.T) {
	wantInvalidOption(t, "zero queue", WithSendQueue(0, RejectNewest))
	wantInvalidOption(t, "unknown overflow", WithSendQueue(1, Overflow(7)))
	wantInvalidOption(t, "negative queue length", WithSendQueue(-1, DropOldest))
	wantInvalidOption(t, "zero rate", WithSendRate(0, 1))
	wantInvalidOption(t, "negative rate", WithSendRate(-1, 1))
	wantInvalidOption(t, "NaN rate", WithSendRate(math.NaN(), 1))
	wantInvalidOption(t, "infinite rate", WithSendRate(math.Inf(1), 1))
	wantInvalidOption(t, "zero burst", WithSendRate(10, 0))
	c := newWith(t, WithSendQueue(3, DropOldest), WithSendRate(2.5, 4))
	if c.queueSize != 3 || c.overflow != DropOldest || c.sendRate != 2.5 || c.sendBurst != 4 {
		t.Errorf("config %d %v %v %d, want 3 DropOldest 2.5 4", c.queueSize, c.overflow, c.sendRate, c.sendBurst)
	}
}

func TestNilOption(t *testing.T) {
	wantInvalidOption(t, "nil option", nil)
	wantInvalidOption(t, "nil option after a good one", WithAutoPong(false), nil)
}

func TestWithProtocols(t *testing.T) {
	c := newWith(t, WithProtocols("chat", "superchat.v2", "x-y_z"))
	if strings.Join(c.protocols, ",") != "chat,superchat.v2,x-y_z" {
		t.Errorf("protocols = %q", c.protocols)
	}
	c = newWith(t, WithProtocols())
	if len(c.protocols) != 0 {
		t.Errorf("no protocols: got %q", c.protocols)
	}

	// The option copies its argument.
	ps := []string{"a", "b"}
	c = newWith(t, WithProtocols(ps...))
	ps[0] = "changed"
	if c.protocols[0] != "a" {
		t.Error("WithProtocols keeps a reference to the caller's slice")
	}

	for _, bad := range [][]string{
		{""}, {"a b"}, {"a,b"}, {"a/b"}, {"ch\"at"}, {"chät"}, {"a\r\nX: y"},
		{"chat", "chat"}, {"Chat", "chat"}, {"ok", ""},
	} {
		wantInvalidOption(t, "WithProtocols"+strings.Join(bad, "|"), WithProtocols(bad...))
	}
}

func TestWithHeader(t *testing.T) {
	c := newWith(t,
		WithHeader("Authorization", "Bearer x"),
		WithHeader("x-custom", "1"),
		WithHeader("X-Custom", "2"),
		WithHeader("Cookie", ""),
		WithHeader("host", "virtual.example"),
	)
	if got := c.header.Get("Authorization"); got != "Bearer x" {
		t.Errorf("Authorization = %q", got)
	}
	if got := c.header.Values("X-Custom"); strings.Join(got, ",") != "1,2" {
		t.Errorf("X-Custom values = %q, want 1 and 2", got)
	}
	if _, ok := c.header["Cookie"]; !ok {
		t.Error("empty header value dropped")
	}
	if c.host != "virtual.example" {
		t.Errorf("host = %q, want virtual.example", c.host)
	}
	if _, ok := c.header["Host"]; ok {
		t.Error("Host went into the header map")
	}

	for _, name := range []string{"", "Bad Name", "Bad:Name", "X\r\nY", "Ünicode", "a(b)"} {
		wantInvalidOption(t, "header name "+name, WithHeader(name, "v"))
	}
	for _, value := range []string{"a\rb", "a\nb", "a\r\nX-Injected: 1", "nul\x00"} {
		wantInvalidOption(t, "header value "+value, WithHeader("X-Ok", value))
	}
	for _, name := range []string{
		"Upgrade", "connection", "Sec-WebSocket-Key", "sec-websocket-version",
		"Sec-WebSocket-Accept", "Sec-WebSocket-Protocol", "Sec-WebSocket-Extensions",
		"Content-Length", "Transfer-Encoding", "User-Agent",
	} {
		wantInvalidOption(t, "reserved header "+name, WithHeader(name, "x"))
	}
	_, err := New("ws://h/", WithHeader("Sec-WebSocket-Protocol", "chat"))
	if err == nil || !strings.Contains(err.Error(), "WithProtocols") {
		t.Errorf("Sec-WebSocket-Protocol error %v does not point to WithProtocols", err)
	}
}

func TestWithUserAgent(t *testing.T) {
	c := newWith(t, WithUserAgent("my-agent/1.0"))
	if c.userAgent != "my-agent/1.0" {
		t.Errorf("user agent = %q", c.userAgent)
	}
	for _, bad := range []string{"a\r\nX: y", "a\nb", "a\rb", "a\x00"} {
		wantInvalidOption(t, "user agent "+bad, WithUserAgent(bad))
	}
}

func TestWithOrigin(t *testing.T) {
	for _, good := range []string{"https://example.com", "http://localhost:8080", "https://a.b.c:443"} {
		c := newWith(t, WithOrigin(good))
		if got := c.header.Get("Origin"); got != good {
			t.Errorf("Origin = %q, want %q", got, good)
		}
	}
	for _, bad := range []string{"", "example.com", "/path", "https://", "https://exa\r\nmple.com", "://x", "%zz"} {
		wantInvalidOption(t, "origin "+bad, WithOrigin(bad))
	}
}

func TestWithTLSConfig(t *testing.T) {
	orig := &tls.Config{ServerName: "a.example", MinVersion: tls.VersionTLS13}
	c := newWith(t, WithTLSConfig(orig))
	if c.tls == orig {
		t.Fatal("WithTLSConfig did not copy the config")
	}
	orig.ServerName = "changed"
	if c.tls.ServerName != "a.example" || c.tls.MinVersion != tls.VersionTLS13 {
		t.Errorf("copied config = %q/%x", c.tls.ServerName, c.tls.MinVersion)
	}
	wantInvalidOption(t, "nil TLS config", WithTLSConfig(nil))

	// Later TLS options modify the copy, not the caller's config.
	orig2 := &tls.Config{}
	c = newWith(t, WithTLSConfig(orig2), WithInsecureSkipVerify())
	if !c.tls.InsecureSkipVerify || orig2.InsecureSkipVerify {
		t.Error("WithInsecureSkipVerify after WithTLSConfig did not apply to the copy only")
	}

	c = newWith(t, WithInsecureSkipVerify())
	if c.tls == nil || !c.tls.InsecureSkipVerify || c.tls.MinVersion < tls.VersionTLS12 {
		t.Errorf("WithInsecureSkipVerify alone: %+v", c.tls)
	}
}

func TestWithRootCAs(t *testing.T) {
	pool := x509.NewCertPool()
	c := newWith(t, WithRootCAs(pool))
	if c.tls == nil || c.tls.RootCAs != pool {
		t.Error("WithRootCAs did not set RootCAs")
	}
	if c.tls.MinVersion < tls.VersionTLS12 {
		t.Errorf("MinVersion = %x, want at least TLS 1.2", c.tls.MinVersion)
	}
	wantInvalidOption(t, "nil pool", WithRootCAs(nil))
}

// writeTestCA writes a self-signed CA certificate as PEM into dir.
func writeTestCA(t *testing.T, dir string) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "lomond test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestWithCAFile(t *testing.T) {
	dir := t.TempDir()
	good := writeTestCA(t, dir)
	c := newWith(t, WithCAFile(good))
	if c.tls == nil || c.tls.RootCAs == nil {
		t.Fatal("WithCAFile did not set RootCAs")
	}
	if c.tls.RootCAs.Equal(x509.NewCertPool()) {
		t.Error("RootCAs is empty")
	}

	wantInvalidOption(t, "missing file", WithCAFile(filepath.Join(dir, "missing.pem")))
	wantInvalidOption(t, "directory", WithCAFile(dir))
	noPEM := filepath.Join(dir, "not.pem")
	if err := os.WriteFile(noPEM, []byte("hello, not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	wantInvalidOption(t, "file without PEM", WithCAFile(noPEM))
	empty := filepath.Join(dir, "empty.pem")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	wantInvalidOption(t, "empty file", WithCAFile(empty))
}

func TestWithProxy(t *testing.T) {
	cases := []struct{ in, host, scheme string }{
		{"http://proxy.example:3128", "proxy.example:3128", "http"},
		{"https://proxy.example:443", "proxy.example:443", "https"},
		{"http://user:pw@proxy.example:8080", "proxy.example:8080", "http"},
		{"proxy.example:3128", "proxy.example:3128", "http"},
		{"127.0.0.1:8888", "127.0.0.1:8888", "http"},
		{"socks5://proxy.example:1080", "proxy.example:1080", "socks5"},
		{"SOCKS5H://user:pw@proxy.example:1080", "proxy.example:1080", "socks5h"},
		{"socks5://proxy.example", "proxy.example", "socks5"},
	}
	for _, cs := range cases {
		c := newWith(t, WithProxy(cs.in))
		if c.proxyMode != proxyFixed || c.proxyURL == nil {
			t.Errorf("WithProxy(%q): mode %v url %v", cs.in, c.proxyMode, c.proxyURL)
			continue
		}
		if c.proxyURL.Host != cs.host || c.proxyURL.Scheme != cs.scheme {
			t.Errorf("WithProxy(%q) = %s://%s, want %s://%s", cs.in, c.proxyURL.Scheme, c.proxyURL.Host, cs.scheme, cs.host)
		}
	}
	for _, bad := range []string{
		"socks4://proxy.example:1080",
		"socks://user:secret@proxy.example:1080",
		"socks5://:secret@proxy.example:1080",
		"socks5h://user:secret" + strings.Repeat("x", 255) + "@proxy.example:1080",
		"socks5://",
		"ftp://proxy.example",
		"http://",
		"http://:3128",
		"",
		"http://proxy.example:bad",
		"http://user:secret@:3128",
		"http://user:secret@proxy.example:bad",
	} {
		_, err := New("ws://example.com/", WithProxy(bad))
		if !errors.Is(err, ErrInvalidOption) {
			t.Errorf("WithProxy(%q): err = %v, want ErrInvalidOption", bad, err)
			continue
		}
		if strings.Contains(err.Error(), "secret") {
			t.Errorf("WithProxy(%q) error leaks the password: %v", bad, err)
		}
	}

	c := newWith(t, WithProxy("http://p:1"), WithoutProxy())
	if c.proxyMode != proxyNone || c.proxyURL != nil {
		t.Errorf("WithoutProxy after WithProxy: mode %v url %v", c.proxyMode, c.proxyURL)
	}
}

func TestTimeoutOptions(t *testing.T) {
	positives := []struct {
		name string
		opt  func(time.Duration) Option
		get  func(*config) time.Duration
	}{
		{"WithDialTimeout", WithDialTimeout, func(c *config) time.Duration { return c.dialTimeout }},
		{"WithHandshakeTimeout", WithHandshakeTimeout, func(c *config) time.Duration { return c.handshakeTimeout }},
		{"WithCloseTimeout", WithCloseTimeout, func(c *config) time.Duration { return c.closeTimeout }},
	}
	for _, p := range positives {
		for _, d := range []time.Duration{time.Nanosecond, 250 * time.Millisecond, time.Hour} {
			if got := p.get(newWith(t, p.opt(d))); got != d {
				t.Errorf("%s(%v) stored %v", p.name, d, got)
			}
		}
		for _, d := range []time.Duration{0, -1, -time.Second} {
			wantInvalidOption(t, p.name+"("+d.String()+")", p.opt(d))
		}
	}

	nonNegatives := []struct {
		name string
		opt  func(time.Duration) Option
		get  func(*config) time.Duration
	}{
		{"WithPollInterval", WithPollInterval, func(c *config) time.Duration { return c.pollInterval }},
		{"WithPingRate", WithPingRate, func(c *config) time.Duration { return c.pingRate }},
		{"WithPingTimeout", WithPingTimeout, func(c *config) time.Duration { return c.pingTimeout }},
	}
	for _, p := range nonNegatives {
		for _, d := range []time.Duration{0, time.Millisecond, time.Minute} {
			if got := p.get(newWith(t, p.opt(d))); got != d {
				t.Errorf("%s(%v) stored %v", p.name, d, got)
			}
		}
		for _, d := range []time.Duration{-1, -time.Second} {
			wantInvalidOption(t, p.name+"("+d.String()+")", p.opt(d))
		}
	}
}

func TestWithAutoPong(t *testing.T) {
	if c := newWith(t, WithAutoPong(false)); c.autoPong {
		t.Error("WithAutoPong(false) left auto-pong on")
	}
	if c := newWith(t, WithAutoPong(false), WithAutoPong(true)); !c.autoPong {
		t.Error("WithAutoPong(true) left auto-pong off")
	}
}

func TestWithReadLimit(t *testing.T) {
	for _, n := range []int64{1, 1 << 10, 1 << 40, NoReadLimit} {
		if c := newWith(t, WithReadLimit(n)); c.readLimit != n {
			t.Errorf("WithReadLimit(%d) stored %d", n, c.readLimit)
		}
	}
	for _, n := range []int64{0, -5, -2} {
		wantInvalidOption(t, "read limit", WithReadLimit(n))
	}
}

func TestWithDialer(t *testing.T) {
	called := false
	d := func(context.Context, string, string) (net.Conn, error) {
		called = true
		return nil, errors.New("test dialer")
	}
	c := newWith(t, WithDialer(d))
	if c.dial == nil {
		t.Fatal("WithDialer did not store the dialer")
	}
	_, _ = c.dial(context.Background(), "tcp", "x:1")
	if !called {
		t.Error("stored dialer is not the one given")
	}
	wantInvalidOption(t, "nil dialer", WithDialer(nil))
}

func TestWithLogger(t *testing.T) {
	l := slog.New(slog.NewTextHandler(os.Stderr, nil))
	c := newWith(t, WithLogger(l))
	if c.logger != l || c.plugins == nil || c.plugins.text == nil || len(c.plugins.out) != 1 {
		t.Error("WithLogger did not install its logging plugin (every event and every send)")
	}
	wantInvalidOption(t, "nil logger", WithLogger(nil))
}

// TestFirstBadOptionWins checks that New stops at the first invalid option
// and reports it.
func TestFirstBadOptionWins(t *testing.T) {
	_, err := New("ws://example.com/", WithPingRate(time.Second), WithReadLimit(0), WithLogger(nil))
	if !errors.Is(err, ErrInvalidOption) || !strings.Contains(err.Error(), "read limit") {
		t.Errorf("err = %v, want the read limit error", err)
	}
	// The options come first: the URL's errors must know which query keys
	// are sensitive (WithSensitiveQueryKeys).
	_, err = New("ftp://example.com/", nil)
	if !errors.Is(err, ErrInvalidOption) {
		t.Errorf("err = %v, want ErrInvalidOption", err)
	}
	_, err = New("ftp://example.com/", WithAutoPong(true))
	if !errors.Is(err, ErrInvalidURL) {
		t.Errorf("err = %v, want ErrInvalidURL", err)
	}
}
