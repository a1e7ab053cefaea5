package lomondtest

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/lomond-go/lomond/events"
)

// eventNames are the names a pattern may use: lomond's event names.
var eventNames = map[string]bool{
	events.NameConnecting: true, events.NameConnectFail: true, events.NameConnected: true,
	events.NameRejected: true, events.NameReady: true, events.NamePoll: true,
	events.NamePing: true, events.NamePong: true, events.NameText: true,
	events.NameBinary: true, events.NameClosing: true, events.NameClosed: true,
	events.NameUnresponsive: true, events.NameProtocolError: true,
	events.NameDisconnected: true, events.NameBackOff: true, events.NameStream: true,
}

func knownNames() string {
	names := make([]string, 0, len(eventNames))
	for n := range eventNames {
		names = append(names, n)
	}
	sort.Strings(names)
	return strings.Join(names, " ")
}

// A pattern is a sequence of event names, each optionally followed by a
// quantifier: "?" (zero or one), "*" (any number), "+" (one or more),
// "{n}" (exactly n), "{n,}" (n or more) or "{n,m}" (n to m); parentheses
// group names for a quantifier, and "|" separates alternatives:
// "connecting (connect_fail back_off connecting)+ connected ready text{3}".
type patternNode struct {
	name     string          // an event name, or "" for a group
	alts     [][]patternNode // a group's alternatives ("a b|c": two)
	min, max int             // repetitions; max < 0: no limit
}

// maxCount bounds the numbers of "{n,m}", and maxInsts the size of the
// compiled pattern: a counted repetition is expanded, and a pattern must
// not grow without limit ("(text{1000}){1000}").
const (
	maxCount = 1000
	maxInsts = 100_000
)

func parsePattern(p string) ([]patternNode, error) {
	if strings.TrimSpace(p) == "" {
		return nil, nil // no events
	}
	alts, rest, err := parseAlts(p, 0)
	if err != nil {
		return nil, err
	}
	if rest < len(p) {
		return nil, fmt.Errorf("unmatched %q at offset %d", p[rest], rest)
	}
	if len(alts) == 1 {
		return alts[0], nil
	}
	return []patternNode{{alts: alts, min: 1, max: 1}}, nil
}

// parseAlts parses alternatives separated by "|" from p[i:] up to a ")" or
// the end, and returns where it stopped.
func parseAlts(p string, i int) ([][]patternNode, int, error) {
	var alts [][]patternNode
	for {
		seq, j, err := parseSeq(p, i)
		if err != nil {
			return nil, 0, err
		}
		if len(seq) == 0 {
			return nil, 0, fmt.Errorf("empty alternative at offset %d", i)
		}
		alts = append(alts, seq)
		if j >= len(p) || p[j] != '|' {
			return alts, j, nil
		}
		i = j + 1
	}
}

// parseSeq parses nodes from p[i:] up to a "|", a ")" or the end, and
// returns where it stopped.
func parseSeq(p string, i int) ([]patternNode, int, error) {
	var nodes []patternNode
	for i < len(p) {
		switch c := p[i]; {
		case c == ' ' || c == '\t' || c == '\n' || c == ',':
			i++
		case c == ')' || c == '|':
			return nodes, i, nil
		case c == '(':
			alts, j, err := parseAlts(p, i+1)
			if err != nil {
				return nil, 0, err
			}
			if j >= len(p) {
				return nil, 0, fmt.Errorf("the group opened at offset %d is not closed", i)
			}
			n := patternNode{alts: alts, min: 1, max: 1}
			if i, err = quantify(&n, p, j+1); err != nil {
				return nil, 0, err
			}
			nodes = append(nodes, n)
		case c == '_' || (c >= 'a' && c <= 'z'):
			j := i
			for j < len(p) && (p[j] == '_' || (p[j] >= 'a' && p[j] <= 'z')) {
				j++
			}
			name := p[i:j]
			if !eventNames[name] {
				return nil, 0, fmt.Errorf("unknown event name %q (the names are: %s)", name, knownNames())
			}
			n := patternNode{name: name, min: 1, max: 1}
			var err error
			if i, err = quantify(&n, p, j); err != nil {
				return nil, 0, err
			}
			nodes = append(nodes, n)
		default:
			return nil, 0, fmt.Errorf("unexpected %q at offset %d", c, i)
		}
	}
	return nodes, i, nil
}

// quantify applies a quantifier at p[i], if there is one, and returns
// where the pattern goes on.
func quantify(n *patternNode, p string, i int) (int, error) {
	if i >= len(p) {
		return i, nil
	}
	switch p[i] {
	case '?':
		n.min, n.max = 0, 1
	case '*':
		n.min, n.max = 0, -1
	case '+':
		n.min, n.max = 1, -1
	case '{':
		return countedQuantifier(n, p, i)
	default:
		return i, nil
	}
	return i + 1, nil
}

// countedQuantifier parses "{n}", "{n,}" or "{n,m}" at p[i].
func countedQuantifier(n *patternNode, p string, i int) (int, error) {
	end := strings.IndexByte(p[i:], '}')
	if end < 0 {
		return 0, fmt.Errorf("the repetition opened at offset %d is not closed", i)
	}
	body := p[i+1 : i+end]
	bad := fmt.Errorf("repetition {%s} at offset %d: want {n}, {n,} or {n,m} with 0 <= n <= m <= %d", body, i, maxCount)
	lo, hi, comma := strings.Cut(body, ",")
	min, err := strconv.Atoi(lo)
	if err != nil || min < 0 || min > maxCount || strings.TrimSpace(lo) != lo {
		return 0, bad
	}
	max := min
	switch {
	case comma && hi == "":
		max = -1
	case comma:
		max, err = strconv.Atoi(hi)
		if err != nil || max < min || max > maxCount || strings.TrimSpace(hi) != hi {
			return 0, bad
		}
	}
	n.min, n.max = min, max
	return i + end + 1, nil
}

// The pattern is compiled to a Thompson NFA and matched by simulating it:
// every event is looked at once, against the set of places the pattern can
// be at, so matching takes time proportional to len(events) * len(insts)
// whatever the pattern. (A backtracking matcher takes exponential time on
// ambiguous patterns such as "(text|text text)* binary".)
type opcode uint8

const (
	opName  opcode = iota // consume an event called name, go to x
	opSplit               // go to x and to y
	opMatch               // the end of the pattern
)

type inst struct {
	op   opcode
	name string
	x, y int
}

type program struct {
	insts []inst
	start int
}

// compilePattern compiles nodes, failing if the program would be larger
// than maxInsts.
func compilePattern(nodes []patternNode) (*program, error) {
	c := &compiler{}
	match := c.emit(inst{op: opMatch})
	start := c.seq(nodes, match)
	if c.tooBig {
		return nil, fmt.Errorf("the pattern is too large: its repetitions expand to more than %d steps", maxInsts)
	}
	return &program{insts: c.insts, start: start}, nil
}

// compiler builds the program backwards: each piece is compiled knowing
// where to go after it.
type compiler struct {
	insts  []inst
	tooBig bool
}

func (c *compiler) emit(in inst) int {
	if len(c.insts) >= maxInsts {
		c.tooBig = true
		return 0
	}
	c.insts = append(c.insts, in)
	return len(c.insts) - 1
}

func (c *compiler) seq(nodes []patternNode, next int) int {
	for i := len(nodes) - 1; i >= 0 && !c.tooBig; i-- {
		next = c.node(nodes[i], next)
	}
	return next
}

// node compiles n's repetitions: min copies of its atom, then either a loop
// (no maximum) or max-min optional copies, nested ("(a(a)?)?").
func (c *compiler) node(n patternNode, next int) int {
	tail := next
	if n.max < 0 {
		loop := c.emit(inst{op: opSplit})
		body := c.atom(n, loop)
		if c.tooBig {
			return 0
		}
		c.insts[loop].x, c.insts[loop].y = body, next
		tail = loop
	} else {
		for k := 0; k < n.max-n.min && !c.tooBig; k++ {
			body := c.atom(n, tail)
			tail = c.emit(inst{op: opSplit, x: body, y: next})
		}
	}
	for k := 0; k < n.min && !c.tooBig; k++ {
		tail = c.atom(n, tail)
	}
	return tail
}

func (c *compiler) atom(n patternNode, next int) int {
	if n.alts == nil {
		return c.emit(inst{op: opName, name: n.name, x: next})
	}
	start := c.seq(n.alts[len(n.alts)-1], next)
	for i := len(n.alts) - 2; i >= 0 && !c.tooBig; i-- {
		start = c.emit(inst{op: opSplit, x: c.seq(n.alts[i], next), y: start})
	}
	return start
}

// matchPattern reports whether names follow the pattern; if not, where
// they part (an index into names; len(names) when more events are wanted)
// and what the pattern wanted there ("" for the end of the pattern). steps
// counts the instructions visited: at most len(insts) per event, and once
// more.
func matchPattern(prog *program, names []string) (ok bool, at int, wanted []string, steps int) {
	n := len(prog.insts)
	seen := make([]int, n) // generation an instruction was last added in
	gen := 0
	var stack []int
	// closure adds pc and what it reaches without consuming an event.
	closure := func(list []int, pc int) []int {
		stack = append(stack[:0], pc)
		for len(stack) > 0 {
			pc := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			if seen[pc] == gen {
				continue
			}
			seen[pc] = gen
			steps++
			switch in := prog.insts[pc]; in.op {
			case opSplit:
				stack = append(stack, in.y, in.x)
			default:
				list = append(list, pc)
			}
		}
		return list
	}
	gen++
	cur := closure(nil, prog.start)
	var next []int
	for i, name := range names {
		gen++
		next = next[:0]
		for _, pc := range cur {
			if in := prog.insts[pc]; in.op == opName && in.name == name {
				next = closure(next, in.x)
			}
		}
		if len(next) == 0 {
			return false, i, wantedBy(prog, cur), steps
		}
		cur, next = next, cur
	}
	for _, pc := range cur {
		if prog.insts[pc].op == opMatch {
			return true, 0, nil, steps
		}
	}
	return false, len(names), wantedBy(prog, cur), steps
}

// wantedBy lists the names the instructions in list wait for, sorted,
// with "" for the end of the pattern.
func wantedBy(prog *program, list []int) []string {
	set := map[string]bool{}
	for _, pc := range list {
		switch in := prog.insts[pc]; in.op {
		case opName:
			set[in.name] = true
		case opMatch:
			set[""] = true
		}
	}
	out := make([]string, 0, len(set))
	for w := range set {
		out = append(out, w)
	}
	sort.Strings(out)
	return out
}
