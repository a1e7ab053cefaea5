package wstest

import "net/http"

// Echo is a ready-made, well-behaved script. It performs the handshake
// (answering 400 to an invalid upgrade request), selecting the first offered
// subprotocol if the client offers any and none otherwise. It then echoes
// every text or binary message as a single frame with the same opcode,
// answers each ping with a pong carrying the same payload, ignores pongs,
// and answers a close frame with a close frame carrying the same payload
// before closing the connection. It returns on any error.
func Echo(c *Conn) {
	defer c.Close()
	req, err := c.ReadRequest()
	if err != nil {
		return
	}
	if err := CheckUpgrade(req); err != nil {
		c.Reject(http.StatusBadRequest, nil, err.Error())
		return
	}
	var extra http.Header
	if p := firstProtocol(req); p != "" {
		extra = http.Header{"Sec-WebSocket-Protocol": {p}}
	}
	if err := c.Accept(req, extra); err != nil {
		return
	}
	for {
		op, payload, err := c.ReadMessage()
		if err != nil {
			return
		}
		switch op {
		case OpText, OpBinary:
			err = c.WriteFrame(Frame{Fin: true, Opcode: op, Payload: payload})
		case OpPing:
			err = c.WriteFrame(Pong(payload))
		case OpClose:
			c.WriteFrame(Frame{Fin: true, Opcode: OpClose, Payload: payload})
			return
		}
		if err != nil {
			return
		}
	}
}
