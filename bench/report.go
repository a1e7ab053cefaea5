package main

import (
	"fmt"
	"io"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// write prints the report as markdown. Its layout does not depend on the
// figures: the same flags always give the same sections, rows and columns.
func (rep *report) write(w io.Writer) {
	c := rep.cfg
	fmt.Fprintf(w, "## Peer benchmark\n\n")
	fmt.Fprintf(w, "Command: `%s` (in bench/)\n\n", strings.TrimSpace("go run . "+strings.Join(c.args, " ")))
	fmt.Fprintf(w, "- Machine: %s; load average %s before, %s after; %s in all.\n", machine(), orNA(rep.loadBefore), orNA(rep.loadAfter), rep.elapsed.Round(1e9))
	if c.pin {
		fmt.Fprintf(w, "- Processes: the fixture server on CPU %s; every client run in a process of its own on CPU %s (GOMAXPROCS=%d).\n", orNA(rep.fixtureCPU), orNA(rep.clientCPU), rep.clientProc)
	} else {
		fmt.Fprintf(w, "- Processes: the fixture server and every client run in processes of their own, not pinned (client GOMAXPROCS=%d).\n", rep.clientProc)
	}
	runs := fmt.Sprintf("%s timed after a %s warm-up", c.duration, c.duration/4)
	if c.messages > 0 {
		runs = fmt.Sprintf("%d messages (round trips)", c.messages)
	}
	if contains(c.modes, "push") {
		fmt.Fprintf(w, "- %s\n", rep.coreNote())
	}
	fmt.Fprintf(w, "- Runs: %d interleaved rounds, the client order rotated each round; push, echo and send runs %s; binary messages; idle runs of %s connections; a storm of %d clients. Figures are medians across rounds; ratios are taken within each round: median (min..max).\n", c.rounds, runs, joinInts(c.conns), c.storm)

	if contains(c.modes, "push") {
		fmt.Fprintf(w, "\n### Push: the server writes pre-encoded messages as fast as the client takes them\n\n")
		rep.writeStream(w, "push", "msgs/s", "msg")
	}
	if contains(c.modes, "echo") {
		fmt.Fprintf(w, "\n### Round trip: the client sends a message and waits for its echo\n\n")
		rep.writeStream(w, "echo", "round trips/s", "round trip")
	}
	if contains(c.modes, "send") {
		fmt.Fprintf(w, "\n### Send: the client sends messages as fast as it can, the server reads and drops them\n\n")
		rep.writeStream(w, "send", "msgs/s", "msg")
	}
	if contains(c.modes, "push") || contains(c.modes, "echo") || contains(c.modes, "send") {
		rep.writeRatios(w)
	}
	if contains(c.modes, "idle") {
		rep.writeIdle(w)
	}
	if contains(c.modes, "storm") {
		rep.writeStorm(w)
	}
	rep.writeTargets(w)
	fmt.Fprintf(w, "\n### Failures\n\n")
	if len(rep.failed) == 0 {
		fmt.Fprintf(w, "none\n")
	}
	for _, f := range rep.failed {
		fmt.Fprintf(w, "- %s\n", f)
	}
}

// busyThreshold: push runs of the smallest size keep the client busy
// nearly all the time on a quiet machine (the client is the bottleneck);
// well below that, other work took the client's core.
const busyThreshold = 0.8

// coreNote says whether the client had its core to itself: the median
// "client busy" of every push run at the smallest size.
func (rep *report) coreNote() string {
	var v []float64
	for _, name := range rep.cfg.clients {
		for _, r := range rep.runs[key{"push", rep.cfg.sizes[0], name}] {
			if r.Err == "" {
				v = append(v, r.busy())
			}
		}
	}
	m := median(v)
	switch {
	case math.IsNaN(m):
		return "Client core: n/a."
	case m < busyThreshold:
		return fmt.Sprintf("Client core: push runs at %s were busy %s of the time (median): other work shared the client's core, so msgs/s figures are unreliable; trust the per-CPU-second ratios.", sizeName(rep.cfg.sizes[0]), fmtPercent(m))
	default:
		return fmt.Sprintf("Client core: push runs at %s were busy %s of the time (median): the client had its core.", sizeName(rep.cfg.sizes[0]), fmtPercent(m))
	}
}

func (rep *report) failures() int { return len(rep.failed) }

func (rep *report) writeStream(w io.Writer, mode, rate, unit string) {
	fmt.Fprintf(w, "| size | client | %s | MB/s | client CPU ns/%s | client busy | allocs/%s | B/%s |\n", rate, unit, unit, unit)
	fmt.Fprintf(w, "|---|---|---:|---:|---:|---:|---:|---:|\n")
	for _, size := range rep.cfg.sizes {
		for _, name := range rep.cfg.clients {
			k := key{mode, size, name}
			mps := rep.median(k, result.msgsPerSec)
			fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s | %s |\n", sizeName(size), name,
				fmtRate(mps), fmtFloat(mps*float64(size)/1e6, 1),
				fmtFloat(rep.median(k, result.cpuPerMsg), 0),
				fmtPercent(rep.median(k, result.busy)),
				fmtFloat(rep.median(k, result.allocsPerMsg), 2),
				fmtFloat(rep.median(k, result.bytesPerMsg), 0))
		}
	}
}

// lomonds and peers are the selected clients of each kind.
func (rep *report) lomonds() (names []string) {
	for _, n := range rep.cfg.clients {
		if clientNamed(n).lomond {
			names = append(names, n)
		}
	}
	return names
}

func (rep *report) peers() (names []string) {
	for _, n := range rep.cfg.clients {
		if c := clientNamed(n); !c.lomond && !c.floor {
			names = append(names, n)
		}
	}
	return names
}

func (rep *report) writeRatios(w io.Writer) {
	fmt.Fprintf(w, "\n### lomond ÷ peer: msgs/s (round trips/s for echo), within each round\n\n")
	rep.writeRatioTable(w, result.msgsPerSec)
	fmt.Fprintf(w, "\n### lomond ÷ peer: messages per second of client CPU time, within each round\n\n")
	fmt.Fprintf(w, "What each client would reach on a core of its own; steadier than msgs/s when other work shares the machine.\n\n")
	rep.writeRatioTable(w, result.msgsPerCPUSec)
}

// hasFloor reports whether the framing floor runs.
func (rep *report) hasFloor() bool { return contains(rep.cfg.clients, "floor") }

// floors are the selected bars (the framing floor, the owned floor) with
// their column titles.
func (rep *report) floors() (names, titles []string) {
	for _, f := range []struct{ name, title string }{{"floor", "framing floor"}, {"floor-owned", "owned floor"}} {
		if contains(rep.cfg.clients, f.name) {
			names, titles = append(names, f.name), append(titles, f.title)
		}
	}
	return names, titles
}

func (rep *report) writeRatioTable(w io.Writer, metric func(result) float64) {
	peers := rep.peers()
	fmt.Fprintf(w, "| mode | size | client |")
	for _, p := range peers {
		fmt.Fprintf(w, " ÷ %s |", p)
	}
	fmt.Fprintf(w, " ÷ best peer |")
	floors, titles := rep.floors()
	for _, t := range titles {
		fmt.Fprintf(w, " ÷ %s |", t)
	}
	fmt.Fprintf(w, "\n|---|---|---|")
	for range peers {
		fmt.Fprintf(w, "---:|")
	}
	fmt.Fprintf(w, "---:|")
	for range floors {
		fmt.Fprintf(w, "---:|")
	}
	fmt.Fprintf(w, "\n")
	for _, mode := range []string{"push", "echo", "send"} {
		if !contains(rep.cfg.modes, mode) {
			continue
		}
		for _, size := range rep.cfg.sizes {
			for _, l := range rep.lomonds() {
				fmt.Fprintf(w, "| %s | %s | %s |", mode, sizeName(size), l)
				for _, p := range peers {
					fmt.Fprintf(w, " %s |", fmtStats(rep.ratios(mode, size, l, []string{p}, metric)))
				}
				fmt.Fprintf(w, " %s |", fmtStats(rep.ratios(mode, size, l, peers, metric)))
				for _, f := range floors {
					fmt.Fprintf(w, " %s |", fmtStats(rep.ratios(mode, size, l, []string{f}, metric)))
				}
				fmt.Fprintf(w, "\n")
			}
		}
	}
}

// ratios is, for each round where all ran, lomond's metric over the best
// of the peers' metric.
func (rep *report) ratios(mode string, size int, lomond string, peers []string, metric func(result) float64) []float64 {
	var out []float64
	if len(peers) == 0 {
		return nil
	}
	ls := rep.runs[key{mode, size, lomond}]
	for r := range ls {
		if ls[r].Err != "" {
			continue
		}
		best, ok := 0.0, true
		for _, p := range peers {
			ps := rep.runs[key{mode, size, p}]
			if r >= len(ps) || ps[r].Err != "" {
				ok = false
				break
			}
			best = math.Max(best, metric(ps[r]))
		}
		ratio := metric(ls[r]) / best
		if ok && best > 0 && !math.IsNaN(ratio) && !math.IsInf(ratio, 0) {
			out = append(out, ratio)
		}
	}
	return out
}

func (rep *report) writeIdle(w io.Writer) {
	fmt.Fprintf(w, "\n### Idle connections: heap in use + goroutine stacks after GC, client process only\n\n")
	fmt.Fprintf(w, "| connections | client | heap+stack B/conn | of which stack | goroutines/conn | allocs/dial | B/dial |\n")
	fmt.Fprintf(w, "|---:|---|---:|---:|---:|---:|---:|\n")
	for _, n := range rep.cfg.conns {
		for _, name := range rep.cfg.clients {
			if !clientNamed(name).idle {
				continue
			}
			k := key{"idle", n, name}
			fmt.Fprintf(w, "| %d | %s | %s | %s | %s | %s | %s |\n", n, name,
				fmtFloat(rep.median(k, func(r result) float64 { return r.MemPerConn }), 0),
				fmtFloat(rep.median(k, func(r result) float64 { return r.StackPerConn }), 0),
				fmtFloat(rep.median(k, func(r result) float64 { return r.GoroutinesPerConn }), 2),
				fmtFloat(rep.median(k, func(r result) float64 { return r.AllocsPerDial }), 0),
				fmtFloat(rep.median(k, func(r result) float64 { return r.BytesPerDial }), 0))
		}
	}
}

// idleRatios is, for each round, lomond's heap+stack per idle connection
// over peer's, at n connections.
func (rep *report) idleRatios(n int, peer string) []float64 {
	var out []float64
	ls, gs := rep.runs[key{"idle", n, "lomond"}], rep.runs[key{"idle", n, peer}]
	for r := range ls {
		if r < len(gs) && ls[r].Err == "" && gs[r].Err == "" && gs[r].MemPerConn > 0 {
			out = append(out, ls[r].MemPerConn/gs[r].MemPerConn)
		}
	}
	return out
}

// writeStorm reports the reconnect storm, one line per round.
func (rep *report) writeStorm(w io.Writer) {
	n := rep.cfg.storm
	fmt.Fprintf(w, "\n### Reconnect storm: %d lomond clients in Persist, every connection dropped at once\n\n", n)
	fmt.Fprintf(w, "Backoff: lomond's, waits of 0 to %s. Ready again: from the drop until the last (and the median) client was Ready again.\n\n", stormMaxBackOff)
	fmt.Fprintf(w, "| round | all Ready again | median client | goroutines before the drop | after |\n|---:|---:|---:|---:|---:|\n")
	for i, r := range rep.runs[key{"storm", n, "lomond"}] {
		if r.Err != "" {
			fmt.Fprintf(w, "| %d | failed | | | |\n", i+1)
			continue
		}
		fmt.Fprintf(w, "| %d | %s | %s | %d | %d |\n", i+1, r.AllReady.Round(time.Millisecond), r.ReadyP50.Round(time.Millisecond), r.GoroutinesHeld, r.GoroutinesBack)
	}
}

func joinInts(v []int) string {
	var s []string
	for _, n := range v {
		s = append(s, strconv.Itoa(n))
	}
	return strings.Join(s, " and ")
}

// allocTolerance absorbs the few allocations of a run that are not per
// message (timers, the GC, the runtime) when a count is compared with a
// whole number.
const allocTolerance = 0.05

func (rep *report) writeTargets(w io.Writer) {
	fmt.Fprintf(w, "\n### Targets (issue 16)\n\n")
	fmt.Fprintf(w, "Met or not by the median of the msgs/s ratios within rounds; the CPU-time ratio is beside it.\n\n")
	fmt.Fprintf(w, "| target | measured (msgs/s) | per CPU second | met |\n|---|---|---|---|\n")
	atLeast := func(x float64) func(float64) bool { return func(m float64) bool { return m >= x } }
	peers := rep.peers()
	if contains(rep.cfg.modes, "push") {
		for _, t := range []struct{ client, what string }{{"lomond", "lomond (default options)"}, {"lomond-borrowed", "lomond WithBorrowedBinary"}} {
			if !contains(rep.cfg.clients, t.client) {
				continue
			}
			for _, size := range rep.cfg.sizes {
				for _, p := range peers {
					v := rep.ratios("push", size, t.client, []string{p}, result.msgsPerSec)
					c := rep.ratios("push", size, t.client, []string{p}, result.msgsPerCPUSec)
					fmt.Fprintf(w, "| %s ≥ 1.0x %s, push %s | %s | %s | %s |\n", t.what, p, sizeName(size), fmtStats(v), fmtStats(c), met(v, atLeast(1)))
				}
			}
		}
		if contains(rep.cfg.clients, "floor-owned") && contains(rep.cfg.clients, "lomond") {
			// Not the issue's: the bar for owned payloads, beside it.
			for _, size := range rep.cfg.sizes {
				v := rep.ratios("push", size, "lomond", []string{"floor-owned"}, result.msgsPerSec)
				c := rep.ratios("push", size, "lomond", []string{"floor-owned"}, result.msgsPerCPUSec)
				fmt.Fprintf(w, "| (beside the issue's) lomond (default options) ≥ 1.0x the owned floor, push %s | %s | %s | %s |\n", sizeName(size), fmtStats(v), fmtStats(c), met(v, atLeast(1)))
			}
		}
		if rep.hasFloor() && contains(rep.cfg.clients, "lomond-borrowed") && slices.Contains(rep.cfg.sizes, 16) {
			v := rep.ratios("push", 16, "lomond-borrowed", []string{"floor"}, result.msgsPerSec)
			c := rep.ratios("push", 16, "lomond-borrowed", []string{"floor"}, result.msgsPerCPUSec)
			fmt.Fprintf(w, "| lomond WithBorrowedBinary ≥ 0.8x the framing floor, push 16 B | %s | %s | %s |\n", fmtStats(v), fmtStats(c), met(v, atLeast(0.8)))
		}
	}
	if contains(rep.cfg.modes, "idle") {
		n := rep.cfg.conns[len(rep.cfg.conns)-1]
		v := rep.idleRatios(n, "gobwas")
		fmt.Fprintf(w, "| idle heap+stack per connection ≤ gobwas's at %d connections (lomond ÷ gobwas) | %s | | %s |\n", n, fmtStats(v), met(v, func(m float64) bool { return m <= 1 }))
	}
	if contains(rep.cfg.modes, "push") {
		for _, t := range []struct {
			client string
			want   float64
		}{{"lomond", 1}, {"lomond-borrowed", 0}} {
			var medians []string
			ok := "n/a"
			for _, size := range rep.cfg.sizes {
				m := rep.median(key{"push", size, t.client}, result.allocsPerMsg)
				medians = append(medians, sizeName(size)+": "+fmtFloat(m, 2))
				switch {
				case math.IsNaN(m) || ok == "no":
				case m <= t.want+allocTolerance:
					ok = "yes"
				default:
					ok = "no"
				}
			}
			fmt.Fprintf(w, "| %s allocations per pushed message ≤ %.0f | %s | | %s |\n", t.client, t.want, strings.Join(medians, ", "), ok)
		}
	}
	if contains(rep.cfg.modes, "storm") {
		limit := stormMaxBackOff + time.Second
		var worst time.Duration
		ok, grew := "n/a", false
		for _, r := range rep.runs[key{"storm", rep.cfg.storm, "lomond"}] {
			if r.Err != "" {
				ok = "no"
				continue
			}
			worst = max(worst, r.AllReady)
			grew = grew || r.GoroutinesBack > r.GoroutinesHeld
			if ok != "no" {
				ok = "yes"
			}
		}
		if worst > limit || grew {
			ok = "no"
		}
		fmt.Fprintf(w, "| storm: all %d clients Ready again within max backoff + 1 s (%s), no goroutine growth | slowest round %s | | %s |\n", rep.cfg.storm, limit, worst.Round(time.Millisecond), ok)
	}
}

// met judges the median as printed (two decimals), so that a printed 1.00
// is never "no".
func met(v []float64, ok func(float64) bool) string {
	if len(v) == 0 {
		return "n/a"
	}
	if ok(math.Round(median(v)*100) / 100) {
		return "yes"
	}
	return "no"
}

// median of metric over k's successful runs; NaN if none.
func (rep *report) median(k key, metric func(result) float64) float64 {
	var v []float64
	for _, r := range rep.runs[k] {
		if r.Err == "" {
			v = append(v, metric(r))
		}
	}
	return median(v)
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// fmtStats is "median (min..max)", or "n/a".
func fmtStats(v []float64) string {
	if len(v) == 0 {
		return "n/a"
	}
	lo, hi := v[0], v[0]
	for _, x := range v {
		lo, hi = math.Min(lo, x), math.Max(hi, x)
	}
	return fmt.Sprintf("%.2f (%.2f..%.2f)", median(v), lo, hi)
}

func fmtFloat(v float64, prec int) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "n/a"
	}
	return strconv.FormatFloat(v, 'f', prec, 64)
}

func fmtPercent(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "n/a"
	}
	return strconv.FormatFloat(v*100, 'f', 0, 64) + "%"
}

// fmtRate prints a rate with three significant digits: 1.23M, 812k, 950.
func fmtRate(v float64) string {
	switch {
	case math.IsNaN(v) || math.IsInf(v, 0):
		return "n/a"
	case v >= 1e6:
		return strconv.FormatFloat(v/1e6, 'f', 2, 64) + "M"
	case v >= 1e5:
		return strconv.FormatFloat(v/1e3, 'f', 0, 64) + "k"
	case v >= 1e4:
		return strconv.FormatFloat(v/1e3, 'f', 1, 64) + "k"
	case v >= 1e3:
		return strconv.FormatFloat(v/1e3, 'f', 2, 64) + "k"
	default:
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
}

// sizeName is 16 B, 1 KiB, 64 KiB.
func sizeName(n int) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return strconv.Itoa(n>>20) + " MiB"
	case n >= 1<<10 && n%(1<<10) == 0:
		return strconv.Itoa(n>>10) + " KiB"
	default:
		return strconv.Itoa(n) + " B"
	}
}

func orNA(s string) string {
	if s == "" {
		return "n/a"
	}
	return s
}
