package lomond

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// Defaults, chosen to be lomond's where lomond's are safe.
const (
	// DefaultPollInterval is how often Poll is emitted (lomond: 5 s).
	DefaultPollInterval = 5 * time.Second
	// DefaultPingRate is how often the client pings the server (lomond: 30 s).
	DefaultPingRate = 30 * time.Second
	// DefaultPingTimeout is how long the client waits for a pong before the
	// session is Unresponsive. lomond has none by default, so a dead peer is
	// never noticed (lomond issue #28).
	DefaultPingTimeout = 20 * time.Second
	// DefaultCloseTimeout bounds the close handshake (lomond: 30 s). The
	// engine's own 5 s limits do not apply: the dispatcher runs the close
	// handshake itself.
	DefaultCloseTimeout = 30 * time.Second
	// DefaultHandshakeTimeout bounds the opening handshake, from Connected
	// to the server's response (lomond has none and can hang forever).
	DefaultHandshakeTimeout = 10 * time.Second
	// DefaultDialTimeout bounds DNS, TCP, the proxy tunnel and TLS.
	DefaultDialTimeout = 30 * time.Second
	// DefaultReadLimit is the largest message accepted (16 MiB). The engine's
	// own default, 32 KiB, surprises users; lomond has no limit.
	DefaultReadLimit = 16 << 20
	// NoReadLimit passed to WithReadLimit removes the limit.
	NoReadLimit = -1
)

// DialFunc dials the transport connection to addr ("host:port"): the
// server's, or the proxy's when there is one. It is the escape hatch for
// custom networking (a unix socket, an in-memory pipe): the dispatcher still
// runs the proxy tunnel (if any), TLS and the websocket handshake over the
// connection it returns.
type DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// Option configures a WebSocket. Options are validated by New.
type Option func(*config) error

type proxyMode int

const (
	proxyFromEnv proxyMode = iota
	proxyFixed
	proxyNone
)

type config struct {
	protocols        []string
	header           http.Header
	host             string
	userAgent        string
	compression      *CompressionOptions // nil: off
	tls              *tls.Config
	proxyMode        proxyMode
	proxyURL         *url.URL
	dialTimeout      time.Duration
	handshakeTimeout time.Duration
	pollInterval     time.Duration
	pingRate         time.Duration
	pingTimeout      time.Duration
	closeTimeout     time.Duration
	autoPong         bool
	borrowBinary     bool
	readLimit        int64
	dial             DialFunc
	logger           *slog.Logger  // WithLogger's; its plugin is in plugins
	pluginList       []any         // WithPlugins', in order
	plugins          *table        // the logger's plugin and pluginList, discovered; nil if none
	sensitive        sensitiveKeys // query keys whose values are never shown
	sharedSensitive  bool          // sensitive is defaultSensitive: copy before adding
	queueSize        int           // WithSendQueue; 0: no queue
	queueBytes       int           // WithSendQueueBytes; 0: no byte bound
	overflow         Overflow
	sendRate         float64 // WithSendRate: messages per second; 0: no limit
	sendBurst        int
	jar              http.CookieJar // WithCookieJar; nil: no cookies but WithHeader's
}

func defaultConfig() config {
	return config{
		header:           http.Header{},
		userAgent:        "lomond-go/" + Version,
		dialTimeout:      DefaultDialTimeout,
		handshakeTimeout: DefaultHandshakeTimeout,
		pollInterval:     DefaultPollInterval,
		pingRate:         DefaultPingRate,
		pingTimeout:      DefaultPingTimeout,
		closeTimeout:     DefaultCloseTimeout,
		autoPong:         true,
		readLimit:        DefaultReadLimit,
		sensitive:        defaultSensitive,
		sharedSensitive:  true,
	}
}

func optErr(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalidOption}, args...)...)
}

// isToken reports whether s is an RFC 7230 token (header names,
// subprotocol names).
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return true
}

func validHeaderValue(s string) bool {
	return !strings.ContainsAny(s, "\r\n\x00")
}

// WithProtocols offers these subprotocols (Sec-WebSocket-Protocol), in order
// of preference. A server choosing one not offered is Rejected.
func WithProtocols(protocols ...string) Option {
	return func(c *config) error {
		seen := map[string]bool{}
		for _, p := range protocols {
			if !isToken(p) {
				return optErr("subprotocol %q is not a valid token", p)
			}
			if seen[strings.ToLower(p)] {
				return optErr("subprotocol %q offered twice", p)
			}
			seen[strings.ToLower(p)] = true
		}
		c.protocols = append([]string(nil), protocols...)
		return nil
	}
}

// reservedHeaders are set by the handshake itself; use the dedicated options.
var reservedHeaders = map[string]string{
	"Upgrade":                  "",
	"Connection":               "",
	"Sec-Websocket-Key":        "",
	"Sec-Websocket-Version":    "",
	"Sec-Websocket-Accept":     "",
	"Sec-Websocket-Protocol":   " (use WithProtocols)",
	"Sec-Websocket-Extensions": " (use WithCompression)",
	"Content-Length":           "",
	"Transfer-Encoding":        "",
	"User-Agent":               " (use WithUserAgent)",
}

// WithHeader adds a header to the upgrade request. It may be given several
// times; values accumulate. "Host" overrides the Host header. Headers the
// handshake sets itself are refused.
func WithHeader(name, value string) Option {
	return func(c *config) error {
		if !isToken(name) {
			return optErr("header name %q is not a valid token", name)
		}
		if !validHeaderValue(value) {
			return optErr("header %s: value contains CR, LF or NUL", name)
		}
		canon := http.CanonicalHeaderKey(name)
		if hint, ok := reservedHeaders[canon]; ok {
			return optErr("header %s is set by the handshake%s", canon, hint)
		}
		if canon == "Host" {
			c.host = value
			return nil
		}
		c.header.Add(canon, value)
		return nil
	}
}

// WithUserAgent sets the User-Agent header (default "lomond-go/VERSION").
func WithUserAgent(agent string) Option {
	return func(c *config) error {
		if !validHeaderValue(agent) {
			return optErr("user agent contains CR, LF or NUL")
		}
		c.userAgent = agent
		return nil
	}
}

// WithOrigin sets the Origin header, such as "https://example.com".
func WithOrigin(origin string) Option {
	return func(c *config) error {
		u, err := url.Parse(origin)
		if err != nil || u.Scheme == "" || u.Host == "" || !validHeaderValue(origin) {
			return optErr("origin %q is not scheme://host[:port]", origin)
		}
		c.header.Set("Origin", origin)
		return nil
	}
}

// WithCookieJar keeps cookies in jar across connections: every opening
// handshake sends the jar's cookies for the URL (ws:// as http://, wss:// as
// https://), and the Set-Cookie headers of the server's answer, a 101 or a
// rejection, go into the jar. A load balancer that pins a client to a
// backend with a cookie (a sticky session) then sees it again on every
// reconnection of Persist. A net/http/cookiejar.Jar applies the cookies'
// Domain, Path, Secure and expiry rules. Cookies given with WithHeader are
// sent too, before the jar's. Cookie values never appear in events, errors
// or logs.
func WithCookieJar(jar http.CookieJar) Option {
	return func(c *config) error {
		if jar == nil {
			return optErr("nil cookie jar")
		}
		c.jar = jar
		return nil
	}
}

func (c *config) tlsConfig() *tls.Config {
	if c.tls == nil {
		c.tls = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	return c.tls
}

// WithTLSConfig uses a copy of cfg as the base TLS configuration for wss://
// connections, whatever the order of options: WithRootCAs, WithCAFile and
// WithInsecureSkipVerify apply on top of it. ServerName is filled from the
// URL when empty.
func WithTLSConfig(cfg *tls.Config) Option {
	return func(c *config) error {
		if cfg == nil {
			return optErr("nil TLS config")
		}
		base := cfg.Clone()
		if c.tls != nil {
			// Earlier TLS options win over the base, as later ones will.
			if c.tls.RootCAs != nil {
				base.RootCAs = c.tls.RootCAs
			}
			if c.tls.InsecureSkipVerify {
				base.InsecureSkipVerify = true
			}
		}
		c.tls = base
		return nil
	}
}

// WithRootCAs trusts exactly the certificates in pool for wss:// servers,
// instead of the system's.
func WithRootCAs(pool *x509.CertPool) Option {
	return func(c *config) error {
		if pool == nil {
			return optErr("nil certificate pool")
		}
		c.tlsConfig().RootCAs = pool
		return nil
	}
}

// WithCAFile trusts exactly the PEM certificates in the file at path (a CA
// bundle) for wss:// servers, instead of the system's. The file is read by
// New.
func WithCAFile(path string) Option {
	return func(c *config) error {
		pem, err := os.ReadFile(path)
		if err != nil {
			return optErr("CA file: %v", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return optErr("CA file %s holds no PEM certificate", path)
		}
		c.tlsConfig().RootCAs = pool
		return nil
	}
}

// WithInsecureSkipVerify turns off certificate verification for wss://.
// Anyone on the path can then read and change the traffic: use it only for
// tests, and prefer WithCAFile.
func WithInsecureSkipVerify() Option {
	return func(c *config) error {
		c.tlsConfig().InsecureSkipVerify = true
		return nil
	}
}

// WithProxy sends every connection through the proxy at proxyURL, for ws://
// as well as wss://, ignoring the environment (NO_PROXY included):
//
//   - "http://[user:pass@]host:port": an HTTP CONNECT proxy; "https://" for
//     TLS to the proxy itself. Credentials (a user name alone, such as a
//     token, included) are sent as Basic Proxy-Authorization.
//   - "socks5://[user:pass@]host:port" (port 1080 by default): a SOCKS5
//     proxy, with user name and password authentication when given; the
//     target's name is resolved here. "socks5h://" hands the name to the
//     proxy, which resolves it.
//
// Credentials never appear in events, errors or logs: the proxy is shown as
// scheme://host:port.
func WithProxy(proxyURL string) Option {
	return func(c *config) error {
		u, err := parseProxyURL(proxyURL)
		if err != nil {
			return optErr("%v", err)
		}
		c.proxyMode, c.proxyURL = proxyFixed, u
		return nil
	}
}

// WithoutProxy connects directly, ignoring the environment.
func WithoutProxy() Option {
	return func(c *config) error {
		c.proxyMode, c.proxyURL = proxyNone, nil
		return nil
	}
}

func positive(name string, d time.Duration, dst *time.Duration) error {
	if d <= 0 {
		return optErr("%s must be positive, got %v", name, d)
	}
	*dst = d
	return nil
}

// WithDialTimeout bounds DNS, TCP, the proxy tunnel and TLS (default 30 s).
func WithDialTimeout(d time.Duration) Option {
	return func(c *config) error { return positive("dial timeout", d, &c.dialTimeout) }
}

// WithHandshakeTimeout bounds the opening handshake, from Connected until the
// server's response (default 10 s).
func WithHandshakeTimeout(d time.Duration) Option {
	return func(c *config) error { return positive("handshake timeout", d, &c.handshakeTimeout) }
}

// WithCloseTimeout bounds the close handshake: how long the client waits for
// the server's close reply before dropping the connection (default 30 s).
func WithCloseTimeout(d time.Duration) Option {
	return func(c *config) error { return positive("close timeout", d, &c.closeTimeout) }
}

func nonNegative(name string, d time.Duration, dst *time.Duration) error {
	if d < 0 {
		return optErr("%s must not be negative, got %v", name, d)
	}
	*dst = d
	return nil
}

// WithPollInterval sets how often Poll is emitted after Ready (default 5 s);
// 0 turns Poll off.
func WithPollInterval(d time.Duration) Option {
	return func(c *config) error { return nonNegative("poll interval", d, &c.pollInterval) }
}

// WithPingRate sets how often the client pings the server (default 30 s);
// 0 turns automatic pings off.
func WithPingRate(d time.Duration) Option {
	return func(c *config) error { return nonNegative("ping rate", d, &c.pingRate) }
}

// WithPingTimeout sets how long the client waits for a pong after a ping
// before the session is Unresponsive (default 20 s); 0 turns the check off.
func WithPingTimeout(d time.Duration) Option {
	return func(c *config) error { return nonNegative("ping timeout", d, &c.pingTimeout) }
}

// WithAutoPong sets whether the client answers server pings (default true).
func WithAutoPong(on bool) Option {
	return func(c *config) error {
		c.autoPong = on
		return nil
	}
}

// WithReadLimit sets the largest message accepted, in bytes (default 16 MiB).
// A larger message fails the connection with close code 1009. NoReadLimit
// removes the limit.
func WithReadLimit(n int64) Option {
	return func(c *config) error {
		if n <= 0 && n != NoReadLimit {
			return optErr("read limit must be positive or NoReadLimit, got %d", n)
		}
		c.readLimit = n
		return nil
	}
}

// WithBorrowedBinary delivers binary messages without allocating: the
// *events.Binary and its Data are the session's own, reused for the next
// binary message, so they are valid only until the handler (or the range
// loop's body) returns: copy what you keep. For high-rate binary streams,
// where the per-message allocation of an owned payload is the dispatcher's
// main cost (docs/performance.md). Text messages are always owned.
func WithBorrowedBinary() Option {
	return func(c *config) error {
		c.borrowBinary = true
		return nil
	}
}

// WithDialer replaces the TCP dialer (see DialFunc).
func WithDialer(dial DialFunc) Option {
	return func(c *config) error {
		if dial == nil {
			return optErr("nil dialer")
		}
		c.dial = dial
		return nil
	}
}

// WithLogger logs every event and every outgoing message of the WebSocket
// to l, redacted: it installs the logging plugin (plugins/logging) with its
// defaults, ahead of any WithPlugins plugin. Lifecycle events are logged at
// Info, failures at Warn, messages, pings, pongs and polls at Debug with
// their size and never their payload; URLs lose their userinfo and the
// values of query parameters that look like credentials, and headers are
// never logged. For other settings, install logging.New(l, ...) with
// WithPlugins instead. The default is no logging.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) error {
		if l == nil {
			return optErr("nil logger")
		}
		c.logger = l
		return c.buildPlugins()
	}
}
