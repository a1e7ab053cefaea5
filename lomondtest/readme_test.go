package lomondtest_test

import (
	"testing"

	"github.com/lomond-go/lomond"
	"github.com/lomond-go/lomond/events"
	"github.com/lomond-go/lomond/lomondtest"
)

// greeter says hello when ready and closes when it hears back.
type greeter struct{ lomond.BaseHandler }

func (greeter) OnReady(ws *lomond.WebSocket, _ *events.Ready) { _ = ws.SendText("hello") }

func (greeter) OnText(ws *lomond.WebSocket, _ *events.Text) { _ = ws.Close(1000, "thanks") }

// TestGreeter is the test the README and the package doc show, verbatim.
func TestGreeter(t *testing.T) {
	srv := lomondtest.NewServer(t, lomondtest.Script(
		lomondtest.Expect(lomondtest.Text("hello")), // greeter says hello when ready,
		lomondtest.SendText("hi"),                   // and closes when it hears back
		lomondtest.ExpectClose(1000, "thanks"),
	))
	rec := lomondtest.Run(t, srv.Client(), &greeter{})
	rec.AssertSequence(t, "connecting connected ready text closed disconnected")
}
