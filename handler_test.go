package lomond

import (
	"reflect"
	"testing"

	"github.com/lomond-go/lomond/events"
)

// Tests of handler.go: HandlerFunc, BaseHandler and Compose.

// htLog records handler calls, each as "id:method".
type htLog struct {
	calls []string
}

// htRec is embedded by the single-interface test handlers below.
type htRec struct {
	log *htLog
	id  string
}

func (r htRec) add(m string) { r.log.calls = append(r.log.calls, r.id+":"+m) }

// One type per handler interface, each implementing exactly that interface.
type (
	htObserver     struct{ htRec }
	htEvents       struct{ htRec }
	htConnecting   struct{ htRec }
	htConnectFail  struct{ htRec }
	htConnected    struct{ htRec }
	htRejected     struct{ htRec }
	htPoll         struct{ htRec }
	htPing         struct{ htRec }
	htPong         struct{ htRec }
	htClosing      struct{ htRec }
	htUnresponsive struct{ htRec }
	htProtoErr     struct{ htRec }
	htDisconnected struct{ htRec }
	htBackOff      struct{ htRec }
	htReady        struct{ htRec }
	htText         struct{ htRec }
	htBinary       struct{ htRec }
	htClosed       struct{ htRec }
	htSend         struct{ htRec }
)

func (h htObserver) OnEvent(_ *WebSocket, ev events.Event) { h.add("event " + ev.Name()) }

func (h htEvents) OnReady(*WebSocket, *events.Ready) { h.add("OnReady") }

func (h htEvents) OnText(*WebSocket, *events.Text) { h.add("OnText") }

func (h htEvents) OnBinary(*WebSocket, *events.Binary) { h.add("OnBinary") }

func (h htEvents) OnClosed(*WebSocket, *events.Closed) { h.add("OnClosed") }

func (h htConnecting) OnConnecting(*WebSocket, *events.Connecting) { h.add("OnConnecting") }

func (h htConnectFail) OnConnectFail(*WebSocket, *events.ConnectFail) {
	h.add("OnConnectFail")
}

func (h htConnected) OnConnected(*WebSocket, *events.Connected) { h.add("OnConnected") }

func (h htRejected) OnRejected(*WebSocket, *events.Rejected) { h.add("OnRejected") }

func (h htPoll) OnPoll(*WebSocket, *events.Poll) { h.add("OnPoll") }

func (h htPing) OnPing(*WebSocket, *events.Ping) { h.add("OnPing") }

func (h htPong) OnPong(*WebSocket, *events.Pong) { h.add("OnPong") }

func (h htClosing) OnClosing(*WebSocket, *events.Closing) { h.add("OnClosing") }

func (h htUnresponsive) OnUnresponsive(*WebSocket, *events.Unresponsive) {
	h.add("OnUnresponsive")
}

func (h htProtoErr) OnProtocolError(*WebSocket, *events.ProtocolError) { h.add("OnProtocolError") }

func (h htDisconnected) OnDisconnected(*WebSocket, *events.Disconnected) {
	h.add("OnDisconnected")
}

func (h htBackOff) OnBackOff(*WebSocket, *events.BackOff) { h.add("OnBackOff") }

func (h htReady) OnReady(*WebSocket, *events.Ready) { h.add("OnReady") }

func (h htText) OnText(*WebSocket, *events.Text) { h.add("OnText") }

func (h htBinary) OnBinary(*WebSocket, *events.Binary) { h.add("OnBinary") }

func (h htClosed) OnClosed(*WebSocket, *events.Closed) { h.add("OnClosed") }

func (h htSend) OnSend(*WebSocket, *events.Outbound) { h.add("OnSend") }

// htFull implements every handler interface, Observer included.
type htFull struct {
	htObserver
	htEvents
	htConnecting
	htConnectFail
	htConnected
	htRejected
	htPoll
	htPing
	htPong
	htClosing
	htUnresponsive
	htProtoErr
	htDisconnected
	htBackOff
}

func newHTFull(log *htLog, id string) *htFull {
	r := htRec{log: log, id: id}
	return &htFull{
		htObserver{r}, htEvents{r}, htConnecting{r}, htConnectFail{r}, htConnected{r},
		htRejected{r}, htPoll{r}, htPing{r}, htPong{r}, htClosing{r}, htUnresponsive{r},
		htProtoErr{r}, htDisconnected{r}, htBackOff{r},
	}
}

// htUnknownEvent is an Event type the dispatcher does not know.
type htUnknownEvent struct{ events.Meta }

func (*htUnknownEvent) Name() string { return "unknown" }

func (*htUnknownEvent) String() string { return "Unknown()" }

// htEventMethods maps one value of every event type to the method that
// receives it.
var htEventMethods = []struct {
	ev     events.Event
	method string
}{
	{&events.Connecting{}, "OnConnecting"},
	{&events.ConnectFail{}, "OnConnectFail"},
	{&events.Connected{}, "OnConnected"},
	{&events.Rejected{}, "OnRejected"},
	{&events.Ready{}, "OnReady"},
	{&events.Poll{}, "OnPoll"},
	{&events.Ping{}, "OnPing"},
	{&events.Pong{}, "OnPong"},
	{&events.Text{}, "OnText"},
	{&events.Binary{}, "OnBinary"},
	{&events.Closing{}, "OnClosing"},
	{&events.Closed{}, "OnClosed"},
	{&events.Unresponsive{}, "OnUnresponsive"},
	{&events.ProtocolError{}, "OnProtocolError"},
	{&events.Disconnected{}, "OnDisconnected"},
	{&events.BackOff{}, "OnBackOff"},
}

func TestHandlerFuncReceivesEveryEventOnce(t *testing.T) {
	var got []events.Event
	tb, err := discover(HandlerFunc(func(_ *WebSocket, ev events.Event) { got = append(got, ev) }))
	if err != nil {
		t.Fatalf("discover(HandlerFunc): %v", err)
	}
	var want []events.Event
	for _, c := range htEventMethods {
		tb.deliver(nil, c.ev)
		want = append(want, c.ev)
	}
	if len(got) != len(want) {
		t.Fatalf("HandlerFunc got %d events, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("event %d: got %T, want %T", i, got[i], want[i])
		}
	}
	// The adapter's EventHandler methods do nothing and must not panic.
	var f HandlerFunc
	f.OnReady(nil, nil)
	f.OnText(nil, nil)
	f.OnBinary(nil, nil)
	f.OnClosed(nil, nil)
}

// htEmbedded embeds BaseHandler and overrides OnText, adding OnPing.
type htEmbedded struct {
	BaseHandler
	log *htLog
}

func (h *htEmbedded) OnText(_ *WebSocket, ev *events.Text) {
	h.log.calls = append(h.log.calls, "OnText "+ev.Text)
}

func (h *htEmbedded) OnPing(*WebSocket, *events.Ping) {
	h.log.calls = append(h.log.calls, "OnPing")
}

func TestBaseHandlerEmbedding(t *testing.T) {
	log := &htLog{}
	var h EventHandler = &htEmbedded{log: log}
	tb, err := discover(h)
	if err != nil {
		t.Fatalf("discover: %v", err)
	}
	tb.deliver(nil, &events.Text{Text: "x"})
	for _, c := range htEventMethods {
		tb.deliver(nil, c.ev)
	}
	want := []string{"OnText x", "OnPing", "OnText "}
	if !reflect.DeepEqual(log.calls, want) {
		t.Errorf("calls %q, want %q", log.calls, want)
	}

	// BaseHandler alone is a valid handler that ignores everything.
	tb, err = discover(BaseHandler{})
	if err != nil {
		t.Fatalf("discover(BaseHandler{}): %v", err)
	}
	for _, c := range htEventMethods {
		tb.deliver(nil, c.ev)
	}
}

func TestComposeOrder(t *testing.T) {
	log := &htLog{}
	a := newHTFull(log, "a")
	b := htObserver{htRec{log, "b"}}
	c := htEvents{htRec{log, "c"}}
	d := htPing{htRec{log, "d"}}
	tb, err := discover(Compose(a, b, c, d))
	if err != nil {
		t.Fatalf("discover(Compose): %v", err)
	}
	for _, ec := range htEventMethods {
		log.calls = nil
		tb.deliver(nil, ec.ev)
		want := []string{"a:event " + ec.ev.Name(), "a:" + ec.method, "b:event " + ec.ev.Name()}
		switch ec.method {
		case "OnReady", "OnText", "OnBinary", "OnClosed":
			want = append(want, "c:"+ec.method)
		case "OnPing":
			want = append(want, "d:OnPing")
		}
		if !reflect.DeepEqual(log.calls, want) {
			t.Errorf("deliver %T:\n got %q\nwant %q", ec.ev, log.calls, want)
		}
	}
}

func TestComposeNestedAndSingle(t *testing.T) {
	log := &htLog{}
	x := htObserver{htRec{log, "x"}}
	y := htObserver{htRec{log, "y"}}
	z := htObserver{htRec{log, "z"}}
	tb, err := discover(Compose(Compose(x, y), z))
	if err != nil {
		t.Fatalf("discover: %v", err)
	}
	tb.deliver(nil, &events.Poll{})
	want := []string{"x:event poll", "y:event poll", "z:event poll"}
	if !reflect.DeepEqual(log.calls, want) {
		t.Errorf("nested Compose: calls %q, want %q", log.calls, want)
	}

	log.calls = nil
	tb, err = discover(Compose(newHTFull(log, "s")))
	if err != nil {
		t.Fatalf("discover(Compose(one)): %v", err)
	}
	tb.deliver(nil, &events.Text{})
	want = []string{"s:event text", "s:OnText"}
	if !reflect.DeepEqual(log.calls, want) {
		t.Errorf("Compose of one: calls %q, want %q", log.calls, want)
	}

	// The same handler twice receives every event twice.
	log.calls = nil
	tb, err = discover(Compose(x, x))
	if err != nil {
		t.Fatal(err)
	}
	tb.deliver(nil, &events.Poll{})
	if len(log.calls) != 2 {
		t.Errorf("Compose(x, x): calls %q, want 2", log.calls)
	}
}

// htCounter is the plugin: only OnText and OnPong, no BaseHandler.
type htCounter struct{ texts, pongs, events int }

func (c *htCounter) OnText(*WebSocket, *events.Text) { c.texts++ }

func (c *htCounter) OnPong(*WebSocket, *events.Pong) { c.pongs++ }

// htMeter is the metrics plugin: OnEvent, OnText and OnPong.
type htMeter struct{ htCounter }

func (m *htMeter) OnEvent(*WebSocket, events.Event) { m.events++ }

// TestPartialPluginsReceiveTheirEvents: a plugin with some of the core
// methods and no BaseHandler receives every event it has a method for,
// composed with an application, in a mixed stream.
func TestPartialPluginsReceiveTheirEvents(t *testing.T) {
	counter, meter := &htCounter{}, &htMeter{}
	log := &htLog{}
	tb, err := discover(Compose(counter, meter, htEvents{htRec{log, "app"}}))
	if err != nil {
		t.Fatalf("discover: %v", err)
	}
	stream := []events.Event{&events.Ready{}}
	for i := 0; i < 50; i++ {
		stream = append(stream, &events.Text{Text: "t"}, &events.Binary{}, &events.Ping{})
		if i%5 == 0 {
			stream = append(stream, &events.Pong{})
		}
	}
	stream = append(stream, &events.Closed{})
	for _, ev := range stream {
		tb.deliver(nil, ev)
	}
	for _, c := range []*htCounter{counter, &meter.htCounter} {
		if c.texts != 50 || c.pongs != 10 {
			t.Errorf("counter got texts=%d pongs=%d, want 50 and 10", c.texts, c.pongs)
		}
	}
	if meter.events != len(stream) {
		t.Errorf("OnEvent saw %d events, want %d", meter.events, len(stream))
	}
	if n := len(log.calls); n != 1+50+50+1 {
		t.Errorf("the application got %d calls, want %d", n, 102)
	}
}

// htPtrApp is the mistake: OnDisconnected has a pointer receiver,
// and the application passes a value.
type htPtrApp struct {
	BaseHandler
	disconnects int
}

func (a *htPtrApp) OnDisconnected(*WebSocket, *events.Disconnected) { a.disconnects++ }

// htPtrPlugin has only pointer-receiver methods.
type htPtrPlugin struct{ n int }

func (p *htPtrPlugin) OnText(*WebSocket, *events.Text) { p.n++ }

func (p *htPtrPlugin) OnPong(*WebSocket, *events.Pong) { p.n++ }

// htPtrCount is not a struct: the hint cannot be &T{}.
type htPtrCount int

func (c *htPtrCount) OnText(*WebSocket, *events.Text) { *c++ }

// htWrongSig has an OnPong that takes the event by value: never called.
type htWrongSig struct{ BaseHandler }

func (htWrongSig) OnPong(*WebSocket, events.Pong) {}

// TestComposeFlattensNesting: nested Compose is delivered as one list, in
// argument order, observer before own method within each part.
func TestComposeFlattensNesting(t *testing.T) {
	log := &htLog{}
	a := htObserver{htRec{log, "a"}}
	b := htText{htRec{log, "b"}}
	c := newHTFull(log, "c")
	tb, err := discover(Compose(Compose(a, Compose(b)), c))
	if err != nil {
		t.Fatal(err)
	}
	tb.deliver(nil, &events.Text{})
	want := []string{"a:event text", "b:OnText", "c:event text", "c:OnText"}
	if !reflect.DeepEqual(log.calls, want) {
		t.Errorf("calls %q, want %q", log.calls, want)
	}
}
