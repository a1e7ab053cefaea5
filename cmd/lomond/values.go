package main

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Custom flag values: repeatable strings, durations that also accept plain
// seconds, byte sizes with units, and --binary's optional mode.

// listValue collects every occurrence of a repeatable flag.
type listValue struct{ items *[]string }

func (v listValue) String() string {
	if v.items == nil {
		return ""
	}
	return strings.Join(*v.items, ", ")
}

func (v listValue) Set(s string) error {
	*v.items = append(*v.items, s)
	return nil
}

// durationValue accepts a Go duration ("500ms", "1m30s") or a number of
// seconds ("2", "0.5"). Negative values are refused.
type durationValue struct{ d *time.Duration }

func (v durationValue) String() string {
	if v.d == nil {
		return ""
	}
	return v.d.String()
}

func (v durationValue) Set(s string) error {
	d, err := parseDuration(s)
	if err != nil {
		return err
	}
	*v.d = d
	return nil
}

func parseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	d, err := time.ParseDuration(s)
	if err != nil {
		f, ferr := strconv.ParseFloat(s, 64)
		if ferr != nil || f != f || f > float64(1<<62)/float64(time.Second) || f < -float64(1<<62)/float64(time.Second) {
			return 0, fmt.Errorf("%q is not a duration (such as 500ms, 30s, 2m, or a number of seconds)", s)
		}
		d = time.Duration(f * float64(time.Second))
	}
	if d < 0 {
		return 0, fmt.Errorf("%q is negative", s)
	}
	return d, nil
}

// sizeValue accepts a byte count with an optional binary unit: "1048576",
// "64k", "16MiB", "1G". Units are powers of 1024; case is ignored.
type sizeValue struct{ n *int64 }

func (v sizeValue) String() string {
	if v.n == nil {
		return ""
	}
	return strconv.FormatInt(*v.n, 10)
}

func (v sizeValue) Set(s string) error {
	n, err := parseSize(s)
	if err != nil {
		return err
	}
	*v.n = n
	return nil
}

func parseSize(s string) (int64, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	mult := int64(1)
	// Longer suffixes first: "kib" and "kb" before "b".
	for _, u := range []struct {
		suffix string
		mult   int64
	}{
		{"gib", 1 << 30}, {"gb", 1 << 30}, {"g", 1 << 30},
		{"mib", 1 << 20}, {"mb", 1 << 20}, {"m", 1 << 20},
		{"kib", 1 << 10}, {"kb", 1 << 10}, {"k", 1 << 10},
		{"b", 1},
	} {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n < 0 || n > (1<<62)/mult {
		return 0, fmt.Errorf("%q is not a size in bytes (such as 65536, 64KiB, 16MiB)", s)
	}
	return n * mult, nil
}

// Binary modes of --binary.
const (
	binaryOff = ""    // stdin lines are text messages
	binaryRaw = "raw" // all of stdin is one binary message
	binaryHex = "hex" // each stdin line is a binary message written in hex
)

// binaryValue is --binary, --binary=raw or --binary=hex. It is a boolean
// flag to the flag package, so a bare --binary means raw.
type binaryValue struct{ mode *string }

func (v binaryValue) String() string {
	if v.mode == nil {
		return ""
	}
	return *v.mode
}

func (v binaryValue) Set(s string) error {
	switch strings.ToLower(s) {
	case "true", "raw":
		*v.mode = binaryRaw
	case "false":
		*v.mode = binaryOff
	case "hex":
		*v.mode = binaryHex
	default:
		return errors.New("want --binary, --binary=raw or --binary=hex")
	}
	return nil
}

// IsBoolFlag lets --binary stand alone.
func (v binaryValue) IsBoolFlag() bool { return true }
