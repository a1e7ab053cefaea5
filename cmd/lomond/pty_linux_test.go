//go:build linux

package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/coder/websocket"
)

// openPTY opens a pseudo-terminal pair with the syscall package only:
// /dev/ptmx, unlock (TIOCSPTLCK), and the number of its slave (TIOCGPTN).
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminal here: %v", err)
	}
	var n uint32
	var ioctlErr error
	raw, err := m.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	err = raw.Control(func(fd uintptr) {
		var unlock int32
		if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, fd, syscall.TIOCSPTLCK, uintptr(unsafe.Pointer(&unlock))); e != 0 {
			ioctlErr = fmt.Errorf("unlockpt: %v", e)
			return
		}
		if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, fd, syscall.TIOCGPTN, uintptr(unsafe.Pointer(&n))); e != 0 {
			ioctlErr = fmt.Errorf("ptsname: %v", e)
		}
	})
	if err == nil {
		err = ioctlErr
	}
	if err != nil {
		m.Close()
		t.Skipf("no usable pseudo-terminal here: %v", err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		m.Close()
		t.Skipf("cannot open the pseudo-terminal's slave: %v", err)
	}
	return m, s
}

// ptyProc is the command running on a pseudo-terminal, as in a terminal
// emulator: stdin, stdout and stderr are the terminal, which is the
// controlling terminal of a new session (so Ctrl-C sends SIGINT).
type ptyProc struct {
	master *os.File
	out    *watched
	done   chan struct{}
	err    error
}

func startOnPTY(t *testing.T, env []string, args ...string) *ptyProc {
	t.Helper()
	master, slave := openPTY(t)
	cmd := exec.Command(binary, args...)
	cmd.Env = childEnv(append([]string{"TERM=xterm"}, env...)...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := cmd.Start(); err != nil {
		master.Close()
		slave.Close()
		t.Fatal(err)
	}
	slave.Close() // the child has it; the master sees EOF (EIO) once the child exits
	p := &ptyProc{master: master, out: newWatched(), done: make(chan struct{})}
	copied := make(chan struct{})
	go func() { defer close(copied); p.out.copyFrom(master) }()
	go func() { p.err = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = cmd.Process.Kill()
			<-p.done
		}
		master.Close()
		<-copied
	})
	return p
}

// typeIn writes to the terminal as a user's keystrokes.
func (p *ptyProc) typeIn(t *testing.T, s string) {
	t.Helper()
	if _, err := p.master.WriteString(s); err != nil {
		t.Fatal(err)
	}
}

func (p *ptyProc) wait(t *testing.T) int {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		t.Fatalf("lomond did not exit; terminal:\n%q", p.out)
	}
	if ee, ok := p.err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	if p.err != nil {
		t.Fatal(p.err)
	}
	return 0
}

// upperServer answers each message in capitals, after a greeting that
// holds a tab and an escape sequence.
func upperServer(t *testing.T) (string, <-chan closeStatus) {
	closes := make(chan closeStatus, 1)
	url := wsServer(t, nil, func(c *websocket.Conn, _ *http.Request, _ <-chan struct{}) {
		ctx := context.Background()
		if c.Write(ctx, websocket.MessageText, []byte("hi\tthere\x1b[2J")) != nil {
			return
		}
		for {
			_, data, err := c.Read(ctx)
			if err != nil {
				var ce websocket.CloseError
				if errors.As(err, &ce) {
					closes <- closeStatus{ce.Code, ce.Reason}
				}
				return
			}
			if c.Write(ctx, websocket.MessageText, []byte(strings.ToUpper(string(data)))) != nil {
				return
			}
		}
	})
	return url, closes
}

// The interactive mode on a real terminal: events in colour, a typed line
// sent and its reply printed, the server's escape sequence shown rather
// than obeyed, and Ctrl-D (end of input) closing with 1000 and exit 0.
func TestInteractiveTerminal(t *testing.T) {
	url, closes := upperServer(t)
	p := startOnPTY(t, nil, url)
	p.out.waitFor(t, colGreen+"ready"+colReset, 10*time.Second)
	p.out.waitFor(t, `hi	there\x1b[2J`, 10*time.Second)
	p.typeIn(t, "hello\n")
	p.out.waitFor(t, "HELLO", 10*time.Second)
	p.typeIn(t, "\x04") // Ctrl-D at the start of a line: end of input
	if code := p.wait(t); code != exitOK {
		t.Fatalf("exit %d; terminal:\n%q", code, p.out)
	}
	expectClose(t, closes, websocket.StatusNormalClosure, "end of input")
	if strings.Contains(p.out.String(), "\x1b[2J") {
		t.Fatalf("the server's escape sequence reached the terminal")
	}
}

// NO_COLOR turns colour off on a terminal; Ctrl-C typed on the terminal
// closes with 1001 and exits 130.
func TestTerminalNoColorCtrlC(t *testing.T) {
	url, closes := upperServer(t)
	p := startOnPTY(t, []string{"NO_COLOR=1"}, url)
	p.out.waitFor(t, "ready", 10*time.Second)
	p.typeIn(t, "\x03") // Ctrl-C: the terminal sends SIGINT
	if code := p.wait(t); code != 130 {
		t.Fatalf("exit %d; terminal:\n%q", code, p.out)
	}
	expectClose(t, closes, websocket.StatusGoingAway, "")
	out := p.out.String()
	if strings.Contains(strings.ReplaceAll(out, `\x1b`, ""), "\x1b") {
		t.Fatalf("colour with NO_COLOR set:\n%q", out)
	}
	if !strings.Contains(out, "closed 1001") {
		t.Fatalf("terminal:\n%q", out)
	}
}

// isTerminal tells a terminal from a pipe and a regular file.
func TestIsTerminal(t *testing.T) {
	master, slave := openPTY(t)
	defer master.Close()
	defer slave.Close()
	if !isTerminal(slave) {
		t.Error("a pseudo-terminal is not a terminal")
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	f, err := os.CreateTemp(t.TempDir(), "plain")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, notTTY := range []*os.File{r, w, f} {
		if isTerminal(notTTY) {
			t.Errorf("%s is taken for a terminal", notTTY.Name())
		}
	}
}
