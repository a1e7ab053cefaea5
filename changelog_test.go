package lomond

import (
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// CHANGELOG.md follows Keep a Changelog: an Unreleased section first, then
// one "## [X.Y.Z] - YYYY-MM-DD" section per release, newest first, each
// with a link reference. Version is the newest release.

var (
	releaseHeading = regexp.MustCompile(`^## \[(\d+)\.(\d+)\.(\d+)\] - (\d{4}-\d{2}-\d{2})$`)
	linkReference  = regexp.MustCompile(`^\[([^\]]+)\]: https://\S+$`)
)

type release struct {
	version [3]int
	name    string
	date    time.Time
}

func TestChangelogMatchesVersion(t *testing.T) {
	data, err := os.ReadFile("CHANGELOG.md")
	if err != nil {
		t.Fatal(err)
	}
	releases, links, err := parseChangelog(string(data))
	if err != nil {
		t.Fatal(err)
	}
	if len(releases) == 0 {
		t.Fatal("CHANGELOG.md has no release section")
	}
	if newest := releases[0].name; newest != Version {
		t.Errorf("lomond.Version is %q but the newest release in CHANGELOG.md is %q: a release sets both in the same commit", Version, newest)
	}
	for i := 1; i < len(releases); i++ {
		prev, cur := releases[i-1], releases[i]
		if !versionLess(cur.version, prev.version) {
			t.Errorf("release %s is listed after %s: newest first", cur.name, prev.name)
		}
		if cur.date.After(prev.date) {
			t.Errorf("release %s (%s) is dated after the newer %s", cur.name, cur.date.Format(time.DateOnly), prev.name)
		}
	}
	for _, name := range append([]string{"Unreleased"}, releaseNames(releases)...) {
		if !links[name] {
			t.Errorf("CHANGELOG.md has no link reference for [%s]", name)
		}
	}
}

// TestChangelogParserRejects: the checks above fail on the mistakes they are
// for.
func TestChangelogParserRejects(t *testing.T) {
	for name, text := range map[string]string{
		"no Unreleased":         "# Changelog\n\n## [0.1.0] - 2026-11-25\n",
		"Unreleased not first":  "# Changelog\n\n## [0.1.0] - 2026-11-25\n\n## [Unreleased]\n",
		"malformed heading":     "# Changelog\n\n## [Unreleased]\n\n## 0.1.0 (2026-11-25)\n",
		"impossible date":       "# Changelog\n\n## [Unreleased]\n\n## [0.1.0] - 2026-13-40\n",
		"duplicate Unreleased":  "# Changelog\n\n## [Unreleased]\n\n## [Unreleased]\n",
		"release without a tag": "# Changelog\n\n## [Unreleased]\n\n## [v0.1.0] - 2026-11-25\n",
	} {
		if _, _, err := parseChangelog(text); err == nil {
			t.Errorf("%s: the changelog was accepted", name)
		}
	}
	releases, _, err := parseChangelog("# Changelog\n\n## [Unreleased]\n\n## [1.10.0] - 2026-11-25\n\n## [1.9.2] - 2026-01-02\n")
	if err != nil || len(releases) != 2 || releases[0].name != "1.10.0" || !versionLess(releases[1].version, releases[0].version) {
		t.Errorf("parsed %+v, want 1.10.0 newer than 1.9.2", releases)
	}
}

// parseChangelog returns the releases, newest first, and the names that
// have a link reference.
func parseChangelog(text string) ([]release, map[string]bool, error) {
	var releases []release
	links := map[string]bool{}
	sawUnreleased := false
	for n, line := range strings.Split(text, "\n") {
		if m := linkReference.FindStringSubmatch(line); m != nil {
			links[m[1]] = true
			continue
		}
		if !strings.HasPrefix(line, "## ") {
			continue
		}
		if line == "## [Unreleased]" {
			if sawUnreleased || len(releases) > 0 {
				return nil, nil, fmt.Errorf("CHANGELOG.md line %d: one Unreleased section, before every release", n+1)
			}
			sawUnreleased = true
			continue
		}
		m := releaseHeading.FindStringSubmatch(line)
		if m == nil {
			return nil, nil, fmt.Errorf("CHANGELOG.md line %d: %q is not \"## [X.Y.Z] - YYYY-MM-DD\"", n+1, line)
		}
		date, err := time.Parse(time.DateOnly, m[4])
		if err != nil {
			return nil, nil, fmt.Errorf("CHANGELOG.md line %d: %v", n+1, err)
		}
		var r release
		for i := range r.version {
			r.version[i], _ = strconv.Atoi(m[i+1])
		}
		r.name, r.date = m[1]+"."+m[2]+"."+m[3], date
		releases = append(releases, r)
	}
	if !sawUnreleased {
		return nil, nil, fmt.Errorf("CHANGELOG.md has no \"## [Unreleased]\" section")
	}
	return releases, links, nil
}

func versionLess(a, b [3]int) bool {
	for i := range a {
		if a[i] != b[i] {
			return a[i] < b[i]
		}
	}
	return false
}

func releaseNames(rs []release) []string {
	names := make([]string, len(rs))
	for i, r := range rs {
		names[i] = r.name
	}
	return names
}
