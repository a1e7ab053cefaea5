package lomondtest_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/lomond-go/lomond"
	"github.com/lomond-go/lomond/events"
	"github.com/lomond-go/lomond/lomondtest"
	"github.com/lomond-go/lomond/lomondtest/fault"
)

// sendThenClose is a handler that sends msgs when ready and closes (1000
// "done") once it has received n messages.
func sendThenClose(n int, msgs ...string) lomond.HandlerFunc {
	got := 0
	return func(ws *lomond.WebSocket, ev events.Event) {
		switch ev.(type) {
		case *events.Ready:
			for _, m := range msgs {
				_ = ws.SendText(m)
			}
			if n == 0 {
				_ = ws.Close(1000, "done")
			}
		case *events.Text, *events.Binary:
			if got++; got == n {
				_ = ws.Close(1000, "done")
			}
		}
	}
}

func TestServerEchoesWithNoScript(t *testing.T) {
	srv := lomondtest.NewServer(t)
	rec := lomondtest.Run(t, srv.Client(), sendThenClose(2, "one", "two"))
	rec.AssertSequence(t, "connecting connected ready text text closed disconnected")
	var texts []string
	for _, ev := range rec.Events() {
		if tx, ok := ev.(*events.Text); ok {
			texts = append(texts, tx.Text)
		}
	}
	if strings.Join(texts, ",") != "one,two" {
		t.Errorf("echoes = %q, want one, two", texts)
	}
	c := srv.Conn(t, 1)
	if got := c.Messages(); len(got) != 2 || string(got[0].Data) != "one" || got[1].Binary {
		t.Errorf("server saw %v", got)
	}
	if code, reason, ok := c.ClientClose(); !ok || code != 1000 || reason != "done" {
		t.Errorf("ClientClose = %d %q %v, want 1000 \"done\" true", code, reason, ok)
	}
	c.WaitDone(t)
}

func TestServerURLAndRequestRecord(t *testing.T) {
	srv := lomondtest.NewServer(t, lomondtest.Script(lomondtest.CloseWith(1000, "")))
	if !strings.HasPrefix(srv.URL, "ws://127.0.0.1:") || strings.HasSuffix(srv.URL, "/") {
		t.Fatalf("URL = %q, want ws://127.0.0.1:PORT", srv.URL)
	}
	ws, err := lomond.New(srv.URL+"/feed?x=1", append(srv.ClientOptions(),
		lomond.WithHeader("Authorization", "Bearer t0ken"), lomond.WithProtocols("v2", "v1"))...)
	if err != nil {
		t.Fatal(err)
	}
	// ClientOptions alone leave Poll on: it comes right after Ready.
	lomondtest.Run(t, ws, nil).AssertSequence(t, "connecting connected ready poll closing closed disconnected")
	req := srv.Conn(t, 1).Request()
	if req.URL.Path != "/feed" || req.URL.RawQuery != "x=1" {
		t.Errorf("request URL = %v", req.URL)
	}
	if got := req.Header.Get("Authorization"); got != "Bearer t0ken" {
		t.Errorf("Authorization = %q", got)
	}
	if got := strings.ReplaceAll(req.Header.Get("Sec-WebSocket-Protocol"), " ", ""); got != "v2,v1" {
		t.Errorf("Sec-WebSocket-Protocol = %q, want v2 then v1", req.Header.Get("Sec-WebSocket-Protocol"))
	}
	if got := srv.Conn(t, 1).Subprotocol(); got != "" {
		t.Errorf("Subprotocol = %q, want none (the script chose none)", got)
	}
}

func TestScriptsPerConnectionLastRepeats(t *testing.T) {
	srv := lomondtest.NewServer(t,
		lomondtest.Script(fault.Reject(http.StatusServiceUnavailable)),
		lomondtest.Script(lomondtest.SendText("second")),
		lomondtest.Script(lomondtest.SendText("later")),
	)
	want := []string{"rejected", "second", "later", "later"}
	for i, w := range want {
		rec := lomondtest.Run(t, srv.Client(), sendThenClose(1))
		got := "rejected"
		if tx, ok := rec.Events()[3].(*events.Text); ok {
			got = tx.Text
		}
		if got != w {
			t.Errorf("connection %d: got %s, want %s; events %v", i+1, got, w, rec.Names())
		}
	}
	if n := len(srv.Conns()); n != 4 {
		t.Errorf("Conns() has %d connections, want 4", n)
	}
	for i, c := range srv.Conns() {
		if c.Number() != i+1 {
			t.Errorf("Conns()[%d].Number() = %d", i, c.Number())
		}
	}
}

func TestStopRefusesStartReopensTheSamePort(t *testing.T) {
	srv := lomondtest.NewServer(t)
	lomondtest.Run(t, srv.Client(), sendThenClose(0)).AssertSequence(t, "connecting connected ready closed disconnected")
	srv.Stop()
	lomondtest.Run(t, srv.Client(), nil).AssertSequence(t, "connecting connect_fail")
	srv.Start()
	srv.Start() // already listening: nothing happens
	lomondtest.Run(t, srv.Client(), sendThenClose(0)).AssertSequence(t, "connecting connected ready closed disconnected")
	if n := len(srv.Conns()); n != 2 {
		t.Errorf("%d connections reached the server, want 2 (the refused one never does)", n)
	}
}

func TestStopDropsLiveConnections(t *testing.T) {
	srv := lomondtest.NewServer(t)
	p := lomondtest.Persist(t, srv.Client(), nil, lomond.WithMaxAttempts(1))
	p.WaitFor(t, "ready", lomondtest.Timeout)
	srv.Stop()
	dis := p.WaitFor(t, "disconnected", lomondtest.Timeout).(*events.Disconnected)
	if dis.Graceful {
		t.Errorf("Disconnected after Stop is graceful: %v", dis)
	}
	if err := p.Wait(t); err == nil {
		t.Error("Persist with one attempt returned nil after the server dropped it")
	}
	if _, _, ok := srv.Conn(t, 1).ClientClose(); ok {
		t.Error("the client sent a close frame on a dropped connection")
	}
}

func TestRestartOnTheSamePort(t *testing.T) {
	srv := lomondtest.NewServer(t)
	url := srv.URL
	p := lomondtest.Persist(t, srv.Client(), nil)
	p.WaitFor(t, "ready", lomondtest.Timeout)
	srv.Restart()
	p.WaitFor(t, "ready", lomondtest.Timeout)
	if err := p.Stop(t); err != nil {
		t.Fatal(err)
	}
	if srv.URL != url {
		t.Errorf("URL changed from %s to %s", url, srv.URL)
	}
	p.AssertSequence(t, "connecting connected ready disconnected back_off"+
		" (connecting connect_fail back_off)* connecting connected ready closed disconnected")
}

func TestShutdownClosesWithACode(t *testing.T) {
	srv := lomondtest.NewServer(t)
	p := lomondtest.Persist(t, srv.Client(), nil)
	p.WaitFor(t, "ready", lomondtest.Timeout)
	srv.Shutdown(lomond.StatusServiceRestart, "service restart")
	closing := p.WaitFor(t, "closing", lomondtest.Timeout).(*events.Closing)
	if closing.Code != 1012 || closing.Reason != "service restart" {
		t.Errorf("Closing = %v", closing)
	}
	if code, _, ok := srv.Conn(t, 1).ClientClose(); !ok || code != 1012 {
		t.Errorf("the client's reply = %d %v, want 1012", code, ok)
	}
	p.WaitFor(t, "connect_fail", lomondtest.Timeout) // stopped: refused
	srv.Start()
	p.WaitFor(t, "ready", lomondtest.Timeout)
	if err := p.Stop(t); err != nil {
		t.Fatal(err)
	}
}

func TestConnWaitsForArrival(t *testing.T) {
	srv := lomondtest.NewServer(t)
	got := make(chan *lomondtest.Conn, 1)
	go func() { got <- srv.Conn(t, 1) }()
	lomondtest.Run(t, srv.Client(), sendThenClose(0))
	if c := <-got; c.Number() != 1 {
		t.Errorf("Conn(t, 1).Number() = %d", c.Number())
	}

	defer lomondtest.SetWaitLimit(50 * time.Millisecond)()
	ft := newFakeT(t)
	msg := ft.fatalOf(func(tb testing.TB) { srv.Conn(tb, 2) })
	mustContain(t, msg, "connection 2 did not arrive within 50ms (1 so far)")
	msg = ft.fatalOf(func(tb testing.TB) { srv.Conn(tb, 0) })
	mustContain(t, msg, "numbered from 1")
}

func TestCloseIsIdempotentAndNilTWorks(t *testing.T) {
	srv := lomondtest.NewServer(nil, lomondtest.Script(lomondtest.SendText("hi")))
	rec := lomondtest.Run(t, srv.Client(), sendThenClose(1))
	rec.AssertSequence(t, "connecting connected ready text closed disconnected")
	srv.Close()
	srv.Close()
	srv.Start() // closed for good: does nothing
	ctx, cancel := context.WithTimeout(context.Background(), lomondtest.Timeout)
	defer cancel()
	if err := srv.Client().Run(ctx, lomond.HandlerFunc(func(*lomond.WebSocket, events.Event) {})); err == nil {
		t.Error("a closed server accepted a connection")
	}
}

func TestNilScriptFailsTheTest(t *testing.T) {
	ft := newFakeT(t)
	msg := ft.fatalOf(func(tb testing.TB) { lomondtest.NewServer(tb, lomondtest.Echo(), nil) })
	mustContain(t, msg, "script 2 is nil")
}

func TestClientOptionsAreValidated(t *testing.T) {
	ft := newFakeT(t)
	srv := lomondtest.NewServer(ft)
	msg := ft.fatalOf(func(testing.TB) { srv.Client(lomond.WithPingRate(-1)) })
	mustContain(t, msg, "lomondtest: Client:", "ping rate")
}

func TestPlainHTTPRequestIsReported(t *testing.T) {
	ft := newFakeT(t)
	srv := lomondtest.NewServer(ft)
	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	resp, err := client.Get("http" + strings.TrimPrefix(srv.URL, "ws") + "/page")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode < 400 || resp.StatusCode > 499 {
		t.Errorf("a plain GET got %d, want a 4xx", resp.StatusCode)
	}
	srv.Close() // also closes the kept-alive connection
	mustContain(t, ft.reported(), "lomondtest: connection 1: echo: accepting the upgrade")
}

func TestContextIsBounded(t *testing.T) {
	ctx := lomondtest.Context(t)
	deadline, ok := ctx.Deadline()
	if !ok || time.Until(deadline) > lomondtest.Timeout {
		t.Errorf("Context deadline %v %v, want within %v", deadline, ok, lomondtest.Timeout)
	}
	if ctx.Err() != nil {
		t.Errorf("a fresh Context has ended: %v", ctx.Err())
	}
}
