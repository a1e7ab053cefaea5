package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/pprof"
	"sync"
	"time"
)

// spec is one measurement: one client, one workload, in its own process
// (the worker), so that no run inherits another's heap, goroutines or GC
// state, and the worker's CPU time and allocations are the client's alone.
type spec struct {
	Client     string        `json:"client"`
	Mode       string        `json:"mode"` // "push", "echo", "send", "idle" or "storm"
	Size       int           `json:"size,omitempty"`
	Messages   int64         `json:"messages,omitempty"` // count mode
	Warmup     time.Duration `json:"warmup,omitempty"`
	Duration   time.Duration `json:"duration,omitempty"`
	Conns      int           `json:"conns,omitempty"` // idle
	Addr       string        `json:"addr"`
	CPUProfile string        `json:"cpuprofile,omitempty"`
}

// result is what a worker reports: stream figures for push and echo, idle
// figures for idle, and Err if the run failed.
type result struct {
	Msgs    int64         `json:"msgs,omitempty"`
	Wall    time.Duration `json:"wall,omitempty"`
	CPU     time.Duration `json:"cpu,omitempty"`
	Mallocs uint64        `json:"mallocs,omitempty"`
	Bytes   uint64        `json:"bytes,omitempty"`

	MemPerConn        float64 `json:"mem_per_conn,omitempty"`
	GoroutinesPerConn float64 `json:"goroutines_per_conn,omitempty"`
	AllocsPerDial     float64 `json:"allocs_per_dial,omitempty"`
	BytesPerDial      float64 `json:"bytes_per_dial,omitempty"`
	StackPerConn      float64 `json:"stack_per_conn,omitempty"`

	// The reconnect storm.
	AllReady       time.Duration `json:"all_ready,omitempty"`       // from the drop until every client was Ready again
	ReadyP50       time.Duration `json:"ready_p50,omitempty"`       // median client's
	MaxBackOff     time.Duration `json:"max_backoff,omitempty"`     // the clients' longest wait between attempts
	GoroutinesHeld int           `json:"goroutines_held,omitempty"` // before the drop
	GoroutinesBack int           `json:"goroutines_back,omitempty"` // once every client was Ready again

	Procs int    `json:"procs"`
	CPUs  string `json:"cpus,omitempty"`
	Err   string `json:"err,omitempty"`
}

// msgsPerSec, cpuPerMsg, allocsPerMsg and bytesPerMsg are the stream
// figures per message (per round trip for echo).
func (r result) msgsPerSec() float64 { return float64(r.Msgs) / r.Wall.Seconds() }
func (r result) cpuPerMsg() float64  { return float64(r.CPU.Nanoseconds()) / float64(r.Msgs) }
func (r result) allocsPerMsg() float64 {
	return float64(r.Mallocs) / float64(r.Msgs)
}
func (r result) bytesPerMsg() float64 { return float64(r.Bytes) / float64(r.Msgs) }

// msgsPerCPUSec is messages per second of the client's CPU time: what the
// client would reach with a core of its own, steadier than msgsPerSec on a
// busy machine.
func (r result) msgsPerCPUSec() float64 { return float64(r.Msgs) / r.CPU.Seconds() }

// busy is the client's CPU time over the wall time: near 1 when the client
// is the bottleneck and has its core to itself; lower when it waits (for the
// network or the server in round trips) or other work takes its core.
func (r result) busy() float64 { return r.CPU.Seconds() / r.Wall.Seconds() }

// runWorker is the worker process's main: a spec on stdin, a result on
// stdout.
func runWorker(stdin io.Reader, stdout io.Writer) int {
	var s spec
	if err := json.NewDecoder(stdin).Decode(&s); err != nil {
		fmt.Fprintln(os.Stderr, "bench worker:", err)
		return 2
	}
	res := measure(context.Background(), s)
	if err := json.NewEncoder(stdout).Encode(res); err != nil {
		return 2
	}
	return 0
}

// measure runs s in this process.
func measure(ctx context.Context, s spec) (res result) {
	res.Procs = runtime.GOMAXPROCS(0)
	res.CPUs = affinity()
	c := clientNamed(s.Client)
	if c == nil {
		res.Err = fmt.Sprintf("unknown client %q", s.Client)
		return res
	}
	if s.CPUProfile != "" {
		f, err := os.Create(s.CPUProfile)
		if err != nil {
			res.Err = err.Error()
			return res
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			res.Err = err.Error()
			return res
		}
		defer pprof.StopCPUProfile()
	}
	var err error
	switch s.Mode {
	case "push", "echo", "send":
		err = measureStream(ctx, c, s, &res)
	case "idle":
		err = measureIdle(ctx, c, s, &res)
	case "storm":
		err = measureStorm(ctx, c, s, &res)
	default:
		err = fmt.Errorf("unknown mode %q", s.Mode)
	}
	if err != nil {
		res.Err = err.Error()
	}
	return res
}

// timeout bounds one run (a client that hangs fails its run, not the whole
// benchmark): 30 s beyond its planned length, counting 100 µs per message
// in count mode and 1 ms per idle connection.
func (s spec) timeout() time.Duration {
	return 30*time.Second + 4*(s.Warmup+s.Duration) +
		time.Duration(s.Messages)*100*time.Microsecond + time.Duration(s.Conns)*time.Millisecond
}

func measureStream(ctx context.Context, c *client, s spec, res *result) error {
	w := workload{echo: s.Mode == "echo", send: s.Mode == "send", size: s.Size}
	if s.Mode == "push" {
		w.count = s.Messages
	}
	m := newMeter(s.Messages, s.Warmup, s.Duration)
	m.clientCloses = w.echo || w.send || s.Messages == 0
	ctx, cancel := context.WithTimeout(ctx, s.timeout())
	defer cancel()
	err := c.stream(ctx, s.Addr, w, m)
	m.stop()
	if ctx.Err() != nil {
		return fmt.Errorf("%s: run timed out after %d messages", c.name, m.total)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", c.name, err)
	}
	if !m.done() {
		return fmt.Errorf("%s: connection ended after %d messages, before the run was over", c.name, m.total)
	}
	if s.Messages > 0 && m.total != s.Messages {
		return fmt.Errorf("%s: received %d messages, want %d", c.name, m.total, s.Messages)
	}
	res.Msgs = m.count
	res.Wall = m.end.wall.Sub(m.start.wall)
	res.CPU = m.end.cpu - m.start.cpu
	res.Mallocs = m.end.mallocs - m.start.mallocs
	res.Bytes = m.end.bytes - m.start.bytes
	if res.Msgs == 0 || res.Wall <= 0 {
		return errors.New(c.name + ": no message in the timed region")
	}
	return nil
}

// dialParallelism bounds the dials in flight when opening idle connections.
const dialParallelism = 8

// measureIdle opens s.Conns idle connections and reports the heap in use
// plus goroutine stacks (after GC) and the goroutines they added, per
// connection, and the allocations per dial.
func measureIdle(ctx context.Context, c *client, s spec, res *result) error {
	if !c.idle {
		return fmt.Errorf("%s: no idle measurement", c.name)
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout())
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, s.Conns)
	slots := make(chan struct{}, dialParallelism)
	before, stack0 := memInUse()
	var ms0 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	goroutines := runtime.NumGoroutine()

	for range s.Conns {
		slots <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			var once sync.Once
			c.hold(ctx, s.Addr, func(err error) {
				once.Do(func() {
					errs <- err
					<-slots
				})
			})
		}()
	}
	var failed error
	for range s.Conns {
		if err := <-errs; err != nil && failed == nil {
			failed = err
		}
	}
	var ms1 runtime.MemStats
	runtime.ReadMemStats(&ms1)
	after, stack1 := memInUse()
	g := runtime.NumGoroutine() - goroutines
	cancel()
	wg.Wait()
	if failed != nil {
		return fmt.Errorf("%s: %w", c.name, failed)
	}
	n := float64(s.Conns)
	res.MemPerConn = float64(int64(after)-int64(before)) / n
	res.GoroutinesPerConn = float64(g) / n
	res.StackPerConn = float64(int64(stack1)-int64(stack0)) / n
	res.AllocsPerDial = float64(ms1.Mallocs-ms0.Mallocs) / n
	res.BytesPerDial = float64(ms1.TotalAlloc-ms0.TotalAlloc) / n
	return nil
}

// memInUse is the heap in use plus goroutine stacks, after GC, and the
// stacks alone.
func memInUse() (total, stacks uint64) {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse + ms.StackInuse, ms.StackInuse
}
