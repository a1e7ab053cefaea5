// Package events defines one type for each thing that can happen during a
// lomond websocket session, named as in Python's lomond.
//
// Every event records when it was received, has a Name equal to lomond's
// event name (for example "text" or "back_off") and a String form that reads
// like lomond's repr, with long payloads truncated and every text the server
// controls escaped (no terminal escapes or bidi overrides reach a log).
//
// Events are delivered by pointer. The dispatcher allocates a fresh event for
// every delivery and never reuses it, so a handler may keep an event (and its
// payload) after it returns. The one exception is opt-in: with
// lomond.WithBorrowedBinary, Binary events and their Data are reused and
// valid only during the call.
package events

import (
	"net/http"
	"time"
)

// Event is implemented by every event type in this package.
type Event interface {
	// Name is lomond's name of the event, such as "ready" or "connect_fail".
	Name() string
	// ReceivedTime is when the event happened (wall clock with a monotonic
	// reading).
	ReceivedTime() time.Time
	// String reads like lomond's repr of the event.
	String() string
}

// Meta holds what every event carries. It is embedded in each event type.
type Meta struct {
	// Received is when the event happened. For Text and Binary it is when
	// the message's last bytes were read from the socket (one clock reading
	// per socket read, shared by the messages it carried), never earlier
	// than the event delivered before it.
	Received time.Time
}

// ReceivedTime returns m.Received.
func (m Meta) ReceivedTime() time.Time { return m.Received }

// Stamp returns a Meta received now.
func Stamp() Meta { return Meta{Received: time.Now()} }

// Connecting is always the first event of a session.
type Connecting struct {
	Meta
	// URL is the websocket URL being connected to, with the values of
	// sensitive query keys shown as "xxxxx" (lomond.WithSensitiveQueryKeys).
	URL string
}

// ConnectFail means the connection could not be made: DNS, TCP, TLS, or the
// proxy failed, or the context ended while dialing. It ends the session; no
// Disconnected follows, because Connected never happened.
type ConnectFail struct {
	Meta
	// URL is the websocket URL, sensitive query values shown as "xxxxx".
	URL string
	// Reason is a short human-readable explanation.
	Reason string
	// Err is the underlying error.
	Err error
}

// Connected means the transport is up (TCP, then the proxy tunnel and TLS
// where used); the upgrade request is sent right after it is delivered
// (lomond emits it after writing the request). Every session that
// reaches Connected ends with Disconnected.
type Connected struct {
	Meta
	// URL is the websocket URL, sensitive query values shown as "xxxxx".
	URL string
	// Proxy is the proxy used, as scheme://host:port (no user name, no
	// password), or "".
	Proxy string
}

// Rejected means the server did not accept the websocket upgrade: a status
// other than 101, a wrong Sec-WebSocket-Accept, or a subprotocol or
// extension that was not offered. Disconnected (graceful) follows.
type Rejected struct {
	Meta
	// StatusCode is the HTTP status of the response.
	StatusCode int
	// Status is the HTTP status line text, such as "403 Forbidden".
	Status string
	// Header holds the response headers, with the values of Set-Cookie,
	// Cookie, Authorization and Proxy-Authorization replaced by "xxxxx".
	Header http.Header
	// Body holds at most the first 1024 bytes of the response body.
	Body []byte
	// Reason explains the rejection.
	Reason string
	// RetryAfter is the delay the server asked for in a Retry-After header
	// (seconds or an HTTP date); it is meaningful only when HasRetryAfter.
	RetryAfter time.Duration
	// HasRetryAfter reports whether a valid Retry-After header was present.
	HasRetryAfter bool
	// Err is the underlying error.
	Err error
}

// Ready means the websocket handshake was accepted: messages may be sent.
type Ready struct {
	Meta
	// Response is the server's 101 response (its Body is nil).
	Response *http.Response
	// Protocol is the subprotocol the server chose, or "".
	Protocol string
	// Extensions lists the extensions in use ("permessage-deflate" at most).
	Extensions []string
}

// Poll is emitted right after Ready and then every poll interval, so a
// handler can do periodic work on the session's goroutine.
type Poll struct {
	Meta
}

// Ping means the server sent a ping. When auto-pong is on, the pong has
// already been sent.
type Ping struct {
	Meta
	// Data is the ping payload (at most 125 bytes).
	Data []byte
}

// Pong means the server sent a pong, solicited or not.
type Pong struct {
	Meta
	// Data is the pong payload.
	Data []byte
	// RTT is the round-trip time when this pong answers the dispatcher's
	// latest automatic ping, otherwise 0.
	RTT time.Duration
}

// Text is a complete text message. Its payload is valid UTF-8.
type Text struct {
	Meta
	// Text is the message. The handler owns it.
	Text string
}

// Binary is a complete binary message.
type Binary struct {
	Meta
	// Data is the message. The handler owns it, unless the WebSocket was
	// made with lomond.WithBorrowedBinary: then it is valid only during the
	// call.
	Data []byte
}

// Closing means the server started the close handshake. The engine has
// already answered with the same code before this event is delivered.
type Closing struct {
	Meta
	// Code is the server's close code (1005 when it sent none).
	Code int
	// Reason is the server's close reason.
	Reason string
}

// Closed means a close handshake completed, whoever started it.
type Closed struct {
	Meta
	// Code is the close code the server sent (1005 when it sent none).
	Code int
	// Reason is the close reason the server sent.
	Reason string
}

// Unresponsive means no pong arrived within the ping timeout. Disconnected
// follows.
type Unresponsive struct {
	Meta
	// Timeout is the ping timeout that was exceeded.
	Timeout time.Duration
}

// ProtocolError means the server broke the websocket protocol (including
// invalid UTF-8 in a text message or close reason, or a message over the
// read limit). The client has failed the connection; Disconnected follows.
type ProtocolError struct {
	Meta
	// Err describes the violation.
	Err error
	// Code is the close code the client sent for it (1002, 1007 or 1009).
	Code int
	// Critical is lomond's flag for a violation answered by dropping TCP
	// without a close frame. lomond for Go always sends a close frame
	// first, so it is false; it is kept for code ported from lomond.
	Critical bool
}

// Disconnected is the last event of every session that reached Connected.
type Disconnected struct {
	Meta
	// Reason says why the session ended.
	Reason string
	// Graceful is true when the session ended with a completed close
	// handshake or an orderly rejection.
	Graceful bool
	// Err is the underlying error for a non-graceful end, or nil.
	Err error
}

// BackOff is emitted by the persistent loop after a session ends and before
// it waits to reconnect.
type BackOff struct {
	Meta
	// Delay is how long the loop will wait before the next attempt.
	Delay time.Duration
	// Attempt numbers the reconnection the wait leads to: 1 after Persist's
	// first session or after a stable connection, then 2, 3, ... for each
	// following session that did not become stable.
	Attempt int
	// Cause is why the previous session ended.
	Cause error
}

// Name returns "connecting".
func (*Connecting) Name() string { return NameConnecting }

// Name returns "connect_fail".
func (*ConnectFail) Name() string { return NameConnectFail }

// Name returns "connected".
func (*Connected) Name() string { return NameConnected }

// Name returns "rejected".
func (*Rejected) Name() string { return NameRejected }

// Name returns "ready".
func (*Ready) Name() string { return NameReady }

// Name returns "poll".
func (*Poll) Name() string { return NamePoll }

// Name returns "ping".
func (*Ping) Name() string { return NamePing }

// Name returns "pong".
func (*Pong) Name() string { return NamePong }

// Name returns "text".
func (*Text) Name() string { return NameText }

// Name returns "binary".
func (*Binary) Name() string { return NameBinary }

// Name returns "closing".
func (*Closing) Name() string { return NameClosing }

// Name returns "closed".
func (*Closed) Name() string { return NameClosed }

// Name returns "unresponsive".
func (*Unresponsive) Name() string { return NameUnresponsive }

// Name returns "protocol_error".
func (*ProtocolError) Name() string { return NameProtocolError }

// Name returns "disconnected".
func (*Disconnected) Name() string { return NameDisconnected }

// Name returns "back_off".
func (*BackOff) Name() string { return NameBackOff }
