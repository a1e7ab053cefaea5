package main

import (
	"fmt"
	"runtime"

	"github.com/lomond-go/lomond"
)

// usageText is --help. Every flag of newFlagSet appears here (a test checks).
const usageText = `usage: lomond [flags] URL

lomond connects to a websocket server (ws:// or wss://) and shows every event
of the session as it happens. Each line of standard input is sent as a text
message; incoming messages are printed in full on standard output; the other
events (connecting, ready, ping, pong with round-trip time, closing, back-off)
go to standard error, in colour on a terminal (NO_COLOR turns colour off).
At the end of standard input it closes the connection (code 1000) and exits
when the close completes. Ctrl-C closes with code 1001; a second Ctrl-C exits
at once.

Messages:
  --send MSG              send MSG when connected (repeatable); standard input
                          is not read; closes after sending unless --count or
                          --persist is given
  --count N               exit after N incoming messages; the end of standard
                          input then does not close the connection
  --wait-quiet D          at the end of standard input (or after --send), do
                          not close at once: wait until no message has come
                          for D, so that replies still in flight are printed
                          (or until --count, if that comes first)
  --binary[=raw|hex]      raw (--binary): all of standard input is one binary
                          message, and messages are written to standard output
                          as they are, with no newline; hex: each input line is
                          one binary message written in hex ("de ad be ef")
  --no-stdin              do not read standard input: listen until the server
                          closes, --count is reached or Ctrl-C
  --slash                 input lines starting with / are commands:
                            /ping [DATA]            send a ping
                            /pong [DATA]            send an unsolicited pong
                            /close [CODE [REASON]]  close (default 1000)
                            //TEXT                  send the text /TEXT
                          (without --slash, every line is sent as text)

Output:
  --json                  one JSON object per event on standard output
  -q, --quiet             no event lines on standard error, only warnings and
                          the final error (with --json: message events only)
  --poll D                emit a poll event every D (default 0: never)

Request:
  -H, --header 'NAME: VALUE'
                          add a request header (repeatable)
  --protocol NAME         offer a subprotocol (repeatable or comma-separated)
  --origin URL            send Origin: URL
  --compress              offer permessage-deflate compression

Network:
  --proxy URL             use this proxy: http://[user:pass@]host:port
                          (HTTP CONNECT), socks5:// or socks5h:// (default:
                          HTTPS_PROXY for wss://, HTTP_PROXY for ws://, else
                          ALL_PROXY, except NO_PROXY hosts and loopback)
  --no-proxy              connect directly, whatever the environment says
  --cacert FILE           trust the PEM certificates in FILE, not the system's
  -k, --insecure          do not verify the server's TLS certificate
  --connect-timeout D     bound DNS, TCP, proxy tunnel and TLS (default %v)
  --handshake-timeout D   bound the opening handshake (default %v)

Session:
  --ping-interval D       ping the server every D (default %v; 0: never)
  --ping-timeout D        give up when no pong comes within D of a ping
                          (default %v; 0: never)
  --close-timeout D       wait at most D for the server's close reply
                          (default %v)
  --read-limit SIZE       largest message accepted (default 16MiB; 0: none)

Reconnecting:
  --persist               reconnect with back-off after every session, until
                          Ctrl-C, the end of standard input or --count
  --backoff-min D         shortest wait before reconnecting (default %v)
  --backoff-max D         longest wait before reconnecting (default %v)
  --max-attempts N        give up after N attempts in a row without a stable
                          connection (default 0: never)

  -h, --help              show this help
  --version               print the version

D is a duration (500ms, 30s, 2m) or a number of seconds. SIZE is a number of
bytes, with an optional unit (64KiB, 16MiB). Flags may follow the URL.
Credentials in the URL (wss://user:pass@host/) are sent as Basic
Authorization. Secrets (URL credentials, proxy credentials, the values of
Authorization, Cookie and other credential headers) are never printed.

Examples:
  lomond wss://echo.example.com/
      type lines, see the replies
  echo hi | lomond --count 1 ws://127.0.0.1:8080/
      send one line, print one reply, exit 0
  lomond --send '{"op":"sub"}' --count 10 --json wss://example.com/feed | jq .
      subscribe, keep ten messages as JSON
  lomond -H 'Authorization: Bearer TOKEN' --protocol v1 wss://example.com/chat
      authenticate and ask for a subprotocol
  lomond --persist --no-stdin --backoff-max 1m wss://example.com/feed
      follow a feed forever, reconnecting when it drops
  lomond --binary ws://127.0.0.1:8080/ < frame.bin > reply.bin
      send a file as one binary message, keep the reply as it is
  lomond --wait-quiet 2s ws://127.0.0.1:8080/ < requests.txt > replies.txt
      send a file line by line, keep every reply, close when the server
      has been quiet for 2s

Exit status:
  0 normal close (code 1000 or none, whoever closed), 1 other failure
  (connection lost, close timeout), 2 usage, 3 cannot connect, 4 rejected by
  the server, 5 protocol error, 6 unresponsive (no pong), 7 the server's
  close code was not 1000 (whoever started the close), 130 interrupted
  (Ctrl-C).

Documentation: https://github.com/lomond-go/lomond/blob/main/docs/cli.md
`

// usage returns the help text with the current defaults.
func usage() string {
	return fmt.Sprintf(usageText,
		lomond.DefaultDialTimeout, lomond.DefaultHandshakeTimeout,
		lomond.DefaultPingRate, lomond.DefaultPingTimeout, lomond.DefaultCloseTimeout,
		defaultBackoffMin, defaultBackoffMax)
}

// versionText is --version.
func versionText() string {
	return fmt.Sprintf("lomond %s (%s %s/%s)\n", lomond.Version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}
