package lomond

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/lomond-go/lomond/events"
	"github.com/lomond-go/lomond/internal/testkit"
	"github.com/lomond-go/lomond/internal/wstest"
)

// Tests of lomond.go: New and its URL, the zero WebSocket, and Err after
// the range loops.

// TestZeroWebSocketFailsClearly: a WebSocket not made by New must say so
// from every entry point, never panic.
func TestZeroWebSocketFailsClearly(t *testing.T) {
	var ws WebSocket
	h := HandlerFunc(func(*WebSocket, events.Event) {})
	bounded, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	checks := map[string]func() error{
		"Run":     func() error { return ws.Run(bounded, h) },
		"Persist": func() error { return ws.Persist(bounded, h) },
		"Events": func() error {
			var err error
			for ev := range ws.Events(bounded) {
				if cf, ok := ev.(*events.ConnectFail); ok {
					err = cf.Err
				}
			}
			return err
		},
		"PersistEvents": func() error {
			var err error
			for ev := range ws.PersistEvents(bounded) {
				if cf, ok := ev.(*events.ConnectFail); ok {
					err = cf.Err
				}
			}
			return err
		},
	}
	for name, f := range checks {
		var err error
		func() {
			defer func() {
				if v := recover(); v != nil {
					t.Errorf("%s on a zero WebSocket panicked: %v", name, v)
				}
			}()
			err = f()
		}()
		if !errors.Is(err, ErrInvalidURL) || !strings.Contains(err.Error(), "New") {
			t.Errorf("%s on a zero WebSocket = %v, want ErrInvalidURL telling to use New", name, err)
		}
	}
	for name, err := range map[string]error{
		"SendText":  ws.SendText("x"),
		"Close":     ws.Close(StatusNormal, ""),
		"Reconnect": ws.Reconnect(),
	} {
		if !errors.Is(err, ErrNotConnected) {
			t.Errorf("%s on a zero WebSocket = %v, want ErrNotConnected", name, err)
		}
	}
	if u := ws.URL(); u != "" {
		t.Errorf("URL() = %q, want empty", u)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if err := ws.WaitReady(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("WaitReady = %v, want the context's error", err)
	}
}

// TestHTTPSchemesAccepted: http:// and https:// URLs are taken as ws:// and
// wss://, as coder/websocket and browsers do.
func TestHTTPSchemesAccepted(t *testing.T) {
	for in, want := range map[string]string{
		"http://example.com/feed?x=1": "ws://example.com/feed?x=1",
		"HTTPS://example.com":         "wss://example.com/",
		"https://example.com:8443/a":  "wss://example.com:8443/a",
	} {
		ws, err := New(in)
		if err != nil {
			t.Errorf("New(%q) = %v, want it accepted", in, err)
			continue
		}
		if got := ws.URL(); got != want {
			t.Errorf("New(%q).URL() = %q, want %q", in, got, want)
		}
	}
	for _, bad := range []string{"ftp://example.com/", "file:///tmp/x", "httpx://example.com/"} {
		_, err := New(bad)
		if !errors.Is(err, ErrInvalidURL) || !strings.Contains(err.Error(), "ws, wss, http or https") {
			t.Errorf("New(%q) = %v, want ErrInvalidURL naming the schemes accepted", bad, err)
		}
	}
	// A real session over an http:// URL.
	srv := wstest.NewServer(t, testkit.AnswerClose)
	u := strings.Replace(srv.URL(), "ws://", "http://", 1)
	rec := runUntilReady(t, mustNew(t, u, WithoutProxy()))
	if got := testkit.First[*events.Connecting](t, rec).URL; !strings.HasPrefix(got, "ws://") {
		t.Errorf("Connecting.URL = %q, want the ws:// form", got)
	}
}

// TestErrAfterRangeLoops: ws.Err tells a range loop why it ended, as Run and
// Persist would have.
func TestErrAfterRangeLoops(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // a refused port
	ws, err := New("ws://"+addr+"/", WithoutProxy())
	if err != nil {
		t.Fatal(err)
	}
	if ws.Err() != nil {
		t.Fatalf("Err before any run = %v", ws.Err())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for range ws.Events(ctx) {
	}
	var ce *ConnectError
	if !errors.As(ws.Err(), &ce) {
		t.Fatalf("Err after Events = %v, want a *ConnectError", ws.Err())
	}
	for range ws.PersistEvents(ctx, WithMaxAttempts(2),
		WithBackOff(func() backoff.BackOff { return &backoff.ZeroBackOff{} })) {
	}
	if !errors.Is(ws.Err(), ErrMaxAttempts) || !errors.As(ws.Err(), &ce) {
		t.Fatalf("Err after PersistEvents = %v, want ErrMaxAttempts and the *ConnectError", ws.Err())
	}
}
