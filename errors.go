package lomond

import (
	"errors"
	"fmt"
	"net/http"
	"time"
)

// Sentinel errors, to be matched with errors.Is.
var (
	// ErrNotConnected is returned by sends and Close when there is no ready
	// session: before Run, during the opening handshake, or after the
	// session ended.
	ErrNotConnected = errors.New("lomond: not connected")
	// ErrClosing is returned by sends after a close handshake started
	// (either side), and by a second Close.
	ErrClosing = errors.New("lomond: websocket is closing")
	// ErrClosed is returned by sends once the close handshake completed.
	ErrClosed = errors.New("lomond: websocket is closed")
	// ErrAlreadyRunning is returned when Run, Events or Persist is started
	// on a WebSocket whose session is still running.
	ErrAlreadyRunning = errors.New("lomond: websocket is already running")
	// ErrInvalidURL is wrapped by New for a URL it cannot use.
	ErrInvalidURL = errors.New("lomond: invalid websocket URL")
	// ErrInvalidOption is wrapped by New for an option value it rejects.
	ErrInvalidOption = errors.New("lomond: invalid option")
	// ErrInvalidHandler is returned by Run for a handler that cannot be used.
	ErrInvalidHandler = errors.New("lomond: invalid handler")
	// ErrInvalidCloseCode is returned by Close for a code that may not be
	// sent (valid: 1000-1003, 1007-1014, 3000-4999).
	ErrInvalidCloseCode = errors.New("lomond: invalid close code")
	// ErrReasonTooLong is returned by Close for a reason over 123 bytes.
	ErrReasonTooLong = errors.New("lomond: close reason longer than 123 bytes")
	// ErrControlTooLarge is returned by SendPing and SendPong for a payload
	// over 125 bytes.
	ErrControlTooLarge = errors.New("lomond: control frame payload longer than 125 bytes")
	// ErrInvalidUTF8 is returned by SendText and Close for text that is not
	// valid UTF-8 (a server would fail the connection with 1007).
	ErrInvalidUTF8 = errors.New("lomond: text is not valid UTF-8")
	// ErrUnresponsive ends a session whose server did not answer a ping
	// within the ping timeout.
	ErrUnresponsive = errors.New("lomond: no pong within the ping timeout")
	// ErrCloseTimeout ends a session whose server did not finish the close
	// handshake within the close timeout.
	ErrCloseTimeout = errors.New("lomond: close handshake timed out")
	// ErrHandshakeTimeout ends a session whose server did not answer the
	// upgrade request within the handshake timeout.
	ErrHandshakeTimeout = errors.New("lomond: opening handshake timed out")
	// ErrConnectionLost is wrapped by a send that found the connection
	// broken (a write failed, or made no progress for the ping timeout)
	// before any byte of its message went out: the message was not sent,
	// and the session is ending. With a send queue the message is queued
	// for the next session instead.
	ErrConnectionLost = errors.New("lomond: connection lost")
	// ErrStopped is the session's record that its range loop (Events or
	// PersistEvents) was left early. No method returns it: a loop the
	// caller left ends cleanly, and Err returns nil after it, as Run and
	// Persist return nil when their context is cancelled.
	//
	// Deprecated: never returned; compare Err with nil instead.
	ErrStopped = errors.New("lomond: event loop stopped by the caller")
)

// ConnectError is returned when the connection could not be made (the
// session's ConnectFail event).
type ConnectError struct {
	URL    string
	Reason string
	Err    error
}

// Error implements error. Text from the network (a proxy's status line, a
// certificate's names) is escaped.
func (e *ConnectError) Error() string {
	return printable(fmt.Sprintf("lomond: connect to %s failed: %s", e.URL, e.Reason))
}

// Unwrap returns the underlying error.
func (e *ConnectError) Unwrap() error { return e.Err }

// RejectedError is returned when the server refused the websocket upgrade
// (the session's Rejected event). Header holds the response headers, with
// the values of Set-Cookie, Cookie, Authorization and Proxy-Authorization
// replaced by "xxxxx".
type RejectedError struct {
	StatusCode    int
	Status        string
	Header        http.Header
	Reason        string
	RetryAfter    time.Duration
	HasRetryAfter bool
	Err           error
}

// Error implements error. Server text in the reason is escaped.
func (e *RejectedError) Error() string {
	return printable(fmt.Sprintf("lomond: upgrade rejected: %s", e.Reason))
}

// Unwrap returns the underlying error.
func (e *RejectedError) Unwrap() error { return e.Err }

// CloseError is returned when the server closed the connection with a
// completed close handshake.
type CloseError struct {
	Code   int
	Reason string
}

// Error implements error.
func (e *CloseError) Error() string {
	return fmt.Sprintf("lomond: server closed the connection: code %d, reason %q", e.Code, e.Reason)
}

// ProtocolError is returned when the server broke the websocket protocol and
// the client failed the connection with Code (1002, 1007 or 1009).
type ProtocolError struct {
	Code int
	Err  error
}

// Error implements error. Server text in the violation is escaped.
func (e *ProtocolError) Error() string {
	return printable(fmt.Sprintf("lomond: protocol error (close %d): %v", e.Code, e.Err))
}

// Unwrap returns the underlying error.
func (e *ProtocolError) Unwrap() error { return e.Err }

// PanicError is returned when a handler panicked. The session was closed with
// code 1011.
type PanicError struct {
	// Value is what the handler panicked with.
	Value any
	// Stack is the handler goroutine's stack at the panic.
	Stack []byte
}

// Error returns one line naming the panic value (newlines in it escaped),
// fit for a log line. The stack is in Stack, and printed by %+v.
func (e *PanicError) Error() string {
	return "lomond: handler panicked: " + printable(fmt.Sprint(e.Value))
}

// Format implements fmt.Formatter: %+v prints Error, a newline and the
// stack; the other verbs print Error.
func (e *PanicError) Format(f fmt.State, verb rune) {
	switch {
	case verb == 'v' && f.Flag('+'):
		fmt.Fprintf(f, "%s\n%s", e.Error(), e.Stack)
	case verb == 'v' || verb == 's':
		fmt.Fprint(f, e.Error())
	case verb == 'q':
		fmt.Fprintf(f, "%q", e.Error())
	default:
		fmt.Fprintf(f, "%%!%c(*lomond.PanicError=%s)", verb, e.Error())
	}
}

// CloseStatus returns the close code carried by err (a *CloseError or a
// *ProtocolError), or -1.
func CloseStatus(err error) int {
	var ce *CloseError
	if errors.As(err, &ce) {
		return ce.Code
	}
	var pe *ProtocolError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return -1
}
