// Command observability runs a persistent client with both official
// plugins, logging (log/slog, to stderr) and metrics (expvar, served at
// /metrics on 127.0.0.1), against an embedded feed server that restarts
// every couple of seconds. No network beyond loopback is needed.
//
// Every second it reads its own /metrics endpoint over HTTP and prints a
// few counters, so the figures can be seen moving: attempts and sessions
// grow with each restart, messages in and out grow while connected, and
// the messages sent while the server is down wait in the send queue
// (its depth rises, then falls when the queue is flushed after Ready).
//
//	go run ./examples/observability            # runs for 6 s
//	go run ./examples/observability -for 1m    # curl the /metrics URL it prints meanwhile
package main

import (
	"context"
	"encoding/json"
	"errors"
	"expvar"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/coder/websocket"
	"github.com/lomond-go/lomond"
	"github.com/lomond-go/lomond/events"
	"github.com/lomond-go/lomond/plugins/logging"
	"github.com/lomond-go/lomond/plugins/metrics"
)

func main() {
	d := flag.Duration("for", 6*time.Second, "how long to run")
	flag.Parse()
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	if err := run(context.Background(), *d, logger, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "observability:", err)
		os.Exit(1)
	}
}

// run runs the client for d, logging to logger and printing the counters
// to out every second; it returns the last figures it read.
func run(ctx context.Context, d time.Duration, logger *slog.Logger, out io.Writer) error {
	feed := &feedServer{period: 50 * time.Millisecond}
	if err := feed.start(); err != nil {
		return err
	}
	defer feed.stop()

	// Metrics: an expvar Recorder, served on /metrics.
	rec, err := metrics.NewExpvar("lomond")
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", expvar.Handler())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	metricsURL := "http://" + ln.Addr().String() + "/metrics"
	metricsSrv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = metricsSrv.Serve(ln) }()
	defer metricsSrv.Close()
	fmt.Fprintln(out, "metrics at", metricsURL)

	ws, err := lomond.New(feed.url(),
		lomond.WithPlugins(logging.New(logger), metrics.New(rec)),
		lomond.WithoutProxy(), lomond.WithPollInterval(0),
		lomond.WithPingRate(200*time.Millisecond), lomond.WithPingTimeout(time.Second),
		lomond.WithSendQueue(100, lomond.DropOldest))
	if err != nil {
		return err
	}

	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Add(3)
	go func() { // the client
		defer wg.Done()
		err := ws.Persist(ctx, client{},
			lomond.WithBackOff(func() backoff.BackOff {
				return &backoff.ConstantBackOff{Interval: 200 * time.Millisecond}
			}))
		// Persist returns ctx's deadline error when the time is up: the
		// end this example is designed for, not a failure.
		if err != nil && !(errors.Is(err, context.DeadlineExceeded) && ctx.Err() != nil) {
			logger.Error("persist", "err", err)
		}
	}()
	go func() { // the application sends every 100 ms, connected or not
		defer wg.Done()
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for n := 0; ; n++ {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				_ = ws.SendText(fmt.Sprint("report ", n))
			}
		}
	}()
	go func() { // the server restarts: up 1.5 s, down 0.5 s
		defer wg.Done()
		for {
			select {
			case <-ctx.Done():
				return
			case <-time.After(1500 * time.Millisecond):
			}
			feed.stop()
			select {
			case <-ctx.Done():
				return
			case <-time.After(500 * time.Millisecond):
			}
			if err := feed.start(); err != nil {
				logger.Error("restart", "err", err)
				return
			}
		}
	}()

	// Read /metrics every second, as a scraper would.
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return printFigures(metricsURL, out)
		case <-tick.C:
			if err := printFigures(metricsURL, out); err != nil {
				return err
			}
		}
	}
}

// client counts nothing itself: the plugins see everything.
type client struct{ lomond.BaseHandler }

func (client) OnReady(ws *lomond.WebSocket, _ *events.Ready) { _ = ws.SendText("subscribe") }

// printFigures fetches the metrics and prints a line of them.
func printFigures(url string, out io.Writer) error {
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var vars struct {
		Lomond map[string]json.RawMessage `json:"lomond"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&vars); err != nil {
		return err
	}
	num := func(name, label string) string {
		raw := vars.Lomond[name]
		if label != "" {
			var byLabel map[string]json.RawMessage
			_ = json.Unmarshal(raw, &byLabel)
			raw = byLabel[label]
		}
		if len(raw) == 0 {
			return "0"
		}
		return string(raw)
	}
	fmt.Fprintf(out, "attempts=%s sessions=%s reconnects=%s texts_in=%s texts_out=%s queue_depth=%s state_ready=%s\n",
		num("lomond_connect_attempts_total", ""), num("lomond_sessions_total", ""),
		num("lomond_reconnects_total", ""), num("lomond_messages_received_total", "text"),
		num("lomond_messages_sent_total", "text"), num("lomond_send_queue_depth", ""),
		num("lomond_state", "ready"))
	return nil
}

// feedServer is a websocket server on a fixed loopback port that sends a
// text every period and can be stopped and started again on the same
// port. Stops alternate between a graceful restart (close code 1012) and
// a crash (every connection dropped).
type feedServer struct {
	period time.Duration

	mu    sync.Mutex
	addr  string
	srv   *http.Server
	conns map[*websocket.Conn]bool
	stops int
	wg    sync.WaitGroup
}

func (f *feedServer) url() string { return "ws://" + f.addr + "/feed" }

func (f *feedServer) start() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	addr := f.addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	f.addr = ln.Addr().String()
	f.srv = &http.Server{Handler: http.HandlerFunc(f.serve), ReadHeaderTimeout: 5 * time.Second}
	srv := f.srv
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			fmt.Fprintln(os.Stderr, "feed:", err)
		}
	}()
	return nil
}

// stop closes the listener and every connection (http.Server.Close does
// not close hijacked ones), and waits for them.
func (f *feedServer) stop() {
	f.mu.Lock()
	srv := f.srv
	f.srv = nil
	f.stops++
	graceful := f.stops%2 == 1
	for c := range f.conns {
		if graceful {
			go func() { _ = c.Close(websocket.StatusServiceRestart, "restart") }()
		} else {
			_ = c.CloseNow()
		}
	}
	f.mu.Unlock()
	if srv != nil {
		_ = srv.Close()
	}
	f.wg.Wait()
}

func (f *feedServer) serve(w http.ResponseWriter, r *http.Request) {
	f.wg.Add(1)
	defer f.wg.Done()
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	defer c.CloseNow()
	f.mu.Lock()
	if f.conns == nil {
		f.conns = map[*websocket.Conn]bool{}
	}
	f.conns[c] = true
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		delete(f.conns, c)
		f.mu.Unlock()
	}()
	// Read (and discard) what the client sends; the engine answers pings
	// and the close handshake while reading.
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		defer cancel()
		for {
			if _, _, err := c.Read(ctx); err != nil {
				return
			}
		}
	}()
	tick := time.NewTicker(f.period)
	defer tick.Stop()
	for n := 0; ; n++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			if err := c.Write(ctx, websocket.MessageText, []byte(strings.Repeat("*", n%10+1))); err != nil {
				return
			}
		}
	}
}
