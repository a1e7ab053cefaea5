package main

import (
	"errors"
	"fmt"

	"github.com/lomond-go/lomond"
)

// Exit statuses (docs/cli.md). 128+N after signal N (130 for Ctrl-C).
const (
	exitOK           = 0 // the session ended with a close handshake, code 1000 or none
	exitFailure      = 1 // anything else: connection lost, close timeout, stdout failed
	exitUsage        = 2 // the command line cannot be run
	exitConnect      = 3 // no websocket: DNS, TCP, TLS, proxy, handshake failure or timeout
	exitRejected     = 4 // the server refused the upgrade
	exitProtocol     = 5 // the server broke the protocol (or a message over --read-limit)
	exitUnresponsive = 6 // no pong within --ping-timeout
	exitServerClose  = 7 // the server closed with a code other than 1000
)

// outcome turns what Run or Persist returned into the exit status and the
// final error line ("" for none).
func (c *client) outcome(err error) (int, string) {
	if sig := c.interrupted.Load(); sig != 0 {
		return 128 + int(sig), ""
	}
	if c.outputErr.Load() {
		return exitFailure, "" // already reported
	}
	if !c.s.persist {
		return c.classify(err)
	}
	switch {
	case err == nil:
		return exitOK, "" // stopped between sessions
	case errors.Is(err, lomond.ErrRetryPolicy):
		// The policy declines only once the client is stopping: the last
		// session tells how it ended.
		return c.classify(causeOf(err, lomond.ErrRetryPolicy))
	case errors.Is(err, lomond.ErrMaxAttempts):
		code, msg := c.classify(causeOf(err, lomond.ErrMaxAttempts))
		if code == exitOK {
			code = exitFailure
		}
		return code, fmt.Sprintf("gave up after %d attempts: %s", c.s.maxAttempts, msg)
	}
	return c.classify(err)
}

// causeOf returns the error Persist joined to sentinel, or nil.
func causeOf(err, sentinel error) error {
	if u, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range u.Unwrap() {
			if e != sentinel {
				return e
			}
		}
	}
	return nil
}

// classify maps the error of one session.
func (c *client) classify(err error) (int, string) {
	var (
		rej *lomond.RejectedError
		ce  *lomond.ConnectError
		pe  *lomond.ProtocolError
		cle *lomond.CloseError
	)
	switch {
	case err == nil:
		// The client started the close (end of input, --count, --send): the
		// server's reply still says how it ended, and a code other than 1000
		// (a rejected subscription, 4003) is a failure for a script.
		if cl := c.closed; cl != nil && !normalClose(cl.Code) {
			return exitServerClose, fmt.Sprintf("closed by the server: %d %q", cl.Code, cl.Reason)
		}
		return exitOK, ""
	case errors.As(err, &rej):
		msg := "rejected by the server: " + rej.Status
		if rej.StatusCode == 101 {
			msg += " (" + rej.Reason + ")"
		}
		if rej.HasRetryAfter {
			msg += fmt.Sprintf(", retry after %v", rej.RetryAfter)
		}
		return exitRejected, msg
	case errors.As(err, &ce):
		return exitConnect, "cannot connect: " + ce.Reason
	case errors.Is(err, lomond.ErrHandshakeTimeout):
		return exitConnect, "cannot connect: " + trimPrefix(err)
	case errors.As(err, &pe):
		return exitProtocol, fmt.Sprintf("protocol error: %v (sent close %d)", pe.Err, pe.Code)
	case errors.Is(err, lomond.ErrUnresponsive):
		return exitUnresponsive, fmt.Sprintf("server unresponsive: no pong within %v", c.s.pingTimeout)
	case errors.As(err, &cle):
		if normalClose(cle.Code) {
			return exitOK, ""
		}
		return exitServerClose, fmt.Sprintf("closed by the server: %d %q", cle.Code, cle.Reason)
	case !c.reachedReady:
		return exitConnect, "cannot connect: opening handshake failed: " + trimPrefix(err)
	case errors.Is(err, lomond.ErrCloseTimeout):
		return exitFailure, fmt.Sprintf("no close reply from the server within %v", c.s.closeTimeout)
	}
	return exitFailure, "connection lost: " + trimPrefix(err)
}

// normalClose reports whether a server's close code means a normal end:
// 1000, or no code at all (1005).
func normalClose(code int) bool {
	return code == lomond.StatusNormal || code == lomond.StatusNoStatus
}

// trimPrefix drops the library's "lomond: ": the line has its own.
func trimPrefix(err error) string {
	const p = "lomond: "
	s := err.Error()
	for len(s) >= len(p) && s[:len(p)] == p {
		s = s[len(p):]
	}
	return s
}
