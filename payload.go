package lomond

import (
	"strings"
	"unsafe"

	"github.com/lomond-go/lomond/events"
)

// Owned payloads. A handler owns every Text and Binary event it receives
// (unless WithBorrowedBinary lends the binary ones), for as long as it
// likes. Allocating each event and its payload on its own costs more than
// reading the message, so small and medium messages are carved out of
// blocks:
//
//   - a payload of at most carveMax bytes is a piece of a small block of
//     payloadBlock bytes;
//   - a payload of at most mediumMax bytes is a piece of a medium block of
//     16 times its size, at most mediumBlockMax bytes (so at least four
//     payloads a block);
//   - in either case its event is one element of an event block that
//     belongs to that payload block only (a new payload block starts a new
//     event block);
//   - a larger payload is an allocation of its own, with an event of its own
//     (so a kept small event never pins a large payload).
//
// So a kept message of at most carveMax bytes retains its payload block
// (16 KiB) and its event block (at most eventBlockMax events, 3 KiB); one of
// at most mediumMax bytes its block (at most 16 times its size and 256 KiB)
// and its event block (at most 17 events); a larger one its payload and its
// event. Each piece is capped at its length: no event can reach another's
// bytes.
//
// Payload memory is not zeroed before it is read into: every byte a
// handler can see is written by the read first (a payload slice is capped
// at its length), which saves a pass over large messages.

const (
	carveMax       = 2 << 10  // the largest payload carved out of a small block
	payloadBlock   = 16 << 10 // bytes per small block
	mediumMax      = 64 << 10 // the largest payload carved out of a medium block
	mediumBlockMax = 256 << 10
	eventBlockMax  = 64 // events per event block, at most
	eventBlockMin  = 4
)

// carver hands out payloads and events. Session goroutine only.
type carver struct {
	slab         // small payloads
	medium *slab // medium payloads; allocated at the first (an idle session's struct stays small)
}

// slab is a payload block being carved and the event blocks that go with
// it. The blocks are kept with offsets into them, so that handing out a
// piece writes no pointer into the session (a pointer write costs a write
// barrier while the GC runs, which it often does at millions of messages a
// second).
type slab struct {
	block []byte          // the current payload block
	used  int             // bytes of it handed out
	bins  []events.Binary // binary events that go with it
	nbin  int             // of them handed out
	texts []events.Text   // text events that go with it
	ntext int
}

// message is the event being read and its payload buffer.
type message struct {
	text   *events.Text
	binary *events.Binary
	buf    []byte
}

// newMessage returns an event and a payload buffer of exactly n bytes
// (whose contents are undefined until read into).
func (c *carver) newMessage(text bool, n int) message {
	switch {
	case n <= carveMax:
		return c.slab.carve(text, n, payloadBlock)
	case n <= mediumMax:
		if c.medium == nil {
			c.medium = new(slab)
		}
		return c.medium.carve(text, n, mediumBlock(n))
	case n <= maxBoxed:
		return boxedMessage(text, n)
	case text:
		return message{text: new(events.Text), buf: makeNoZero(n)}
	default:
		return message{binary: new(events.Binary), buf: makeNoZero(n)}
	}
}

// newGrowing returns a buffer for a message assembled from fragments,
// which may be outgrown and copied: medium sizes are not carved (a carved
// piece soon outgrown measured a third slower on a stream of 1 MiB
// messages in 64 KiB fragments than a box of its own).
func (c *carver) newGrowing(text bool, n int) message {
	if n > carveMax && n <= mediumMax {
		return boxedMessage(text, n)
	}
	return c.newMessage(text, n)
}

// boxedMessage is a message of n bytes (n <= maxBoxed) boxed with its event.
func boxedMessage(text bool, n int) message {
	if text {
		ev, buf := allocBox(textBoxes, n)
		return message{text: ev, buf: buf}
	}
	ev, buf := allocBox(binaryBoxes, n)
	return message{binary: ev, buf: buf}
}

// mediumBlock is the size of a new medium block for a payload of n bytes:
// 16 times it, in whole 8 KiB pages, at most mediumBlockMax.
func mediumBlock(n int) int {
	const page = 8 << 10
	return min((16*n+page-1)/page*page, mediumBlockMax)
}

// carve cuts a payload of n bytes and its event out of the slab, starting a
// new payload block of size bytes when n does not fit.
func (c *slab) carve(text bool, n, size int) message {
	if n > len(c.block)-c.used {
		// A new payload block, and with it new event blocks: an event
		// block's events all point into one payload block.
		c.block, c.used = makeNoZero(size), 0
		c.bins, c.nbin, c.texts, c.ntext = nil, 0, nil, 0
	}
	buf := c.block[c.used : c.used+n : c.used+n]
	c.used += n
	if text {
		if c.ntext == len(c.texts) {
			c.texts, c.ntext = make([]events.Text, c.eventBlock(n)), 0
		}
		ev := &c.texts[c.ntext]
		c.ntext++
		return message{text: ev, buf: buf}
	}
	if c.nbin == len(c.bins) {
		c.bins, c.nbin = make([]events.Binary, c.eventBlock(n)), 0
	}
	ev := &c.bins[c.nbin]
	c.nbin++
	return message{binary: ev, buf: buf}
}

// eventBlock sizes an event block for what the payload block can still
// hold of messages of about n bytes: no more events than payloads.
func (c *slab) eventBlock(n int) int {
	return min(max((len(c.block)-c.used)/max(n, 1)+1, eventBlockMin), eventBlockMax)
}

// A larger message's event and payload are one allocation up to maxBoxed:
// the event struct followed by a byte array of a size class (a box), the
// payload pointing into that array; so one allocation per message, and a
// kept event pins only its own payload. Beyond maxBoxed, the event and the
// payload are two allocations (the event is noise next to the payload),
// and the payload is not zeroed first.

// box is an event of type E with a payload array B after it.
type box[E any, B any] struct {
	ev  E
	buf B
}

// boxed allocates a box and returns its event and its whole array.
func boxed[E any, B any]() (*E, []byte) {
	b := new(box[E, B])
	return &b.ev, unsafe.Slice((*byte)(unsafe.Pointer(&b.buf)), unsafe.Sizeof(b.buf))
}

type boxClass[E any] struct {
	size  int
	alloc func() (*E, []byte)
}

// maxBoxed is the largest payload boxed with its event.
const maxBoxed = 1 << 20

// boxClasses are the payload sizes boxes come in above carveMax: steps of
// about 1.5x, so at most a third of a box is slack.
func boxClasses[E any]() []boxClass[E] {
	return []boxClass[E]{
		{3 << 10, boxed[E, [3 << 10]byte]}, {4 << 10, boxed[E, [4 << 10]byte]}, {6 << 10, boxed[E, [6 << 10]byte]},
		{8 << 10, boxed[E, [8 << 10]byte]}, {12 << 10, boxed[E, [12 << 10]byte]}, {16 << 10, boxed[E, [16 << 10]byte]},
		{24 << 10, boxed[E, [24 << 10]byte]}, {32 << 10, boxed[E, [32 << 10]byte]}, {48 << 10, boxed[E, [48 << 10]byte]},
		{64 << 10, boxed[E, [64 << 10]byte]}, {96 << 10, boxed[E, [96 << 10]byte]}, {128 << 10, boxed[E, [128 << 10]byte]},
		{192 << 10, boxed[E, [192 << 10]byte]}, {256 << 10, boxed[E, [256 << 10]byte]}, {384 << 10, boxed[E, [384 << 10]byte]},
		{512 << 10, boxed[E, [512 << 10]byte]}, {768 << 10, boxed[E, [768 << 10]byte]}, {1 << 20, boxed[E, [1 << 20]byte]},
	}
}

var (
	textBoxes   = boxClasses[events.Text]()
	binaryBoxes = boxClasses[events.Binary]()
)

// allocBox returns an event and a payload buffer of at least n bytes
// (n <= maxBoxed), capped at n.
func allocBox[E any](classes []boxClass[E], n int) (*E, []byte) {
	for _, c := range classes {
		if n <= c.size {
			ev, buf := c.alloc()
			return ev, buf[:n:n]
		}
	}
	panic("lomond: allocBox beyond maxBoxed")
}

// makeNoZero allocates n bytes without zeroing them: strings.Builder grows
// its buffer without clearing it (every byte of it is written before it is
// read), and the buffer is taken over here before the builder is dropped.
// The caller must write every byte it exposes.
func makeNoZero(n int) []byte {
	var b strings.Builder
	b.Grow(n)
	b.WriteByte(0) // a non-empty string: its data pointer is the buffer
	return unsafe.Slice(unsafe.StringData(b.String()), n)
}

// finish sets the payload, the first n bytes of the buffer, which no one
// writes again: a string view of it is immutable.
func (m message) finish(meta events.Meta, n int) events.Event {
	if m.text != nil {
		m.text.Meta, m.text.Text = meta, bytesString(m.buf[:n])
		return m.text
	}
	m.binary.Meta, m.binary.Data = meta, m.buf[:n:n]
	return m.binary
}

// bytesString views an owned, never again written buffer as a string.
func bytesString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(unsafe.SliceData(b), len(b))
}
