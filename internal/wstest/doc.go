// Package wstest is a scriptable, raw-bytes WebSocket (RFC 6455) test server
// kit. It lets tests play exact or deliberately hostile servers and HTTP
// CONNECT proxies on 127.0.0.1, without depending on any WebSocket library.
//
// A [Server] runs a script (a func(*Conn)) for every accepted connection. The
// script decides every byte that goes on the wire: it may perform a correct
// handshake with [Conn.Handshake], send a malformed one with [Conn.WriteRaw],
// write arbitrary frames with [Conn.WriteFrame], and inspect what the client
// sends with [Conn.ReadFrame], [Conn.ReadMessage] and [Conn.ExpectClose].
// [Echo] is a ready-made, well-behaved script.
//
// Everything is torn down by t.Cleanup: Close closes listeners and every
// connection (so blocked reads fail) and waits for all goroutines, so tests
// using the kit stay goleak-clean. Scripts should report failures with
// t.Errorf (not t.Fatal, which must only be called from the test goroutine)
// or through channels read by the test.
package wstest
