package lomond

import (
	"reflect"
	"testing"

	"github.com/lomond-go/lomond/events"
	"github.com/lomond-go/lomond/internal/testkit"
)

// Tests of handler.go: HandlerFunc, BaseHandler and Compose.

// callLog records handler calls, each as "id:method".
type callLog = testkit.Recorder[string]

// callRecorder is embedded by the single-interface test handlers below.
type callRecorder struct {
	log *callLog
	id  string
}

func (r callRecorder) add(m string) { r.log.Add(r.id + ":" + m) }

// One type per handler interface, each implementing exactly that interface.
type (
	onlyObserver      struct{ callRecorder }
	onlyEvents        struct{ callRecorder }
	onlyConnecting    struct{ callRecorder }
	onlyConnectFail   struct{ callRecorder }
	onlyConnected     struct{ callRecorder }
	onlyRejected      struct{ callRecorder }
	onlyPoll          struct{ callRecorder }
	onlyPing          struct{ callRecorder }
	onlyPong          struct{ callRecorder }
	onlyClosing       struct{ callRecorder }
	onlyUnresponsive  struct{ callRecorder }
	onlyProtocolError struct{ callRecorder }
	onlyDisconnected  struct{ callRecorder }
	onlyBackOff       struct{ callRecorder }
	onlyReady         struct{ callRecorder }
	onlyText          struct{ callRecorder }
	onlyBinary        struct{ callRecorder }
	onlyClosed        struct{ callRecorder }
	onlySend          struct{ callRecorder }
)

func (h onlyObserver) OnEvent(_ *WebSocket, ev events.Event) { h.add("event " + ev.Name()) }

func (h onlyEvents) OnReady(*WebSocket, *events.Ready) { h.add("OnReady") }

func (h onlyEvents) OnText(*WebSocket, *events.Text) { h.add("OnText") }

func (h onlyEvents) OnBinary(*WebSocket, *events.Binary) { h.add("OnBinary") }

func (h onlyEvents) OnClosed(*WebSocket, *events.Closed) { h.add("OnClosed") }

func (h onlyConnecting) OnConnecting(*WebSocket, *events.Connecting) { h.add("OnConnecting") }

func (h onlyConnectFail) OnConnectFail(*WebSocket, *events.ConnectFail) {
	h.add("OnConnectFail")
}

func (h onlyConnected) OnConnected(*WebSocket, *events.Connected) { h.add("OnConnected") }

func (h onlyRejected) OnRejected(*WebSocket, *events.Rejected) { h.add("OnRejected") }

func (h onlyPoll) OnPoll(*WebSocket, *events.Poll) { h.add("OnPoll") }

func (h onlyPing) OnPing(*WebSocket, *events.Ping) { h.add("OnPing") }

func (h onlyPong) OnPong(*WebSocket, *events.Pong) { h.add("OnPong") }

func (h onlyClosing) OnClosing(*WebSocket, *events.Closing) { h.add("OnClosing") }

func (h onlyUnresponsive) OnUnresponsive(*WebSocket, *events.Unresponsive) {
	h.add("OnUnresponsive")
}

func (h onlyProtocolError) OnProtocolError(*WebSocket, *events.ProtocolError) {
	h.add("OnProtocolError")
}

func (h onlyDisconnected) OnDisconnected(*WebSocket, *events.Disconnected) {
	h.add("OnDisconnected")
}

func (h onlyBackOff) OnBackOff(*WebSocket, *events.BackOff) { h.add("OnBackOff") }

func (h onlyReady) OnReady(*WebSocket, *events.Ready) { h.add("OnReady") }

func (h onlyText) OnText(*WebSocket, *events.Text) { h.add("OnText") }

func (h onlyBinary) OnBinary(*WebSocket, *events.Binary) { h.add("OnBinary") }

func (h onlyClosed) OnClosed(*WebSocket, *events.Closed) { h.add("OnClosed") }

func (h onlySend) OnSend(*WebSocket, *events.Outbound) { h.add("OnSend") }

// fullHandler implements every handler interface, Observer included.
type fullHandler struct {
	onlyObserver
	onlyEvents
	onlyConnecting
	onlyConnectFail
	onlyConnected
	onlyRejected
	onlyPoll
	onlyPing
	onlyPong
	onlyClosing
	onlyUnresponsive
	onlyProtocolError
	onlyDisconnected
	onlyBackOff
}

func newFullHandler(log *callLog, id string) *fullHandler {
	r := callRecorder{log: log, id: id}
	return &fullHandler{
		onlyObserver{r}, onlyEvents{r}, onlyConnecting{r}, onlyConnectFail{r}, onlyConnected{r},
		onlyRejected{r}, onlyPoll{r}, onlyPing{r}, onlyPong{r}, onlyClosing{r}, onlyUnresponsive{r},
		onlyProtocolError{r}, onlyDisconnected{r}, onlyBackOff{r},
	}
}

// unknownEvent is an Event type the dispatcher does not know.
type unknownEvent struct{ events.Meta }

func (*unknownEvent) Name() string { return "unknown" }

func (*unknownEvent) String() string { return "Unknown()" }

// eventMethods maps one value of every event type to the method that
// receives it.
var eventMethods = []struct {
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
	for _, c := range eventMethods {
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

// embeddedBase embeds BaseHandler and overrides OnText, adding OnPing.
type embeddedBase struct {
	BaseHandler
	log *callLog
}

func (h *embeddedBase) OnText(_ *WebSocket, ev *events.Text) {
	h.log.Add("OnText " + ev.Text)
}

func (h *embeddedBase) OnPing(*WebSocket, *events.Ping) {
	h.log.Add("OnPing")
}

func TestBaseHandlerEmbedding(t *testing.T) {
	log := new(callLog)
	var h EventHandler = &embeddedBase{log: log}
	tb, err := discover(h)
	if err != nil {
		t.Fatalf("discover: %v", err)
	}
	tb.deliver(nil, &events.Text{Text: "x"})
	for _, c := range eventMethods {
		tb.deliver(nil, c.ev)
	}
	want := []string{"OnText x", "OnPing", "OnText "}
	if !reflect.DeepEqual(log.All(), want) {
		t.Errorf("calls %q, want %q", log.All(), want)
	}

	// BaseHandler alone is a valid handler that ignores everything.
	tb, err = discover(BaseHandler{})
	if err != nil {
		t.Fatalf("discover(BaseHandler{}): %v", err)
	}
	for _, c := range eventMethods {
		tb.deliver(nil, c.ev)
	}
}

func TestComposeOrder(t *testing.T) {
	log := new(callLog)
	a := newFullHandler(log, "a")
	b := onlyObserver{callRecorder{log, "b"}}
	c := onlyEvents{callRecorder{log, "c"}}
	d := onlyPing{callRecorder{log, "d"}}
	tb, err := discover(Compose(a, b, c, d))
	if err != nil {
		t.Fatalf("discover(Compose): %v", err)
	}
	for _, ec := range eventMethods {
		log.Reset()
		tb.deliver(nil, ec.ev)
		want := []string{"a:event " + ec.ev.Name(), "a:" + ec.method, "b:event " + ec.ev.Name()}
		switch ec.method {
		case "OnReady", "OnText", "OnBinary", "OnClosed":
			want = append(want, "c:"+ec.method)
		case "OnPing":
			want = append(want, "d:OnPing")
		}
		if !reflect.DeepEqual(log.All(), want) {
			t.Errorf("deliver %T:\n got %q\nwant %q", ec.ev, log.All(), want)
		}
	}
}

func TestComposeNestedAndSingle(t *testing.T) {
	log := new(callLog)
	x := onlyObserver{callRecorder{log, "x"}}
	y := onlyObserver{callRecorder{log, "y"}}
	z := onlyObserver{callRecorder{log, "z"}}
	tb, err := discover(Compose(Compose(x, y), z))
	if err != nil {
		t.Fatalf("discover: %v", err)
	}
	tb.deliver(nil, &events.Poll{})
	want := []string{"x:event poll", "y:event poll", "z:event poll"}
	if !reflect.DeepEqual(log.All(), want) {
		t.Errorf("nested Compose: calls %q, want %q", log.All(), want)
	}

	log.Reset()
	tb, err = discover(Compose(newFullHandler(log, "s")))
	if err != nil {
		t.Fatalf("discover(Compose(one)): %v", err)
	}
	tb.deliver(nil, &events.Text{})
	want = []string{"s:event text", "s:OnText"}
	if !reflect.DeepEqual(log.All(), want) {
		t.Errorf("Compose of one: calls %q, want %q", log.All(), want)
	}

	// The same handler twice receives every event twice.
	log.Reset()
	tb, err = discover(Compose(x, x))
	if err != nil {
		t.Fatal(err)
	}
	tb.deliver(nil, &events.Poll{})
	if len(log.All()) != 2 {
		t.Errorf("Compose(x, x): calls %q, want 2", log.All())
	}
}

// textCounter is a plugin: only OnText and OnPong, no BaseHandler.
type textCounter struct{ texts, pongs, events int }

func (c *textCounter) OnText(*WebSocket, *events.Text) { c.texts++ }

func (c *textCounter) OnPong(*WebSocket, *events.Pong) { c.pongs++ }

// textMeter is a metrics plugin: OnEvent, OnText and OnPong.
type textMeter struct{ textCounter }

func (m *textMeter) OnEvent(*WebSocket, events.Event) { m.events++ }

// TestPartialPluginsReceiveTheirEvents: a plugin with some of the core
// methods and no BaseHandler receives every event it has a method for,
// composed with an application, in a mixed stream.
func TestPartialPluginsReceiveTheirEvents(t *testing.T) {
	counter, meter := &textCounter{}, &textMeter{}
	log := new(callLog)
	tb, err := discover(Compose(counter, meter, onlyEvents{callRecorder{log, "app"}}))
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
	for _, c := range []*textCounter{counter, &meter.textCounter} {
		if c.texts != 50 || c.pongs != 10 {
			t.Errorf("counter got texts=%d pongs=%d, want 50 and 10", c.texts, c.pongs)
		}
	}
	if meter.events != len(stream) {
		t.Errorf("OnEvent saw %d events, want %d", meter.events, len(stream))
	}
	if n := len(log.All()); n != 1+50+50+1 {
		t.Errorf("the application got %d calls, want %d", n, 102)
	}
}

// pointerApp is the mistake: OnDisconnected has a pointer receiver, and the
// application passes a value.
type pointerApp struct {
	BaseHandler
	disconnects int
}

func (a *pointerApp) OnDisconnected(*WebSocket, *events.Disconnected) { a.disconnects++ }

// pointerPlugin has only pointer-receiver methods.
type pointerPlugin struct{ n int }

func (p *pointerPlugin) OnText(*WebSocket, *events.Text) { p.n++ }

func (p *pointerPlugin) OnPong(*WebSocket, *events.Pong) { p.n++ }

// pointerCount is not a struct: the hint cannot be &T{}.
type pointerCount int

func (c *pointerCount) OnText(*WebSocket, *events.Text) { *c++ }

// wrongSignature has an OnPong that takes the event by value: never called.
type wrongSignature struct{ BaseHandler }

func (wrongSignature) OnPong(*WebSocket, events.Pong) {}

// TestComposeFlattensNesting: nested Compose is delivered as one list, in
// argument order, observer before own method within each part.
func TestComposeFlattensNesting(t *testing.T) {
	log := new(callLog)
	a := onlyObserver{callRecorder{log, "a"}}
	b := onlyText{callRecorder{log, "b"}}
	c := newFullHandler(log, "c")
	tb, err := discover(Compose(Compose(a, Compose(b)), c))
	if err != nil {
		t.Fatal(err)
	}
	tb.deliver(nil, &events.Text{})
	want := []string{"a:event text", "b:OnText", "c:event text", "c:OnText"}
	if !reflect.DeepEqual(log.All(), want) {
		t.Errorf("calls %q, want %q", log.All(), want)
	}
}
