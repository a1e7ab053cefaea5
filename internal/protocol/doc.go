// Package protocol is the IO-free core of the websocket protocol (RFC 6455,
// RFC 7692) as the lomond client speaks it: frame headers, masking, close
// payloads, streaming UTF-8 validation, the opening handshake's request and
// response checks, and permessage-deflate. It owns no socket: the session in
// package lomond reads and writes the connection and calls these functions,
// as lomond separates its protocol core from the socket-owning session.
//
// Every protocol violation is an *Error carrying the close code the client
// must send (1002, 1007, 1009) and a short, stable reason.
package protocol
