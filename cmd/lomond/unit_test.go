package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/lomond-go/lomond/events"
)

// docsCLI is docs/cli.md, read by the tests that keep it in step with the
// code.
func docsCLI(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../../docs/cli.md")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func flagSpelling(f *flag.Flag) string {
	if len(f.Name) == 1 {
		return "-" + f.Name
	}
	return "--" + f.Name
}

// Every flag is in --help and in docs/cli.md.
func TestEveryFlagDocumented(t *testing.T) {
	help, docs := usage(), docsCLI(t)
	newFlagSet(&settings{}).VisitAll(func(f *flag.Flag) {
		name := flagSpelling(f)
		if !strings.Contains(help, "  "+name) && !strings.Contains(help, ", "+name) {
			t.Errorf("--help does not list %s", name)
		}
		if !strings.Contains(docs, "`"+name) {
			t.Errorf("docs/cli.md does not list %s", name)
		}
	})
}

// One sample of each event type, with every attribute set.
func sampleEvents() []events.Event {
	m := events.Meta{Received: time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)}
	hdr := http.Header{"Server": {"test"}}
	return []events.Event{
		&events.Connecting{Meta: m, URL: "ws://h/"},
		&events.ConnectFail{Meta: m, URL: "ws://h/", Reason: "unable to connect", Err: errors.New("refused")},
		&events.Connected{Meta: m, URL: "ws://h/", Proxy: "http://p:1"},
		&events.Rejected{Meta: m, StatusCode: 503, Status: "503 Service Unavailable", Header: hdr, Body: []byte("busy"),
			Reason: "websocket upgrade failed (code=503)", RetryAfter: 7 * time.Second, HasRetryAfter: true},
		&events.Ready{Meta: m, Response: &http.Response{StatusCode: 101, Header: hdr}, Protocol: "chat", Extensions: []string{"permessage-deflate"}},
		&events.Poll{Meta: m},
		&events.Ping{Meta: m, Data: []byte{1}},
		&events.Pong{Meta: m, Data: []byte{2}, RTT: 1500 * time.Microsecond},
		&events.Text{Meta: m, Text: "hello"},
		&events.Binary{Meta: m, Data: []byte{0, 0xff}},
		&events.Closing{Meta: m, Code: 1001, Reason: "bye"},
		&events.Closed{Meta: m, Code: 1000, Reason: "done"},
		&events.Unresponsive{Meta: m, Timeout: 20 * time.Second},
		&events.ProtocolError{Meta: m, Err: errors.New("invalid UTF-8"), Code: 1007},
		&events.Disconnected{Meta: m, Reason: "closed", Graceful: true},
		&events.BackOff{Meta: m, Delay: 1500 * time.Millisecond, Attempt: 2, Cause: errors.New("lost")},
	}
}

// docKey finds a key in a row of the schema table: a backticked name.
var docKey = regexp.MustCompile("`([a-z_]+)`")

// jsonKeys returns the keys of a JSON object in order.
func jsonKeys(t *testing.T, line []byte) []string {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(line))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		t.Fatalf("not an object: %s", line)
	}
	var keys []string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, tok.(string))
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			t.Fatal(err)
		}
	}
	return keys
}

// Every event's JSON has name and time first and then exactly the keys its
// row of docs/cli.md lists, in that order; durations are seconds and data
// base64.
func TestJSONSchemaMatchesDocs(t *testing.T) {
	docs := docsCLI(t)
	p := &printer{sc: &scrubber{}}
	for _, ev := range sampleEvents() {
		line := p.jsonEvent(ev)
		if !bytes.HasSuffix(line, []byte("}\n")) || bytes.Count(line, []byte("\n")) != 1 {
			t.Fatalf("%s: not one line: %q", ev.Name(), line)
		}
		keys := jsonKeys(t, line)
		if len(keys) < 2 || keys[0] != "name" || keys[1] != "time" {
			t.Fatalf("%s: keys %v", ev.Name(), keys)
		}
		row := ""
		for _, l := range strings.Split(docs, "\n") {
			if strings.HasPrefix(l, "| `"+ev.Name()+"` |") {
				row = l
			}
		}
		if row == "" {
			t.Fatalf("docs/cli.md has no row for %s", ev.Name())
		}
		cells := strings.SplitN(row, "|", 4)
		var documented []string
		for _, m := range docKey.FindAllStringSubmatch(cells[2], -1) {
			if m[1] != "null" {
				documented = append(documented, m[1])
			}
		}
		if strings.Join(documented, " ") != strings.Join(keys[2:], " ") {
			t.Errorf("%s: keys %v, docs/cli.md lists %v", ev.Name(), keys[2:], documented)
		}
		var obj map[string]any
		if err := json.Unmarshal(line, &obj); err != nil {
			t.Fatal(err)
		}
		if obj["time"] != "2026-01-02T03:04:05.000000006Z" {
			t.Errorf("%s: time %v", ev.Name(), obj["time"])
		}
		switch ev.Name() {
		case "pong":
			if obj["rtt"] != 0.0015 || obj["data"] != "Ag==" {
				t.Errorf("pong %v", obj)
			}
		case "binary":
			if obj["data"] != "AP8=" {
				t.Errorf("binary %v", obj)
			}
		case "rejected":
			if obj["retry_after"] != 7.0 || obj["body"] != "YnVzeQ==" || obj["error"] != nil {
				t.Errorf("rejected %v", obj)
			}
		case "back_off":
			if obj["delay"] != 1.5 || obj["attempt"] != 2.0 || obj["cause"] != "lost" {
				t.Errorf("back_off %v", obj)
			}
		}
	}
}

// Every exit status has its row in docs/cli.md.
func TestExitStatusesDocumented(t *testing.T) {
	docs := docsCLI(t)
	for _, code := range []int{exitOK, exitFailure, exitUsage, exitConnect, exitRejected, exitProtocol, exitUnresponsive, exitServerClose} {
		if !strings.Contains(docs, "\n| "+string(rune('0'+code))+" |") {
			t.Errorf("docs/cli.md has no row for exit status %d", code)
		}
	}
}

func TestScrubber(t *testing.T) {
	sc := &scrubber{}
	sc.addHeader("Authorization", "Bearer abcdef123")
	sc.addHeader("Cookie", "sid=cookie-value-1; theme=dark")
	sc.addHeader("X-Trace", "not-a-secret")
	sc.addHeader("Proxy-Authorization", "Basic dXNlcjE6cGFzc3dvcmQy") // user1:password2
	sc.addURL("ws://someone:hunter22@h/?api_key=k-9999&page=2")
	sc.add("abc") // too short to search for

	text := "Bearer abcdef123 / abcdef123 / cookie-value-1 / dark / not-a-secret / user1 / password2 / hunter22 / someone / k-9999 / abc"
	got := sc.scrub(text)
	for _, secret := range []string{"abcdef123", "cookie-value-1", "dark", "user1", "password2", "hunter22", "someone", "k-9999"} {
		if strings.Contains(got, secret) {
			t.Errorf("%q survived: %s", secret, got)
		}
	}
	for _, kept := range []string{"not-a-secret", "/ abc"} {
		if !strings.Contains(got, kept) {
			t.Errorf("%q was removed: %s", kept, got)
		}
	}
	if u := sc.displayURL("ws://x:y@h:1/p?api_key=zz&token&page=2"); u != "ws://h:1/p?api_key=REDACTED&token&page=2" {
		t.Errorf("displayURL: %s", u)
	}
}

func TestDurationAndSizeValues(t *testing.T) {
	for in, want := range map[string]time.Duration{"500ms": 500 * time.Millisecond, "2": 2 * time.Second, "1.5": 1500 * time.Millisecond, "0": 0, "1m": time.Minute} {
		if got, err := parseDuration(in); err != nil || got != want {
			t.Errorf("parseDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "-1s", "-2", "soon", "NaN", "1e300"} {
		if _, err := parseDuration(bad); err == nil {
			t.Errorf("parseDuration(%q) accepted", bad)
		}
	}
	for in, want := range map[string]int64{"65536": 65536, "64k": 64 << 10, "64KiB": 64 << 10, "16MiB": 16 << 20, "1G": 1 << 30, "10 b": 10, "0": 0} {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "-1", "lots", "1.5M", "99999999999G"} {
		if _, err := parseSize(bad); err == nil {
			t.Errorf("parseSize(%q) accepted", bad)
		}
	}
}

func TestEscapeControls(t *testing.T) {
	for in, want := range map[string]string{
		"plain\ttext\n": "plain\ttext\n",
		"a\x1b[2Jb":     `a\x1b[2Jb`,
		"over\rwrite":   `over\x0dwrite`,
		"c1\u009bcsi":   `c1\u009bcsi`,
		"del\x7f":       `del\x7f`,
		"ünïcode ✓ 日本語": "ünïcode ✓ 日本語",
	} {
		if got := escapeControls(in); got != want {
			t.Errorf("escapeControls(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParseArgsPositions(t *testing.T) {
	s, err := parseArgs([]string{"--count", "2", "ws://h/", "-H", "A: b", "--json"})
	if err != nil || s.url != "ws://h/" || s.count != 2 || !s.json || len(s.headers) != 1 {
		t.Fatalf("%+v, %v", s, err)
	}
	// After "--", everything is an argument, even what looks like a flag.
	if _, err := parseArgs([]string{"--", "--json"}); err != nil {
		t.Fatalf("a URL after --: %v", err)
	}
	if s, err := parseArgs([]string{"--", "--json"}); err != nil || s.url != "--json" || s.json {
		t.Fatalf("%+v, %v", s, err)
	}
	if s, err := parseArgs([]string{"--binary", "ws://h/"}); err != nil || s.binary != binaryRaw {
		t.Fatalf("bare --binary: %+v, %v", s, err)
	}
}

// The printer writes each message with one Write: a reader of a pipe gets
// whole lines, never a message without its newline.
func TestOneWritePerMessage(t *testing.T) {
	var w countingWriter
	p := &printer{stdout: &w, stderr: io.Discard, sc: &scrubber{}}
	if err := p.message(&events.Text{Text: "hello"}); err != nil {
		t.Fatal(err)
	}
	if err := p.message(&events.Binary{Data: []byte{0xde, 0xad}}); err != nil {
		t.Fatal(err)
	}
	if w.writes != 2 || w.buf.String() != "hello\ndead\n" {
		t.Fatalf("%d writes: %q", w.writes, w.buf.String())
	}
}

type countingWriter struct {
	buf    bytes.Buffer
	writes int
}

func (w *countingWriter) Write(p []byte) (int, error) {
	w.writes++
	return w.buf.Write(p)
}
