// Command autobahn-client runs lomond's Autobahn|Testsuite client driver
// against a fuzzingserver: autobahn-client -url ws://127.0.0.1:9001.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"

	"github.com/lomond-go/lomond/internal/autobahn"
)

func main() {
	base := flag.String("url", "ws://127.0.0.1:9001", "fuzzingserver URL")
	agent := flag.String("agent", "lomond-go", "agent name in the reports")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	err := autobahn.RunAll(ctx, *base, *agent, func(i, n int) {
		if i%25 == 0 || i == n {
			fmt.Fprintf(os.Stderr, "case %d/%d\n", i, n)
		}
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "autobahn-client:", err)
		os.Exit(1)
	}
}
