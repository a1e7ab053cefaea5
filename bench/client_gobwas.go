package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
	"github.com/lomond-go/lomond/bench/fixture"
)

// gobwasClient is github.com/gobwas/ws: ws.Dial, then wsutil.Reader frame
// by frame over a 64 KiB bufio.Reader, each message read into one reused
// buffer, control frames answered by wsutil.ControlFrameHandler; messages
// sent with a reused wsutil.Writer. An idle connection holds no buffer (a
// goroutine blocked in NextFrame on the conn): the leanest way gobwas
// allows with a goroutine per connection.
func gobwasClient() *client {
	return &client{
		name: "gobwas",
		idle: true,
		stream: func(ctx context.Context, addr string, w workload, m *meter) error {
			conn, br, _, err := ws.Dial(ctx, "ws://"+addr+w.path())
			if err != nil {
				return err
			}
			defer conn.Close()
			stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
			defer stop()
			// Frames are read through a 64 KiB buffer (reading the conn
			// directly costs a read(2) per frame header); bytes the
			// handshake read past the response come first.
			var src io.Reader = conn
			if br != nil {
				rest, _ := br.Peek(br.Buffered())
				src = io.MultiReader(bytes.NewReader(rest), conn)
			}
			g := &gobwasConn{conn: conn, src: bufio.NewReaderSize(src, 64<<10), w: w, m: m}
			return g.run()
		},
		hold: func(ctx context.Context, addr string, ready func(error)) {
			conn, br, _, err := ws.Dial(ctx, "ws://"+addr+"/hold")
			if err != nil {
				ready(err)
				return
			}
			ready(nil)
			stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
			defer stop()
			var src io.Reader = conn
			if br != nil {
				src = br
			}
			rd := wsutil.Reader{Source: src, State: ws.StateClientSide,
				OnIntermediate: wsutil.ControlFrameHandler(conn, ws.StateClientSide)}
			_, _ = rd.NextFrame()
			_ = conn.Close()
		},
	}
}

type gobwasConn struct {
	conn    net.Conn
	src     io.Reader
	w       workload
	m       *meter
	payload []byte
	out     *wsutil.Writer
}

func (g *gobwasConn) send() error {
	if _, err := g.out.Write(g.payload); err != nil {
		return err
	}
	return g.out.Flush()
}

func (g *gobwasConn) closeFrame() error {
	return ws.WriteFrame(g.conn, ws.MaskFrameInPlace(ws.NewCloseFrame(ws.NewCloseFrameBody(ws.StatusNormalClosure, ""))))
}

func (g *gobwasConn) run() error {
	w, m := g.w, g.m
	ctrl := wsutil.ControlFrameHandler(g.conn, ws.StateClientSide)
	rd := &wsutil.Reader{Source: g.src, State: ws.StateClientSide, OnIntermediate: ctrl}
	if w.echo || w.send {
		g.payload = fixture.Payload(w.size)
		g.out = wsutil.NewWriterBufferSize(g.conn, ws.StateClientSide, ws.OpBinary, w.size+64)
	}
	m.begin()
	if w.send {
		return g.sendLoop(rd, ctrl)
	}
	if w.echo {
		if err := g.send(); err != nil {
			return err
		}
	}
	buf := make([]byte, max(w.size, 512))
	for {
		hdr, err := rd.NextFrame()
		if err != nil {
			return err
		}
		if hdr.OpCode.IsControl() {
			if err := ctrl(hdr, rd); err != nil {
				return gobwasClosed(err)
			}
			continue
		}
		n, err := readAll(rd, &buf)
		if err != nil {
			return err
		}
		if err := checkPayload(buf[:n], w.size); err != nil {
			return err
		}
		if m.message() {
			if m.clientCloses {
				if err := g.closeFrame(); err != nil {
					return err
				}
			}
			continue
		}
		if w.echo && !m.done() {
			if err := g.send(); err != nil {
				return err
			}
		}
	}
}

// sendLoop writes messages until the run is over, then closes and reads
// until the server's close reply.
func (g *gobwasConn) sendLoop(rd *wsutil.Reader, ctrl wsutil.FrameHandlerFunc) error {
	for !g.m.done() {
		if err := g.send(); err != nil {
			return err
		}
		g.m.message()
	}
	if err := g.closeFrame(); err != nil {
		return err
	}
	for {
		hdr, err := rd.NextFrame()
		if err != nil {
			return err
		}
		if hdr.OpCode.IsControl() {
			if err := ctrl(hdr, rd); err != nil {
				return gobwasClosed(err)
			}
			continue
		}
		if err := rd.Discard(); err != nil {
			return err
		}
	}
}

// gobwasClosed is nil for a normal close, else err.
func gobwasClosed(err error) error {
	var ce wsutil.ClosedError
	if errors.As(err, &ce) && ce.Code == ws.StatusNormalClosure {
		return nil
	}
	return err
}
