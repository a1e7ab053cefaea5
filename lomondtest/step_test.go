package lomondtest_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/lomond-go/lomond"
	"github.com/lomond-go/lomond/events"
	"github.com/lomond-go/lomond/lomondtest"
	"github.com/lomond-go/lomond/lomondtest/fault"
)

// onText returns a handler that sends msgs when ready and calls reply for
// every text message.
func onText(reply func(ws *lomond.WebSocket, text string), msgs ...string) lomond.HandlerFunc {
	return func(ws *lomond.WebSocket, ev events.Event) {
		switch ev := ev.(type) {
		case *events.Ready:
			for _, m := range msgs {
				_ = ws.SendText(m)
			}
		case *events.Text:
			reply(ws, ev.Text)
		}
	}
}

func closeOn(want string) func(ws *lomond.WebSocket, text string) {
	return func(ws *lomond.WebSocket, text string) {
		if text == want {
			_ = ws.Close(1000, "done")
		}
	}
}

func TestAcceptWithSubprotocolCompressionAndHeader(t *testing.T) {
	srv := lomondtest.NewServer(t, lomondtest.Script(
		lomondtest.Accept(
			lomondtest.Subprotocols("v2", "v1"),
			lomondtest.Compression(lomond.CompressionNoContextTakeover),
			lomondtest.ResponseHeader("X-Served-By", "lomondtest"),
		),
		lomondtest.Echo(),
	))
	big := strings.Repeat("compress me ", 500)
	ws := srv.Client(lomond.WithProtocols("v1", "v2"), lomond.WithCompression(lomond.CompressionNoContextTakeover))
	rec := lomondtest.Run(t, ws, onText(closeOn(big), big))
	rec.AssertSequence(t, "connecting connected ready text closed disconnected")
	ready := rec.Events()[2].(*events.Ready)
	if ready.Protocol != "v2" {
		t.Errorf("Ready.Protocol = %q, want v2 (the server's first choice the client offers)", ready.Protocol)
	}
	if len(ready.Extensions) != 1 || ready.Extensions[0] != "permessage-deflate" {
		t.Errorf("Ready.Extensions = %q", ready.Extensions)
	}
	if got := ready.Response.Header.Get("X-Served-By"); got != "lomondtest" {
		t.Errorf("response header X-Served-By = %q", got)
	}
	if got := srv.Conn(t, 1).Subprotocol(); got != "v2" {
		t.Errorf("Conn.Subprotocol = %q", got)
	}
	if got := srv.Conn(t, 1).Messages(); len(got) != 1 || string(got[0].Data) != big {
		t.Errorf("the server did not receive the message whole")
	}
}

func TestAcceptDeclinesCompressionByDefault(t *testing.T) {
	srv := lomondtest.NewServer(t, lomondtest.Script(lomondtest.CloseWith(1000, "")))
	rec := lomondtest.Run(t, srv.Client(lomond.WithCompression(lomond.CompressionContextTakeover)), nil)
	if ext := rec.Events()[2].(*events.Ready).Extensions; len(ext) != 0 {
		t.Errorf("Ready.Extensions = %q, want none", ext)
	}
}

func TestExpectMatchers(t *testing.T) {
	srv := lomondtest.NewServer(t, lomondtest.Script(
		lomondtest.Expect(lomondtest.Text("a")),
		lomondtest.Expect(lomondtest.Binary([]byte{1, 2})),
		lomondtest.Expect(lomondtest.JSON(`{"b": [1, 2], "a": "x"}`)),
		lomondtest.Expect(lomondtest.JSON(map[string]any{"n": 1})),
		lomondtest.Expect(lomondtest.Match("a number", func(m lomondtest.Message) bool {
			return !m.Binary && strings.Trim(string(m.Data), "0123456789") == ""
		})),
		lomondtest.SendText("ok"),
		lomondtest.ExpectClose(1000, "done"),
	))
	h := lomond.HandlerFunc(func(ws *lomond.WebSocket, ev events.Event) {
		switch ev := ev.(type) {
		case *events.Ready:
			_ = ws.SendText("a")
			_ = ws.SendBinary([]byte{1, 2})
			_ = ws.SendText(`{"a":"x","b":[1,2]}`)
			_ = ws.SendBinary([]byte(`{ "n" : 1.0 }`))
			_ = ws.SendText("42")
		case *events.Text:
			if ev.Text == "ok" {
				_ = ws.Close(1000, "done")
			}
		}
	})
	lomondtest.Run(t, srv.Client(), h).AssertSequence(t, "connecting connected ready text closed disconnected")
	if n := len(srv.Conn(t, 1).Messages()); n != 5 {
		t.Errorf("the server recorded %d messages, want 5", n)
	}
}

// TestStepFailures checks what a failing step reports, and how the
// server then ends the connection: close 1011 on a websocket the client
// has not closed, 500 before the handshake.
func TestStepFailures(t *testing.T) {
	closeWith := func(code int, reason string) func(*lomond.WebSocket, string) {
		return func(ws *lomond.WebSocket, _ string) { _ = ws.Close(code, reason) }
	}
	closeWhenReady := func(ws *lomond.WebSocket, ev events.Event) {
		if ev.Name() == "ready" {
			_ = ws.Close(1001, "leaving")
		}
	}
	const by1011 = "connecting connected ready text? closing closed disconnected"
	tests := []struct {
		name   string
		script lomondtest.Step
		client lomond.HandlerFunc
		want   string
		seq    string
	}{
		{"wrong text", lomondtest.Expect(lomondtest.Text("x")), onText(nil, "y"),
			`connection 1: expected text "x", got text "y"`, by1011},
		{"binary for text", lomondtest.Expect(lomondtest.Text("x")),
			func(ws *lomond.WebSocket, ev events.Event) {
				if ev.Name() == "ready" {
					_ = ws.SendBinary([]byte{0xff})
				}
			}, `expected text "x", got binary ff`, by1011},
		{"wrong JSON", lomondtest.Expect(lomondtest.JSON(`{"a":1}`)), onText(nil, `{"a":2}`),
			`expected JSON {"a":1}, got text "{\"a\":2}"`, by1011},
		{"expected value not JSON", lomondtest.Expect(lomondtest.JSON(`{a}`)), onText(nil, `{}`),
			"the expected value is not JSON", by1011},
		{"predicate", lomondtest.Expect(lomondtest.Match("a greeting", func(lomondtest.Message) bool { return false })),
			onText(nil, "yo"), `expected a greeting, got text "yo"`, by1011},
		{"closed instead", lomondtest.Expect(lomondtest.Text("x")), closeWhenReady,
			`expected text "x", but the client closed the connection (1001 "leaving")`,
			"connecting connected ready closed disconnected"},
		{"wrong close", lomondtest.Script(lomondtest.SendText("go"), lomondtest.ExpectClose(1000, "thanks")),
			onText(closeWith(1001, "bye")), `step 2: expected the client's close (1000 "thanks"), got (1001 "bye")`,
			"connecting connected ready text closed disconnected"},
		{"message before close", lomondtest.ExpectClose(1000, ""), onText(nil, "hey"),
			`expected the client's close (1000 ""), got text "hey"`, by1011},
		{"nil step", lomondtest.Script(lomondtest.SendText("a"), nil), nil, "step 2 is nil", by1011},
		{"reject after handshake", lomondtest.Script(lomondtest.SendText("a"), fault.Reject(503)), nil,
			"step 2: cannot reject with 503: the handshake is done", by1011},
		{"accept twice", lomondtest.Script(lomondtest.Accept(), lomondtest.Accept()), nil,
			"step 2: cannot accept: the handshake is done", by1011},
		{"invalid close code", lomondtest.Script(lomondtest.Accept(), lomondtest.CloseWith(999, "")), nil,
			"step 2: close (999 \"\"): 999 is not a close code a server may send", by1011},
		{"unencodable JSON", lomondtest.SendJSON(func() {}), nil, "SendJSON: json: unsupported type",
			"connecting connected rejected disconnected"},
		{"bad status", fault.Reject(101), nil, "Reject(101): the status must be", "connecting connected rejected disconnected"},
		{"odd headers", fault.Reject(503, "Retry-After"), nil, `headers come in name, value pairs; "Retry-After" has no value`,
			"connecting connected rejected disconnected"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ft := newFakeT(t)
			srv := lomondtest.NewServer(ft, tt.script)
			var h any // a nil HandlerFunc is not a nil handler
			if tt.client != nil {
				h = tt.client
			}
			rec := lomondtest.Run(t, srv.Client(), h)
			srv.Close() // waits for the script to return, and report
			mustContain(t, ft.reported(), "lomondtest: connection 1: ", tt.want)
			rec.AssertSequence(t, tt.seq)
			if tt.seq == by1011 {
				if c := rec.Events()[len(rec.Events())-2].(*events.Closed); c.Code != 1011 {
					t.Errorf("the server closed with %d, want 1011", c.Code)
				}
			}
		})
	}
}

func TestStepTimeouts(t *testing.T) {
	defer lomondtest.SetWaitLimit(100 * time.Millisecond)()
	for _, tt := range []struct {
		step lomondtest.Step
		want string
	}{
		{lomondtest.Expect(lomondtest.Text("x")), `expected text "x", got nothing within 100ms`},
		{lomondtest.ExpectClose(1000, ""), `expected the client's close (1000 ""), got nothing within 100ms`},
		{lomondtest.Ping(), "no pong within 100ms"},
	} {
		ft := newFakeT(t)
		srv := lomondtest.NewServer(ft, tt.step)
		start := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), lomondtest.Timeout)
		err := srv.Client(lomond.WithAutoPong(false)).Run(ctx, lomondtest.NewRecorder())
		cancel()
		if lomond.CloseStatus(err) != 1011 {
			t.Errorf("Run = %v, want the server's close 1011 after the failed step", err)
		}
		srv.Close()
		mustContain(t, ft.reported(), tt.want)
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("the failing step took %v", d)
		}
	}
}

func TestSendSteps(t *testing.T) {
	srv := lomondtest.NewServer(t, lomondtest.Script(
		lomondtest.SendText("t"),
		lomondtest.SendBinary([]byte{0, 1}),
		lomondtest.SendJSON(map[string]string{"k": "v"}),
	))
	n := 0
	h := lomond.HandlerFunc(func(ws *lomond.WebSocket, ev events.Event) {
		switch ev.(type) {
		case *events.Text, *events.Binary:
			if n++; n == 3 {
				_ = ws.Close(1000, "")
			}
		}
	})
	rec := lomondtest.Run(t, srv.Client(), h)
	rec.AssertSequence(t, "connecting connected ready text binary text closed disconnected")
	evs := rec.Events()
	if got := evs[3].(*events.Text).Text; got != "t" {
		t.Errorf("text = %q", got)
	}
	if got := evs[4].(*events.Binary).Data; !bytes.Equal(got, []byte{0, 1}) {
		t.Errorf("binary = %x", got)
	}
	if got := evs[5].(*events.Text).Text; got != `{"k":"v"}` {
		t.Errorf("JSON = %q", got)
	}
}

func TestPingWaitsForThePong(t *testing.T) {
	srv := lomondtest.NewServer(t, lomondtest.Script(lomondtest.Ping(), lomondtest.SendText("ponged")))
	rec := lomondtest.Run(t, srv.Client(), onText(closeOn("ponged")))
	rec.AssertSequence(t, "connecting connected ready ping text closed disconnected")
}

func TestCloseWith(t *testing.T) {
	srv := lomondtest.NewServer(t, lomondtest.Script(lomondtest.CloseWith(4000, "bye")))
	rec := lomondtest.Run(t, srv.Client(), nil)
	rec.AssertSequence(t, "connecting connected ready closing closed disconnected")
	if c := rec.Events()[3].(*events.Closing); c.Code != 4000 || c.Reason != "bye" {
		t.Errorf("Closing = %v", c)
	}
	if code, reason, ok := srv.Conn(t, 1).ClientClose(); !ok || code != 4000 || reason != "bye" {
		t.Errorf("the client answered %d %q %v, want its echo of 4000 \"bye\"", code, reason, ok)
	}
	if lomond.CloseStatus(srv.Conns()[0].Request().Context().Err()) != -1 {
		t.Error("the recorded request's context should not carry a close status")
	}
}

func TestPause(t *testing.T) {
	const pause = 50 * time.Millisecond
	srv := lomondtest.NewServer(t,
		lomondtest.Script(lomondtest.Accept(), lomondtest.Pause(pause), lomondtest.SendText("late")),
		lomondtest.Script(lomondtest.Pause(pause), lomondtest.SendText("late")), // a slow handshake
	)
	for _, between := range []string{"ready", "connected"} {
		rec := lomondtest.Run(t, srv.Client(), onText(closeOn("late")))
		rec.AssertSequence(t, "connecting connected ready text closed disconnected")
		var from, to time.Time
		for _, ev := range rec.Events() {
			switch ev.Name() {
			case between:
				from = ev.ReceivedTime()
			case "text":
				to = ev.ReceivedTime()
			}
		}
		if d := to.Sub(from); d < pause-5*time.Millisecond {
			t.Errorf("the text came %v after %s, before the %v pause ended", d, between, pause)
		}
		if between == "connected" {
			if d := rec.Events()[2].ReceivedTime().Sub(from); d < pause-5*time.Millisecond {
				t.Errorf("Ready came %v after Connected: the pause did not delay the handshake", d)
			}
		}
	}
}

func TestBroadcastReachesEveryMember(t *testing.T) {
	srv := lomondtest.NewServer(t, lomondtest.Broadcast())
	listener := lomondtest.Persist(t, srv.Client(), nil)
	listener.WaitFor(t, "ready", lomondtest.Timeout)
	srv.Conn(t, 1) // the listener's connection is in the room
	speaker := lomondtest.Run(t, srv.Client(), onText(closeOn("hello all"), "hello all"))
	speaker.AssertSequence(t, "connecting connected ready text closed disconnected")
	got := listener.WaitFor(t, "text", lomondtest.Timeout).(*events.Text)
	if got.Text != "hello all" {
		t.Errorf("the listener got %q", got.Text)
	}
	if err := listener.Stop(t); err != nil {
		t.Fatal(err)
	}
}

func TestDoRunsStepsFromTheTest(t *testing.T) {
	srv := lomondtest.NewServer(t, lomondtest.Script()) // accept, then wait
	p := lomondtest.Persist(t, srv.Client(), onText(func(ws *lomond.WebSocket, text string) {
		_ = ws.SendText("re: " + text)
	}), lomond.WithMaxAttempts(1))
	p.WaitFor(t, "ready", lomondtest.Timeout)
	c := srv.Conn(t, 1)
	c.Do(t, lomondtest.SendText("pushed"), lomondtest.Expect(lomondtest.Text("re: pushed")))
	c.Do(t, lomondtest.CloseWith(1000, "over"))
	p.WaitFor(t, "closed", lomondtest.Timeout)
	c.WaitDone(t)

	ft := newFakeT(t)
	msg := ft.fatalOf(func(tb testing.TB) { c.Do(tb, lomondtest.Accept()) })
	mustContain(t, msg, "connection 1: Do step 1: cannot accept: the handshake is done")
	msg = ft.fatalOf(func(tb testing.TB) { c.Do(tb, nil) })
	mustContain(t, msg, "Do step 1 is nil")
}
