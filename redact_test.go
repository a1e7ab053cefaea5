package lomond

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode"

	"github.com/lomond-go/lomond/events"
	"github.com/lomond-go/lomond/internal/testkit"
	"github.com/lomond-go/lomond/internal/wstest"
)

// Tests of redact.go: secrets never appear in events, errors or logs, and
// server-controlled text is escaped.

// TestProxyErrorRedacted runs a CONNECT against an in-memory proxy that
// answers 407 and checks the password never shows in the error or reason.
func TestProxyErrorRedacted(t *testing.T) {
	client, server := net.Pipe()
	defer client.Close()
	gotAuth := make(chan string, 1)
	go func() {
		defer server.Close()
		req, err := http.ReadRequest(bufio.NewReader(server))
		if err != nil {
			gotAuth <- "read error: " + err.Error()
			return
		}
		gotAuth <- req.Header.Get("Proxy-Authorization")
		_, _ = server.Write([]byte("HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n"))
	}()
	proxy := mustURL(t, "http://user:secret@proxy.example:3128")
	_, err := connectTunnel(context.Background(), client, proxy, "example.com:80")
	if auth := <-gotAuth; auth != "Basic dXNlcjpzZWNyZXQ=" {
		t.Errorf("Proxy-Authorization = %q, want Basic user:secret", auth)
	}
	var pe *ProxyError
	if !errors.As(err, &pe) {
		t.Fatalf("connectTunnel err = %v, want a *ProxyError", err)
	}
	if pe.StatusCode != 407 {
		t.Errorf("StatusCode = %d, want 407", pe.StatusCode)
	}
	reason := connectFailReason(err)
	for _, s := range []string{err.Error(), pe.Proxy, reason} {
		if strings.Contains(s, "secret") {
			t.Errorf("password leaked: %q", s)
		}
	}
	if !strings.HasPrefix(reason, "proxy fail; ") || !strings.Contains(reason, "407") {
		t.Errorf("reason = %q, want a proxy fail mentioning 407", reason)
	}
}

// TestConnectFailRedacted runs a session whose dial to the proxy fails and
// checks that neither the events nor the returned error show the password.
func TestConnectFailRedacted(t *testing.T) {
	failDial := func(context.Context, string, string) (net.Conn, error) {
		return nil, errors.New("test: refused")
	}
	ws, err := New("ws://example.com/", WithProxy("http://user:secret@proxy.example:3128"), WithDialer(failDial))
	if err != nil {
		t.Fatal(err)
	}
	var texts []string
	var fail *events.ConnectFail
	runErr := ws.Run(context.Background(), HandlerFunc(func(_ *WebSocket, ev events.Event) {
		texts = append(texts, ev.String())
		if cf, ok := ev.(*events.ConnectFail); ok {
			fail = cf
		}
	}))
	var ce *ConnectError
	if !errors.As(runErr, &ce) {
		t.Fatalf("Run = %v, want a *ConnectError", runErr)
	}
	if fail == nil {
		t.Fatal("no ConnectFail event")
	}
	texts = append(texts, runErr.Error(), fail.Reason, fail.Err.Error(), ce.Reason)
	for _, s := range texts {
		if strings.Contains(s, "secret") {
			t.Errorf("password leaked: %q", s)
		}
	}
	if !strings.Contains(fail.Reason, "proxy.example") {
		t.Errorf("reason %q does not name the proxy", fail.Reason)
	}
}

func TestShownProxy(t *testing.T) {
	if got := shownProxy(nil); got != "" {
		t.Errorf("shownProxy(nil) = %q", got)
	}
	for in, want := range map[string]string{
		"http://user:secret@p:1":       "http://p:1",
		"http://TOKEN@p:1":             "http://p:1",
		"https://p:443/path?token=x#f": "https://p:443",
	} {
		if got := shownProxy(mustURL(t, in)); got != want {
			t.Errorf("shownProxy(%q) = %q, want %q", in, got, want)
		}
	}
}

// The secrets of these tests: each must never appear in an event, an
// error or a log line.
const (
	secProxyToken = "ptok-7f3a91" // a proxy token given as the user name
	secProxyUser  = "puser-91c2"  // a proxy user name
	secProxyPass  = "ppass-0d4e"  // a proxy password
	secQueryToken = "qtok-5b8e17" // ?token=
	secQueryKey   = "qkey-c6a1f0" // ?api_key=
	secQueryMine  = "qmine-33d2"  // ?sig= named by WithSensitiveQueryKeys
	secCookie     = "cookie-e2f9" // a Set-Cookie value from the server
	secAuth       = "auth-44b0aa" // an Authorization header of ours
	secURLPass    = "upass-8c1e"  // a password in a websocket URL
)

var allSecrets = []string{secProxyToken, secProxyUser, secProxyPass, secQueryToken, secQueryKey, secQueryMine,
	secCookie, secAuth, secURLPass}

// secretCollector gathers every text a session shows: each event's String and
// the text of its fields, the errors returned, and the log lines.
type secretCollector struct {
	mu    sync.Mutex
	texts map[string][]string // what -> texts
	logs  bytes.Buffer
}

func newSecretCollector() *secretCollector { return &secretCollector{texts: map[string][]string{}} }

func (c *secretCollector) add(what string, texts ...string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.texts[what] = append(c.texts[what], texts...)
}

// logger returns a debug-level JSON logger writing into c.
func (c *secretCollector) logger() *slog.Logger {
	return slog.New(slog.NewJSONHandler(&collectorWriter{c: c}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type collectorWriter struct{ c *secretCollector }

func (w *collectorWriter) Write(p []byte) (int, error) {
	w.c.mu.Lock()
	defer w.c.mu.Unlock()
	return w.c.logs.Write(p)
}

// event records ev's String, and the text of every field of it.
func (c *secretCollector) event(ev events.Event) {
	what := ev.Name()
	c.add(what+".String()", ev.String())
	c.add(what+" fields", fieldTexts(reflect.ValueOf(ev))...)
}

// err records err's text, the text of every error it wraps and its %+v.
func (c *secretCollector) err(what string, err error) {
	if err == nil {
		return
	}
	c.add(what, errorTexts(err)...)
}

func errorTexts(err error) []string {
	out := []string{err.Error(), fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", err)}
	switch u := err.(type) {
	case interface{ Unwrap() error }:
		if inner := u.Unwrap(); inner != nil {
			out = append(out, errorTexts(inner)...)
		}
	case interface{ Unwrap() []error }:
		for _, inner := range u.Unwrap() {
			out = append(out, errorTexts(inner)...)
		}
	}
	out = append(out, fieldTexts(reflect.ValueOf(err))...)
	return out
}

// fieldTexts returns the text of v's exported string, error and header
// fields (payloads are the server's data and are not searched).
func fieldTexts(v reflect.Value) []string {
	for v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface {
		if v.IsNil() {
			return nil
		}
		v = v.Elem()
	}
	if v.Kind() != reflect.Struct {
		return nil
	}
	var out []string
	for i := 0; i < v.NumField(); i++ {
		f := v.Type().Field(i)
		if !f.IsExported() {
			continue
		}
		fv := v.Field(i)
		switch x := fv.Interface().(type) {
		case string:
			out = append(out, x)
		case error:
			out = append(out, errorTexts(x)...)
		case http.Header:
			for k, vs := range x {
				out = append(out, k+": "+strings.Join(vs, ", "))
			}
		}
	}
	return out
}

// check fails t for every secret shown anywhere.
func (c *secretCollector) check(t *testing.T) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	for what, texts := range c.texts {
		for _, s := range texts {
			for _, secret := range allSecrets {
				if strings.Contains(s, secret) {
					t.Errorf("%s shows the secret %q: %q", what, secret, s)
				}
			}
		}
	}
	for _, line := range strings.Split(c.logs.String(), "\n") {
		for _, secret := range allSecrets {
			if strings.Contains(line, secret) {
				t.Errorf("log line shows the secret %q: %s", secret, line)
			}
		}
	}
}

// seRun runs one session of ws, collecting everything it shows; fn sees
// every event after it was recorded.
func (c *secretCollector) run(t *testing.T, ws *WebSocket, fn func(ws *WebSocket, ev events.Event)) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err := ws.Run(ctx, HandlerFunc(func(ws *WebSocket, ev events.Event) {
		c.event(ev)
		if fn != nil {
			fn(ws, ev)
		}
	}))
	c.err("Run's error", err)
	c.err("ws.Err()", ws.Err())
	return err
}

func secretQuery() string {
	return "?token=" + secQueryToken + "&api_key=" + secQueryKey + "&sig=" + secQueryMine + "&room=lobby"
}

// TestSecretsNeverShown runs sessions that produce every kind of event and
// error with secrets in the proxy URL, the websocket URL's query, our
// headers and the server's cookies, and searches every String, every
// field's text, every error and every log line for them.
func TestSecretsNeverShown(t *testing.T) {
	clearProxyEnv(t)
	c := newSecretCollector()
	base := func(opts ...Option) []Option {
		return append([]Option{WithLogger(c.logger()), WithHeader("Authorization", "Bearer "+secAuth),
			WithSensitiveQueryKeys("sig"), WithPollInterval(time.Hour), WithPingRate(0), WithCloseTimeout(5 * time.Second)}, opts...)
	}

	t.Run("ready session through a proxy with a token", func(t *testing.T) {
		reqs := make(chan *http.Request, 1)
		srv := wstest.NewServer(t, func(conn *wstest.Conn) {
			req, err := conn.Handshake()
			if err != nil {
				return
			}
			reqs <- req
			if !testkit.Write(t, conn, wstest.Text("hello"), wstest.Binary([]byte{1, 2}), wstest.Ping([]byte("p")),
				wstest.Pong([]byte("unsolicited")), wstest.Close(4000, "done")) {
				return
			}
			_, _, _ = conn.ExpectClose()
		})
		proxy := wstest.NewProxy(t, "", "")
		ws := mustNew(t, srv.URL()+secretQuery(), base(WithProxy("http://"+secProxyToken+"@"+proxy.Addr()))...)
		var connected *events.Connected
		err := c.run(t, ws, func(_ *WebSocket, ev events.Event) {
			if e, ok := ev.(*events.Connected); ok {
				connected = e
			}
		})
		var ce *CloseError
		if !errors.As(err, &ce) {
			t.Fatalf("Run = %v, want a *CloseError", err)
		}
		// The secrets still do their job: the server gets the real query.
		req := testkit.Recv(t, reqs, "the upgrade request")
		if got := req.URL.Query().Get("token"); got != secQueryToken {
			t.Errorf("server got token=%q, want the real %q", got, secQueryToken)
		}
		if got := req.Header.Get("Authorization"); got != "Bearer "+secAuth {
			t.Errorf("server got Authorization %q", got)
		}
		if connected == nil || !strings.Contains(connected.Proxy, proxy.Addr()) {
			t.Errorf("Connected = %v, want the proxy's address shown", connected)
		}
		if connected != nil && !strings.Contains(connected.URL, "room=lobby") {
			t.Errorf("Connected.URL = %q, want the harmless query values kept", connected.URL)
		}
	})

	t.Run("rejected with cookies through a proxy with user and password", func(t *testing.T) {
		srv := wstest.NewServer(t, testkit.Reject(http.StatusUnauthorized, http.Header{
			"Set-Cookie":       {"sid=" + secCookie + "; HttpOnly"},
			"Www-Authenticate": {`Bearer realm="x"`},
		}))
		proxy := wstest.NewProxy(t, secProxyUser, secProxyPass)
		ws := mustNew(t, srv.URL()+secretQuery(), base(WithProxy(proxy.URLWithAuth()))...)
		var rejected *events.Rejected
		err := c.run(t, ws, func(_ *WebSocket, ev events.Event) {
			if e, ok := ev.(*events.Rejected); ok {
				rejected = e
			}
		})
		var rej *RejectedError
		if !errors.As(err, &rej) {
			t.Fatalf("Run = %v, want a *RejectedError", err)
		}
		if rejected == nil || rejected.Header.Get("Www-Authenticate") == "" {
			t.Errorf("Rejected = %v, want the harmless headers kept", rejected)
		}
		if rejected != nil && len(rejected.Header.Values("Set-Cookie")) != 1 {
			t.Errorf("Rejected.Header Set-Cookie = %q, want it present, its value hidden", rejected.Header.Values("Set-Cookie"))
		}
	})

	t.Run("proxy refuses the password", func(t *testing.T) {
		proxy := wstest.NewProxy(t, secProxyUser, "the-right-one")
		ws := mustNew(t, "ws://127.0.0.1:9/"+secretQuery(),
			base(WithProxy("http://"+secProxyUser+":"+secProxyPass+"@"+proxy.Addr()))...)
		var pe *ProxyError
		if err := c.run(t, ws, nil); !errors.As(err, &pe) || pe.StatusCode != http.StatusProxyAuthRequired {
			t.Fatalf("Run = %v, want a *ProxyError 407", err)
		}
	})

	t.Run("proxy unreachable", func(t *testing.T) {
		ws := mustNew(t, "ws://127.0.0.1:9/"+secretQuery(), base(WithProxy("http://"+secProxyToken+"@"+testkit.RefusedAddr(t)))...)
		var ce *ConnectError
		if err := c.run(t, ws, nil); !errors.As(err, &ce) {
			t.Fatalf("Run = %v, want a *ConnectError", err)
		}
	})

	t.Run("protocol error", func(t *testing.T) {
		srv := wstest.NewServer(t, func(conn *wstest.Conn) {
			if testkit.Handshake(t, conn) && testkit.Write(t, conn, wstest.Frame{Fin: true, Opcode: wstest.OpText, Payload: []byte{0xff}}) {
				_, _, _ = conn.ExpectClose()
			}
		})
		ws := mustNew(t, srv.URL()+secretQuery(), base()...)
		var pe *ProtocolError
		if err := c.run(t, ws, nil); !errors.As(err, &pe) {
			t.Fatalf("Run = %v, want a *ProtocolError", err)
		}
	})

	t.Run("unresponsive, then Persist", func(t *testing.T) {
		srv := wstest.NewServer(t, func(conn *wstest.Conn) {
			if testkit.Handshake(t, conn) {
				<-conn.Done() // never answers a ping
			}
		})
		ws := mustNew(t, srv.URL()+secretQuery(), base(WithPingRate(20*time.Millisecond), WithPingTimeout(50*time.Millisecond))...)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		err := ws.Persist(ctx, HandlerFunc(func(_ *WebSocket, ev events.Event) {
			c.event(ev)
		}), WithMaxAttempts(2), constantBackOff(time.Millisecond))
		c.err("Persist's error", err)
		if !errors.Is(err, ErrMaxAttempts) || !errors.Is(err, ErrUnresponsive) {
			t.Fatalf("Persist = %v, want ErrMaxAttempts wrapping ErrUnresponsive", err)
		}
	})

	t.Run("handler panic", func(t *testing.T) {
		srv := wstest.NewServer(t, testkit.AnswerClose)
		ws := mustNew(t, srv.URL()+secretQuery(), base()...)
		var pe *PanicError
		err := c.run(t, ws, func(_ *WebSocket, ev events.Event) {
			if ev.Name() == events.NameReady {
				panic("test panic")
			}
		})
		if !errors.As(err, &pe) {
			t.Fatalf("Run = %v, want a *PanicError", err)
		}
	})

	t.Run("invalid input", func(t *testing.T) {
		for _, raw := range []string{
			"//" + secProxyUser + ":" + secURLPass + "@example.com/",
			"ws://" + secProxyUser + ":" + secURLPass + "@example.com/",
			"ftp://" + secProxyUser + ":" + secURLPass + "@example.com/",
			"ws://" + secProxyUser + ":" + secURLPass + "@/",
			"ws://example.com:99999/" + secretQuery(),
			"ws://" + secProxyUser + ":" + secURLPass + "@example.com/%zz" + secretQuery(),
			"ws://exa mple.com/" + secretQuery(),
		} {
			_, err := New(raw)
			if !errors.Is(err, ErrInvalidURL) {
				t.Errorf("New(%q) = %v, want ErrInvalidURL", raw, err)
			}
			c.err("New's error", err)
		}
		for _, raw := range []string{
			"socks4://" + secProxyToken + "@h:1080",
			"socks5://:" + secProxyPass + "@h:1080",
			"http://" + secProxyUser + ":" + secProxyPass + "@:3128",
			"http://" + secProxyUser + ":" + secProxyPass + "@h:bad",
			"http://" + secProxyToken + "@h:bad",
		} {
			_, err := New("ws://example.com/", WithProxy(raw))
			if !errors.Is(err, ErrInvalidOption) {
				t.Errorf("WithProxy(%q) = %v, want ErrInvalidOption", raw, err)
			}
			c.err("WithProxy's error", err)
		}
	})
	c.check(t)
}

// TestSensitiveQueryKeys checks the redaction of query values: the default
// keys, the keys given to WithSensitiveQueryKeys (case-insensitive), and
// that other values and the order of the query are kept.
func TestSensitiveQueryKeys(t *testing.T) {
	ws := mustNew(t, "ws://example.com/feed?room=a&Token=s1&SIG=s2&api_key=s3&x=1&token=s4", WithSensitiveQueryKeys("sig"))
	want := "ws://example.com/feed?room=a&Token=xxxxx&SIG=xxxxx&api_key=xxxxx&x=1&token=xxxxx"
	if got := shownURL(ws.url, ws.cfg.sensitive); got != want {
		t.Errorf("shown URL %q, want %q", got, want)
	}
	if got := ws.URL(); got != "ws://example.com/feed?room=a&Token=s1&SIG=s2&api_key=s3&x=1&token=s4" {
		t.Errorf("URL() = %q, want the URL as given", got)
	}
	for _, bad := range [][]string{{""}, {"a b"}, {"x=y"}} {
		if _, err := New("ws://example.com/", WithSensitiveQueryKeys(bad...)); !errors.Is(err, ErrInvalidOption) {
			t.Errorf("WithSensitiveQueryKeys(%q) = %v, want ErrInvalidOption", bad, err)
		}
	}
}

// hasControl reports whether s holds a control or bidi-format character.
func hasControl(s string) bool {
	for _, r := range s {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			return true
		}
	}
	return false
}

// TestServerTextEscaped: a server (and a proxy) whose status text carries
// terminal escapes and bidi overrides must not get them into String or
// Error.
func TestServerTextEscaped(t *testing.T) {
	clearProxyEnv(t)
	const hostile = "Forbidden \x1b[2J\x1b[31mgotcha\u202e\x07"
	srv := wstest.NewServer(t, func(c *wstest.Conn) {
		if _, err := c.ReadRequest(); err == nil {
			_ = c.WriteRaw([]byte("HTTP/1.1 403 " + hostile + "\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"))
		}
	})
	var rej *events.Rejected
	rec, err := runRecorded(t, mustNew(t, srv.URL(), WithoutProxy()), func(_ *WebSocket, ev events.Event) {
		if e, ok := ev.(*events.Rejected); ok {
			rej = e
		}
	})
	if rej == nil {
		t.Fatalf("no Rejected; events %v, err %v", rec.Names(), err)
	}
	for what, s := range map[string]string{"Rejected.String()": rej.String(), "Run's error": err.Error()} {
		if hasControl(s) {
			t.Errorf("%s shows raw control characters: %q", what, s)
		}
	}
	if !strings.Contains(rej.String(), "gotcha") {
		t.Errorf("Rejected.String() = %q, want the status text kept, escaped", rej.String())
	}

	addr, _ := rawConnectProxy(t, func(c net.Conn) {
		_, _ = c.Write([]byte("HTTP/1.1 407 " + hostile + "\r\nContent-Length: 0\r\n\r\n"))
	})
	cf, err := runConnectFail(t, mustNew(t, "ws://127.0.0.1:9/", WithProxy("http://"+addr)))
	for what, s := range map[string]string{"ConnectFail.String()": cf.String(), "ConnectFail.Reason": cf.Reason, "Run's error": err.Error()} {
		if hasControl(s) {
			t.Errorf("%s shows raw control characters: %q", what, s)
		}
	}
}
