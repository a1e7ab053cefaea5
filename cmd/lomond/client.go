package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/lomond-go/lomond"
	"github.com/lomond-go/lomond/events"
)

// env is what the process gives run: main passes the real ones, tests may
// pass others.
type env struct {
	args      []string
	stdin     io.Reader
	stdout    io.Writer
	stderr    io.Writer
	getenv    func(string) string
	stdoutTTY bool
	stderrTTY bool
	signals   <-chan os.Signal // SIGINT, SIGTERM
	exit      func(code int)   // the second signal exits at once through it
}

// client is one run of the command: a WebSocket, the handler that prints
// its events, and the goroutines that feed it standard input and watch for
// signals.
type client struct {
	s      *settings
	p      *prepared
	out    *printer
	ws     *lomond.WebSocket
	cancel context.CancelFunc
	gate   *readyGate
	quiet  *quietWait // --wait-quiet, or nil

	stopping    atomic.Bool  // the client is ending the session (end of input, --count, --send)
	interrupted atomic.Int32 // the first signal's number, or 0
	outputErr   atomic.Bool  // stdout failed

	// Used by the handler only (one goroutine), and by outcome once the
	// session is over.
	received     int            // messages printed
	reachedReady bool           // the current session got to Ready
	closed       *events.Closed // the current session's completed close handshake, or nil
}

// run executes the command line and returns the exit status.
func run(e *env) int {
	s, err := parseArgs(e.args)
	if err != nil {
		return usageFailure(e.stderr, err)
	}
	if s.help {
		io.WriteString(e.stdout, usage())
		return exitOK
	}
	if s.version {
		io.WriteString(e.stdout, versionText())
		return exitOK
	}
	p, err := prepare(s, e.getenv)
	if err != nil {
		return usageFailure(e.stderr, err)
	}
	ws, err := lomond.New(p.url, p.opts...)
	if err != nil {
		// ErrInvalidURL or ErrInvalidOption; the library's text names no secret,
		// and the scrubber makes sure.
		return usageFailure(e.stderr, errors.New(p.sc.scrub(strings.TrimPrefix(err.Error(), "lomond: "))))
	}
	out := &printer{
		stdout: e.stdout, stderr: e.stderr,
		json: s.json, quiet: s.quiet,
		color:  colorAllowed(e.stderrTTY, e.getenv),
		ttyOut: e.stdoutTTY,
		binary: s.binary,
		sc:     p.sc,
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := &client{s: s, p: p, out: out, ws: ws, cancel: cancel, gate: newReadyGate()}
	if s.waitQuiet > 0 {
		reason := "end of input"
		if len(s.sends) > 0 {
			reason = "done"
		}
		c.quiet = &quietWait{d: s.waitQuiet, fire: func() {
			c.out.note("no message for %v: closing", s.waitQuiet)
			c.stop(ws, reason)
		}}
		defer c.quiet.stop()
	}

	var watcher sync.WaitGroup
	done := make(chan struct{})
	watcher.Add(1)
	go func() {
		defer watcher.Done()
		c.watchSignals(done, e.signals, e.exit)
	}()
	defer func() {
		close(done)
		watcher.Wait()
	}()

	if s.insecure {
		out.note("TLS certificate verification is off (--insecure)")
	}
	if len(s.sends) == 0 && !s.noStdin {
		// Not waited for: a read of a terminal or a pipe cannot be cancelled.
		// It ends with the process; it holds nothing that needs closing.
		go c.pumpInput(ctx, e.stdin)
	}

	handler := lomond.HandlerFunc(c.onEvent)
	if s.persist {
		popts := []lomond.PersistOption{
			lomond.WithLomondBackOff(s.backoffMin, s.backoffMax),
			lomond.WithRetryPolicy(func(error) bool { return !c.stopping.Load() }),
		}
		if s.maxAttempts > 0 {
			popts = append(popts, lomond.WithMaxAttempts(s.maxAttempts))
		}
		err = ws.Persist(ctx, handler, popts...)
	} else {
		err = ws.Run(ctx, handler)
	}
	code, msg := c.outcome(err)
	if msg != "" {
		out.fatal(msg)
	}
	return code
}

func usageFailure(stderr io.Writer, err error) int {
	msg := strings.TrimPrefix(err.Error(), errUsage.Error()+": ")
	fmt.Fprintf(stderr, "lomond: %s\nRun 'lomond --help' for usage.\n", msg)
	return exitUsage
}

// onEvent is the session's handler: it sees every event, in order, on the
// goroutine running the session.
func (c *client) onEvent(ws *lomond.WebSocket, ev events.Event) {
	switch e := ev.(type) {
	case *events.Text, *events.Binary:
		c.onMessage(ws, ev)
		return
	case *events.Connecting:
		c.reachedReady, c.closed = false, nil
	case *events.Ready:
		c.reachedReady = true
	case *events.Closed:
		c.closed = e
	}
	c.out.event(ev)
	switch ev.(type) {
	case *events.Ready:
		c.gate.open()
		c.sendOnReady(ws)
	case *events.Disconnected, *events.ConnectFail:
		c.gate.shut()
	}
}

// onMessage prints a message and counts it for --count. Messages that
// arrive after the count is reached, before the server's close reply, are
// not printed: --count N prints exactly N.
func (c *client) onMessage(ws *lomond.WebSocket, ev events.Event) {
	if c.s.count > 0 && c.received >= c.s.count {
		return
	}
	c.received++
	if c.quiet != nil {
		c.quiet.message()
	}
	if err := c.out.message(ev); err != nil {
		if !c.outputErr.Swap(true) {
			c.out.warn("cannot write to standard output: %v", err)
			c.stop(ws, "output closed")
		}
		return
	}
	if c.s.count > 0 && c.received == c.s.count {
		c.out.note("received %d message(s): closing", c.received)
		c.stop(ws, "done")
	}
}

// sendOnReady sends the --send messages, on every connection (with
// --persist they are the subscription to renew), then closes unless the
// session should go on (--count, --persist). With --wait-quiet it closes
// once the server has been quiet for that long instead.
func (c *client) sendOnReady(ws *lomond.WebSocket) {
	if len(c.p.sends) == 0 {
		return
	}
	for i, data := range c.p.sends {
		var err error
		if c.s.binary == binaryOff {
			err = ws.SendText(string(data))
		} else {
			err = ws.SendBinary(data)
		}
		if err != nil {
			c.out.warn("--send #%d not sent: %s", i+1, trimPrefix(err))
		}
	}
	switch {
	case c.quiet != nil:
		c.out.note("sent: closing once no message comes for %v", c.s.waitQuiet)
		c.quiet.start()
	case c.s.count == 0 && !c.s.persist:
		c.out.note("sent: closing")
		c.stop(ws, "done")
	}
}

// stop ends the session from the client's side: a close handshake with
// code 1000, and no reconnection.
func (c *client) stop(ws *lomond.WebSocket, reason string) {
	c.stopping.Store(true)
	if err := ws.Close(lomond.StatusNormal, reason); errors.Is(err, lomond.ErrNotConnected) {
		// Between two sessions of Persist: nothing to close, stop waiting.
		c.cancel()
	}
}

// watchSignals turns the first SIGINT or SIGTERM into a graceful close
// (code 1001, through the context) and the second into an immediate exit.
func (c *client) watchSignals(done <-chan struct{}, sigs <-chan os.Signal, exit func(int)) {
	for {
		select {
		case <-done:
			return
		case sig := <-sigs:
			if first := c.interrupted.Load(); first != 0 {
				exit(128 + int(first))
				return
			}
			c.interrupted.Store(int32(signalNumber(sig)))
			c.cancel()
			c.out.note("interrupted: closing (press Ctrl-C again to quit at once)")
		}
	}
}

func signalNumber(sig os.Signal) int {
	if s, ok := sig.(syscall.Signal); ok && s > 0 {
		return int(s)
	}
	return int(syscall.SIGINT)
}
