// Package link lets package fault act on a lomondtest.Conn below the
// websocket (the handshake, the TCP connection, raw bytes) through methods
// lomondtest keeps unexported: faults live in their own package, and the
// connection's internals stay out of lomondtest's API.
package link

import "time"

// Faults is what a fault can do to a connection. Each method is one fault;
// an error says why it cannot be done in the connection's state.
type Faults interface {
	Reject(status int, header []string) error
	StallHandshake() error
	Drop(reset bool) error
	IgnorePings()
	Trickle(pause time.Duration) error
	ProtocolViolation() error
	SendRaw(b []byte) error
}

// FaultsOf returns the faults of a *lomondtest.Conn. lomondtest sets it
// when it is initialised; package fault imports lomondtest, so it is set
// before any fault runs.
var FaultsOf func(conn any) Faults
