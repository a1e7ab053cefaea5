package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"

	"github.com/lomond-go/lomond/bench/fixture"
)

// floorClient is the framing floor: a hand-written client that does only
// what the protocol requires of a reader (parse each frame header, put the
// payload in one reused buffer, answer pings and the close) and nothing a
// library does (no events, no checks beyond the fixture's, no timers, no
// allocation per message). Payload bytes past the read buffer are read
// straight into the destination. It is the bar no library can beat by
// much: how fast a Go client can go on this machine.
//
// With owned, each message gets a payload of its own (make, as a Go
// program that keeps messages must): the owned floor, the bar for a client
// that hands every message over, as lomond's default options do. The
// difference from the floor is what fresh memory per message costs here
// (allocation, zeroing, GC, and writing bytes into memory that is not in
// the cache), whatever the library.
func floorClient(owned bool) *client {
	name := "floor"
	if owned {
		name = "floor-owned"
	}
	return &client{
		name:  name,
		idle:  !owned, // at rest the same connection as the floor
		floor: true,
		stream: func(ctx context.Context, addr string, w workload, m *meter) error {
			f, err := floorDial(ctx, addr, w.path(), 64<<10)
			if err != nil {
				return err
			}
			f.owned = owned
			defer f.conn.Close()
			stop := context.AfterFunc(ctx, func() { _ = f.conn.Close() })
			defer stop()
			return f.run(w, m)
		},
		hold: func(ctx context.Context, addr string, ready func(error)) {
			f, err := floorDial(ctx, addr, "/hold", 512)
			if err != nil {
				ready(err)
				return
			}
			ready(nil)
			stop := context.AfterFunc(ctx, func() { _ = f.conn.Close() })
			defer stop()
			var dst []byte
			_, _, _ = f.next(&dst)
			_ = f.conn.Close()
		},
	}
}

type floorConn struct {
	conn     net.Conn
	buf      []byte
	pos, end int
	out      []byte
	owned    bool // a fresh payload per message
}

// floorKey is the masking key of every frame the floor sends.
const floorKey = 0x5a3c96e1

func floorDial(ctx context.Context, addr, path string, bufSize int) (*floorConn, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	req := "GET " + path + " HTTP/1.1\r\nHost: " + addr + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
	if _, err := io.WriteString(conn, req); err != nil {
		conn.Close()
		return nil, err
	}
	f := &floorConn{conn: conn, buf: make([]byte, max(bufSize, 512))}
	for {
		if i := bytes.Index(f.buf[:f.end], []byte("\r\n\r\n")); i >= 0 {
			if !bytes.HasPrefix(f.buf, []byte("HTTP/1.1 101 ")) {
				conn.Close()
				return nil, fmt.Errorf("floor: upgrade refused: %q", f.buf[:i])
			}
			f.pos = i + 4
			return f, nil
		}
		if f.end == len(f.buf) {
			conn.Close()
			return nil, errors.New("floor: response header too long")
		}
		n, err := conn.Read(f.buf[f.end:])
		f.end += n
		if err != nil {
			conn.Close()
			return nil, err
		}
	}
}

// fill buffers at least n bytes.
func (f *floorConn) fill(n int) error {
	if f.end-f.pos >= n {
		return nil
	}
	f.end = copy(f.buf, f.buf[f.pos:f.end])
	f.pos = 0
	for f.end < n {
		k, err := f.conn.Read(f.buf[f.end:])
		f.end += k
		if err != nil && f.end < n {
			return err
		}
	}
	return nil
}

// next reads the next frame's payload into *dst (grown when needed) and
// returns its opcode and length.
func (f *floorConn) next(dst *[]byte) (op byte, n int, err error) {
	if err := f.fill(2); err != nil {
		return 0, 0, err
	}
	b0, b1 := f.buf[f.pos], f.buf[f.pos+1]
	hl, length := 2, int(b1&0x7f)
	switch length {
	case 126:
		hl = 4
	case 127:
		hl = 10
	}
	if err := f.fill(hl); err != nil {
		return 0, 0, err
	}
	switch hl {
	case 4:
		length = int(binary.BigEndian.Uint16(f.buf[f.pos+2:]))
	case 10:
		length = int(binary.BigEndian.Uint64(f.buf[f.pos+2:]))
	}
	f.pos += hl
	if cap(*dst) < length || f.owned {
		*dst = make([]byte, length)
	}
	p := (*dst)[:length]
	k := copy(p, f.buf[f.pos:f.end])
	f.pos += k
	if k < length {
		if _, err := io.ReadFull(f.conn, p[k:]); err != nil {
			return 0, 0, err
		}
	}
	*dst = p
	return b0 & 0x0f, length, nil
}

// write sends one final masked frame.
func (f *floorConn) write(op byte, p []byte) error {
	b := append(f.out[:0], 0x80|op)
	switch {
	case len(p) <= 125:
		b = append(b, 0x80|byte(len(p)))
	case len(p) <= 0xffff:
		b = append(b, 0x80|126, byte(len(p)>>8), byte(len(p)))
	default:
		b = binary.BigEndian.AppendUint64(append(b, 0x80|127), uint64(len(p)))
	}
	b = binary.LittleEndian.AppendUint32(b, floorKey)
	start := len(b)
	b = append(b, p...)
	k := uint64(floorKey) | uint64(floorKey)<<32
	q := b[start:]
	for len(q) >= 8 {
		binary.LittleEndian.PutUint64(q, binary.LittleEndian.Uint64(q)^k)
		q = q[8:]
	}
	for i := range q {
		q[i] ^= byte(k >> (8 * (i % 4)))
	}
	f.out = b
	_, err := f.conn.Write(b)
	return err
}

func (f *floorConn) run(w workload, m *meter) error {
	var payload []byte
	if w.echo || w.send {
		payload = fixture.Payload(w.size)
	}
	closing := false
	closeFrame := []byte{0x03, 0xe8}
	m.begin()
	if w.send {
		for !m.done() {
			if err := f.write(0x2, payload); err != nil {
				return err
			}
			m.message()
		}
		if err := f.write(0x8, closeFrame); err != nil {
			return err
		}
		closing = true
	} else if w.echo {
		if err := f.write(0x2, payload); err != nil {
			return err
		}
	}
	dst := make([]byte, max(w.size, 512))
	for {
		op, n, err := f.next(&dst)
		if err != nil {
			return err
		}
		switch op {
		case 0x8:
			if !closing {
				if err := f.write(0x8, dst[:min(n, 2)]); err != nil {
					return err
				}
			}
			return nil
		case 0x9:
			if err := f.write(0xa, dst[:n]); err != nil {
				return err
			}
			continue
		case 0xa:
			continue
		}
		if closing {
			continue
		}
		if err := checkPayload(dst[:n], w.size); err != nil {
			return err
		}
		if m.message() {
			if m.clientCloses {
				closing = true
				if err := f.write(0x8, closeFrame); err != nil {
					return err
				}
			}
			continue
		}
		if w.echo && !m.done() {
			if err := f.write(0x2, payload); err != nil {
				return err
			}
		}
	}
}
