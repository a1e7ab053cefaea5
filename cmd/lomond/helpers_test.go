package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/lomond-go/lomond/internal/wstest"
)

// runTimeout bounds every run of the command: a hang fails the test.
const runTimeout = 30 * time.Second

// result is what one run of the command produced.
type result struct {
	stdout, stderr string
	code           int
	elapsed        time.Duration
}

// childEnv is the test process's environment without proxy settings or
// colour preferences, plus the race detector's exit status.
func childEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		switch strings.ToUpper(name) {
		case "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY", "NO_COLOR", "GORACE":
			continue
		}
		env = append(env, kv)
	}
	env = append(env, "GORACE=halt_on_error=1 exitcode=66 atexit_sleep_ms=0")
	return append(env, extra...)
}

// runCLI runs the command with stdin and args and waits for it to exit.
func runCLI(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	return runCLIEnv(t, nil, stdin, args...)
}

func runCLIEnv(t *testing.T, env []string, stdin string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Env = childEnv(env...)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	r := result{stdout: stdout.String(), stderr: stderr.String(), elapsed: time.Since(start)}
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit):
		r.code = exit.ExitCode()
	default:
		t.Fatalf("running lomond: %v", err)
	}
	if ctx.Err() != nil {
		t.Fatalf("lomond %v did not exit within %v\nstdout:\n%s\nstderr:\n%s", args, runTimeout, r.stdout, r.stderr)
	}
	if r.code == 66 {
		t.Fatalf("the race detector fired\nstderr:\n%s", r.stderr)
	}
	return r
}

// expectCode fails the test unless the run exited with code.
func (r result) expectCode(t *testing.T, code int) {
	t.Helper()
	if r.code != code {
		t.Fatalf("exit status %d, want %d\nstdout:\n%s\nstderr:\n%s", r.code, code, r.stdout, r.stderr)
	}
}

// proc is a running command whose output the test watches as it comes.
type proc struct {
	t      *testing.T
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stdout *watched
	stderr *watched
	done   chan struct{}
	err    error
}

// startCLI starts the command with pipes for stdin, stdout and stderr. The
// process is killed at the end of the test if it is still running.
func startCLI(t *testing.T, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = childEnv()
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	outR, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	errR, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &proc{t: t, cmd: cmd, stdin: stdin, stdout: newWatched(), stderr: newWatched(), done: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var copies sync.WaitGroup
	copies.Add(2)
	go func() { defer copies.Done(); p.stdout.copyFrom(outR) }()
	go func() { defer copies.Done(); p.stderr.copyFrom(errR) }()
	go func() {
		copies.Wait() // Wait must not close the pipes before they are drained
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// wait waits for the process to exit and returns its exit status.
func (p *proc) wait(timeout time.Duration) int {
	p.t.Helper()
	select {
	case <-p.done:
	case <-time.After(timeout):
		p.t.Fatalf("lomond did not exit within %v\nstdout:\n%s\nstderr:\n%s", timeout, p.stdout, p.stderr)
	}
	var exit *exec.ExitError
	switch {
	case p.err == nil:
		return 0
	case errors.As(p.err, &exit):
		return exit.ExitCode()
	}
	p.t.Fatalf("lomond: %v", p.err)
	return -1
}

// watched collects a stream and lets a test wait for text in it.
type watched struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	changed chan struct{}
}

func newWatched() *watched { return &watched{changed: make(chan struct{})} }

func (w *watched) copyFrom(r io.Reader) {
	br := bufio.NewReader(r)
	chunk := make([]byte, 4096)
	for {
		n, err := br.Read(chunk)
		w.mu.Lock()
		w.buf.Write(chunk[:n])
		close(w.changed)
		w.changed = make(chan struct{})
		w.mu.Unlock()
		if err != nil {
			return
		}
	}
}

func (w *watched) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// waitFor waits until the stream contains s.
func (w *watched) waitFor(t *testing.T, s string, timeout time.Duration) {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		w.mu.Lock()
		found, changed := strings.Contains(w.buf.String(), s), w.changed
		w.mu.Unlock()
		if found {
			return
		}
		select {
		case <-changed:
		case <-deadline.C:
			t.Fatalf("no %q within %v; got:\n%s", s, timeout, w)
		}
	}
}

// wsServer serves websocket connections on 127.0.0.1 with coder/websocket's
// Accept (any origin), handing each to handle. handle should return when
// the connection fails or done is closed; the server and every connection
// are closed when the test ends.
func wsServer(t *testing.T, opts *websocket.AcceptOptions, handle func(c *websocket.Conn, r *http.Request, done <-chan struct{})) string {
	t.Helper()
	if opts == nil {
		opts = &websocket.AcceptOptions{}
	}
	opts.InsecureSkipVerify = true
	done := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, opts)
		if err != nil {
			return
		}
		defer c.CloseNow()
		handle(c, r, done)
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(done) }) // runs first: handlers return, then Close returns
	return "ws" + strings.TrimPrefix(srv.URL, "http")
}

// closeStatus is what a server saw of the client's close.
type closeStatus struct {
	code   websocket.StatusCode
	reason string
}

// echoServer echoes every message and reports the client's close frame.
func echoServer(t *testing.T) (string, <-chan closeStatus) {
	t.Helper()
	closes := make(chan closeStatus, 8)
	url := wsServer(t, nil, func(c *websocket.Conn, _ *http.Request, _ <-chan struct{}) {
		echoLoop(c, closes)
	})
	return url, closes
}

// echoLoop echoes until the connection ends and reports how it ended.
func echoLoop(c *websocket.Conn, closes chan<- closeStatus) {
	ctx := context.Background()
	for {
		typ, data, err := c.Read(ctx)
		if err != nil {
			var ce websocket.CloseError
			if errors.As(err, &ce) {
				closes <- closeStatus{ce.Code, ce.Reason}
			} else {
				closes <- closeStatus{-1, err.Error()}
			}
			return
		}
		if err := c.Write(ctx, typ, data); err != nil {
			return
		}
	}
}

// expectClose waits for the server to report the client's close.
func expectClose(t *testing.T, closes <-chan closeStatus, code websocket.StatusCode, reason string) {
	t.Helper()
	select {
	case got := <-closes:
		if got.code != code || (reason != "" && got.reason != reason) {
			t.Fatalf("server saw close %d %q, want %d %q", got.code, got.reason, code, reason)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("the server saw no close")
	}
}

// closedPort returns a loopback address where nothing listens.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// httpServer serves plain HTTP (for rejections) on 127.0.0.1.
func httpServer(t *testing.T, h http.HandlerFunc) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return "ws" + strings.TrimPrefix(srv.URL, "http")
}

// lines splits output into its lines, without the final empty one.
func lines(s string) []string {
	s = strings.TrimSuffix(s, "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// closeReplyServer reads what the client sends until its close frame and
// answers the close with code and reason: a server that refuses a
// subscription when the client ends the session.
func closeReplyServer(t *testing.T, code int, reason string) *wstest.Server {
	t.Helper()
	return wstest.NewServer(t, func(c *wstest.Conn) {
		if _, err := c.Handshake(); err != nil {
			return
		}
		if _, _, err := c.ExpectClose(); err == nil {
			c.WriteFrame(wstest.Close(code, reason))
		}
	})
}
