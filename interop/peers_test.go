package interop

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/lomond-go/lomond"
	"github.com/lomond-go/lomond/events"
)

// echoPeer is an independent websocket echo server: one of the scripts in
// peers/, all with the same paths (/, /close/CODE, /drop, /ping), the
// subprotocol "echo.v1", and a plain or deflate mode.
type echoPeer struct {
	name string
	// start starts the server in mode ("plain" or "deflate") and returns
	// its port on 127.0.0.1.
	start func(t *testing.T, mode string) int
	// deflateParam, if set, must appear in the server's
	// Sec-WebSocket-Extensions answer when deflate is negotiated.
	deflateParam string
}

var echoPeers = []echoPeer{
	{name: "npm-ws", start: startNodeWS},
	{name: "python-websockets", start: pythonPeer("websockets", "python3-websockets", "py-websockets-echo.py"),
		deflateParam: "server_max_window_bits=12"},
	{name: "aiohttp", start: pythonPeer("aiohttp", "python3-aiohttp", "py-aiohttp-echo.py")},
	{name: "tornado", start: pythonPeer("tornado", "python3-tornado", "py-tornado-echo.py")},
}

// peersDir is the directory of the peer scripts and their npm packages.
func peersDir(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs("peers")
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// startNodeWS starts peers/ws-echo.js on npm ws 8.
func startNodeWS(t *testing.T, mode string) int {
	t.Helper()
	node := lookExe(t, "node", "apt-get install -y nodejs npm")
	dir := peersDir(t)
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "ws", "package.json")); err != nil {
		missing(t, "npm package ws (peers/node_modules/ws)", "npm ci --prefix interop/peers")
	}
	p := startProcess(t, "npm ws echo ("+mode+")", dir, node, "ws-echo.js", "0", mode)
	return p.listeningPort(t)
}

// pythonPeer returns a start function for a Python echo script that needs
// module from the Debian package pkg.
func pythonPeer(module, pkg, script string) func(*testing.T, string) int {
	return func(t *testing.T, mode string) int {
		t.Helper()
		py := systemPython(t, module, pkg)
		dir := peersDir(t)
		p := startProcess(t, module+" echo ("+mode+")", dir, py, filepath.Join(dir, script), "0", mode)
		return p.listeningPort(t)
	}
}

// compressionModes are the client's permessage-deflate settings.
var compressionModes = []struct {
	name string
	mode lomond.Compression
}{
	{"off", lomond.CompressionOff},
	{"context_takeover", lomond.CompressionContextTakeover},
	{"no_context_takeover", lomond.CompressionNoContextTakeover},
}

// TestPeers runs lomond against each independent echo server, with the
// server's permessage-deflate off and on.
func TestPeers(t *testing.T) {
	for _, peer := range echoPeers {
		for _, mode := range []string{"plain", "deflate"} {
			t.Run(peer.name+"/"+mode, func(t *testing.T) {
				port := peer.start(t, mode)
				base := fmt.Sprintf("ws://127.0.0.1:%d", port)
				peerSuite(t, base, mode == "deflate", peer.deflateParam)
			})
		}
	}
}

// peerSuite is everything checked against one running echo server at base
// (ws://host:port, no path).
func peerSuite(t *testing.T, base string, serverDeflate bool, deflateParam string) {
	for _, c := range compressionModes {
		t.Run("echo/compression="+c.name, func(t *testing.T) {
			rec := echoSession(t, base+"/", standardExchange(), lomond.WithCompression(c.mode))
			ready := first[*events.Ready](t, rec)
			defer logNegotiation(t, ready)
			negotiated := serverDeflate && c.mode != lomond.CompressionOff
			wantExtensions(t, ready, negotiated)
			if ready.Protocol != "" {
				t.Errorf("Ready.Protocol = %q with no subprotocol offered", ready.Protocol)
			}
			if negotiated && deflateParam != "" {
				if h := ready.Response.Header.Get("Sec-WebSocket-Extensions"); !strings.Contains(h, deflateParam) {
					t.Errorf("server answered %q, expected it to carry %s", h, deflateParam)
				}
			}
		})
	}

	t.Run("subprotocol", func(t *testing.T) {
		// The server supports only echo.v1: offering it second checks the
		// client accepts a choice that is not its first.
		rec := echoSession(t, base+"/", []msg{{"text", smallText}},
			lomond.WithProtocols("chat.v9", "echo.v1"))
		if p := first[*events.Ready](t, rec).Protocol; p != "echo.v1" {
			t.Errorf("Ready.Protocol = %q, want echo.v1", p)
		}
	})

	t.Run("server_ping", func(t *testing.T) {
		// /ping: the server pings with "p" at once; after the Ping, the
		// client sends a text, gets its echo and closes.
		rec := runSession(t, base+"/ping", func(ws *lomond.WebSocket, ev events.Event) {
			switch ev.(type) {
			case *events.Ping:
				if err := ws.SendText("after ping"); err != nil {
					t.Errorf("SendText: %v", err)
				}
			case *events.Text:
				if err := ws.Close(lomond.StatusNormal, "done"); err != nil {
					t.Errorf("Close: %v", err)
				}
			}
		}, lomond.WithCompression(lomond.CompressionContextTakeover))
		rec.wantNames(t, "connecting", "connected", "ready", "ping", "text", "closed", "disconnected")
		if p := all[*events.Ping](rec); len(p) == 1 && string(p[0].Data) != "p" {
			t.Errorf("Ping.Data = %q, want \"p\"", p[0].Data)
		}
		if tx := all[*events.Text](rec); len(tx) == 1 && tx[0].Text != "after ping" {
			t.Errorf("echo = %q", tx[0].Text)
		}
		rec.wantGracefulEnd(t)
		if rec.err != nil {
			t.Errorf("Run returned %v, want nil", rec.err)
		}
	})

	t.Run("server_close_4001", func(t *testing.T) {
		rec := runSession(t, base+"/close/4001", nil, lomond.WithCompression(lomond.CompressionContextTakeover))
		rec.wantNames(t, "connecting", "connected", "ready", "closing", "closed", "disconnected")
		if c := all[*events.Closing](rec); len(c) == 1 && (c[0].Code != 4001 || c[0].Reason != "bye") {
			t.Errorf("Closing(code=%d, reason=%q), want 4001 \"bye\"", c[0].Code, c[0].Reason)
		}
		if c := all[*events.Closed](rec); len(c) == 1 && c[0].Code != 4001 {
			t.Errorf("Closed code %d, want 4001", c[0].Code)
		}
		rec.wantGracefulEnd(t)
		var ce *lomond.CloseError
		if !errors.As(rec.err, &ce) || ce.Code != 4001 {
			t.Errorf("Run returned %v, want a *lomond.CloseError with code 4001", rec.err)
		}
	})

	t.Run("drop", func(t *testing.T) {
		// /drop: the server ends TCP without a close frame.
		rec := runSession(t, base+"/drop", nil)
		rec.wantNames(t, "connecting", "connected", "ready", "disconnected")
		rec.wantAbruptEnd(t)
	})
}

// wantExtensions checks Ready.Extensions says whether permessage-deflate is
// in use.
func wantExtensions(t *testing.T, ready *events.Ready, deflate bool) {
	t.Helper()
	var want []string
	if deflate {
		want = []string{"permessage-deflate"}
	}
	if !slices.Equal(ready.Extensions, want) {
		t.Errorf("Ready.Extensions = %q, want %q (server answered %q)", ready.Extensions, want,
			ready.Response.Header.Get("Sec-WebSocket-Extensions"))
	}
}

// logNegotiation shows, when the test failed, the permessage-deflate offer
// and the server's answer.
func logNegotiation(t *testing.T, ready *events.Ready) {
	if !t.Failed() || ready.Response == nil {
		return
	}
	offered := ""
	if req := ready.Response.Request; req != nil {
		offered = req.Header.Get("Sec-WebSocket-Extensions")
	}
	t.Logf("Sec-WebSocket-Extensions offered %q, answered %q", offered,
		ready.Response.Header.Get("Sec-WebSocket-Extensions"))
}
