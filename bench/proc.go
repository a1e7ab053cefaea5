package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/lomond-go/lomond/bench/fixture"
)

// The benchmark's processes are this same executable, started again with
// roleEnv naming their role: the fixture server, or a worker that runs one
// measurement. (`go run .` and `go test` both work: the child is the binary
// that is running.)
const roleEnv = "LOMOND_BENCH_ROLE"

const (
	roleFixture = "fixture"
	roleWorker  = "worker"
)

// runRole runs this process as a child if roleEnv says so, and reports
// whether it did and the exit code.
func runRole() (code int, ok bool) {
	switch os.Getenv(roleEnv) {
	case roleFixture:
		return runFixture(os.Stdin, os.Stdout), true
	case roleWorker:
		return runWorker(os.Stdin, os.Stdout), true
	}
	return 0, false
}

// runFixture is the fixture process's main: it prints the address it
// listens on, serves until its standard input closes, then stops.
func runFixture(stdin io.Reader, stdout io.Writer) int {
	s, err := fixture.Listen("127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench fixture:", err)
		return 1
	}
	fmt.Fprintf(stdout, "listening %s %s\n", s.Addr(), affinity())
	_, _ = io.Copy(io.Discard, stdin)
	_ = s.Close()
	return 0
}

func selfCommand(role string) (*exec.Cmd, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), roleEnv+"="+role)
	if _, ok := os.LookupEnv("GORACE"); !ok {
		// A race-enabled binary (go test -race) otherwise sleeps 1 s on
		// exit; a run starts dozens of processes.
		cmd.Env = append(cmd.Env, "GORACE=atexit_sleep_ms=0")
	}
	cmd.Stderr = os.Stderr
	return cmd, nil
}

// fixtureProc is a running fixture server process.
type fixtureProc struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	addr  string
	cpus  string
}

// startFixture starts the fixture server process on cpu (-1: unpinned) and
// waits until it listens.
func startFixture(cpu int) (*fixtureProc, error) {
	cmd, err := selfCommand(roleFixture)
	if err != nil {
		return nil, err
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := startPinned(cmd, cpu); err != nil {
		return nil, fmt.Errorf("start fixture: %w", err)
	}
	p := &fixtureProc{cmd: cmd, stdin: stdin}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	fields := strings.Fields(line)
	if err != nil || len(fields) < 2 || fields[0] != "listening" {
		p.stop()
		return nil, fmt.Errorf("fixture did not start: %q %v", line, err)
	}
	p.addr = fields[1]
	if len(fields) > 2 {
		p.cpus = fields[2]
	}
	return p, nil
}

// stop closes the fixture's standard input (its signal to stop) and waits;
// if it has not exited within 10 s it is killed by its PID.
func (p *fixtureProc) stop() {
	_ = p.stdin.Close()
	waitOrKill(p.cmd, 10*time.Second)
}

// waitOrKill waits for cmd to exit, killing it (by PID) after timeout.
func waitOrKill(cmd *exec.Cmd, timeout time.Duration) error {
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case err := <-done:
		return err
	case <-t.C:
		_ = cmd.Process.Kill()
		<-done
		return errors.New("killed after " + timeout.String())
	}
}

// runWorkerProcess runs s in a worker process on cpu (-1: unpinned).
func runWorkerProcess(s spec, cpu int) (result, error) {
	cmd, err := selfCommand(roleWorker)
	if err != nil {
		return result{}, err
	}
	in, err := json.Marshal(s)
	if err != nil {
		return result{}, err
	}
	var out bytes.Buffer
	cmd.Stdin = bytes.NewReader(in)
	cmd.Stdout = &out
	if err := startPinned(cmd, cpu); err != nil {
		return result{}, fmt.Errorf("start worker: %w", err)
	}
	if err := waitOrKill(cmd, s.timeout()+30*time.Second); err != nil {
		return result{}, fmt.Errorf("worker: %w", err)
	}
	var r result
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		return result{}, fmt.Errorf("worker output %q: %w", out.String(), err)
	}
	if r.Err != "" {
		return r, errors.New(r.Err)
	}
	return r, nil
}
