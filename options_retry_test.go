package lomond

import (
	"net/http"
	"testing"
	"time"
)

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2024, 3, 4, 5, 6, 7, 0, time.UTC)
	date := func(d time.Duration) string { return now.Add(d).Format(http.TimeFormat) }
	cases := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"", 0, false},
		{"   ", 0, false},
		{"0", 0, true},
		{"1", time.Second, true},
		{"120", 2 * time.Minute, true},
		{" 5 ", 5 * time.Second, true},
		{"86400", 24 * time.Hour, true},
		{"-1", 0, false},
		{"-120", 0, false},
		{"+5", 0, false},
		{"1.5", 0, false},
		{"5s", 0, false},
		{"abc", 0, false},
		{"soon", 0, false},
		{"99999999999999999999999", 0, false},
		{date(90 * time.Second), 90 * time.Second, true},
		{date(2 * time.Hour), 2 * time.Hour, true},
		{date(0), 0, true},
		{date(-time.Hour), 0, true},
		{"Sunday, 03-Mar-24 05:07:07 GMT", 0, true}, // RFC 850, in the past
		{now.Add(30 * time.Second).Format(time.ANSIC), 30 * time.Second, true},
		{"Mon, 32 Mar 2024 00:00:00 GMT", 0, false},
	}
	for _, c := range cases {
		got, ok := parseRetryAfter(c.in, now)
		if got != c.want || ok != c.ok {
			t.Errorf("parseRetryAfter(%q) = %v, %v; want %v, %v", c.in, got, ok, c.want, c.ok)
		}
	}
}

// TestParseRetryAfterHuge checks that a huge delay-seconds value does not
// overflow time.Duration into a negative delay.
func TestParseRetryAfterHuge(t *testing.T) {
	now := time.Now()
	for _, in := range []string{"10000000000", "9223372036854775807"} {
		got, ok := parseRetryAfter(in, now)
		if ok && got < 0 {
			t.Errorf("parseRetryAfter(%q) = %v, true: negative delay", in, got)
		}
	}
	// A far-future date saturates instead of overflowing.
	if got, ok := parseRetryAfter("Fri, 31 Dec 9999 23:59:59 GMT", now); !ok || got <= 0 {
		t.Errorf("far-future date: %v, %v; want a large positive delay", got, ok)
	}
}
