package lomond

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/lomond-go/lomond/events"
	"github.com/lomond-go/lomond/internal/testkit"
	"github.com/lomond-go/lomond/internal/wstest"
)

// Tests of handshake.go: the opening handshake's outcomes (accepted,
// rejected, bad upgrades, subprotocols, the timeout), Retry-After, and the
// cookie jar, against scripted servers and coder/websocket's server.

// cookieServer records the Cookie header of every upgrade request and answers
// each through answer (n counts requests from 1).
type cookieServer struct {
	srv *httptest.Server
	url string

	mu      sync.Mutex
	cookies []string
}

func newCookieServer(t *testing.T, useTLS bool, answer func(n int, w http.ResponseWriter, r *http.Request)) *cookieServer {
	t.Helper()
	s := &cookieServer{}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.cookies = append(s.cookies, strings.Join(r.Header.Values("Cookie"), " | "))
		n := len(s.cookies)
		s.mu.Unlock()
		answer(n, w, r)
	})
	if useTLS {
		s.srv = httptest.NewTLSServer(h)
	} else {
		s.srv = httptest.NewServer(h)
	}
	t.Cleanup(s.srv.Close)
	s.url = "ws" + strings.TrimPrefix(s.srv.URL, "http") + "/feed"
	return s
}

func (s *cookieServer) seen() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.cookies)
}

// acceptThenClose accepts the upgrade and closes the connection with
// 1012 (service restart) at once: the client reconnects.
func acceptThenClose(w http.ResponseWriter, r *http.Request) {
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	c.CloseRead(ctx)
	_ = c.Close(websocket.StatusServiceRestart, "restart")
}

// holdUntilClosed accepts the upgrade and answers the client's close.
func holdUntilClosed(w http.ResponseWriter, r *http.Request) {
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	_, _, _ = c.Read(ctx) // returns when the client's close arrives
	_ = c.CloseNow()
}

func newJar(t *testing.T) *cookiejar.Jar {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return jar
}

// TestCookieJarStickySession: a load balancer's cookie set on the 101 of
// the first connection (and one set on a 503 rejection) is sent back on
// every reconnection of Persist, after the WithHeader cookies; the cookie
// values are never shown in events, errors or the log.
func TestCookieJarStickySession(t *testing.T) {
	testkit.NoLeak(t)
	const sticky, retryCookie = "backend-7f3a", "queue-91bd"
	srv := newCookieServer(t, false, func(n int, w http.ResponseWriter, r *http.Request) {
		switch n {
		case 1: // pin the client to a backend, then restart
			http.SetCookie(w, &http.Cookie{Name: "lb", Value: sticky, Path: "/", HttpOnly: true})
			acceptThenClose(w, r)
		case 2: // busy: a cookie with the rejection
			http.SetCookie(w, &http.Cookie{Name: "q", Value: retryCookie, Path: "/"})
			w.Header().Set("Retry-After", "0")
			http.Error(w, "busy", http.StatusServiceUnavailable)
		default:
			holdUntilClosed(w, r)
		}
	})
	jar := newJar(t)
	var logged bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&syncWriter{w: &logged}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ws := newQuietWS(t, srv.url, WithCookieJar(jar), WithHeader("Cookie", "theme=dark"), WithLogger(logger))
	readies := 0 // the handler runs on the Persist goroutine
	rec, err := runPersist(t, ws, func(ws *WebSocket, ev events.Event, _ context.CancelFunc) {
		if ev.Name() == events.NameReady {
			if readies++; readies == 2 {
				_ = ws.Stop(StatusNormal, "done")
			}
		}
	}, constantBackOff(time.Millisecond), WithMaxRetryAfter(0))
	if err != nil {
		t.Fatalf("Persist = %v; events %v", err, rec.Names())
	}
	want := []string{
		"theme=dark",
		"theme=dark; lb=" + sticky,
		"theme=dark; lb=" + sticky + "; q=" + retryCookie,
	}
	if got := srv.seen(); !slices.Equal(got, want) {
		t.Errorf("the server saw Cookie headers\n%q\nwant\n%q", got, want)
	}
	u, _ := url.Parse(srv.srv.URL)
	if n := len(jar.Cookies(u)); n != 2 {
		t.Errorf("the jar holds %d cookies for the server, want 2", n)
	}
	var texts []string
	for _, ev := range rec.All() {
		texts = append(texts, ev.String())
		if bo, ok := ev.(*events.BackOff); ok && bo.Cause != nil {
			texts = append(texts, bo.Cause.Error())
		}
	}
	texts = append(texts, logged.String())
	for _, s := range texts {
		for _, secret := range []string{sticky, retryCookie} {
			if strings.Contains(s, secret) {
				t.Errorf("a cookie value shows: %s", s)
			}
		}
	}
	var rej *events.Rejected
	for _, ev := range rec.All() {
		if r, ok := ev.(*events.Rejected); ok {
			rej = r
		}
	}
	if rej == nil || !slices.Equal(rej.Header.Values("Set-Cookie"), []string{redacted}) {
		t.Errorf("Rejected event %v: want its Set-Cookie present and hidden", rej)
	}
}

// syncWriter serialises writes to a buffer read after the run.
type syncWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// TestCookieJarRules: the jar sees the URL as https:// for wss://, so a
// Secure cookie comes back over wss://, and a cookie for another path stays
// home; each Run of the same WebSocket uses the jar.
func TestCookieJarRules(t *testing.T) {
	srv := newCookieServer(t, true, func(n int, w http.ResponseWriter, r *http.Request) {
		if n == 1 {
			http.SetCookie(w, &http.Cookie{Name: "sid", Value: "s1", Path: "/", Secure: true})
			http.SetCookie(w, &http.Cookie{Name: "other", Value: "o1", Path: "/elsewhere"})
		}
		holdUntilClosed(w, r)
	})
	pool := srv.srv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs
	jar := newJar(t)
	ws := mustNew(t, srv.url, WithCookieJar(jar), WithRootCAs(pool), WithoutProxy())
	runUntilReady(t, ws)
	runUntilReady(t, ws)
	if got, want := srv.seen(), []string{"", "sid=s1"}; !slices.Equal(got, want) {
		t.Errorf("the server saw Cookie headers %q, want %q", got, want)
	}
}

func TestWithCookieJarNil(t *testing.T) {
	_, err := New("ws://127.0.0.1:9/", WithCookieJar(nil))
	if !errors.Is(err, ErrInvalidOption) || !strings.Contains(err.Error(), "cookie jar") {
		t.Errorf("WithCookieJar(nil): %v, want ErrInvalidOption naming the cookie jar", err)
	}
}

// TestSubprotocolNoRace: ws.Subprotocol() from another goroutine while the
// dispatcher connects must not race (run with -race).
func TestSubprotocolNoRace(t *testing.T) {
	srv := wstest.NewServer(t, func(c *wstest.Conn) {
		req, err := c.ReadRequest()
		if err != nil {
			return
		}
		if c.Accept(req, http.Header{"Sec-WebSocket-Protocol": {"v2"}}) != nil {
			return
		}
		_ = c.WriteFrame(wstest.Close(StatusNormal, "bye"))
		_, _, _ = c.ExpectClose()
	})
	ws := mustNew(t, srv.URL(), WithoutProxy(), WithProtocols("v1", "v2"))
	for i := 0; i < 20; i++ {
		done := make(chan struct{})
		var wg sync.WaitGroup
		wg.Add(1)
		seen := ""
		go func() {
			defer wg.Done()
			for {
				select {
				case <-done:
					return
				default:
				}
				if p := ws.Subprotocol(); p != "" {
					seen = p
				}
			}
		}()
		var ready string
		_, _ = runRecorded(t, ws, func(ws *WebSocket, ev events.Event) {
			if ev.Name() == events.NameReady {
				ready = ws.Subprotocol()
			}
		})
		close(done)
		wg.Wait()
		if ready != "v2" {
			t.Fatalf("Subprotocol in OnReady = %q, want v2", ready)
		}
		if seen != "" && seen != "v2" {
			t.Fatalf("Subprotocol from another goroutine = %q", seen)
		}
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2024, 3, 4, 5, 6, 7, 0, time.UTC)
	date := func(d time.Duration) string { return now.Add(d).Format(http.TimeFormat) }
	cases := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"", 0, false},
		{"   ", 0, false},
		{"0", 0, true},
		{"1", time.Second, true},
		{"120", 2 * time.Minute, true},
		{" 5 ", 5 * time.Second, true},
		{"86400", 24 * time.Hour, true},
		{"-1", 0, false},
		{"-120", 0, false},
		{"+5", 0, false},
		{"1.5", 0, false},
		{"5s", 0, false},
		{"abc", 0, false},
		{"soon", 0, false},
		{"99999999999999999999999", 0, false},
		{date(90 * time.Second), 90 * time.Second, true},
		{date(2 * time.Hour), 2 * time.Hour, true},
		{date(0), 0, true},
		{date(-time.Hour), 0, true},
		{"Sunday, 03-Mar-24 05:07:07 GMT", 0, true}, // RFC 850, in the past
		{now.Add(30 * time.Second).Format(time.ANSIC), 30 * time.Second, true},
		{"Mon, 32 Mar 2024 00:00:00 GMT", 0, false},
	}
	for _, c := range cases {
		got, ok := parseRetryAfter(c.in, now)
		if got != c.want || ok != c.ok {
			t.Errorf("parseRetryAfter(%q) = %v, %v; want %v, %v", c.in, got, ok, c.want, c.ok)
		}
	}
}

// TestParseRetryAfterHuge checks that a huge delay-seconds value does not
// overflow time.Duration into a negative delay.
func TestParseRetryAfterHuge(t *testing.T) {
	now := time.Now()
	for _, in := range []string{"10000000000", "9223372036854775807"} {
		got, ok := parseRetryAfter(in, now)
		if ok && got < 0 {
			t.Errorf("parseRetryAfter(%q) = %v, true: negative delay", in, got)
		}
	}
	// A far-future date saturates instead of overflowing.
	if got, ok := parseRetryAfter("Fri, 31 Dec 9999 23:59:59 GMT", now); !ok || got <= 0 {
		t.Errorf("far-future date: %v, %v; want a large positive delay", got, ok)
	}
}

// TestHandshakeResponsesNetHTTPAccepts: a 100 Continue before the 101, and
// a 101 with bare-LF line endings, are read as net/http reads them; what
// follows is read as frames: unmasked data delivered, a masked frame
// refused.
func TestHandshakeResponsesNetHTTPAccepts(t *testing.T) {
	lf101 := func(req *http.Request) string {
		return "HTTP/1.1 101 Switching Protocols\nUpgrade: websocket\nConnection: Upgrade\n" +
			"Sec-WebSocket-Accept: " + wstest.AcceptKey(req.Header.Get("Sec-WebSocket-Key")) + "\n\n"
	}
	masked := wstest.Frame{Fin: true, Opcode: wstest.OpText, Masked: true, MaskKey: [4]byte{1, 2, 3, 4}, Payload: []byte("secret")}.Encode()
	cases := []struct {
		name     string
		response func(req *http.Request) []byte
		wantText bool
	}{
		{"100 Continue first", func(req *http.Request) []byte {
			return append([]byte("HTTP/1.1 100 Continue\r\n\r\n"), raw101(req, wstest.Text("data").Encode())...)
		}, true},
		{"bare LF", func(req *http.Request) []byte {
			return append([]byte(lf101(req)), wstest.Text("data").Encode()...)
		}, true},
		{"bare LF then a masked frame", func(req *http.Request) []byte {
			return append([]byte(lf101(req)), masked...)
		}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv, done := testkit.ScriptServer(t, func(c *wstest.Conn) {
				req, err := c.ReadRequest()
				if err != nil || c.WriteRaw(tc.response(req)) != nil {
					return
				}
				code, _, err := c.ExpectClose()
				if err == nil {
					_ = c.WriteFrame(wstest.Close(code, ""))
				}
			})
			lHook := func(ws *WebSocket, ev events.Event) {
				if _, ok := ev.(*events.Text); ok {
					_ = ws.Close(1000, "")
				}
			}
			l, err := runAgainstScript(t, srv, done, lHook)
			if tc.wantText {
				if err != nil {
					t.Errorf("Run = %v, want nil", err)
				}
				testkit.ExpectLines(t, l, testkit.Seq(testkit.Opening(srv.URL()), []string{`text "data"`, `closed 1000 ""`, "disconnected graceful=true err=false"}))
				return
			}
			var pe *ProtocolError
			if !errors.As(err, &pe) || pe.Code != 1002 {
				t.Errorf("Run = %v, want a *ProtocolError 1002", err)
			}
			for _, ev := range l.All() {
				if _, ok := ev.(*events.Text); ok {
					t.Errorf("a masked frame was delivered: %v", ev)
				}
			}
		})
	}
}

// raw101 answers req with a valid 101 response followed by extra bytes, all
// in one write.
func raw101(req *http.Request, extra []byte) []byte {
	resp := "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Accept: " + wstest.AcceptKey(req.Header.Get("Sec-WebSocket-Key")) + "\r\n\r\n"
	return append([]byte(resp), extra...)
}

// rejectCase runs a session against a server that answers the upgrade with
// respond, checks the events and Run's error, and returns the Rejected
// event.
func rejectCase(t *testing.T, respond func(c *wstest.Conn, req *http.Request), opts ...Option) *events.Rejected {
	t.Helper()
	srv, done := testkit.ScriptServer(t, func(c *wstest.Conn) {
		req, err := c.ReadRequest()
		if err != nil {
			t.Errorf("server: %v", err)
			return
		}
		respond(c, req)
		testkit.Drain(t, c)
	})
	ws := newTestWS(t, srv.URL(), opts...)
	l := new(testkit.EventRecorder)
	start := time.Now()
	err := ws.Run(context.Background(), recording(l, nil))
	elapsed := time.Since(start)
	testkit.WaitScript(t, done)
	// The server keeps the connection open: the client must not wait on it.
	if elapsed > 2*time.Second {
		t.Errorf("Run took %v to report the rejection, want it at once", elapsed)
	}
	rej := testkit.Last[*events.Rejected](t, l)
	testkit.ExpectLines(t, l, testkit.Seq(testkit.Opening(srv.URL())[:2], []string{
		"rejected " + strconv.Itoa(rej.StatusCode), "disconnected graceful=true err=false",
	}))
	var re *RejectedError
	if !errors.As(err, &re) {
		t.Fatalf("Run = %v, want *RejectedError", err)
	}
	if re.StatusCode != rej.StatusCode || re.RetryAfter != rej.RetryAfter || re.HasRetryAfter != rej.HasRetryAfter {
		t.Errorf("RejectedError %+v does not match the Rejected event %+v", re, rej)
	}
	if srv.Conns() != 1 {
		t.Errorf("server saw %d connections, want 1", srv.Conns())
	}
	return rej
}

// TestHandshakeRejected covers non-101 answers.
func TestHandshakeRejected(t *testing.T) {
	t.Run("403 with Retry-After seconds", func(t *testing.T) {
		rej := rejectCase(t, func(c *wstest.Conn, _ *http.Request) {
			_ = c.Reject(http.StatusForbidden, http.Header{"Retry-After": {"7"}}, "go away")
		})
		if rej.StatusCode != 403 || rej.Status != "403 Forbidden" {
			t.Errorf("Rejected status = %d %q", rej.StatusCode, rej.Status)
		}
		if !rej.HasRetryAfter || rej.RetryAfter != 7*time.Second {
			t.Errorf("Rejected RetryAfter = %v (has %v), want 7s", rej.RetryAfter, rej.HasRetryAfter)
		}
		if string(rej.Body) != "go away" {
			t.Errorf("Rejected Body = %q, want %q", rej.Body, "go away")
		}
		if rej.Reason == "" || rej.Err == nil {
			t.Errorf("Rejected Reason %q, Err %v: want both", rej.Reason, rej.Err)
		}
	})
	t.Run("503 with Retry-After date", func(t *testing.T) {
		date := time.Now().Add(90 * time.Second).UTC().Format(http.TimeFormat)
		rej := rejectCase(t, func(c *wstest.Conn, _ *http.Request) {
			_ = c.Reject(http.StatusServiceUnavailable, http.Header{"Retry-After": {date}}, "")
		})
		if rej.StatusCode != 503 {
			t.Errorf("Rejected StatusCode = %d, want 503", rej.StatusCode)
		}
		if !rej.HasRetryAfter || rej.RetryAfter < 80*time.Second || rej.RetryAfter > 91*time.Second {
			t.Errorf("Rejected RetryAfter = %v (has %v), want about 90s", rej.RetryAfter, rej.HasRetryAfter)
		}
	})
	t.Run("302 redirect is not followed", func(t *testing.T) {
		const loc = "ws://127.0.0.1:1/elsewhere"
		rej := rejectCase(t, func(c *wstest.Conn, _ *http.Request) {
			_ = c.Reject(http.StatusFound, http.Header{"Location": {loc}}, "")
		})
		if rej.StatusCode != 302 || rej.Header.Get("Location") != loc {
			t.Errorf("Rejected = %d Location %q, want 302 %q", rej.StatusCode, rej.Header.Get("Location"), loc)
		}
		if rej.HasRetryAfter {
			t.Error("Rejected HasRetryAfter without a Retry-After header")
		}
	})
}

// TestHandshakeBadUpgrade covers 101 answers the client must refuse.
func TestHandshakeBadUpgrade(t *testing.T) {
	cases := []struct {
		name  string
		extra http.Header
	}{
		{"wrong Sec-WebSocket-Accept", http.Header{"Sec-WebSocket-Accept": {"d3JvbmcgYWNjZXB0IGtleQ=="}}},
		{"missing Sec-WebSocket-Accept", http.Header{"Sec-WebSocket-Accept": nil}},
		{"unrequested subprotocol", http.Header{"Sec-WebSocket-Protocol": {"chat"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rej := rejectCase(t, func(c *wstest.Conn, req *http.Request) {
				_ = c.Accept(req, tc.extra)
			})
			if rej.StatusCode != http.StatusSwitchingProtocols || rej.Reason == "" || rej.Err == nil {
				t.Errorf("Rejected = %d, reason %q, err %v: want 101 with a reason and an error",
					rej.StatusCode, rej.Reason, rej.Err)
			}
			t.Logf("reason: %s", rej.Reason)
		})
	}
}

// TestHandshakeSubprotocol: the server chooses one of the offered
// subprotocols.
func TestHandshakeSubprotocol(t *testing.T) {
	offered := make(chan string, 1)
	srv, done := testkit.ScriptServer(t, func(c *wstest.Conn) {
		req, err := c.ReadRequest()
		if err != nil {
			t.Errorf("server: %v", err)
			return
		}
		var offers []string
		for _, v := range req.Header.Values("Sec-WebSocket-Protocol") {
			for _, p := range strings.Split(v, ",") {
				offers = append(offers, strings.TrimSpace(p))
			}
		}
		offered <- strings.Join(offers, " ")
		if c.Accept(req, http.Header{"Sec-WebSocket-Protocol": {"v2.beta"}}) == nil &&
			testkit.ExpectClose(t, c, 1000, "") && testkit.Write(t, c, wstest.Close(1000, "")) {
			testkit.ExpectEOF(t, c)
		}
	})
	lHook := func(ws *WebSocket, ev events.Event) {
		if _, ok := ev.(*events.Ready); ok {
			if p := ws.Subprotocol(); p != "v2.beta" {
				t.Errorf("Subprotocol() = %q, want v2.beta", p)
			}
			if err := ws.Close(1000, ""); err != nil {
				t.Errorf("Close: %v", err)
			}
		}
	}
	l, err := runAgainstScript(t, srv, done, lHook, WithProtocols("v1.alpha", "v2.beta"))
	if err != nil {
		t.Fatalf("Run = %v, want nil", err)
	}
	url := srv.URL()
	testkit.ExpectLines(t, l, []string{
		"connecting " + url, "connected " + url + ` proxy=""`,
		`ready 101 protocol="v2.beta" extensions=[]`, "poll",
		`closed 1000 ""`, "disconnected graceful=true err=false",
	})
	select {
	case got := <-offered:
		if got != "v1.alpha v2.beta" {
			t.Errorf("server got the offers %q, want v1.alpha then v2.beta", got)
		}
	default:
		t.Error("the server script ended before it read the request")
	}
}

// TestHandshakeTimeout: a server that never answers the upgrade request.
func TestHandshakeTimeout(t *testing.T) {
	const timeout = 300 * time.Millisecond
	srv, done := testkit.ScriptServer(t, func(c *wstest.Conn) {
		if _, err := c.ReadRequest(); err != nil {
			t.Errorf("server: %v", err)
			return
		}
		testkit.Drain(t, c) // never answer
	})
	ws := newTestWS(t, srv.URL(), WithHandshakeTimeout(timeout))
	l := new(testkit.EventRecorder)
	start := time.Now()
	err := ws.Run(context.Background(), recording(l, nil))
	elapsed := time.Since(start)
	testkit.WaitScript(t, done)
	if !errors.Is(err, ErrHandshakeTimeout) {
		t.Fatalf("Run = %v, want an error wrapping ErrHandshakeTimeout", err)
	}
	if elapsed < timeout || elapsed > timeout+5*time.Second {
		t.Errorf("Run took %v, want about %v", elapsed, timeout)
	}
	testkit.ExpectLines(t, l, testkit.Seq(testkit.Opening(srv.URL())[:2], []string{"disconnected graceful=false err=true"}))
	if d := testkit.Last[*events.Disconnected](t, l); !errors.Is(d.Err, ErrHandshakeTimeout) {
		t.Errorf("Disconnected.Err = %v, want it to wrap ErrHandshakeTimeout", d.Err)
	}
}

// TestHandshakeFramesWithResponse: frames that arrive in the same segment
// as the 101 response are not lost.
func TestHandshakeFramesWithResponse(t *testing.T) {
	srv, done := testkit.ScriptServer(t, func(c *wstest.Conn) {
		req, err := c.ReadRequest()
		if err != nil {
			t.Errorf("server: %v", err)
			return
		}
		frames := wstest.EncodeAll(wstest.Text("early"), wstest.Binary([]byte("bird")), wstest.Close(1000, "so long"))
		if c.WriteRaw(raw101(req, frames)) == nil && testkit.ExpectClose(t, c, 1000, "so long") {
			testkit.ExpectEOF(t, c)
		}
	})
	l, err := runAgainstScript(t, srv, done, nil)
	if CloseStatus(err) != 1000 {
		t.Fatalf("Run = %v, want *CloseError 1000", err)
	}
	testkit.ExpectLines(t, l, testkit.Seq(testkit.Opening(srv.URL()), []string{
		`text "early"`, `binary "bird"`,
		`closing 1000 "so long"`, `closed 1000 "so long"`, "disconnected graceful=true err=false",
	}))
}
