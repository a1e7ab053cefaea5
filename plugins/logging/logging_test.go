package logging_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/lomond-go/lomond"
	"github.com/lomond-go/lomond/events"
	"github.com/lomond-go/lomond/internal/wstest"
	"github.com/lomond-go/lomond/plugins/logging"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// syncBuffer is a bytes.Buffer for a log handler and a test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// records parses JSON lines.
func records(t *testing.T, out string) []map[string]any {
	t.Helper()
	var recs []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var r map[string]any
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("not a JSON record: %q: %v", line, err)
		}
		recs = append(recs, r)
	}
	return recs
}

// The secrets of the scenario: none may appear in the log.
var secrets = []string{
	"TOKEN-SECRET-1",    // ?token=
	"TICKET-SECRET-1",   // ?ticket=, redacted by WithRedactedQuery
	"AUTH-SECRET-1",     // Authorization header
	"COOKIE-SECRET-1",   // Cookie header
	"SETCOOKIE-SECRET",  // Set-Cookie of the 401 and of the 101
	"PROXYUSER",         // proxy userinfo
	"PROXYPASS-1",       // proxy userinfo
	"hello-PAYLOAD",     // payloads: sizes only by default
	"reply-PAYLOAD",     //
	"queued-PAYLOAD",    //
	"FAILTOKEN-SECRET2", // ?access_token= of the connection that fails
}

// scenario is a server that, connection after connection: rejects (401);
// accepts, sends a text, a binary, a ping and a pong, answers pings, and
// closes with 4000 after the client's reply; accepts and never answers
// (the client finds it unresponsive); accepts and sends invalid UTF-8 (a
// protocol error).
func scenario(t *testing.T) *wstest.Server {
	var conns atomic.Int32
	return wstest.NewServer(t, func(c *wstest.Conn) {
		n := conns.Add(1)
		req, err := c.ReadRequest()
		if err != nil {
			return
		}
		if n == 1 {
			_ = c.Reject(http.StatusUnauthorized, http.Header{
				"Set-Cookie": {"sid=SETCOOKIE-SECRET; Path=/"}, "Www-Authenticate": {"Bearer"}}, "who are you?")
			return
		}
		if err := c.Accept(req, http.Header{"Set-Cookie": {"session=SETCOOKIE-SECRET"}}); err != nil {
			return
		}
		switch n {
		case 2:
			_ = c.WriteRaw(wstest.EncodeAll(wstest.Text("hello-PAYLOAD"), wstest.Binary([]byte{1, 2, 3}),
				wstest.Ping([]byte("pi")), wstest.Pong([]byte("po"))))
			// Close once the client replied and a keep-alive ping was
			// answered (a pong with an RTT).
			replied, answered := false, false
			for {
				f, err := c.ReadFrame()
				if err != nil {
					return
				}
				switch {
				case f.Opcode == wstest.OpPing && len(f.Payload) == 8:
					_ = c.WriteFrame(wstest.Pong(f.Payload))
					answered = true
				case f.Opcode == wstest.OpText && string(f.Payload) == "reply-PAYLOAD":
					replied = true
				case f.Opcode == wstest.OpClose:
					return
				}
				if replied && answered {
					_ = c.WriteFrame(wstest.Close(4000, "bye"))
					replied = false
				}
			}
		case 3:
			for { // never answer: the ping timeout ends it
				if _, err := c.ReadFrame(); err != nil {
					return
				}
			}
		default:
			_ = c.WriteFrame(wstest.Frame{Fin: true, Opcode: wstest.OpText, Payload: []byte{0xff}})
			if code, reason, err := c.ExpectClose(); err == nil {
				_ = c.WriteFrame(wstest.Close(code, reason))
			}
		}
	})
}

// app answers the server's text, queues a message while disconnected, and
// stops Persist after the fourth session.
type app struct {
	lomond.BaseHandler
	stop     context.CancelFunc
	backOffs int
}

func (a *app) OnText(ws *lomond.WebSocket, _ *events.Text) { _ = ws.SendText("reply-PAYLOAD") }

func (a *app) OnBackOff(ws *lomond.WebSocket, _ *events.BackOff) {
	a.backOffs++
	switch a.backOffs {
	case 1:
		_ = ws.SendText("queued-PAYLOAD") // flushed after the next Ready
	case 4:
		a.stop()
	}
}

// TestLogsEveryEventAndNoSecret runs a Persist through every kind of event,
// through a CONNECT proxy with credentials, with credentials in the URL
// and headers, and a failing connection, all logged through
// slog.NewJSONHandler: every event is there, at its level, with its
// attributes, and no secret is.
func TestLogsEveryEventAndNoSecret(t *testing.T) {
	var out syncBuffer
	logger := slog.New(slog.NewJSONHandler(&out, &slog.HandlerOptions{Level: slog.LevelDebug}))

	srv := scenario(t)
	proxy := wstest.NewProxy(t, "PROXYUSER", "PROXYPASS-1")
	url := srv.URL() + "?token=TOKEN-SECRET-1&ticket=TICKET-SECRET-1&room=lobby"
	ws, err := lomond.New(url,
		lomond.WithPlugins(logging.New(logger, logging.WithRedactedQuery("ticket"))),
		lomond.WithProxy(proxy.URLWithAuth()),
		lomond.WithHeader("Authorization", "Bearer AUTH-SECRET-1"),
		lomond.WithHeader("Cookie", "sid=COOKIE-SECRET-1"),
		lomond.WithPollInterval(time.Hour), // one Poll, right after Ready
		lomond.WithPingRate(30*time.Millisecond), lomond.WithPingTimeout(time.Second),
		lomond.WithCloseTimeout(2*time.Second), lomond.WithSendQueue(4, lomond.DropOldest))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	a := &app{stop: cancel}
	err = ws.Persist(ctx, a,
		lomond.WithBackOff(func() backoff.BackOff { return &backoff.ConstantBackOff{Interval: time.Millisecond} }))
	if err != nil {
		t.Fatalf("Persist = %v", err)
	}
	if a.backOffs != 4 {
		t.Fatalf("Persist ended after %d back-offs, want 4", a.backOffs)
	}

	// A connection that fails, with a token in its URL: the reason and
	// the error quote the address, the failure must not quote the token.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := ln.Addr().String()
	ln.Close()
	ws2, err := lomond.New("ws://"+refused+"/?access_token=FAILTOKEN-SECRET2", lomond.WithoutProxy(),
		lomond.WithPlugins(logging.New(logger)))
	if err != nil {
		t.Fatal(err)
	}
	ctx2, cancel2 := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel2()
	if err := ws2.Persist(ctx2, lomond.BaseHandler{}, lomond.WithMaxAttempts(1)); err == nil {
		t.Fatal("Persist to a refused port succeeded")
	}

	text := out.String()
	for _, s := range secrets {
		if strings.Contains(text, s) {
			t.Errorf("the log contains the secret %q", s)
		}
	}
	if t.Failed() || testing.Verbose() {
		t.Logf("log:\n%s", text)
	}

	recs := records(t, text)
	byEvent := map[string][]map[string]any{}
	for _, r := range recs {
		ev, _ := r["event"].(string)
		byEvent[ev] = append(byEvent[ev], r)
		if u, ok := r["url"].(string); ok && strings.Contains(u, "room=") {
			if !strings.Contains(u, "token=REDACTED") || !strings.Contains(u, "ticket=REDACTED") || !strings.Contains(u, "room=lobby") {
				t.Errorf("url %q: want token and ticket redacted, room kept", u)
			}
		}
	}
	for _, name := range []string{
		events.NameConnecting, events.NameConnectFail, events.NameConnected, events.NameRejected,
		events.NameReady, events.NamePoll, events.NamePing, events.NamePong, events.NameText,
		events.NameBinary, events.NameClosing, events.NameClosed, events.NameUnresponsive,
		events.NameProtocolError, events.NameDisconnected, events.NameBackOff, "send",
	} {
		if len(byEvent[name]) == 0 {
			t.Errorf("no record for %q", name)
		}
	}

	want := func(name string, match func(map[string]any) bool, what string) {
		t.Helper()
		for _, r := range byEvent[name] {
			if match(r) {
				return
			}
		}
		t.Errorf("no %s record %s; have %v", name, what, byEvent[name])
	}
	level := func(l string) func(map[string]any) bool {
		return func(r map[string]any) bool { return r["level"] == l }
	}
	for name, l := range map[string]string{
		events.NameConnecting: "INFO", events.NameReady: "INFO", events.NameBackOff: "INFO",
		events.NameConnectFail: "WARN", events.NameRejected: "WARN", events.NameUnresponsive: "WARN",
		events.NameProtocolError: "WARN", events.NameText: "DEBUG", events.NamePoll: "DEBUG",
	} {
		for _, r := range byEvent[name] {
			if r["level"] != l {
				t.Errorf("%s logged at %v, want %s", name, r["level"], l)
			}
		}
	}
	want(events.NameText, func(r map[string]any) bool { return r["size"] == float64(13) && r["payload"] == nil }, "with size 13 and no payload")
	want(events.NameRejected, func(r map[string]any) bool { return r["status"] == float64(401) }, "with status 401")
	want(events.NameClosed, func(r map[string]any) bool { return r["code"] == float64(4000) && r["reason"] == "bye" }, "with code 4000")
	want(events.NamePong, func(r map[string]any) bool { _, ok := r["rtt"]; return ok }, "with an RTT")
	want(events.NameProtocolError, func(r map[string]any) bool { return r["code"] == float64(1007) }, "with code 1007")
	want(events.NameDisconnected, func(r map[string]any) bool {
		return r["graceful"] == true && r["level"] == "INFO" && r["session"] != nil
	}, "graceful at INFO with the session's length")
	want(events.NameDisconnected, level("WARN"), "at WARN (not graceful)")
	want(events.NameBackOff, func(r map[string]any) bool { return r["delay"] != nil && r["attempt"] != nil && r["cause"] != nil }, "with delay, attempt and cause")
	want(events.NameConnected, func(r map[string]any) bool {
		p, _ := r["proxy"].(string)
		return strings.HasPrefix(p, "http://127.0.0.1:")
	}, "with the proxy, without its userinfo")
	want("send", func(r map[string]any) bool {
		return r["type"] == "text" && r["result"] == "queued" && r["size"] == float64(14)
	}, "for the queued text")
	want("send", func(r map[string]any) bool {
		return r["type"] == "text" && r["result"] == "sent" && r["from_queue"] == true
	}, "for the flush")
	want("send", func(r map[string]any) bool { return r["type"] == "pong" && r["auto"] == true }, "for the automatic pong")
	want("send", func(r map[string]any) bool { return r["type"] == "close" && r["code"] == float64(1007) }, "for the protocol error's close")
	want(events.NameConnectFail, level("WARN"), "at WARN")
}

func TestWithPayloadsLogsPayloadPrefixesStillRedacted(t *testing.T) {
	var out syncBuffer
	logger := slog.New(slog.NewJSONHandler(&out, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv := wstest.NewServer(t, func(c *wstest.Conn) {
		if _, err := c.Handshake(); err != nil {
			return
		}
		_ = c.WriteRaw(wstest.EncodeAll(wstest.Text("token is TOKEN-SECRET-9, ok"), wstest.Binary([]byte{0xde, 0xad, 0xbe, 0xef, 0x01})))
		if code, reason, err := c.ExpectClose(); err == nil {
			_ = c.WriteFrame(wstest.Close(code, reason))
		}
	})
	ws, err := lomond.New(srv.URL()+"?token=TOKEN-SECRET-9", lomond.WithoutProxy(), lomond.WithPollInterval(0),
		lomond.WithPlugins(logging.New(logger, logging.WithPayloads(28))))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for ev := range ws.Events(ctx) {
		if _, ok := ev.(*events.Binary); ok {
			_ = ws.Close(lomond.StatusNormal, "")
		}
	}
	text := out.String()
	if strings.Contains(text, "TOKEN-SECRET-9") {
		t.Errorf("payload logging leaked a known secret:\n%s", text)
	}
	var sawText, sawBinary bool
	for _, r := range records(t, text) {
		switch r["event"] {
		case events.NameText:
			sawText = r["payload"] == "token is REDACTED, ok"
		case events.NameBinary:
			sawBinary = r["payload_hex"] == "deadbeef01"
		}
	}
	if !sawText || !sawBinary {
		t.Errorf("payloads not logged as asked (text %v, binary %v):\n%s", sawText, sawBinary, text)
	}
}
