package main

import (
	"os"
	"testing"

	"go.uber.org/goleak"
)

// TestMain runs the test binary as a fixture or worker process when the
// harness starts it as one (the benchmark's processes are this executable
// started again), and otherwise runs the tests, checking for leaked
// goroutines.
func TestMain(m *testing.M) {
	if code, ok := runRole(); ok {
		os.Exit(code)
	}
	goleak.VerifyTestMain(m)
}
