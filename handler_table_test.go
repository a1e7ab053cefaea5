package lomond

import (
	"reflect"
	"testing"

	"github.com/lomond-go/lomond/events"
)

// Tests of handler_table.go: which interfaces a handler implements, and
// how its events are delivered.

func TestDiscoverFullHandler(t *testing.T) {
	log := &htLog{}
	tb, err := discover(newHTFull(log, "h"))
	if err != nil {
		t.Fatalf("discover: %v", err)
	}
	for _, c := range htEventMethods {
		log.calls = nil
		tb.deliver(nil, c.ev)
		want := []string{"h:event " + c.ev.Name(), "h:" + c.method}
		if !reflect.DeepEqual(log.calls, want) {
			t.Errorf("deliver %T: calls %q, want %q", c.ev, log.calls, want)
		}
	}
	log.calls = nil
	tb.deliver(nil, &htUnknownEvent{})
	if want := []string{"h:event unknown"}; !reflect.DeepEqual(log.calls, want) {
		t.Errorf("deliver unknown event: calls %q, want %q", log.calls, want)
	}
}

// TestDiscoverEachInterface checks that a handler implementing one interface
// is accepted and receives exactly its event, once.
func TestDiscoverEachInterface(t *testing.T) {
	log := &htLog{}
	r := htRec{log: log, id: "h"}
	handlers := map[string]any{
		"OnReady":         htReady{r},
		"OnText":          htText{r},
		"OnBinary":        htBinary{r},
		"OnClosed":        htClosed{r},
		"OnConnecting":    htConnecting{r},
		"OnConnectFail":   htConnectFail{r},
		"OnConnected":     htConnected{r},
		"OnRejected":      htRejected{r},
		"OnPoll":          htPoll{r},
		"OnPing":          htPing{r},
		"OnPong":          htPong{r},
		"OnClosing":       htClosing{r},
		"OnUnresponsive":  htUnresponsive{r},
		"OnProtocolError": htProtoErr{r},
		"OnDisconnected":  htDisconnected{r},
		"OnBackOff":       htBackOff{r},
	}
	for method, h := range handlers {
		tb, err := discover(h)
		if err != nil {
			t.Errorf("discover(%T): %v", h, err)
			continue
		}
		log.calls = nil
		for _, c := range htEventMethods {
			tb.deliver(nil, c.ev)
		}
		tb.deliver(nil, &htUnknownEvent{})
		if want := []string{"h:" + method}; !reflect.DeepEqual(log.calls, want) {
			t.Errorf("%T got %q for all events, want %q", h, log.calls, want)
		}
	}

	// EventHandler alone: its four methods, each once.
	tb, err := discover(htEvents{r})
	if err != nil {
		t.Fatalf("discover(EventHandler): %v", err)
	}
	log.calls = nil
	for _, c := range htEventMethods {
		tb.deliver(nil, c.ev)
	}
	want := []string{"h:OnReady", "h:OnText", "h:OnBinary", "h:OnClosed"}
	if !reflect.DeepEqual(log.calls, want) {
		t.Errorf("EventHandler got %q, want %q", log.calls, want)
	}

	// Observer alone: every event once, in order.
	tb, err = discover(htObserver{r})
	if err != nil {
		t.Fatalf("discover(Observer): %v", err)
	}
	log.calls = nil
	want = nil
	for _, c := range htEventMethods {
		tb.deliver(nil, c.ev)
		want = append(want, "h:event "+c.ev.Name())
	}
	if !reflect.DeepEqual(log.calls, want) {
		t.Errorf("Observer got %q, want %q", log.calls, want)
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
	for _, c := range htEventMethods {
		tb.deliver(nil, c.ev) // must not panic
	}
	tb.deliver(nil, &htUnknownEvent{})
}
