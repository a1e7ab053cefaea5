package events

import (
	"strconv"
	"strings"
	"time"
)

// OutboundKind is what an outgoing message or frame is.
type OutboundKind uint8

// Outgoing kinds: the two data message types and the three control frames.
const (
	KindText OutboundKind = iota + 1
	KindBinary
	KindPing
	KindPong
	KindClose
)

var outboundKinds = [...]string{"", "text", "binary", "ping", "pong", "close"}

// String returns the kind's name: "text", "binary", "ping", "pong" or
// "close".
func (k OutboundKind) String() string {
	if int(k) > 0 && int(k) < len(outboundKinds) {
		return outboundKinds[k]
	}
	return "OutboundKind(" + strconv.Itoa(int(k)) + ")"
}

// OutboundResult is what became of an outgoing message or frame.
type OutboundResult uint8

// Results. Every message ends in exactly one of Sent, Failed, Dropped or
// Unsent; a message held by Persist's send queue is first reported Queued,
// then once more when it leaves the queue.
const (
	// Sent: written to the connection in full.
	Sent OutboundResult = iota + 1
	// Failed: not written, or not completely; Err says why (not connected,
	// closing, closed, the send queue was full, or the transport's error).
	Failed
	// Queued: held in Persist's send queue (lomond.WithSendQueue) until the
	// next Ready; a later Outbound with FromQueue reports its fate.
	Queued
	// Dropped: removed from a full send queue to make room for a newer
	// message (lomond.DropOldest); it is never sent.
	Dropped
	// Unsent: still in the send queue when Persist returned; the
	// application can take it back with WebSocket.Unsent.
	Unsent
)

var outboundResults = [...]string{"", "sent", "failed", "queued", "dropped", "unsent"}

// String returns the result's name: "sent", "failed", "queued", "dropped"
// or "unsent".
func (r OutboundResult) String() string {
	if int(r) > 0 && int(r) < len(outboundResults) {
		return outboundResults[r]
	}
	return "OutboundResult(" + strconv.Itoa(int(r)) + ")"
}

// Outbound reports one outgoing data message or control frame and what
// became of it. It is delivered to send observers (lomond.SendObserver), not
// to handlers and not to Observer: it happens on the goroutine that sent,
// not on the session's. It is not an Event.
type Outbound struct {
	// Time is when the result was known: the write returned, or the
	// message entered or left the send queue.
	Time time.Time
	// Kind is the message type or control frame.
	Kind OutboundKind
	// Result is what became of it.
	Result OutboundResult
	// Size is the payload's length in bytes, before compression. For a
	// close frame it counts the two code bytes and the reason.
	Size int
	// Err says why a message Failed (the error the send returned) or was
	// Dropped (lomond.ErrQueueFull); nil otherwise.
	Err error
	// Auto is true for a frame the library sent on its own: the automatic
	// pong to a ping, the keep-alive ping, and the close frames it sends
	// for a protocol error, a handler panic or a range loop left early.
	Auto bool
	// FromQueue is true for a message written from Persist's send queue
	// (its flush after Ready): it was reported Queued before.
	FromQueue bool
	// Code and Reason are a close frame's code and reason.
	Code   int
	Reason string
	// Data is the payload, borrowed: valid only during the call, and not
	// to be modified (it may be a string's memory). Nothing is copied for
	// observers; one that wants the payload copies it.
	Data []byte
}

// String reads like an event's repr, without the payload, for example
// Outbound(kind='text', size=5, result='sent').
func (o *Outbound) String() string {
	var b strings.Builder
	b.WriteString("Outbound(kind='")
	b.WriteString(o.Kind.String())
	b.WriteString("', size=")
	b.WriteString(strconv.Itoa(o.Size))
	b.WriteString(", result='")
	b.WriteString(o.Result.String())
	b.WriteByte('\'')
	if o.Kind == KindClose {
		b.WriteString(", code=")
		b.WriteString(strconv.Itoa(o.Code))
		b.WriteString(", reason=")
		b.WriteString(quote(o.Reason))
	}
	if o.Auto {
		b.WriteString(", auto=True")
	}
	if o.FromQueue {
		b.WriteString(", from_queue=True")
	}
	if o.Err != nil {
		b.WriteString(", error=")
		b.WriteString(quote(o.Err.Error()))
	}
	b.WriteByte(')')
	return b.String()
}
