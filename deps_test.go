package lomond

import (
	"encoding/json"
	"os"
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

// notLibrary are the module's packages a program using lomond never
// imports: commands, examples and the test kits (which serve sessions with
// coder/websocket). Every other package of the module is a library package,
// so a new one is checked without being listed.
var notLibrary = []string{
	"github.com/lomond-go/lomond/cmd",
	"github.com/lomond-go/lomond/examples",
	"github.com/lomond-go/lomond/internal/autobahn",
	"github.com/lomond-go/lomond/internal/plugintest",
	"github.com/lomond-go/lomond/internal/testconn",
	"github.com/lomond-go/lomond/internal/testkit",
	"github.com/lomond-go/lomond/internal/wstest",
	"github.com/lomond-go/lomond/lomondtest",
}

// runtimeModules are the modules whose packages the library packages may
// import (their non-test files), besides the standard library and this
// module's own packages.
var runtimeModules = []string{
	"github.com/cenkalti/backoff/v4", // Persist's backoff
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
	t.Run("LibraryImportsOnlyTheRuntimeModules", func(t *testing.T) {
		deps, bad := libraryImports(t, "")
		for _, p := range bad {
			t.Errorf("the library imports %s: move the code that needs it to a separate module, or state the new run-time dependency in README.md and docs/guide.md and add it to runtimeModules", p)
		}
		if !slices.Contains(deps, "github.com/cenkalti/backoff/v4") {
			t.Errorf("go list found no backoff/v4 among %v: the check is not reading the import graph", deps)
		}
	})
	// The guard proves itself: a library file that imports a module the
	// library must not carry (the independent server, a test-only module)
	// is reported; the same import in a test file is not.
	for _, probe := range []struct {
		name, file, module string
		reported           bool
	}{
		{"CoderWebsocketInALibraryFileIsReported", "zz_probe.go", "github.com/coder/websocket", true},
		{"GoleakInALibraryFileIsReported", "zz_probe.go", "go.uber.org/goleak", true},
		{"CoderWebsocketInAnEventsFileIsReported", "events/zz_probe.go", "github.com/coder/websocket", true},
		{"CoderWebsocketInATestFileIsAllowed", "zz_probe_test.go", "github.com/coder/websocket", false},
	} {
		t.Run(probe.name, func(t *testing.T) {
			pkg := "lomond"
			if dir := filepath.Dir(probe.file); dir != "." {
				pkg = filepath.Base(dir)
			}
			src := filepath.Join(t.TempDir(), "probe.go")
			code := "package " + pkg + "\n\nimport _ \"" + probe.module + "\"\n"
			if err := os.WriteFile(src, []byte(code), 0o644); err != nil {
				t.Fatal(err)
			}
			wd, err := os.Getwd()
			if err != nil {
				t.Fatal(err)
			}
			overlay, err := json.Marshal(map[string]map[string]string{
				"Replace": {filepath.Join(wd, probe.file): src},
			})
			if err != nil {
				t.Fatal(err)
			}
			overlayFile := filepath.Join(t.TempDir(), "overlay.json")
			if err := os.WriteFile(overlayFile, overlay, 0o644); err != nil {
				t.Fatal(err)
			}
			_, bad := libraryImports(t, overlayFile)
			got := slices.ContainsFunc(bad, func(p string) bool { return inModule(p, probe.module) })
			if got != probe.reported {
				t.Errorf("with %s importing %s, the guard reports %v (reported: %v), want reported = %v",
					probe.file, probe.module, got, bad, probe.reported)
			}
		})
	}
}

// libraryImports lists the packages outside the standard library that the
// library packages compile (their non-test files and what those import),
// and the ones among them that are neither this module's nor in
// runtimeModules. overlay, if not empty, is a go list -overlay file.
func libraryImports(t *testing.T, overlay string) (deps, bad []string) {
	t.Helper()
	var args []string
	if overlay != "" {
		args = append(args, "-overlay", overlay)
	}
	var lib []string
	for _, p := range strings.Fields(goCommand(t, append(append([]string{"list"}, args...), "./...")...)) {
		if !slices.ContainsFunc(notLibrary, func(m string) bool { return inModule(p, m) }) {
			lib = append(lib, p)
		}
	}
	if !slices.Contains(lib, thisModule) || !slices.Contains(lib, thisModule+"/events") {
		t.Fatalf("go list ./... found the library packages %v: the check is not reading the module", lib)
	}
	list := append(append([]string{"list"}, args...), "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}")
	for _, p := range strings.Fields(goCommand(t, append(list, lib...)...)) {
		deps = append(deps, p)
		if !inModule(p, thisModule) && !slices.ContainsFunc(runtimeModules, func(m string) bool { return inModule(p, m) }) {
			bad = append(bad, p)
		}
	}
	return deps, bad
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
