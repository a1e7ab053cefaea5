package lomond

import (
	"go/ast"
	"go/build"
	"go/doc"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// The main API must be shown by runnable Examples (the ones pkg.go.dev
// shows next to each name). TestExamplesCoverMainAPI fails when a name below
// has no Example function (ExampleNew, ExampleWebSocket_Run,
// ExampleWithHeader, or the same with a _suffix).
//
// To add a name: write its Example (package lomond_test, with an Output
// comment where the output is deterministic), then add the name here.
// Methods are written Type.Method.

// mainAPI is the checked set.
var mainAPI = []string{
	// Making a WebSocket and handlers.
	"New", "Compose", "HandlerFunc", "CloseStatus", "Permanent",

	// Every exported method of *WebSocket.
	"WebSocket.Run", "WebSocket.Events", "WebSocket.Persist", "WebSocket.PersistEvents",
	"WebSocket.SendText", "WebSocket.SendBinary", "WebSocket.SendJSON", "WebSocket.SendTextContext", "WebSocket.SendBinaryContext", "WebSocket.Stop",
	"WebSocket.SendPing", "WebSocket.SendPong", "WebSocket.Close",
	"WebSocket.Reconnect", "WebSocket.WaitReady", "WebSocket.Err",
	"WebSocket.State", "WebSocket.URL", "WebSocket.Subprotocol",
	"WebSocket.Queued", "WebSocket.QueuedBytes", "WebSocket.Unsent",
	"WebSocket.SendTextStream", "WebSocket.SendBinaryStream", "WebSocket.TextWriter", "WebSocket.BinaryWriter", "StreamHandler",

	// Every option of New.
	"WithProtocols", "WithHeader", "WithUserAgent", "WithOrigin", "WithCompression", "WithCompressionOptions", "WithPlugins", "WithSendRate", "WithSensitiveQueryKeys",
	"WithTLSConfig", "WithRootCAs", "WithCAFile", "WithInsecureSkipVerify",
	"WithProxy", "WithoutProxy", "WithDialer", "WithCookieJar",
	"WithDialTimeout", "WithHandshakeTimeout", "WithCloseTimeout",
	"WithPollInterval", "WithPingRate", "WithPingTimeout", "WithAutoPong",
	"WithReadLimit", "WithBorrowedBinary", "WithLogger",

	// Every option of Persist and PersistEvents.
	"WithBackOff", "WithLomondBackOff", "WithStableAfter", "WithMaxRetryAfter",
	"WithRetryPolicy", "WithMaxAttempts", "WithBeforeDial", "WithSendQueue", "WithSendQueueBytes",
}

// packageExamples are package-level Examples (Example_suffix) that must
// exist: topics rather than names.
var packageExamples = []string{
	"errors", // errors.Is on the sentinel errors
}

// exampleExceptions are names of mainAPI deliberately shown without an
// Example, each with the reason. Keep it short.
var exampleExceptions = map[string]string{
	// "WithSomething": "why an Example would mislead or cannot run here",
}

// failOnUnlisted makes the check fail, not only log, when an exported
// method of *WebSocket or a With* option is missing from mainAPI.
const failOnUnlisted = true

func TestExamplesCoverMainAPI(t *testing.T) {
	pkg := parsePackageDoc(t)
	have := examplesByName(pkg)

	for _, name := range mainAPI {
		key := strings.Replace(name, ".", "_", 1)
		if _, ok := have[key]; !ok {
			t.Errorf("%s is not an exported name of the package: update mainAPI", name)
			continue
		}
		reason, excepted := exampleExceptions[name]
		switch n := have[key]; {
		case excepted && reason == "":
			t.Errorf("%s: an exception needs its reason", name)
		case excepted && n > 0:
			t.Errorf("%s has an Example now: remove it from exampleExceptions", name)
		case !excepted && n == 0:
			t.Errorf("%s has no runnable Example: add func Example%s to an example_*_test.go file", name, key)
		}
	}
	for name := range exampleExceptions {
		if !slices.Contains(mainAPI, name) {
			t.Errorf("exampleExceptions names %s, which is not in mainAPI", name)
		}
	}

	var pkgSuffixes []string
	for _, ex := range pkg.Examples {
		pkgSuffixes = append(pkgSuffixes, ex.Suffix)
	}
	for _, suffix := range packageExamples {
		if !slices.Contains(pkgSuffixes, suffix) {
			t.Errorf("no package Example_%s", suffix)
		}
	}

	var unlisted []string
	for key := range have {
		name := strings.Replace(key, "_", ".", 1)
		mainAPIShaped := strings.HasPrefix(key, "WebSocket_") || strings.HasPrefix(key, "With")
		if mainAPIShaped && !slices.Contains(mainAPI, name) {
			unlisted = append(unlisted, name)
		}
	}
	slices.Sort(unlisted)
	if len(unlisted) > 0 {
		msg := "not in mainAPI (add them, with their Examples): " + strings.Join(unlisted, ", ")
		if failOnUnlisted {
			t.Error(msg)
		} else {
			t.Log(msg)
		}
	}
}

// TestExamplesCheckSeesMissingExamples: the check really finds a name with
// no Example, and an Example attached to each kind of name.
func TestExamplesCheckSeesMissingExamples(t *testing.T) {
	have := examplesByName(parsePackageDoc(t))
	for _, key := range []string{"New", "WebSocket_Run", "WithHeader", "WithSendQueue", "HandlerFunc", "Compose"} {
		if have[key] == 0 {
			t.Errorf("no Example found for %s: the check cannot see Examples", key)
		}
	}
	// Exported names with no Example: the check must report 0 for them.
	for _, key := range []string{"DefaultBackOff", "RetryAlways"} {
		if n, ok := have[key]; !ok || n != 0 {
			t.Errorf("%s: found=%v examples=%d, want found with 0", key, ok, n)
		}
	}
}

// parsePackageDoc reads the package in this directory, with its test files,
// as pkg.go.dev does: the Examples are attached to the names they show.
func parsePackageDoc(t *testing.T) *doc.Package {
	t.Helper()
	entries, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	var files []*ast.File
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ".go") {
			continue
		}
		if ok, err := build.Default.MatchFile(".", name); err != nil || !ok {
			continue
		}
		f, err := parser.ParseFile(fset, filepath.Join(".", name), nil, parser.ParseComments)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	pkg, err := doc.NewFromFiles(fset, files, "github.com/lomond-go/lomond")
	if err != nil {
		t.Fatal(err)
	}
	return pkg
}

// examplesByName maps every exported name (Func, Type, Type_Method) to its
// number of Examples.
func examplesByName(pkg *doc.Package) map[string]int {
	have := map[string]int{}
	addFuncs := func(fs []*doc.Func) {
		for _, f := range fs {
			have[f.Name] = len(f.Examples)
		}
	}
	addFuncs(pkg.Funcs)
	for _, typ := range pkg.Types {
		have[typ.Name] = len(typ.Examples)
		addFuncs(typ.Funcs) // constructors, such as New and the options
		for _, m := range typ.Methods {
			have[typ.Name+"_"+m.Name] = len(m.Examples)
		}
	}
	return have
}
