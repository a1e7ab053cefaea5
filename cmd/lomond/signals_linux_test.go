//go:build linux

package main

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/coder/websocket"
)

// pipeFull reports whether the pipe whose read end is r holds as many bytes
// as it can (FIONREAD against F_GETPIPE_SZ): its writer is then blocked.
func pipeFull(t *testing.T, r *os.File) bool {
	t.Helper()
	rc, err := r.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var queued int32
	var size uintptr
	var errno syscall.Errno
	err = rc.Control(func(fd uintptr) {
		if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, fd, syscall.TIOCINQ, uintptr(unsafe.Pointer(&queued))); e != 0 {
			errno = e
			return
		}
		size, _, errno = syscall.Syscall(syscall.SYS_FCNTL, fd, syscall.F_GETPIPE_SZ, 0)
	})
	if err == nil && errno != 0 {
		err = errno
	}
	if err != nil {
		t.Fatalf("pipe state: %v", err)
	}
	return uintptr(queued) >= size
}

// A reader that stops reading stdout blocks the printing of messages, but
// not Ctrl-C: the first still starts the close (its line goes to stderr),
// the second exits at once.
func TestCtrlCWhileStdoutBlocked(t *testing.T) {
	url := wsServer(t, nil, func(c *websocket.Conn, _ *http.Request, done <-chan struct{}) {
		// One 1 MiB message: more than the stdout pipe holds.
		if c.Write(context.Background(), websocket.MessageText, bytes.Repeat([]byte("x"), 1<<20)) == nil {
			<-done
		}
	})
	outR, outW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer outR.Close()
	cmd := exec.Command(binary, "--no-stdin", url)
	cmd.Env = childEnv()
	cmd.Stdout = outW // never read
	stderrR, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	outW.Close()
	stderr := newWatched()
	copied := make(chan struct{})
	go func() { defer close(copied); stderr.copyFrom(stderrR) }()
	waited := false
	t.Cleanup(func() {
		if !waited {
			_ = cmd.Process.Kill()
			<-copied
			_ = cmd.Wait()
		}
	})

	// Wait until the handler is stuck writing the message to stdout. The
	// pipe's state is what is waited for; the ticker only paces the checks.
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	deadline := time.Now().Add(20 * time.Second)
	for !pipeFull(t, outR) {
		if time.Now().After(deadline) {
			t.Fatalf("stdout never filled; stderr:\n%s", stderr)
		}
		<-tick.C
	}

	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	stderr.waitFor(t, "interrupted: closing", 10*time.Second)
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	select {
	case <-copied: // stderr ends when the process does
	case <-time.After(10 * time.Second):
		t.Fatalf("lomond did not exit after the second Ctrl-C; stderr:\n%s", stderr)
	}
	waited = true
	var ee *exec.ExitError
	if err := cmd.Wait(); !errors.As(err, &ee) || ee.ExitCode() != 130 {
		t.Fatalf("exit %v, want 130; stderr:\n%s", err, stderr)
	}
}
