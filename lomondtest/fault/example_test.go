package fault_test

import (
	"context"
	"fmt"
	"net/http"

	"github.com/lomond-go/lomond/events"
	"github.com/lomond-go/lomond/lomondtest"
	"github.com/lomond-go/lomond/lomondtest/fault"
)

// Faults are steps: connection 1 is turned away with 503 and a
// Retry-After, connection 2 is served.
func ExampleReject() {
	srv := lomondtest.NewServer(nil,
		fault.Reject(http.StatusServiceUnavailable, "Retry-After", "2"),
		lomondtest.SendText("welcome"),
	)
	defer srv.Close()

	ctx, cancel := context.WithTimeout(context.Background(), lomondtest.Timeout)
	defer cancel()
	for i := 1; i <= 2; i++ {
		for ev := range srv.Client().Events(ctx) {
			switch ev := ev.(type) {
			case *events.Rejected:
				fmt.Println(i, ev.StatusCode, ev.RetryAfter)
			case *events.Text:
				fmt.Println(i, ev.Text)
			}
			if ev.Name() == "rejected" || ev.Name() == "text" {
				break
			}
		}
	}
	// Output:
	// 1 503 2s
	// 2 welcome
}
