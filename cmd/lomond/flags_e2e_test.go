package main

import (
	"encoding/base64"
	"encoding/pem"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/coder/websocket"
	"github.com/lomond-go/lomond"
	"github.com/lomond-go/lomond/internal/wstest"
)

// Headers, subprotocols and the origin reach the server; the chosen
// subprotocol is shown; credential header values are never printed.
func TestRequestFlags(t *testing.T) {
	got := make(chan http.Header, 1)
	url := wsServer(t, &websocket.AcceptOptions{Subprotocols: []string{"v2.chat"}},
		func(c *websocket.Conn, r *http.Request, _ <-chan struct{}) {
			got <- r.Header.Clone()
			echoLoop(c, make(chan closeStatus, 1))
		})
	const token = "sekrit-token-42"
	for _, mode := range []string{"human", "json"} {
		args := []string{
			"-H", "Authorization: Bearer " + token, "--header", "X-Trace: abc", "-H", "User-Agent: tester/1",
			"--protocol", "v1.chat,v2.chat", "--origin", "https://example.test", url,
		}
		if mode == "json" {
			args = append(args, "--json")
		}
		r := runCLI(t, "hi\n", args...)
		r.expectCode(t, exitOK)
		h := <-got
		for name, want := range map[string]string{
			"Authorization": "Bearer " + token, "X-Trace": "abc", "Origin": "https://example.test",
			"User-Agent": "tester/1",
		} {
			if h.Get(name) != want {
				t.Errorf("%s: server got %s: %q, want %q", mode, name, h.Get(name), want)
			}
		}
		var offered []string
		for _, p := range strings.Split(h.Get("Sec-Websocket-Protocol"), ",") {
			offered = append(offered, strings.TrimSpace(p))
		}
		if strings.Join(offered, " ") != "v1.chat v2.chat" {
			t.Errorf("%s: subprotocols offered %q, want v1.chat then v2.chat", mode, h.Get("Sec-Websocket-Protocol"))
		}
		if strings.Contains(r.stdout+r.stderr, token) {
			t.Fatalf("%s: the token was printed:\n%s\n%s", mode, r.stdout, r.stderr)
		}
		if mode == "human" && !strings.Contains(r.stderr, `ready protocol "v2.chat"`) {
			t.Errorf("ready line lacks the subprotocol:\n%s", r.stderr)
		}
		if mode == "json" && !strings.Contains(r.stdout, `"protocol":"v2.chat"`) {
			t.Errorf("JSON ready lacks the subprotocol:\n%s", r.stdout)
		}
	}
}

// Credentials in the URL are sent as Basic authorization and never shown,
// even when a hostile server echoes them in its rejection.
func TestURLCredentialsNeverPrinted(t *testing.T) {
	const user, pass = "alice", "pa55word-xyz"
	basic := base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))
	got := make(chan string, 2)
	url := httpServer(t, func(w http.ResponseWriter, r *http.Request) {
		sent := r.Header.Get("Authorization")
		got <- sent
		w.Header().Set("X-Echo", sent)
		http.Error(w, "bad credentials: "+sent+" ("+pass+")", http.StatusUnauthorized)
	})
	withCreds := strings.Replace(url, "ws://", "ws://"+user+":"+pass+"@", 1) + "/feed?access_token=tok-9876&x=1"
	for _, args := range [][]string{{withCreds}, {"--json", withCreds}} {
		r := runCLI(t, "", args...)
		r.expectCode(t, exitRejected)
		if sent := <-got; sent != "Basic "+basic {
			t.Fatalf("server got Authorization %q, want Basic credentials", sent)
		}
		out := r.stdout + r.stderr
		for _, secret := range []string{pass, basic, "tok-9876", user + ":"} {
			if strings.Contains(out, secret) {
				t.Fatalf("%v: %q was printed:\n%s", args, secret, out)
			}
		}
		if !strings.Contains(out, "/feed?access_token=REDACTED&x=1") {
			t.Fatalf("%v: the URL is not shown redacted:\n%s", args, out)
		}
		if !strings.Contains(out, "REDACTED") || !strings.Contains(out, "401") {
			t.Fatalf("%v: output:\n%s", args, out)
		}
	}
}

// Proxy credentials: used for the tunnel, never printed, whether the proxy
// works or cannot be reached.
func TestProxyCredentialsNeverPrinted(t *testing.T) {
	const user, pass = "bobby", "proxy-secret-1"
	proxy := wstest.NewProxy(t, user, pass)
	url, _ := echoServer(t)
	r := runCLI(t, "through\n", "--json", "--proxy", proxy.URLWithAuth(), url)
	r.expectCode(t, exitOK)
	if !strings.Contains(r.stdout, `"proxy":"http://`+proxy.Addr()+`"`) {
		t.Fatalf("connected event lacks the proxy:\n%s", r.stdout)
	}
	if proxy.Conns() != 1 {
		t.Fatalf("%d proxy connections, want 1", proxy.Conns())
	}
	unreachable := "http://" + user + ":" + pass + "@" + closedPort(t)
	r2 := runCLI(t, "", "--proxy", unreachable, url)
	r2.expectCode(t, exitConnect)
	for _, out := range []string{r.stdout + r.stderr, r2.stdout + r2.stderr} {
		if strings.Contains(out, pass) || strings.Contains(out, user) {
			t.Fatalf("proxy credentials printed:\n%s", out)
		}
	}
}

// A proxy from the environment is used (for a host that is not loopback),
// and its credentials are hidden like --proxy's. The proxy is unreachable,
// so nothing is resolved or dialled beyond loopback.
func TestEnvironmentProxy(t *testing.T) {
	proxyURL := "http://envuser:env-secret-77@" + closedPort(t)
	r := runCLIEnv(t, []string{"HTTP_PROXY=" + proxyURL}, "", "--connect-timeout", "5s", "ws://example.invalid/")
	r.expectCode(t, exitConnect)
	if strings.Contains(r.stdout+r.stderr, "env-secret-77") || strings.Contains(r.stdout+r.stderr, "envuser") {
		t.Fatalf("environment proxy credentials printed:\n%s", r.stderr)
	}
	if !strings.Contains(r.stderr, "proxy http://") {
		t.Fatalf("the failure does not mention the proxy:\n%s", r.stderr)
	}
}

// TLS: a private CA needs --cacert, or --insecure; without either the
// connection fails.
func TestTLSFlags(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		echoLoop(c, make(chan closeStatus, 1))
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake is expected
	srv.StartTLS()
	t.Cleanup(srv.Close)
	url := "wss" + strings.TrimPrefix(srv.URL, "https")
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}

	r := runCLI(t, "secure\n", url)
	r.expectCode(t, exitConnect)
	if !strings.Contains(r.stderr, "certificate") {
		t.Fatalf("stderr:\n%s", r.stderr)
	}
	r = runCLI(t, "secure\n", "--cacert", ca, url)
	r.expectCode(t, exitOK)
	if r.stdout != "secure\n" {
		t.Fatalf("stdout %q", r.stdout)
	}
	r = runCLI(t, "secure\n", "-k", url)
	r.expectCode(t, exitOK)
	if !strings.Contains(r.stderr, "verification is off") {
		t.Fatalf("--insecure gives no warning:\n%s", r.stderr)
	}
}

// Command lines that cannot run exit 2 with a message and a pointer to
// --help, and never quote a header's value.
func TestUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "no URL"},
		{[]string{"ws://a/", "ws://b/"}, "one URL expected"},
		{[]string{"--binary", "hex", "ws://a/"}, "write --binary=hex"},
		{[]string{"ftp://a/"}, `scheme "ftp" is not ws, wss, http or https`},
		{[]string{"--bogus", "ws://a/"}, "not defined: -bogus"},
		{[]string{"--proxy", "http://p:1", "--no-proxy", "ws://a/"}, "--proxy and --no-proxy"},
		{[]string{"--backoff-min", "1s", "ws://a/"}, "--backoff-min needs --persist"},
		{[]string{"--persist", "--backoff-min", "2s", "--backoff-max", "1s", "ws://a/"}, "longer than --backoff-max"},
		{[]string{"--count", "-1", "ws://a/"}, "--count must not be negative"},
		{[]string{"--ping-interval", "soon", "ws://a/"}, "not a duration"},
		{[]string{"--read-limit", "lots", "ws://a/"}, "not a size"},
		{[]string{"--binary=octal", "ws://a/"}, "--binary=hex"},
		{[]string{"--close-timeout", "0", "ws://a/"}, "--close-timeout must be positive"},
		{[]string{"--send", "x", "--no-stdin", "ws://a/"}, "--no-stdin with --send"},
		{[]string{"--binary=hex", "--send", "xyz", "ws://a/"}, "--send #1: not hex"},
		{[]string{"-H", "Authorization Bearer hunter22", "ws://a/"}, "want 'Name: value'"},
		{[]string{"-H", "Bad Name: hunter22", "ws://a/"}, "not a valid token"},
		{[]string{"-H", "Sec-WebSocket-Protocol: x", "ws://a/"}, "use --protocol"},
		{[]string{"--protocol", "a b", "ws://a/"}, "not a valid token"},
		{[]string{"--origin", "nowhere", "ws://a/"}, "origin"},
		{[]string{"-H", "Authorization: Basic eDp5", "ws://u:p@a/"}, "credentials both in the URL and"},
		{[]string{"--cacert", "/nonexistent/ca.pem", "wss://a/"}, "CA file"},
	} {
		r := runCLI(t, "", tc.args...)
		if r.code != exitUsage || !strings.Contains(r.stderr, tc.want) || !strings.Contains(r.stderr, "lomond --help") {
			t.Errorf("%q: exit %d, stderr:\n%s\nwant exit 2 and %q", tc.args, r.code, r.stderr, tc.want)
		}
		if strings.Contains(r.stderr, "hunter22") {
			t.Errorf("%q: the header value was printed:\n%s", tc.args, r.stderr)
		}
		if r.stdout != "" {
			t.Errorf("%q: stdout %q", tc.args, r.stdout)
		}
	}
}

func TestHelpAndVersion(t *testing.T) {
	for _, flag := range []string{"-h", "--help"} {
		r := runCLI(t, "", flag)
		r.expectCode(t, exitOK)
		for _, want := range []string{"usage: lomond [flags] URL", "Examples:", "echo hi | lomond --count 1", "Exit status:"} {
			if !strings.Contains(r.stdout, want) {
				t.Fatalf("%s lacks %q:\n%s", flag, want, r.stdout)
			}
		}
	}
	r := runCLI(t, "", "--version")
	r.expectCode(t, exitOK)
	if !strings.HasPrefix(r.stdout, "lomond "+lomond.Version+" ") {
		t.Fatalf("--version: %q", r.stdout)
	}
}
