package autobahn

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestAutobahn runs the whole Autobahn|Testsuite client suite (13-20
// minutes). It is opt-in, since the suite cannot be fetched by CI:
//
//	LOMOND_AUTOBAHN_SRC=/path/to/checkout/autobahntestsuite \
//	  go test -run TestAutobahn -timeout 60m -v ./internal/autobahn/
//
// LOMOND_AUTOBAHN_SRC is the folder holding the `autobahntestsuite` Python
// package of the Python 3 port; Debian's python3-twisted, python3-autobahn,
// python3-jinja2 and python3-openssl must be installed (pypy3 is used when
// present: much faster). LOMOND_AUTOBAHN_CASES narrows the cases, as a JSON
// list such as '["1.*","6.*"]'; LOMOND_AUTOBAHN_OUT keeps the reports in a
// folder of your choice.
func TestAutobahn(t *testing.T) {
	src := os.Getenv("LOMOND_AUTOBAHN_SRC")
	if src == "" {
		t.Skip("set LOMOND_AUTOBAHN_SRC to run the Autobahn suite (see the test's doc comment)")
	}
	cases := os.Getenv("LOMOND_AUTOBAHN_CASES")
	if cases == "" {
		cases = `["*"]`
	}
	port := freePort(t)
	out := os.Getenv("LOMOND_AUTOBAHN_OUT") // where to keep the reports
	if out == "" {
		out = t.TempDir()
	}
	spec := fmt.Sprintf(`{"url": "ws://127.0.0.1:%d", "outdir": %q, "cases": %s, "exclude-cases": [], "exclude-agent-cases": {}}`, port, out, cases)
	specPath := filepath.Join(out, "spec.json")
	if err := os.WriteFile(specPath, []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	py, err := exec.LookPath("pypy3")
	if err != nil {
		py = "/usr/bin/python3"
	}
	launcher, _ := filepath.Abs("testdata/fuzzingserver.py")
	cmd := exec.Command(py, launcher, specPath)
	cmd.Dir = out
	cmd.Env = append(os.Environ(), "PYTHONPATH="+src+":/usr/lib/python3/dist-packages")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	logf, _ := os.Create(filepath.Join(out, "server.log"))
	defer logf.Close()
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
	})
	waitListening(t, port)

	ctx, cancel := context.WithTimeout(context.Background(), 55*time.Minute)
	defer cancel()
	base := fmt.Sprintf("ws://127.0.0.1:%d", port)
	start := time.Now()
	if err := RunAll(ctx, base, "lomond-go", nil); err != nil {
		t.Fatal(err)
	}
	t.Logf("suite ran in %v", time.Since(start).Round(time.Second))

	raw, err := os.ReadFile(filepath.Join(out, "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	var index map[string]map[string]struct{ Behavior, BehaviorClose string }
	if err := json.Unmarshal(raw, &index); err != nil {
		t.Fatal(err)
	}
	results := index["lomond-go"]
	bySection := map[string]map[string]int{}
	totals := map[string]int{}
	var bad []string
	for id, r := range results {
		sec := section(id)
		if bySection[sec] == nil {
			bySection[sec] = map[string]int{}
		}
		bySection[sec][r.Behavior]++
		totals[r.Behavior]++
		// Strict: only OK (or INFORMATIONAL, which the suite does not
		// grade) for the case and for its closing behaviour.
		if !acceptable(r.Behavior) || !acceptable(r.BehaviorClose) {
			bad = append(bad, fmt.Sprintf("%s(%s/%s)", id, r.Behavior, r.BehaviorClose))
		}
	}
	secs := make([]string, 0, len(bySection))
	for s := range bySection {
		secs = append(secs, s)
	}
	sort.Strings(secs)
	for _, s := range secs {
		t.Logf("section %s: %v", s, bySection[s])
	}
	t.Logf("all %d cases: %v", len(results), totals)
	if len(bad) > 0 {
		sort.Strings(bad)
		t.Errorf("%d cases not OK: %s", len(bad), strings.Join(bad, " "))
	}
}

func acceptable(behavior string) bool {
	return behavior == "OK" || behavior == "INFORMATIONAL"
}

func section(id string) string {
	parts := strings.SplitN(id, ".", 3)
	if len(parts) >= 2 {
		return parts[0] + "." + parts[1]
	}
	return id
}

func freePort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func waitListening(t *testing.T, port int) {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
		if err == nil {
			c.Close()
			return
		}
		time.Sleep(100 * time.Millisecond) // polling a child process's port, not synchronising goroutines
	}
	t.Fatal("fuzzingserver did not start listening")
}
