// Package testconn is a transport for tests of the client's writing: a
// net.Conn wrapper ([Conn]) that records every byte the client wrote and
// whose writes can be held, released, stalled or failed at a chosen byte,
// so that every ordering of a send against a slow, stuck or broken
// connection can be played deterministically, without sleeps.
//
// A [Dialer] makes wrapped connections to a real address and is installed
// with lomond.WithDialer(d.Dial); it keeps every connection it made, so a
// test can decode what the client wrote on each one. [Conn.WriteCalls]
// tells where each Write call started and whether it wrote all it was
// given: a call cut short leaves a frame unfinished, and anything written
// after it is out of step. [DecodeClient] parses
// that stream (the opening handshake request, then masked client frames),
// reassembles the messages and inflates them (permessage-deflate, with or
// without context takeover, as the server's upgrade response negotiated:
// [ParseResponse] of Conn.Received, then [OptionsFor]):
// it proves that a message whose send returned nil was written, whole and
// intact. It is written from RFC 6455 and RFC 7692 with compress/flate,
// independently of the client's own codec.
//
// A [Proxy] forwards TCP between a client and a server on 127.0.0.1 and can
// pause (stop forwarding, so that the client's writes back up) and cut each
// connection after a chosen amount of traffic.
//
// Everything honours Close and deadlines as a real net.Conn does: a held
// write returns an error wrapping os.ErrDeadlineExceeded when the write
// deadline passes, and one wrapping net.ErrClosed when the Conn is closed.
package testconn
