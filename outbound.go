package lomond

import (
	"encoding/binary"
	"time"

	"github.com/lomond-go/lomond/events"
	"github.com/lomond-go/lomond/internal/protocol"
)

// SendObserver sees every outgoing data message and control frame of the
// WebSocket it is installed on (by WithPlugins, or as a handler or Compose
// part of a running Run or Persist), with its result: sent, failed (and
// why), queued, dropped, or left unsent. docs/plugins.md lists the frames.
//
// OnSend runs synchronously on the goroutine that sent: the application's
// own (SendText from any goroutine; from a handler that is Run's), Run's or
// Persist's goroutine for the frames the library sends itself (automatic
// pongs, keep-alive pings, close frames, the send queue's flush), and the
// library's goroutine that closes the connection when Run's context ends.
// So OnSend must be safe for concurrent use and quick, and it must not
// send or Close: it may be called while the send lock is held. It may call
// the WebSocket's other methods (State, Queued, URL, ...). ev and ev.Data
// are valid only during the call. A panic in OnSend is not recovered: it
// reaches the goroutine that was sending.
type SendObserver interface {
	OnSend(ws *WebSocket, ev *events.Outbound)
}

// outFlags qualify an outgoing frame for observers.
type outFlags uint8

const (
	outAuto      outFlags = 1 << iota // the library sent it on its own
	outFromQueue                      // written from Persist's send queue
)

// runTable is the table of the Run or Persist now running on ws, whose
// send observers see its sends; nil when none runs.
func (ws *WebSocket) runTable() *table {
	if s := ws.sess.Load(); s != nil {
		return s.t
	}
	if pl := ws.persist.Load(); pl != nil {
		return pl.t
	}
	return nil
}

// observeSent reports a frame (opText, opBinary, opPing, opPong or opClose,
// with its payload) that was written, or failed to be (err). The send
// paths call it once per frame, after the write; with no observer it costs
// two nil checks.
func (ws *WebSocket) observeSent(op byte, payload []byte, flags outFlags, err error) {
	t := ws.runTable()
	if !ws.observed(t) {
		return
	}
	res := events.Sent
	if err != nil {
		res = events.Failed
	}
	ws.notifySend(t, op, payload, res, flags, err)
}

// observeQueue reports what the send queue did with m: Queued, Dropped,
// Unsent, or Failed when a full queue refused it.
func (ws *WebSocket) observeQueue(m Message, res events.OutboundResult, err error) {
	t := ws.runTable()
	if !ws.observed(t) {
		return
	}
	op := byte(opText)
	if m.Binary {
		op = opBinary
	}
	ws.notifySend(t, op, m.Data, res, 0, err)
}

// observed reports whether anyone observes the sends of ws in the run t.
func (ws *WebSocket) observed(t *table) bool {
	return (ws.cfg.plugins != nil && ws.cfg.plugins.out != nil) || (t != nil && t.out != nil)
}

func (ws *WebSocket) notifySend(t *table, op byte, payload []byte, res events.OutboundResult, flags outFlags, err error) {
	ev := &events.Outbound{
		Time:      time.Now(),
		Kind:      outboundKind(op),
		Result:    res,
		Size:      len(payload),
		Err:       err,
		Auto:      flags&outAuto != 0,
		FromQueue: flags&outFromQueue != 0,
		Data:      payload,
	}
	if op == protocol.OpClose {
		ev.Code, ev.Reason = StatusNoStatus, ""
		if len(payload) >= 2 {
			ev.Code, ev.Reason = int(binary.BigEndian.Uint16(payload)), string(payload[2:])
		}
	}
	if p := ws.cfg.plugins; p != nil {
		for _, o := range p.out {
			o.OnSend(ws, ev)
		}
	}
	if t != nil {
		for _, o := range t.out {
			o.OnSend(ws, ev)
		}
	}
}

func outboundKind(op byte) events.OutboundKind {
	switch op {
	case opText:
		return events.KindText
	case opBinary:
		return events.KindBinary
	case opPing:
		return events.KindPing
	case opPong:
		return events.KindPong
	}
	return events.KindClose
}
