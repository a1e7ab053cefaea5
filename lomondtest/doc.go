// Package lomondtest is a kit for testing lomond handlers, modelled on
// net/http/httptest: a real websocket server on 127.0.0.1 that plays a
// script, faults a client must survive, a record of what the server saw, an
// event recorder with waits and sequence assertions, and a back-off that
// makes reconnect tests run in milliseconds.
//
// A handler test reads like the conversation it checks:
//
//	func TestGreeter(t *testing.T) {
//		srv := lomondtest.NewServer(t, lomondtest.Script(
//			lomondtest.Expect(lomondtest.Text("hello")), // greeter says hello when ready,
//			lomondtest.SendText("hi"),                   // and closes when it hears back
//			lomondtest.ExpectClose(1000, "thanks"),
//		))
//		rec := lomondtest.Run(t, srv.Client(), &greeter{})
//		rec.AssertSequence(t, "connecting connected ready text closed disconnected")
//	}
//
// # The server
//
// NewServer starts a server on 127.0.0.1 with a new port and closes it when
// the test ends; NewTLSServer does the same with a certificate signed by a
// CA generated for it, which the client trusts through ClientOptions.
// Well-behaved sessions are served by github.com/coder/websocket (an
// independent implementation, not lomond's), so a handler is tested against
// code it did not write. Faults that need raw bytes (a protocol violation,
// trickled bytes, a reset) are done by the kit on the TCP connection.
//
// Server.Client returns a lomond client for the server with Poll and
// automatic pings off, so the events a test sees are the ones it caused.
//
// # Scripts
//
// A Step is one thing the server does on a connection; Script chains steps.
// Connection n (counted from 1, across restarts) plays the n-th script given
// to NewServer; connections after the last play the last one; with no
// script, the server echoes. The upgrade is answered by the first step
// that needs it: Accept, fault.Reject or fault.StallHandshake, or any step
// that talks websocket (Expect, SendText, Echo...), which accepts with the
// defaults. Steps before it act on the handshake: Script(Pause(time.Second))
// is a slow handshake, Script(fault.Trickle(d), ...) trickles the 101
// response too.
// When a script ends, the server keeps the connection open,
// answering pings and the close handshake and recording messages, until the
// client leaves. Every wait in a step is bounded by Timeout. A step that
// fails (an unexpected message, a timeout) fails the test with a message
// naming the connection and the step, and the server closes that
// connection with code 1011.
//
// Steps: Accept, Expect, ExpectClose, SendText, SendBinary, SendJSON, Ping,
// CloseWith, Pause, Echo, Broadcast. Server-wide: Stop and Start
// (connections are refused while stopped), Restart (same port), Shutdown
// (close frames to every client). The faults a client must survive (a
// rejected upgrade, a stalled handshake, a dropped or reset connection,
// ignored pings, trickled bytes, a protocol violation, raw bytes) are
// steps too, in package lomondtest/fault: fault.Reject(503),
// fault.Drop().
//
// When a script fails on a connection, the server reports it once: a
// client that reconnects to fail the same way again adds one line, at the
// end, counting the repeats.
//
// # What the server saw
//
// Server.Conns and Server.Conn give every connection's record: the upgrade
// request and its headers, the subprotocol, the client's messages in order,
// its pings, and its close code and reason. Records are safe to read while
// the connection runs. Conn.AssertMessages checks the client's messages
// with the matchers Expect takes (JSON compares values, so a test decodes
// nothing by hand); Conn.Do runs more steps on a connection from the test.
//
// # Events
//
// A Recorder records a session's events. It is a complete handler and a
// plugin for lomond.Compose; Run and Persist put one after the handler
// they run. Recorder.WaitFor waits for an event by name or predicate, and
// WaitEvent for an event of a type, returned typed
// (WaitEvent[*events.BackOff]); Recorder.AssertSequence checks the names
// of all events against a pattern such as
// "connecting connected ready text{2} closed disconnected", with "?", "*",
// "+", "{n}", "{n,}", "{n,m}", parentheses and "|" for repetitions and
// alternatives, and prints a readable diff when they differ. Matching
// takes time linear in the events, whatever the pattern.
//
// # Reconnecting
//
// Persist runs lomond's Persist in the background with a BackOff of 1 ms,
// so a test of a reconnecting client never sleeps: it waits for events (a
// second "ready") instead. Once the test has failed, Persist stops at the
// end of the session rather than reconnecting to fail again, and lists the
// events that led there, once. docs/testing.md in the repository walks
// through handler, reconnect and failure tests.
//
// Outside a test (an example program), pass a nil testing.TB to NewServer:
// script failures are then logged, and the caller must Close the server.
package lomondtest
