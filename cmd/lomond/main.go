// Command lomond is a command-line websocket client that shows every lomond
// event as it happens.
//
// Install it with
//
//	go install github.com/lomond-go/lomond/cmd/lomond@latest
//
// and run it with a ws:// or wss:// URL:
//
//	lomond wss://example.com/feed
//
// Each line typed on standard input is sent as a text message; incoming
// messages are printed in full on standard output; every other event
// (connecting, ready, pings and pongs with their round-trip time, closing,
// back-off) is printed on standard error. At the end of standard input it
// closes the connection (code 1000) and exits when the close completes.
// Ctrl-C closes with code 1001; a second Ctrl-C exits at once.
//
// With --json, every event is one JSON object per line on standard output.
// The exit status tells scripts how the session ended: 0 after a normal
// close, 2 for a usage error, 3 when the connection could not be made, 4
// when the server rejected the upgrade, 5 for a protocol error, 6 when the
// server stopped answering pings, 7 when the server's close code was not
// 1000 (whoever started the close), 1 for any other failure and 130 after
// Ctrl-C.
//
// Run "lomond --help" for every flag, with examples; docs/cli.md in the
// repository has the flags, the JSON schema and the exit codes.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	code := run(&env{
		args:      os.Args[1:],
		stdin:     os.Stdin,
		stdout:    os.Stdout,
		stderr:    os.Stderr,
		getenv:    os.Getenv,
		stdoutTTY: isTerminal(os.Stdout),
		stderrTTY: isTerminal(os.Stderr),
		signals:   sigs,
		exit:      os.Exit,
	})
	// A goroutine may still be blocked reading standard input: a read on a
	// terminal or a pipe cannot be cancelled. Exiting ends it; the session,
	// its goroutines and its socket are already gone when run returns.
	os.Exit(code)
}
