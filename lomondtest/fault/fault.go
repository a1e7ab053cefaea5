// Package fault holds the faults a lomond client must survive, as
// lomondtest steps: a rejected upgrade, a handshake that never ends, a
// dropped or reset connection, a server that stops answering pings, bytes
// that trickle in, frames no server may send.
//
// Each is a lomondtest.Step, so a script puts one on any connection:
//
//	srv := lomondtest.NewServer(t,
//		fault.Reject(http.StatusServiceUnavailable, "Retry-After", "1"), // connection 1
//		lomondtest.Script(lomondtest.SendText("hi"), fault.Drop()),       // connection 2
//		lomondtest.Echo(),                                                // 3 and after
//	)
//
// A refused connection is not among them: it never reaches the server, so
// it cannot be scripted per connection; lomondtest.Server.Stop refuses
// every connection until Server.Start.
//
// The faults live apart from lomondtest, as net/http/httptest keeps to the
// server and the recorder: the conversation steps are what every handler
// test writes, the faults are what a failure test reaches for, and they
// act below the websocket (the handshake, TCP, raw bytes), where the
// conversation steps never go.
package fault

import (
	"time"

	"github.com/lomond-go/lomond/lomondtest"
	"github.com/lomond-go/lomond/lomondtest/internal/link"
)

// Reject answers the upgrade request with status (401, 403, 429, 503...)
// instead of 101, with the given headers as name, value pairs and the
// status text as body, and closes the connection:
//
//	fault.Reject(http.StatusServiceUnavailable, "Retry-After", "1")
//	fault.Reject(http.StatusUnauthorized, "WWW-Authenticate", `Bearer realm="feed"`)
//
// The step fails for a status outside 200-599, a header with no value, or
// a connection whose upgrade has been answered.
func Reject(status int, header ...string) lomondtest.Step {
	header = append([]string(nil), header...)
	return func(c *lomondtest.Conn) error { return link.FaultsOf(c).Reject(status, header) }
}

// StallHandshake never answers the upgrade request: the server holds the
// connection, reading and discarding, until the client gives up (its
// handshake timeout) or the server stops. Steps after it fail.
func StallHandshake() lomondtest.Step {
	return func(c *lomondtest.Conn) error { return link.FaultsOf(c).StallHandshake() }
}

// Drop closes the TCP connection at once, with no close frame (and no TLS
// close_notify): a crash or a lost route. Before the handshake, the client
// sees its upgrade request unanswered. Steps after it fail.
func Drop() lomondtest.Step {
	return func(c *lomondtest.Conn) error { return link.FaultsOf(c).Drop(false) }
}

// Reset aborts the TCP connection with a reset (RST, through SO_LINGER 0)
// instead of a close: the client's next read fails with "connection reset
// by peer". Steps after it fail.
func Reset() lomondtest.Step {
	return func(c *lomondtest.Conn) error { return link.FaultsOf(c).Drop(true) }
}

// IgnorePings makes the server stop answering the client's pings (they are
// still recorded): a server that is alive on TCP but no longer responds.
// A client with a ping timeout reports it Unresponsive. It may come before
// or after the handshake.
func IgnorePings() lomondtest.Step {
	return func(c *lomondtest.Conn) error {
		link.FaultsOf(c).IgnorePings()
		return nil
	}
}

// Trickle makes every byte the server writes from now on go out on its
// own, pause after the one before: the handshake response when Trickle
// comes before it, and every frame after. It tests a client's handling of
// partial reads and slow peers. The step fails for a pause that is not
// positive.
func Trickle(pause time.Duration) lomondtest.Step {
	return func(c *lomondtest.Conn) error { return link.FaultsOf(c).Trickle(pause) }
}

// ProtocolViolation sends a frame no websocket server may send (a
// reserved opcode), accepting the upgrade first if needed. A client must
// fail the connection with close code 1002.
func ProtocolViolation() lomondtest.Step {
	return func(c *lomondtest.Conn) error { return link.FaultsOf(c).ProtocolViolation() }
}

// SendRaw writes b to the connection exactly as given. Before the
// handshake it replaces the server's response (a malformed handshake);
// after it, it goes between the frames the server sends (hand-made frames:
// 0x81 0x02 0xc3 0x28 is a text frame that is not UTF-8).
func SendRaw(b []byte) lomondtest.Step {
	b = append([]byte(nil), b...)
	return func(c *lomondtest.Conn) error { return link.FaultsOf(c).SendRaw(b) }
}
