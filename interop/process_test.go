package interop

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// startTimeout bounds how long a server may take to start listening.
const startTimeout = 20 * time.Second

// inCI reports whether the tests run in CI, where every peer must be
// installed.
func inCI() bool { return os.Getenv("CI") == "true" }

// missing ends the test for a peer that is not installed: a failure in CI
// (which must have installed it), a skip elsewhere.
func missing(t *testing.T, what, install string) {
	t.Helper()
	if inCI() {
		t.Fatalf("%s is not installed, and CI=true requires it; install it with: %s", what, install)
	}
	t.Skipf("%s is not installed; install it with: %s", what, install)
}

// lookExe finds an executable on PATH or in the sbin directories, which a
// non-root PATH often lacks (nginx and squid live in /usr/sbin).
func lookExe(t *testing.T, name, install string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, dir := range []string{"/usr/sbin", "/usr/bin", "/sbin", "/usr/local/sbin", "/usr/local/bin"} {
		p := filepath.Join(dir, name)
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p
		}
	}
	missing(t, name, install)
	return ""
}

var pyModules sync.Map // module name -> error (nil when importable)

// systemPython returns /usr/bin/python3 after checking that it can import
// module. Debian's python3-* packages are only visible to that interpreter,
// not to another python3 that may come first on PATH.
func systemPython(t *testing.T, module, pkg string) string {
	t.Helper()
	const py = "/usr/bin/python3"
	install := "apt-get install -y " + pkg
	if _, err := os.Stat(py); err != nil {
		missing(t, py, install)
	}
	v, ok := pyModules.Load(module)
	if !ok {
		out, err := exec.Command(py, "-c", "import "+module).CombinedOutput()
		if err != nil {
			err = fmt.Errorf("%v: %s", err, bytes.TrimSpace(out))
		}
		v, _ = pyModules.LoadOrStore(module, err)
	}
	if err, _ := v.(error); err != nil {
		missing(t, "Python module "+module+" ("+err.Error()+")", install)
	}
	return py
}

// process is an external server started by a test, in its own process
// group so that stopping it also stops any children it forked.
type process struct {
	name   string
	cmd    *exec.Cmd
	out    *procLog
	exited chan struct{}
	err    error // Wait's result, valid once exited is closed
	once   sync.Once
}

// startProcess starts argv in dir with its output captured, and registers
// its stop with t.Cleanup.
func startProcess(t *testing.T, name, dir string, argv ...string) *process {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out := newProcLog()
	cmd.Stdout, cmd.Stderr = out, out
	cmd.WaitDelay = 5 * time.Second // bound the output copy if a child keeps the pipe
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	p := &process{name: name, cmd: cmd, out: out, exited: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() { p.stop(t) })
	return p
}

// stop ends the process group while its leader runs: SIGTERM, then SIGKILL
// if the leader is still there after 10 s. (Once the leader is reaped its
// group ID may be reused, so nothing is signalled after that.) It is
// idempotent, and logs the output when the test failed.
func (p *process) stop(t *testing.T) {
	p.once.Do(func() {
		pgid := p.cmd.Process.Pid
		select {
		case <-p.exited:
		default:
			_ = syscall.Kill(-pgid, syscall.SIGTERM)
			select {
			case <-p.exited:
			case <-time.After(10 * time.Second):
				t.Logf("%s (pid %d) ignored SIGTERM for 10 s; killing its group", p.name, pgid)
				_ = syscall.Kill(-pgid, syscall.SIGKILL)
				<-p.exited
			}
		}
		if t.Failed() {
			t.Logf("%s output:\n%s", p.name, p.out.String())
		}
	})
}

// running reports whether the process has not exited.
func (p *process) running() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// waitLine waits for an output line starting with prefix and returns the
// rest of it.
func (p *process) waitLine(t *testing.T, prefix string) string {
	t.Helper()
	deadline := time.After(startTimeout)
	for {
		line, changed := p.out.find(prefix)
		if line != "" {
			return strings.TrimSpace(strings.TrimPrefix(line, prefix))
		}
		select {
		case <-changed:
		case <-p.exited:
			if line, _ := p.out.find(prefix); line != "" {
				return strings.TrimSpace(strings.TrimPrefix(line, prefix))
			}
			t.Fatalf("%s exited before printing %q (%v); output:\n%s", p.name, prefix, p.err, p.out.String())
		case <-deadline:
			t.Fatalf("%s did not print %q within %v; output:\n%s", p.name, prefix, startTimeout, p.out.String())
		}
	}
}

// listeningPort waits for the "LISTENING <port>" line of an echo peer.
func (p *process) listeningPort(t *testing.T) int {
	t.Helper()
	s := p.waitLine(t, "LISTENING ")
	port, err := strconv.Atoi(s)
	if err != nil || port <= 0 {
		t.Fatalf("%s printed a bad port %q", p.name, s)
	}
	return port
}

// awaitListening waits until addr accepts TCP connections, for servers
// that print nothing when ready. It returns an error, with the process's
// output, if the process exits first or the wait times out.
func (p *process) awaitListening(addr string) error {
	deadline := time.Now().Add(startTimeout)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			_ = c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s is not listening on %s after %v (%v); output:\n%s", p.name, addr, startTimeout, err, p.out.String())
		}
		select {
		case <-tick.C:
		case <-p.exited:
			return fmt.Errorf("%s exited before listening on %s (%v); output:\n%s", p.name, addr, p.err, p.out.String())
		}
	}
}

// startOnFreePort starts a server whose port is written in its
// configuration: start gets a free port and returns the process, which is
// then awaited on 127.0.0.1:port. If another program took the port in the
// meantime (the server exits saying so), it tries again with another port.
func startOnFreePort(t *testing.T, start func(port int) *process) (*process, int) {
	t.Helper()
	for attempt := 1; ; attempt++ {
		port := freePort(t)
		p := start(port)
		err := p.awaitListening(net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err == nil {
			return p, port
		}
		if attempt < 3 && !p.running() && p.out.contains("in use") {
			t.Logf("%s: port %d was taken; trying another", p.name, port)
			continue
		}
		t.Fatal(err)
	}
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago, for
// servers whose port must be written in a configuration file.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// procLog collects a process's output and signals each new write.
type procLog struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	changed chan struct{}
}

func newProcLog() *procLog { return &procLog{changed: make(chan struct{})} }

func (l *procLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf.Write(p)
	close(l.changed)
	l.changed = make(chan struct{})
	return len(p), nil
}

func (l *procLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// find returns the first complete line starting with prefix (or ""), and a
// channel closed at the next write.
func (l *procLog) find(prefix string) (string, <-chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, line := range strings.SplitAfter(l.buf.String(), "\n") {
		if strings.HasSuffix(line, "\n") && strings.HasPrefix(line, prefix) {
			return strings.TrimRight(line, "\r\n"), l.changed
		}
	}
	return "", l.changed
}

// contains reports whether the output so far contains s.
func (l *procLog) contains(s string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Contains(l.buf.String(), s)
}
