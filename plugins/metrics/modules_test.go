package metrics_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// firstRelease is the first release of the library with package metrics:
// the adapters require at least it, since an older library has no package
// for them to import.
const firstRelease = "v0.2.0"

// The adapter modules resolve as users get them: their go.mod requires a
// release of the library, with no replace (a replace in a dependency is
// ignored, and one to a directory cannot be fetched), and asks for no newer
// Go than the library. Inside the repository, their go.work points to the
// library's working tree instead.
func TestAdapterModules(t *testing.T) {
	gotool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command")
	}
	libGo := goDirective(t, gotool, "../..")
	for _, dir := range []string{"prometheus", "otel"} {
		var mod struct {
			Go      string
			Require []struct{ Path, Version string }
			Replace []struct{ Old struct{ Path string } }
		}
		modEdit(t, gotool, dir, &mod)
		if len(mod.Replace) > 0 {
			t.Errorf("%s/go.mod has replace directives %+v: users' builds ignore them; use go.work for the working tree", dir, mod.Replace)
		}
		version := ""
		for _, r := range mod.Require {
			if r.Path == "github.com/lomond-go/lomond" {
				version = r.Version
			}
		}
		if !isRelease(version) || semverLess(version, firstRelease) {
			t.Errorf("%s/go.mod requires github.com/lomond-go/lomond %q, want a release (vX.Y.Z) from %s on", dir, version, firstRelease)
		}
		if semverLess("v"+libGo, "v"+mod.Go) {
			t.Errorf("%s/go.mod says go %s, newer than the library's go %s", dir, mod.Go, libGo)
		}
		work, err := os.ReadFile(filepath.Join(dir, "go.work"))
		if err != nil {
			t.Errorf("%s: %v: development inside the repository needs it", dir, err)
		} else if !regexp.MustCompile(`(?m)^replace github\.com/lomond-go/lomond => \.\./\.\./\.\.$`).Match(work) ||
			!regexp.MustCompile(`(?m)^use \.$`).Match(work) {
			t.Errorf("%s/go.work does not use the module with the library of the working tree:\n%s", dir, work)
		}
	}
}

// goDirective returns the go version of the module in dir.
func goDirective(t *testing.T, gotool, dir string) string {
	var mod struct{ Go string }
	modEdit(t, gotool, dir, &mod)
	return mod.Go
}

func modEdit(t *testing.T, gotool, dir string, v any) {
	t.Helper()
	cmd := exec.Command(gotool, "mod", "edit", "-json")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go mod edit -json in %s: %v", dir, err)
	}
	if err := json.Unmarshal(out, v); err != nil {
		t.Fatalf("%s: %v", dir, err)
	}
}

var releaseVersion = regexp.MustCompile(`^v(\d+)\.(\d+)\.(\d+)$`)

// isRelease reports whether v is vX.Y.Z (no pre-release, no pseudo-version)
// other than v0.0.0.
func isRelease(v string) bool {
	return releaseVersion.MatchString(v) && v != "v0.0.0"
}

// semverLess compares vX.Y[.Z] versions numerically.
func semverLess(a, b string) bool {
	pa, pb := strings.Split(strings.TrimPrefix(a, "v"), "."), strings.Split(strings.TrimPrefix(b, "v"), ".")
	for i := 0; i < 3; i++ {
		x, y := 0, 0
		if i < len(pa) {
			x, _ = strconv.Atoi(pa[i])
		}
		if i < len(pb) {
			y, _ = strconv.Atoi(pb[i])
		}
		if x != y {
			return x < y
		}
	}
	return false
}

func TestSemverHelpers(t *testing.T) {
	for _, c := range []struct {
		a, b string
		less bool
	}{
		{"v0.1.0", "v0.2.0", true}, {"v0.2.0", "v0.2.0", false}, {"v0.10.0", "v0.2.0", false},
		{"v1.23", "v1.23.0", false}, {"v1.23.0", "v1.26.0", true}, {"v1.26.0", "v1.23", false},
	} {
		if got := semverLess(c.a, c.b); got != c.less {
			t.Errorf("semverLess(%s, %s) = %v", c.a, c.b, got)
		}
	}
	for v, want := range map[string]bool{"v0.2.0": true, "v0.0.0": false, "v0.2.0-rc.1": false,
		"v0.0.0-20260101000000-abcdefabcdef": false, "": false} {
		if isRelease(v) != want {
			t.Errorf("isRelease(%q) = %v", v, !want)
		}
	}
}
