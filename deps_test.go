package lomond

import (
	"encoding/json"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// The dependency statement of README.md and docs/guide.md ("Dependencies"),
// checked: a program that imports the library compiles the standard library,
// the module's own packages, backoff/v4 and golang.org/x/net (with the
// golang.org/x/text it needs), nothing else.

// libraryPackages are the packages a program imports to use lomond. Add
// new library packages (not tests, examples, commands or the test kit).
var libraryPackages = []string{
	"github.com/lomond-go/lomond",
	"github.com/lomond-go/lomond/events",
}

// runtimeModules are the modules whose packages libraryPackages may import,
// besides the standard library and this module's own packages.
var runtimeModules = []string{
	"github.com/cenkalti/backoff/v4", // Persist's backoff
	"github.com/coder/websocket",     // removed when the protocol layer lands (issue 7)
	"golang.org/x/net",               // SOCKS5 (proxy) and the proxy environment (http/httpproxy)
	"golang.org/x/text",              // x/net/http/httpproxy's IDNA matching of NO_PROXY names
}

// goModRequires are the only modules go.mod may require, and why.
var goModRequires = map[string]string{
	"github.com/cenkalti/backoff/v4": "run time: Persist's backoff",
	"github.com/coder/websocket":     "tests, examples and the test kit: the independent server",
	"go.uber.org/goleak":             "tests: goroutine-leak checks",
	"golang.org/x/net":               "run time: SOCKS5 proxies and the proxy environment (httpoxy-safe)",
	"golang.org/x/text":              "run time: needed by golang.org/x/net/http/httpproxy (IDNA)",
}

const thisModule = "github.com/lomond-go/lomond"

func TestLibraryImportGraph(t *testing.T) {
	args := append([]string{"list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}"}, libraryPackages...)
	out := goCommand(t, args...)
	var deps []string
	for _, p := range strings.Fields(out) {
		if !inModule(p, thisModule) && !slices.ContainsFunc(runtimeModules, func(m string) bool { return inModule(p, m) }) {
			t.Errorf("the library imports %s: move the code that needs it to a separate module, or state the new run-time dependency in README.md and docs/guide.md and add it to runtimeModules", p)
		}
		deps = append(deps, p)
	}
	if !slices.Contains(deps, "github.com/cenkalti/backoff/v4") {
		t.Errorf("go list found no backoff/v4 among %v: the check is not reading the import graph", deps)
	}
}

func TestGoModRequires(t *testing.T) {
	var mod struct {
		Require []struct{ Path string }
	}
	if err := json.Unmarshal([]byte(goCommand(t, "mod", "edit", "-json")), &mod); err != nil {
		t.Fatal(err)
	}
	if len(mod.Require) == 0 {
		t.Fatal("go.mod requires nothing: the check is not reading go.mod")
	}
	for _, r := range mod.Require {
		if _, ok := goModRequires[r.Path]; !ok {
			t.Errorf("go.mod requires %s: a tool or adapter belongs in its own module (as interop/ is); a library dependency needs a reason in goModRequires and the docs", r.Path)
		}
	}
}

// inModule reports whether package path p belongs to module m.
func inModule(p, m string) bool {
	return p == m || strings.HasPrefix(p, m+"/")
}

// goCommand runs the go tool in the package directory and returns stdout.
func goCommand(t *testing.T, args ...string) string {
	t.Helper()
	gotool, err := exec.LookPath("go")
	if err != nil {
		gotool = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	cmd := exec.Command(gotool, args...)
	out, err := cmd.Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, stderr)
	}
	return string(out)
}
