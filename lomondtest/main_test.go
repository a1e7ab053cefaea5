package lomondtest_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the run if a test leaves a goroutine behind: the kit's
// servers, scripts and background Persists must all have returned.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
