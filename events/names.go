package events

// Event names, as returned by Name: lomond's names. Compare ev.Name() with
// these rather than with string literals, or switch on the event's type.
const (
	NameConnecting    = "connecting"
	NameConnectFail   = "connect_fail"
	NameConnected     = "connected"
	NameRejected      = "rejected"
	NameReady         = "ready"
	NamePoll          = "poll"
	NamePing          = "ping"
	NamePong          = "pong"
	NameText          = "text"
	NameBinary        = "binary"
	NameClosing       = "closing"
	NameClosed        = "closed"
	NameUnresponsive  = "unresponsive"
	NameProtocolError = "protocol_error"
	NameDisconnected  = "disconnected"
	NameBackOff       = "back_off"
)
