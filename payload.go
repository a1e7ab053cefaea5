package lomond

import (
	"unsafe"

	"github.com/lomond-go/lomond/events"
)

// A message event and its payload are one allocation: the event struct is
// followed by a byte array of a size class, and the payload (Binary.Data, or
// the bytes behind Text.Text) points into that array. A message therefore
// costs one allocation, the event is never shared with another message (a
// handler may keep it), and a kept event pins only its own payload.

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

// boxClasses are the payload sizes boxes come in: steps of about 1.5x, so at
// most a third of a box is slack, up to 128 KiB. Larger messages cost two
// allocations (event and payload), which is noise next to their size.
func boxClasses[E any]() []boxClass[E] {
	return []boxClass[E]{
		{16, boxed[E, [16]byte]}, {32, boxed[E, [32]byte]}, {48, boxed[E, [48]byte]},
		{64, boxed[E, [64]byte]}, {96, boxed[E, [96]byte]}, {128, boxed[E, [128]byte]},
		{192, boxed[E, [192]byte]}, {256, boxed[E, [256]byte]}, {384, boxed[E, [384]byte]},
		{512, boxed[E, [512]byte]}, {768, boxed[E, [768]byte]}, {1 << 10, boxed[E, [1 << 10]byte]},
		{1536, boxed[E, [1536]byte]}, {2 << 10, boxed[E, [2 << 10]byte]}, {3 << 10, boxed[E, [3 << 10]byte]},
		{4 << 10, boxed[E, [4 << 10]byte]}, {6 << 10, boxed[E, [6 << 10]byte]}, {8 << 10, boxed[E, [8 << 10]byte]},
		{12 << 10, boxed[E, [12 << 10]byte]}, {16 << 10, boxed[E, [16 << 10]byte]}, {24 << 10, boxed[E, [24 << 10]byte]},
		{32 << 10, boxed[E, [32 << 10]byte]}, {48 << 10, boxed[E, [48 << 10]byte]}, {64 << 10, boxed[E, [64 << 10]byte]},
		{96 << 10, boxed[E, [96 << 10]byte]}, {128 << 10, boxed[E, [128 << 10]byte]},
	}
}

var (
	textBoxes   = boxClasses[events.Text]()
	binaryBoxes = boxClasses[events.Binary]()
)

// allocBox returns an event and a payload buffer of at least n bytes.
func allocBox[E any](classes []boxClass[E], n int) (*E, []byte) {
	for _, c := range classes {
		if n <= c.size {
			return c.alloc()
		}
	}
	return new(E), make([]byte, n)
}

// message is the event being read and its payload buffer.
type message struct {
	text   *events.Text
	binary *events.Binary
	buf    []byte
}

func newMessage(text bool, n int) message {
	if text {
		ev, buf := allocBox(textBoxes, n)
		return message{text: ev, buf: buf}
	}
	ev, buf := allocBox(binaryBoxes, n)
	return message{binary: ev, buf: buf}
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
