package lomond

import (
	"errors"
	"fmt"
	"net"
	"os"
	"testing"
	"time"
)

// Tests of conn.go: the reader under the session's buffered reader.

func TestConnReader(t *testing.T) {
	// pipeReader returns a connReader over one end of an in-memory pipe
	// whose other end writes data, then closes.
	pipeReader := func(t *testing.T, data string, limit int64) *connReader {
		client, server := net.Pipe()
		t.Cleanup(func() { client.Close() })
		go func() {
			defer server.Close()
			_, _ = server.Write([]byte(data))
		}()
		return &connReader{conn: client, limit: limit}
	}

	t.Run("ReadRecordsTimeAndCount", func(t *testing.T) {
		r := pipeReader(t, "hello", -1)
		before := time.Now()
		p := make([]byte, 5)
		n, err := r.Read(p)
		if err != nil || string(p[:n]) != "hello" {
			t.Fatalf("Read = %d %v, %q", n, err, p[:n])
		}
		if r.total != 5 || !r.full || r.lastRead.Before(before) {
			t.Errorf("after a full read: total %d, full %v, lastRead %v (before %v)", r.total, r.full, r.lastRead, before)
		}
	})
	t.Run("ShortReadIsNotFull", func(t *testing.T) {
		r := pipeReader(t, "hi", -1)
		n, err := r.Read(make([]byte, 64))
		if err != nil || n != 2 || r.full {
			t.Errorf("Read = %d %v, full %v; want 2 bytes, not full", n, err, r.full)
		}
	})
	t.Run("LimitBoundsTheReadsThenFails", func(t *testing.T) {
		r := pipeReader(t, "0123456789", 4)
		p := make([]byte, 10)
		n, err := r.Read(p)
		if err != nil || n != 4 || string(p[:n]) != "0123" {
			t.Fatalf("Read = %d %v %q, want the 4 bytes the limit leaves", n, err, p[:n])
		}
		if _, err := r.Read(p); !errors.Is(err, errResponseTooLarge) {
			t.Errorf("Read past the limit = %v, want errResponseTooLarge", err)
		}
	})
}

func TestIsTimeout(t *testing.T) {
	if !isTimeout(fmt.Errorf("read: %w", os.ErrDeadlineExceeded)) {
		t.Error("a passed deadline is not a timeout")
	}
	for _, err := range []error{nil, errors.New("other"), net.ErrClosed} {
		if isTimeout(err) {
			t.Errorf("isTimeout(%v) = true", err)
		}
	}
	client, server := net.Pipe()
	defer client.Close()
	defer server.Close()
	_ = client.SetReadDeadline(time.Now().Add(-time.Second))
	if _, err := client.Read(make([]byte, 1)); !isTimeout(err) {
		t.Errorf("a read past its deadline = %v, isTimeout false", err)
	}
}
