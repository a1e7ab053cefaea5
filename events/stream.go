package events

import (
	"fmt"
	"io"
)

// NameStream is the name of Stream events. lomond has no such event: it
// delivers every message whole.
const NameStream = "stream"

// Stream is a data message delivered as it arrives, to a handler that
// implements lomond.StreamHandler (every data message of its session comes
// as a Stream instead of Text or Binary).
//
// Reader yields the message's payload, decompressed if the server
// compressed it, then io.EOF. Text is checked as it streams: invalid UTF-8
// fails the connection (close code 1007) and Reader returns an error. Reader
// reads the connection on the handler's goroutine and is valid only during
// the OnStream call: what the handler leaves unread is discarded when it
// returns, and a read after that returns an error. Observers (OnEvent) see
// the event too but must not read it.
type Stream struct {
	Meta
	// Binary is true for a binary message, false for text.
	Binary bool
	// Compressed is true when the server compressed the message
	// (permessage-deflate).
	Compressed bool
	// Reader is the message's payload.
	Reader io.Reader
}

// Name returns "stream".
func (*Stream) Name() string { return NameStream }

// String reads like the other events' repr, without the payload.
func (e *Stream) String() string {
	kind := "text"
	if e.Binary {
		kind = "binary"
	}
	c := "False"
	if e.Compressed {
		c = "True"
	}
	return fmt.Sprintf("Stream(%s, compressed=%s)", kind, c)
}
