// Command bench is the peer benchmark of lomond for Go: the project's client
// against github.com/lxzan/gws, github.com/gorilla/websocket and
// github.com/coder/websocket, each connected to the same fast fixture
// server, in interleaved rounds, with the ratios taken within each round.
//
//	cd bench && go run .
//
// prints a markdown report on standard output (progress on standard error).
// See README.md for what is measured and how.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
)

func main() {
	if code, ok := runRole(); ok {
		os.Exit(code)
	}
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// config is the command line.
type config struct {
	rounds     int
	sizes      []int
	clients    []string
	modes      []string
	duration   time.Duration
	messages   int64
	conns      []int
	storm      int
	pin        bool
	cpuprofile string
	verbose    bool
	args       []string // as given, for the report
}

var allModes = []string{"push", "echo", "send", "idle", "storm"}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: go run . [flags]\n\nThe peer benchmark: lomond against gws, gorilla and coder/websocket; a markdown report on stdout.")
		fs.PrintDefaults()
	}
	var c config
	sizes := fs.String("sizes", "16,1KiB,64KiB,1MiB", "message sizes, comma-separated (bytes, or with a KiB/MiB suffix)")
	only := fs.String("only", "", "clients to run, comma-separated (default all: "+strings.Join(clientNames(), ",")+")")
	modes := fs.String("modes", strings.Join(allModes, ","), "what to measure: push, echo (round trips), send (client to server), idle (idle connections), storm (Persist reconnect storm, lomond only)")
	fs.IntVar(&c.rounds, "rounds", 5, "interleaved rounds")
	fs.DurationVar(&c.duration, "duration", 300*time.Millisecond, "timed length of each push and echo run (after a warm-up of a quarter of it)")
	fs.Int64Var(&c.messages, "messages", 0, "if > 0, messages per push run and round trips per echo run instead of -duration")
	conns := fs.String("conns", "1000,10000", "idle connections per idle run, comma-separated (one idle run per count)")
	fs.IntVar(&c.storm, "storm", 10000, "clients in the reconnect storm")
	_, _, canPin := pinCPUs()
	fs.BoolVar(&c.pin, "pin", canPin, "pin each client process to one CPU and the fixture server to another (Linux, 2+ CPUs)")
	fs.StringVar(&c.cpuprofile, "cpuprofile", "", "write a CPU profile of every client run into this directory")
	fs.BoolVar(&c.verbose, "v", false, "print every run's result on stderr")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	c.args = args
	var err error
	if c.sizes, err = parseSizes(*sizes); err != nil {
		return c, err
	}
	for _, f := range strings.Split(*conns, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return c, fmt.Errorf("-conns: bad count %q", f)
		}
		c.conns = append(c.conns, n)
	}
	c.clients = clientNames()
	if *only != "" {
		c.clients = nil
		for _, name := range strings.Split(*only, ",") {
			if clientNamed(name) == nil {
				return c, fmt.Errorf("unknown client %q (have %s)", name, strings.Join(clientNames(), ", "))
			}
			c.clients = append(c.clients, name)
		}
	}
	c.modes = nil
	for _, m := range strings.Split(*modes, ",") {
		if !contains(allModes, m) {
			return c, fmt.Errorf("unknown mode %q (have %s)", m, strings.Join(allModes, ", "))
		}
		c.modes = append(c.modes, m)
	}
	switch {
	case c.rounds < 1:
		return c, fmt.Errorf("-rounds must be at least 1")
	case c.duration <= 0 && c.messages <= 0:
		return c, fmt.Errorf("-duration must be positive")
	case c.messages < 0:
		return c, fmt.Errorf("-messages must not be negative")
	case c.storm < 1:
		return c, fmt.Errorf("-storm must be at least 1")
	}
	if c.pin && !canPin {
		return c, fmt.Errorf("-pin needs Linux and 2 CPUs or more")
	}
	return c, nil
}

func parseSizes(s string) ([]int, error) {
	var sizes []int
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		mult := 1
		switch {
		case strings.HasSuffix(f, "KiB"):
			f, mult = strings.TrimSuffix(f, "KiB"), 1<<10
		case strings.HasSuffix(f, "MiB"):
			f, mult = strings.TrimSuffix(f, "MiB"), 1<<20
		case strings.HasSuffix(f, "B"):
			f = strings.TrimSuffix(f, "B")
		}
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 || n*mult > 8<<20 {
			return nil, fmt.Errorf("bad size %q: want 1 B to 8 MiB", s)
		}
		sizes = append(sizes, n*mult)
	}
	return sizes, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// run is the command: parse flags, run the rounds, print the report.
func run(args []string, stdout, stderr io.Writer) int {
	c, err := parseFlags(args, stderr)
	if err == flag.ErrHelp {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "bench:", err)
		return 2
	}
	rep, err := runRounds(c, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "bench:", err)
		return 1
	}
	rep.write(stdout)
	if rep.failures() > 0 {
		return 1
	}
	return 0
}
