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
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/lomond-go/lomond/events"
)

// The cookie tests run against coder/websocket's server on 127.0.0.1.

// ckServer records the Cookie header of every upgrade request and answers
// each through answer (n counts requests from 1).
type ckServer struct {
	srv *httptest.Server
	url string

	mu      sync.Mutex
	cookies []string
}

func newCKServer(t *testing.T, useTLS bool, answer func(n int, w http.ResponseWriter, r *http.Request)) *ckServer {
	t.Helper()
	s := &ckServer{}
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

func (s *ckServer) seen() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.cookies)
}

// ckAcceptThenClose accepts the upgrade and closes the connection with
// 1012 (service restart) at once: the client reconnects.
func ckAcceptThenClose(w http.ResponseWriter, r *http.Request) {
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	c.CloseRead(ctx)
	_ = c.Close(websocket.StatusServiceRestart, "restart")
}

// ckHoldUntilClosed accepts the upgrade and answers the client's close.
func ckHoldUntilClosed(w http.ResponseWriter, r *http.Request) {
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
	rcNoLeak(t)
	const sticky, retryCookie = "backend-7f3a", "queue-91bd"
	srv := newCKServer(t, false, func(n int, w http.ResponseWriter, r *http.Request) {
		switch n {
		case 1: // pin the client to a backend, then restart
			http.SetCookie(w, &http.Cookie{Name: "lb", Value: sticky, Path: "/", HttpOnly: true})
			ckAcceptThenClose(w, r)
		case 2: // busy: a cookie with the rejection
			http.SetCookie(w, &http.Cookie{Name: "q", Value: retryCookie, Path: "/"})
			w.Header().Set("Retry-After", "0")
			http.Error(w, "busy", http.StatusServiceUnavailable)
		default:
			ckHoldUntilClosed(w, r)
		}
	})
	jar := newJar(t)
	var logged bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&syncWriter{w: &logged}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ws := rcNew(t, srv.url, WithCookieJar(jar), WithHeader("Cookie", "theme=dark"), WithLogger(logger))
	readies := 0 // the handler runs on the Persist goroutine
	rec, err := rcPersist(t, ws, func(ws *WebSocket, ev events.Event, _ context.CancelFunc) {
		if ev.Name() == events.NameReady {
			if readies++; readies == 2 {
				_ = ws.Stop(StatusNormal, "done")
			}
		}
	}, rcConst(time.Millisecond), WithMaxRetryAfter(0))
	if err != nil {
		t.Fatalf("Persist = %v; events %v", err, rec.names())
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
	for _, ev := range rec.all() {
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
	for _, ev := range rec.all() {
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
	srv := newCKServer(t, true, func(n int, w http.ResponseWriter, r *http.Request) {
		if n == 1 {
			http.SetCookie(w, &http.Cookie{Name: "sid", Value: "s1", Path: "/", Secure: true})
			http.SetCookie(w, &http.Cookie{Name: "other", Value: "o1", Path: "/elsewhere"})
		}
		ckHoldUntilClosed(w, r)
	})
	pool := srv.srv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs
	jar := newJar(t)
	ws := tdNew(t, srv.url, WithCookieJar(jar), WithRootCAs(pool), WithoutProxy())
	tdRunReady(t, ws)
	tdRunReady(t, ws)
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
