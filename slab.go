package lomond

import "github.com/lomond-go/lomond/events"

// eventSlab hands out message events allocated in blocks, so a message costs
// one allocation (its payload) plus 1/slabSize of an event. Events are never
// reused: a handler may keep one; a kept event keeps its block alive.
type eventSlab struct {
	texts    []events.Text
	binaries []events.Binary
}

const slabSize = 64

func (e *eventSlab) text() *events.Text {
	if len(e.texts) == 0 {
		e.texts = make([]events.Text, slabSize)
	}
	ev := &e.texts[0]
	e.texts = e.texts[1:]
	return ev
}

func (e *eventSlab) binary() *events.Binary {
	if len(e.binaries) == 0 {
		e.binaries = make([]events.Binary, slabSize)
	}
	ev := &e.binaries[0]
	e.binaries = e.binaries[1:]
	return ev
}
