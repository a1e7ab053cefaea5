package lomond

import (
	"reflect"
	"testing"

	"github.com/lomond-go/lomond/events"
)

// Tests of handler_table.go: which interfaces a handler implements, and
// how its events are delivered.

func TestDiscoverFullHandler(t *testing.T) {
	log := new(callLog)
	tb, err := discover(newFullHandler(log, "h"))
	if err != nil {
		t.Fatalf("discover: %v", err)
	}
	for _, c := range eventMethods {
		log.Reset()
		tb.deliver(nil, c.ev)
		want := []string{"h:event " + c.ev.Name(), "h:" + c.method}
		if !reflect.DeepEqual(log.All(), want) {
			t.Errorf("deliver %T: calls %q, want %q", c.ev, log.All(), want)
		}
	}
	log.Reset()
	tb.deliver(nil, &unknownEvent{})
	if want := []string{"h:event unknown"}; !reflect.DeepEqual(log.All(), want) {
		t.Errorf("deliver unknown event: calls %q, want %q", log.All(), want)
	}
}

// TestDiscoverEachInterface checks that a handler implementing one interface
// is accepted and receives exactly its event, once.
func TestDiscoverEachInterface(t *testing.T) {
	log := new(callLog)
	r := callRecorder{log: log, id: "h"}
	handlers := map[string]any{
		"OnReady":         onlyReady{r},
		"OnText":          onlyText{r},
		"OnBinary":        onlyBinary{r},
		"OnClosed":        onlyClosed{r},
		"OnConnecting":    onlyConnecting{r},
		"OnConnectFail":   onlyConnectFail{r},
		"OnConnected":     onlyConnected{r},
		"OnRejected":      onlyRejected{r},
		"OnPoll":          onlyPoll{r},
		"OnPing":          onlyPing{r},
		"OnPong":          onlyPong{r},
		"OnClosing":       onlyClosing{r},
		"OnUnresponsive":  onlyUnresponsive{r},
		"OnProtocolError": onlyProtocolError{r},
		"OnDisconnected":  onlyDisconnected{r},
		"OnBackOff":       onlyBackOff{r},
	}
	for method, h := range handlers {
		tb, err := discover(h)
		if err != nil {
			t.Errorf("discover(%T): %v", h, err)
			continue
		}
		log.Reset()
		for _, c := range eventMethods {
			tb.deliver(nil, c.ev)
		}
		tb.deliver(nil, &unknownEvent{})
		if want := []string{"h:" + method}; !reflect.DeepEqual(log.All(), want) {
			t.Errorf("%T got %q for all events, want %q", h, log.All(), want)
		}
	}

	// EventHandler alone: its four methods, each once.
	tb, err := discover(onlyEvents{r})
	if err != nil {
		t.Fatalf("discover(EventHandler): %v", err)
	}
	log.Reset()
	for _, c := range eventMethods {
		tb.deliver(nil, c.ev)
	}
	want := []string{"h:OnReady", "h:OnText", "h:OnBinary", "h:OnClosed"}
	if !reflect.DeepEqual(log.All(), want) {
		t.Errorf("EventHandler got %q, want %q", log.All(), want)
	}

	// Observer alone: every event once, in order.
	tb, err = discover(onlyObserver{r})
	if err != nil {
		t.Fatalf("discover(Observer): %v", err)
	}
	log.Reset()
	want = nil
	for _, c := range eventMethods {
		tb.deliver(nil, c.ev)
		want = append(want, "h:event "+c.ev.Name())
	}
	if !reflect.DeepEqual(log.All(), want) {
		t.Errorf("Observer got %q, want %q", log.All(), want)
	}
}

func TestDeliverPassesWebSocketAndEvent(t *testing.T) {
	ws, err := New("ws://127.0.0.1:1/")
	if err != nil {
		t.Fatal(err)
	}
	ev := &events.Text{Text: "hi"}
	var gotWS []*WebSocket
	var gotEv []events.Event
	h := HandlerFunc(func(w *WebSocket, e events.Event) {
		gotWS = append(gotWS, w)
		gotEv = append(gotEv, e)
	})
	tb, err := discover(h)
	if err != nil {
		t.Fatal(err)
	}
	tb.deliver(ws, ev)
	if len(gotWS) != 1 || gotWS[0] != ws || gotEv[0] != ev {
		t.Fatalf("HandlerFunc got ws=%v ev=%v, want the same pointers once", gotWS, gotEv)
	}
}

func TestDeliverEmptyTableDoesNothing(t *testing.T) {
	tb := &table{}
	for _, c := range eventMethods {
		tb.deliver(nil, c.ev) // must not panic
	}
	tb.deliver(nil, &unknownEvent{})
}
