package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

// key names one cell of the report: a mode, a size (0 for idle) and a
// client.
type key struct {
	mode   string
	size   int
	client string
}

// report holds every run's result, by round.
type report struct {
	cfg        config
	runs       map[key][]result // one per round, in round order; failed runs have Err
	failed     []string
	fixtureCPU string
	clientCPU  string
	clientProc int
	loadBefore string
	loadAfter  string
	elapsed    time.Duration
}

// runRounds starts the fixture server, runs every round and stops the
// server.
func runRounds(c config, progress io.Writer) (*report, error) {
	rep := &report{cfg: c, runs: map[key][]result{}, loadBefore: loadAverage()}
	began := time.Now()
	fcpu, wcpu := -1, -1
	if c.pin {
		wcpu, fcpu, _ = pinCPUs()
	}
	fx, err := startFixture(fcpu)
	if err != nil {
		return nil, err
	}
	defer fx.stop()
	rep.fixtureCPU = fx.cpus
	if c.cpuprofile != "" {
		if err := os.MkdirAll(c.cpuprofile, 0o755); err != nil {
			return nil, err
		}
	}
	for r := 0; r < c.rounds; r++ {
		roundStart := time.Now()
		for _, mode := range c.modes {
			sizes := c.sizes
			switch mode {
			case "idle":
				sizes = c.conns // the size of an idle run is its connection count
			case "storm":
				sizes = []int{c.storm}
			}
			for _, size := range sizes {
				for _, name := range rotate(c.clients, r) {
					if mode == "idle" && !clientNamed(name).idle || mode == "storm" && name != "lomond" {
						continue
					}
					k := key{mode, size, name}
					s := spec{Client: name, Mode: mode, Size: size, Addr: fx.addr}
					switch mode {
					case "idle", "storm":
						s.Size, s.Conns = 0, size
					default:
						s.Messages = c.messages
						if c.messages == 0 {
							s.Warmup, s.Duration = c.duration/4, c.duration
						}
					}
					if c.cpuprofile != "" {
						s.CPUProfile = filepath.Join(c.cpuprofile, fmt.Sprintf("%s-%s-%d-r%d.pprof", name, mode, size, r+1))
					}
					res, err := runWorkerProcess(s, wcpu)
					if err != nil {
						res.Err = err.Error()
						rep.failed = append(rep.failed, fmt.Sprintf("round %d, %s", r+1, describe(k, res)))
					} else if rep.clientCPU == "" {
						rep.clientCPU, rep.clientProc = res.CPUs, res.Procs
					}
					rep.runs[k] = append(rep.runs[k], res)
					if c.verbose {
						fmt.Fprintf(progress, "round %d: %s\n", r+1, describe(k, res))
					}
				}
			}
		}
		fmt.Fprintf(progress, "round %d/%d done in %s\n", r+1, c.rounds, time.Since(roundStart).Round(time.Millisecond))
	}
	rep.loadAfter = loadAverage()
	rep.elapsed = time.Since(began)
	return rep, nil
}

// rotate returns names rotated left by r: round r starts with a different
// client, so no client always runs first (or always after another).
func rotate(names []string, r int) []string {
	if len(names) == 0 {
		return nil
	}
	r %= len(names)
	return append(append([]string(nil), names[r:]...), names[:r]...)
}

func describe(k key, r result) string {
	prefix := k.mode + " " + k.client + ": "
	if k.mode != "idle" && k.mode != "storm" {
		prefix = k.mode + " " + sizeName(k.size) + " " + k.client + ": "
	}
	switch {
	case r.Err != "":
		return prefix + "FAILED: " + r.Err
	case k.mode == "idle":
		return prefix + fmt.Sprintf("%d conns: %.0f B/conn (stack %.0f), %.2f goroutines/conn", k.size, r.MemPerConn, r.StackPerConn, r.GoroutinesPerConn)
	case k.mode == "storm":
		return prefix + fmt.Sprintf("%d clients Ready again %s after the drop (median %s); goroutines %d before, %d after",
			k.size, r.AllReady.Round(time.Millisecond), r.ReadyP50.Round(time.Millisecond), r.GoroutinesHeld, r.GoroutinesBack)
	default:
		return prefix + fmt.Sprintf("%s msgs/s, %.0f CPU ns/msg, %.2f allocs/msg", fmtRate(r.msgsPerSec()), r.cpuPerMsg(), r.allocsPerMsg())
	}
}

// loadAverage is the 1-minute load average, or "" where unknown.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return ""
	}
	return f[0]
}

// machine describes the machine in one line.
func machine() string {
	s := fmt.Sprintf("%s %s/%s, %d CPUs", runtime.Version(), runtime.GOOS, runtime.GOARCH, runtime.NumCPU())
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if name, ok := strings.CutPrefix(line, "model name"); ok {
				s += " (" + strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(name), ":")) + ")"
				break
			}
		}
	}
	return s
}
