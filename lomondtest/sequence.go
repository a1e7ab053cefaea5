package lomondtest

import (
	"fmt"
	"sort"
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

// A pattern is a sequence of event names, each optionally followed by "?"
// (zero or one), "*" (any number) or "+" (one or more); parentheses group
// names for a quantifier, and "|" separates alternatives:
// "connecting (connect_fail back_off connecting)+ connected ready (text|binary)*".
type patternNode struct {
	name     string          // an event name, or "" for a group
	alts     [][]patternNode // a group's alternatives ("a b|c": two)
	min, max int             // repetitions; max < 0: no limit
}

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
			i = quantify(&n, p, j+1)
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
			i = quantify(&n, p, j)
			nodes = append(nodes, n)
		default:
			return nil, 0, fmt.Errorf("unexpected %q at offset %d", c, i)
		}
	}
	return nodes, i, nil
}

// quantify applies a quantifier at p[i], if there is one.
func quantify(n *patternNode, p string, i int) int {
	if i >= len(p) {
		return i
	}
	switch p[i] {
	case '?':
		n.min, n.max = 0, 1
	case '*':
		n.min, n.max = 0, -1
	case '+':
		n.min, n.max = 1, -1
	default:
		return i
	}
	return i + 1
}

// seqMatcher matches names against a pattern by backtracking, and
// remembers the furthest event it reached and what it wanted there, for
// the failure message.
type seqMatcher struct {
	names    []string
	furthest int
	wanted   map[string]bool // "" stands for the end of the pattern
}

// matchPattern reports whether names follow the pattern; if not, where
// they part (an index into names; len(names) when more events are wanted)
// and what the pattern wanted there.
func matchPattern(nodes []patternNode, names []string) (ok bool, at int, wanted []string) {
	m := &seqMatcher{names: names, furthest: -1, wanted: map[string]bool{}}
	if m.seq(nodes, 0, func(j int) bool {
		if j == len(names) {
			return true
		}
		m.note(j, "")
		return false
	}) {
		return true, 0, nil
	}
	for w := range m.wanted {
		wanted = append(wanted, w)
	}
	sort.Strings(wanted)
	return false, m.furthest, wanted
}

func (m *seqMatcher) note(i int, name string) {
	if i > m.furthest {
		m.furthest = i
		m.wanted = map[string]bool{}
	}
	if i == m.furthest {
		m.wanted[name] = true
	}
}

func (m *seqMatcher) seq(nodes []patternNode, i int, k func(int) bool) bool {
	if len(nodes) == 0 {
		return k(i)
	}
	return m.rep(nodes[0], i, 0, func(j int) bool { return m.seq(nodes[1:], j, k) })
}

// rep matches node n repeated, greedily, count times so far.
func (m *seqMatcher) rep(n patternNode, i, count int, k func(int) bool) bool {
	if n.max < 0 || count < n.max {
		if m.atom(n, i, func(j int) bool {
			return j > i && m.rep(n, j, count+1, k) // no progress: stop repeating
		}) {
			return true
		}
	}
	return count >= n.min && k(i)
}

func (m *seqMatcher) atom(n patternNode, i int, k func(int) bool) bool {
	if n.alts != nil {
		for _, alt := range n.alts {
			if m.seq(alt, i, k) {
				return true
			}
		}
		return false
	}
	m.note(i, n.name)
	return i < len(m.names) && m.names[i] == n.name && k(i+1)
}
