package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/lomond-go/lomond"
)

// Defaults of the flags that are the CLI's own (the others are the
// library's defaults).
const (
	defaultBackoffMin = time.Second
	defaultBackoffMax = 30 * time.Second
)

// settings is the parsed command line.
type settings struct {
	url string // as given

	headers   []string // "Name: value", as given
	protocols []string
	origin    string
	compress  bool

	proxy    string
	noProxy  bool
	caFile   string
	insecure bool

	connectTimeout   time.Duration
	handshakeTimeout time.Duration
	pingInterval     time.Duration
	pingTimeout      time.Duration
	closeTimeout     time.Duration
	poll             time.Duration
	readLimit        int64

	sends     []string
	count     int
	waitQuiet time.Duration
	binary    string
	noStdin   bool
	slash     bool // lines starting with / are commands (/ping, /pong, /close)

	json  bool
	quiet bool

	persist     bool
	backoffMin  time.Duration
	backoffMax  time.Duration
	maxAttempts int

	help    bool
	version bool
}

// errUsage marks a command line that cannot be run (exit status 2).
var errUsage = errors.New("usage")

func usageErr(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{errUsage}, args...)...)
}

// newFlagSet defines every flag on s. Long names work with one or two
// dashes, as everywhere with the flag package.
func newFlagSet(s *settings) *flag.FlagSet {
	fs := flag.NewFlagSet("lomond", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are reported by the caller, help by usage()
	fs.Usage = func() {}

	*s = settings{
		connectTimeout:   lomond.DefaultDialTimeout,
		handshakeTimeout: lomond.DefaultHandshakeTimeout,
		pingInterval:     lomond.DefaultPingRate,
		pingTimeout:      lomond.DefaultPingTimeout,
		closeTimeout:     lomond.DefaultCloseTimeout,
		readLimit:        lomond.DefaultReadLimit,
		backoffMin:       defaultBackoffMin,
		backoffMax:       defaultBackoffMax,
	}
	headers := listValue{&s.headers}
	fs.Var(headers, "H", "")
	fs.Var(headers, "header", "")
	fs.Var(listValue{&s.protocols}, "protocol", "")
	fs.StringVar(&s.origin, "origin", "", "")
	fs.BoolVar(&s.compress, "compress", false, "")

	fs.StringVar(&s.proxy, "proxy", "", "")
	fs.BoolVar(&s.noProxy, "no-proxy", false, "")
	fs.StringVar(&s.caFile, "cacert", "", "")
	fs.BoolVar(&s.insecure, "k", false, "")
	fs.BoolVar(&s.insecure, "insecure", false, "")

	fs.Var(durationValue{&s.connectTimeout}, "connect-timeout", "")
	fs.Var(durationValue{&s.handshakeTimeout}, "handshake-timeout", "")
	fs.Var(durationValue{&s.pingInterval}, "ping-interval", "")
	fs.Var(durationValue{&s.pingTimeout}, "ping-timeout", "")
	fs.Var(durationValue{&s.closeTimeout}, "close-timeout", "")
	fs.Var(durationValue{&s.poll}, "poll", "")
	fs.Var(sizeValue{&s.readLimit}, "read-limit", "")

	fs.Var(listValue{&s.sends}, "send", "")
	fs.IntVar(&s.count, "count", 0, "")
	fs.Var(durationValue{&s.waitQuiet}, "wait-quiet", "")
	fs.Var(binaryValue{&s.binary}, "binary", "")
	fs.BoolVar(&s.noStdin, "no-stdin", false, "")
	fs.BoolVar(&s.slash, "slash", false, "")

	fs.BoolVar(&s.json, "json", false, "")
	fs.BoolVar(&s.quiet, "q", false, "")
	fs.BoolVar(&s.quiet, "quiet", false, "")

	fs.BoolVar(&s.persist, "persist", false, "")
	fs.Var(durationValue{&s.backoffMin}, "backoff-min", "")
	fs.Var(durationValue{&s.backoffMax}, "backoff-max", "")
	fs.IntVar(&s.maxAttempts, "max-attempts", 0, "")

	fs.BoolVar(&s.help, "h", false, "")
	fs.BoolVar(&s.help, "help", false, "")
	fs.BoolVar(&s.version, "version", false, "")
	return fs
}

// parseArgs parses the command line. Flags may come before or after the URL
// ("--" ends the flags). Errors wrap errUsage.
func parseArgs(args []string) (*settings, error) {
	s := &settings{}
	fs := newFlagSet(s)
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, usageErr("%v", err)
		}
		rest := fs.Args()
		if len(rest) == 0 {
			break
		}
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			positional = append(positional, rest...)
			break
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
	if s.help || s.version {
		return s, nil
	}
	switch len(positional) {
	case 0:
		return nil, usageErr("no URL (want lomond [flags] ws://host/path)")
	case 1:
		s.url = positional[0]
	default:
		for _, p := range positional {
			if p == binaryRaw || p == binaryHex {
				return nil, usageErr("unexpected argument %q (write --binary=%s)", p, p)
			}
		}
		return nil, usageErr("one URL expected, got %d arguments", len(positional))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	return s, s.check(set)
}

// check refuses combinations that cannot mean anything.
func (s *settings) check(set map[string]bool) error {
	switch {
	case s.proxy != "" && s.noProxy:
		return usageErr("--proxy and --no-proxy together")
	case s.count < 0:
		return usageErr("--count must not be negative")
	case s.maxAttempts < 0:
		return usageErr("--max-attempts must not be negative")
	case s.noStdin && len(s.sends) > 0:
		return usageErr("--no-stdin with --send: --send never reads standard input")
	case s.slash && (s.noStdin || len(s.sends) > 0):
		return usageErr("--slash reads commands from standard input: not with --no-stdin or --send")
	case s.slash && s.binary == binaryRaw:
		return usageErr("--slash with --binary=raw: standard input is one message, not lines")
	case s.noStdin && set["wait-quiet"]:
		return usageErr("--wait-quiet with --no-stdin: the wait starts at the end of input or after --send")
	}
	if !s.persist {
		for _, name := range []string{"backoff-min", "backoff-max", "max-attempts"} {
			if set[name] {
				return usageErr("--%s needs --persist", name)
			}
		}
	}
	if s.backoffMin > s.backoffMax {
		return usageErr("--backoff-min %v is longer than --backoff-max %v", s.backoffMin, s.backoffMax)
	}
	for name, d := range map[string]time.Duration{
		"connect-timeout": s.connectTimeout, "handshake-timeout": s.handshakeTimeout, "close-timeout": s.closeTimeout,
	} {
		if d == 0 {
			return usageErr("--%s must be positive", name)
		}
	}
	for _, h := range s.headers {
		if _, _, err := splitHeader(h); err != nil {
			return usageErr("%v", err)
		}
	}
	return nil
}

// splitHeader splits "Name: value" (curl's form). The value is never
// quoted in errors: it may be a secret.
func splitHeader(h string) (name, value string, err error) {
	name, value, ok := strings.Cut(h, ":")
	name = strings.TrimSpace(name)
	if !ok || name == "" {
		n := name
		if len(n) > 40 || !ok {
			n = "..."
		}
		return "", "", fmt.Errorf("-H %q: want 'Name: value'", n)
	}
	return name, strings.TrimSpace(value), nil
}
