package main

import (
	"context"
	"fmt"
	"strconv"
)

// A client is one websocket library driven the way its documentation
// recommends for speed. Every client dials the same fixture server.
type client struct {
	name string
	// lomond reports whether this is one of the project's own clients (the
	// numerators of the ratios); the others are peers.
	lomond bool
	// stream runs one push or echo connection: it calls m.begin when the
	// connection is ready, m.message for every message received, closes
	// the connection when m.message says so (and m.clientCloses), and
	// returns when the connection is over.
	stream func(ctx context.Context, addr string, w workload, m *meter) error
	// hold opens one connection that stays idle, calls ready once it is
	// open (or failed), and keeps it open until ctx ends; then it closes
	// it and returns.
	hold func(ctx context.Context, addr string, ready func(error))
	// idle reports whether the idle-connection measurement runs this
	// client (lomond-borrowed is the same connection as lomond at rest).
	idle bool
	// floor marks the framing floor: a bar, not a peer (it is left out of
	// "best peer").
	floor bool
}

// workload is what one stream connection does.
type workload struct {
	echo  bool  // round trips instead of pushed messages
	send  bool  // the client sends as fast as it can; the server discards
	size  int   // payload bytes per message
	count int64 // push: messages the server sends (0: until the client closes)
}

// path is the fixture URL path and query for w.
func (w workload) path() string {
	if w.echo {
		return "/echo"
	}
	if w.send {
		return "/sink"
	}
	return "/push?size=" + strconv.Itoa(w.size) + "&n=" + strconv.FormatInt(w.count, 10)
}

// clients lists every client, lomond's first, in the table's order.
var clients = []*client{
	lomondClient("lomond", false),
	lomondClient("lomond-borrowed", true),
	gwsClient(),
	gobwasClient(),
	gorillaClient(),
	coderClient(),
	floorClient(false),
	floorClient(true),
}

func clientNamed(name string) *client {
	for _, c := range clients {
		if c.name == name {
			return c
		}
	}
	return nil
}

func clientNames() []string {
	var names []string
	for _, c := range clients {
		names = append(names, c.name)
	}
	return names
}

// checkPayload checks a received message against what the fixture sends
// (its length, first and last byte): cheap, and the same for every client.
func checkPayload(p []byte, size int) error {
	if len(p) != size || (size > 0 && (p[0] != 'a' || p[size-1] != 'a'+byte((size-1)%26))) {
		return fmt.Errorf("message of %d bytes does not match the %d-byte payload", len(p), size)
	}
	return nil
}

func checkText(s string, size int) error {
	if len(s) != size || (size > 0 && (s[0] != 'a' || s[size-1] != 'a'+byte((size-1)%26))) {
		return fmt.Errorf("text of %d bytes does not match the %d-byte payload", len(s), size)
	}
	return nil
}
