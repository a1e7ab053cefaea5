package main

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/coder/websocket"
)

// --slash: /ping, /pong and /close send those frames, //text sends /text,
// an unknown command is reported and skipped. The server (coder/websocket)
// records the control frames it receives.
func TestSlashCommands(t *testing.T) {
	var mu sync.Mutex
	var pings, pongs []string
	closes := make(chan closeStatus, 1)
	url := wsServer(t, &websocket.AcceptOptions{
		OnPingReceived: func(_ context.Context, p []byte) bool {
			mu.Lock()
			defer mu.Unlock()
			pings = append(pings, string(p))
			return true // and answer it
		},
		OnPongReceived: func(_ context.Context, p []byte) {
			mu.Lock()
			defer mu.Unlock()
			pongs = append(pongs, string(p))
		},
	}, func(c *websocket.Conn, _ *http.Request, _ <-chan struct{}) { echoLoop(c, closes) })

	in := "/ping hello\n/pong world\n//slashed\n/bogus\n/close x\n/close 4001 bye now\n"
	r := runCLI(t, in, "--slash", url)
	// The server echoes the close code: not 1000, so exit 7.
	r.expectCode(t, exitServerClose)
	expectClose(t, closes, 4001, "bye now")
	if r.stdout != "/slashed\n" {
		t.Fatalf("stdout %q, want the //slashed line as /slashed only", r.stdout)
	}
	mu.Lock()
	gotPings, gotPongs := strings.Join(pings, ","), strings.Join(pongs, ",")
	mu.Unlock()
	if gotPings != "hello" || gotPongs != "world" {
		t.Fatalf("server got pings %q and pongs %q, want hello and world", gotPings, gotPongs)
	}
	for _, want := range []string{
		`* ping sent "hello"`, `pong "hello"`, `* pong sent "world"`,
		`lomond: line 4 not sent: unknown command "/bogus"`,
		`lomond: line 5 (/close) not sent: "x" is not a close code`,
		`* closing 4001 "bye now"`, `closed 4001 "bye now"`,
		`lomond: closed by the server: 4001 "bye now"`,
	} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr lacks %q", want)
		}
	}
	if t.Failed() {
		t.Fatalf("stderr:\n%s", r.stderr)
	}

	// Without --slash the same lines are text messages, echoed as they are.
	url2, _ := echoServer(t)
	r = runCLI(t, "/ping hello\n/close 4001\n", "-q", url2)
	r.expectCode(t, exitOK)
	if r.stdout != "/ping hello\n/close 4001\n" {
		t.Fatalf("without --slash: stdout %q", r.stdout)
	}
}

func TestSlashUsage(t *testing.T) {
	for _, args := range [][]string{
		{"--slash", "--no-stdin"},
		{"--slash", "--send", "x"},
		{"--slash", "--binary"},
	} {
		r := runCLI(t, "", append(args, "ws://127.0.0.1:1/")...)
		r.expectCode(t, exitUsage)
		if !strings.Contains(r.stderr, "--slash") {
			t.Fatalf("%v: stderr %q", args, r.stderr)
		}
	}
}
