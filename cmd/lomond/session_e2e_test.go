package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/lomond-go/lomond/internal/wstest"
)

// The simplest use: echo hi | lomond --count 1 URL prints the echo
// and exits 0, with stdout a pipe.
func TestPipeCountOne(t *testing.T) {
	url, closes := echoServer(t)
	r := runCLI(t, "hi\n", "--count", "1", url)
	r.expectCode(t, exitOK)
	if r.stdout != "hi\n" {
		t.Fatalf("stdout %q, want %q", r.stdout, "hi\n")
	}
	expectClose(t, closes, websocket.StatusNormalClosure, "done")
}

// At the end of stdin every line has been sent, the close is 1000, and the
// process exits once the close completes: every echo is printed (the
// server's echoes come before its close reply).
func TestEndOfInputClosesNormally(t *testing.T) {
	url, closes := echoServer(t)
	long := strings.Repeat("0123456789", 20) // far over lomond's 24-character repr
	r := runCLI(t, "one\n"+long+"\n\nlast line without newline", url)
	r.expectCode(t, exitOK)
	want := "one\n" + long + "\n\nlast line without newline\n"
	if r.stdout != want {
		t.Fatalf("stdout %q, want %q", r.stdout, want)
	}
	expectClose(t, closes, websocket.StatusNormalClosure, "end of input")
	for _, ev := range []string{"connecting ws://127.0.0.1:", "connected", "ready", `closed 1000 "end of input"`, "disconnected closed (graceful)"} {
		if !strings.Contains(r.stderr, ev) {
			t.Errorf("stderr lacks %q:\n%s", ev, r.stderr)
		}
	}
}

// Empty input: the session still runs (connect, ready) and closes at once.
func TestEmptyInput(t *testing.T) {
	url, closes := echoServer(t)
	r := runCLI(t, "", url)
	r.expectCode(t, exitOK)
	if r.stdout != "" {
		t.Fatalf("stdout %q, want nothing", r.stdout)
	}
	expectClose(t, closes, websocket.StatusNormalClosure, "end of input")
}

// A line that is not UTF-8 cannot be a text message: it is reported and
// skipped, and the session goes on.
func TestInvalidUTF8LineSkipped(t *testing.T) {
	url, _ := echoServer(t)
	r := runCLI(t, "ok\n\xff\xfe\nafter\n", url)
	r.expectCode(t, exitOK)
	if r.stdout != "ok\nafter\n" {
		t.Fatalf("stdout %q", r.stdout)
	}
	if !strings.Contains(r.stderr, "not sent") || !strings.Contains(r.stderr, "UTF-8") {
		t.Fatalf("stderr does not report the skipped line:\n%s", r.stderr)
	}
}

// --send sends its messages in order, does not read stdin, and closes after
// them; the replies sent before the close reply are printed.
func TestSendOneShot(t *testing.T) {
	url, closes := echoServer(t)
	r := runCLI(t, "stdin is ignored\n", "--send", "first", "--send", "second", url)
	r.expectCode(t, exitOK)
	if r.stdout != "first\nsecond\n" {
		t.Fatalf("stdout %q", r.stdout)
	}
	expectClose(t, closes, websocket.StatusNormalClosure, "done")
}

// --count N prints exactly N messages and closes, even when the server
// sends more; with --no-stdin the end of (empty) input does not close.
func TestCountWithNoStdin(t *testing.T) {
	closes := make(chan closeStatus, 1)
	url := wsServer(t, nil, func(c *websocket.Conn, _ *http.Request, _ <-chan struct{}) {
		ctx := context.Background()
		for _, m := range []string{"m1", "m2", "m3", "m4", "m5"} {
			if c.Write(ctx, websocket.MessageText, []byte(m)) != nil {
				return
			}
		}
		echoLoop(c, closes)
	})
	r := runCLI(t, "", "--no-stdin", "--count", "3", url)
	r.expectCode(t, exitOK)
	if r.stdout != "m1\nm2\nm3\n" {
		t.Fatalf("stdout %q, want three messages", r.stdout)
	}
	expectClose(t, closes, websocket.StatusNormalClosure, "done")
}

// Output is written as it comes: with stdout a pipe, the first message can
// be read while the session is still open.
func TestStdoutPipeIsNotBuffered(t *testing.T) {
	release := make(chan struct{})
	url := wsServer(t, nil, func(c *websocket.Conn, _ *http.Request, done <-chan struct{}) {
		ctx := context.Background()
		if c.Write(ctx, websocket.MessageText, []byte("first")) != nil {
			return
		}
		select {
		case <-release:
		case <-done:
			return
		}
		if c.Write(ctx, websocket.MessageText, []byte("second")) != nil {
			return
		}
		c.Close(websocket.StatusNormalClosure, "bye")
	})
	p := startCLI(t, "--no-stdin", url)
	p.stdout.waitFor(t, "first\n", 10*time.Second)
	close(release)
	if code := p.wait(10 * time.Second); code != exitOK {
		t.Fatalf("exit status %d\nstderr:\n%s", code, p.stderr)
	}
	if got := p.stdout.String(); got != "first\nsecond\n" {
		t.Fatalf("stdout %q", got)
	}
	if !strings.Contains(p.stderr.String(), `closing 1000 "bye"`) {
		t.Fatalf("stderr lacks the server's closing:\n%s", p.stderr)
	}
}

// --binary sends all of stdin as one binary message and writes messages as
// they are: a file round-trips through an echo server byte for byte.
func TestBinaryRawRoundTrip(t *testing.T) {
	url, _ := echoServer(t)
	data := make([]byte, 3000)
	if _, err := rand.Read(data); err != nil {
		t.Fatal(err)
	}
	r := runCLI(t, string(data), "--binary", url)
	r.expectCode(t, exitOK)
	if r.stdout != string(data) {
		t.Fatalf("stdout is %d bytes, not the %d bytes sent", len(r.stdout), len(data))
	}
}

// --binary=hex: each line is a binary message written in hex; a line that
// is not hex is reported and skipped; binary messages print as hex.
func TestBinaryHexLines(t *testing.T) {
	url, _ := echoServer(t)
	r := runCLI(t, "de ad be ef\nnot hex\n00:01:02\n", "--binary=hex", url)
	r.expectCode(t, exitOK)
	if r.stdout != "deadbeef\n000102\n" {
		t.Fatalf("stdout %q", r.stdout)
	}
	if !strings.Contains(r.stderr, "line 2 not sent") {
		t.Fatalf("stderr does not report line 2:\n%s", r.stderr)
	}
}

// --json: one object per event, name and time first, every attribute,
// payloads in full, binary as base64.
func TestJSONEvents(t *testing.T) {
	long := strings.Repeat("x", 100)
	url := wsServer(t, nil, func(c *websocket.Conn, _ *http.Request, _ <-chan struct{}) {
		ctx := context.Background()
		if c.Write(ctx, websocket.MessageText, []byte(long)) != nil ||
			c.Write(ctx, websocket.MessageBinary, []byte{0, 1, 2, 0xff}) != nil {
			return
		}
		echoLoop(c, make(chan closeStatus, 1))
	})
	r := runCLI(t, "echo me\n", "--json", "--count", "3", url)
	r.expectCode(t, exitOK)
	if r.stderr != "" {
		t.Fatalf("stderr should be empty with --json:\n%s", r.stderr)
	}
	var names []string
	var objs []map[string]any
	for _, line := range lines(r.stdout) {
		if !strings.HasPrefix(line, `{"name":"`) || !strings.Contains(line, `","time":"`) {
			t.Fatalf("line does not start with name and time: %s", line)
		}
		var obj map[string]any
		if err := json.Unmarshal([]byte(line), &obj); err != nil {
			t.Fatalf("not JSON: %s: %v", line, err)
		}
		if _, err := time.Parse(time.RFC3339Nano, obj["time"].(string)); err != nil {
			t.Fatalf("time %v: %v", obj["time"], err)
		}
		names = append(names, obj["name"].(string))
		objs = append(objs, obj)
	}
	want := "connecting connected ready text binary text closed disconnected"
	if got := strings.Join(names, " "); got != want {
		t.Fatalf("events %q, want %q", got, want)
	}
	if objs[3]["text"] != long {
		t.Errorf("text payload %v, want the full 100 characters", objs[3]["text"])
	}
	if objs[4]["data"] != base64.StdEncoding.EncodeToString([]byte{0, 1, 2, 0xff}) {
		t.Errorf("binary data %v", objs[4]["data"])
	}
	if objs[5]["text"] != "echo me" {
		t.Errorf("echo %v", objs[5]["text"])
	}
	if objs[2]["status"] != float64(101) || objs[2]["protocol"] != "" {
		t.Errorf("ready %v", objs[2])
	}
	if objs[6]["code"] != float64(1000) || objs[6]["reason"] != "done" {
		t.Errorf("closed %v", objs[6])
	}
	if objs[7]["graceful"] != true || objs[7]["error"] != nil {
		t.Errorf("disconnected %v", objs[7])
	}
}

// Pings go out every --ping-interval and the pong is shown with its RTT,
// on stderr and in JSON. The server answers the first ping and then sends
// a message, so the order is certain. (A pong carries an RTT when it
// answers the latest ping: the interval is long enough for the reply.)
func TestPingPongRTT(t *testing.T) {
	srv := wstest.NewServer(t, func(c *wstest.Conn) {
		if _, err := c.Handshake(); err != nil {
			return
		}
		for {
			f, err := c.ReadFrame()
			if err != nil {
				return
			}
			if f.Opcode == wstest.OpPing {
				if c.WriteFrame(wstest.Pong(f.Payload)) != nil || c.WriteFrame(wstest.Text("pinged")) != nil {
					return
				}
				break
			}
		}
		if code, _, err := c.ExpectClose(); err == nil {
			c.WriteFrame(wstest.Close(code, ""))
		}
	})
	r := runCLI(t, "", "--no-stdin", "--count", "1", "--ping-interval", "300ms", srv.URL())
	r.expectCode(t, exitOK)
	if r.stdout != "pinged\n" || !strings.Contains(r.stderr, "pong rtt ") {
		t.Fatalf("stdout %q; stderr lacks a pong with its rtt:\n%s", r.stdout, r.stderr)
	}
	r = runCLI(t, "", "--no-stdin", "--count", "1", "--ping-interval", "300ms", "--json", srv.URL())
	r.expectCode(t, exitOK)
	var pong map[string]any
	for _, line := range lines(r.stdout) {
		if strings.HasPrefix(line, `{"name":"pong"`) {
			if err := json.Unmarshal([]byte(line), &pong); err != nil {
				t.Fatal(err)
			}
		}
	}
	if rtt, _ := pong["rtt"].(float64); rtt <= 0 || rtt > 10 {
		t.Fatalf("pong %v: want an rtt in seconds\nstdout:\n%s", pong, r.stdout)
	}
}

// --persist reconnects with back-off after each drop, shows every back-off,
// and --count still ends the run with exit 0.
func TestPersistReconnects(t *testing.T) {
	var accepted atomic.Int32
	url := wsServer(t, nil, func(c *websocket.Conn, _ *http.Request, _ <-chan struct{}) {
		if accepted.Add(1) <= 2 {
			c.CloseNow() // drop the first two connections without a close frame
			return
		}
		if c.Write(context.Background(), websocket.MessageText, []byte("welcome")) != nil {
			return
		}
		echoLoop(c, make(chan closeStatus, 1))
	})
	r := runCLI(t, "", "--persist", "--backoff-min", "10ms", "--backoff-max", "50ms", "--no-stdin", "--count", "1", url)
	r.expectCode(t, exitOK)
	if r.stdout != "welcome\n" {
		t.Fatalf("stdout %q", r.stdout)
	}
	if n := strings.Count(r.stderr, "back-off reconnecting in"); n != 2 {
		t.Fatalf("%d back-off lines, want 2:\n%s", n, r.stderr)
	}
	if n := accepted.Load(); n != 3 {
		t.Fatalf("%d connections, want 3", n)
	}
}

// With --persist, the end of input still closes with 1000 and ends the run,
// without reconnecting.
func TestPersistEndOfInput(t *testing.T) {
	var accepted atomic.Int32
	closes := make(chan closeStatus, 4)
	url := wsServer(t, nil, func(c *websocket.Conn, _ *http.Request, _ <-chan struct{}) {
		accepted.Add(1)
		echoLoop(c, closes)
	})
	r := runCLI(t, "hi\n", "--persist", "--backoff-min", "10ms", "--backoff-max", "20ms", url)
	r.expectCode(t, exitOK)
	if r.stdout != "hi\n" {
		t.Fatalf("stdout %q", r.stdout)
	}
	expectClose(t, closes, websocket.StatusNormalClosure, "end of input")
	if n := accepted.Load(); n != 1 {
		t.Fatalf("%d connections, want 1", n)
	}
	if strings.Contains(r.stderr, "back-off") {
		t.Fatalf("a back-off after the client's own close:\n%s", r.stderr)
	}
}

// --compress offers permessage-deflate; a server that accepts it is shown
// in the ready line, and messages still round-trip.
func TestCompress(t *testing.T) {
	url := wsServer(t, &websocket.AcceptOptions{CompressionMode: websocket.CompressionContextTakeover},
		func(c *websocket.Conn, _ *http.Request, _ <-chan struct{}) { echoLoop(c, make(chan closeStatus, 1)) })
	msg := strings.Repeat("compressible ", 100)
	r := runCLI(t, msg+"\n", "--compress", url)
	r.expectCode(t, exitOK)
	if r.stdout != msg+"\n" {
		t.Fatalf("stdout is not the message")
	}
	if !strings.Contains(r.stderr, "extensions permessage-deflate") {
		t.Fatalf("ready line lacks the extension:\n%s", r.stderr)
	}
}

// --quiet leaves stderr empty on success; messages still print.
func TestQuiet(t *testing.T) {
	url, _ := echoServer(t)
	r := runCLI(t, "hi\n", "-q", url)
	r.expectCode(t, exitOK)
	if r.stdout != "hi\n" || r.stderr != "" {
		t.Fatalf("stdout %q, stderr %q", r.stdout, r.stderr)
	}
	r = runCLI(t, "hi\n", "--quiet", "--json", url)
	r.expectCode(t, exitOK)
	if got := lines(r.stdout); len(got) != 1 || !strings.HasPrefix(got[0], `{"name":"text"`) {
		t.Fatalf("--quiet --json printed %q, want the text event only", r.stdout)
	}
}

// Flags may follow the URL.
func TestFlagsAfterURL(t *testing.T) {
	url, _ := echoServer(t)
	r := runCLI(t, "hi\n", url, "--count", "1", "-q")
	r.expectCode(t, exitOK)
	if r.stdout != "hi\n" || r.stderr != "" {
		t.Fatalf("stdout %q, stderr %q", r.stdout, r.stderr)
	}
}

// The server's text is printed as it is when stdout is not a terminal, even
// with control characters in it.
func TestControlCharactersOnPipe(t *testing.T) {
	url, _ := echoServer(t)
	r := runCLI(t, "a\x1b[31mb\n", url)
	r.expectCode(t, exitOK)
	if !bytes.Equal([]byte(r.stdout), []byte("a\x1b[31mb\n")) {
		t.Fatalf("stdout %q", r.stdout)
	}
}

// A line that cannot be sent is reported once, with its line number, and
// without the library's prefix doubled.
func TestNotSentWarningNamesTheLine(t *testing.T) {
	url, _ := echoServer(t)
	r := runCLI(t, "ok\n\xff\xfe\nafter\n", "-q", url)
	r.expectCode(t, exitOK)
	if want := "lomond: line 2 not sent: text is not valid UTF-8\n"; r.stderr != want {
		t.Fatalf("stderr %q, want %q", r.stderr, want)
	}
	r = runCLI(t, "", "-q", "--send", "ok", "--send", "\xff", url)
	r.expectCode(t, exitOK)
	if want := "lomond: --send #2 not sent: text is not valid UTF-8\n"; r.stderr != want {
		t.Fatalf("stderr %q, want %q", r.stderr, want)
	}
	if strings.Contains(r.stdout, "\xff") || r.stdout != "ok\n" {
		t.Fatalf("stdout %q", r.stdout)
	}
}
