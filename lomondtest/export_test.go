package lomondtest

import "time"

// SetWaitLimit shortens the kit's waits for the tests of its own timeouts
// and returns a function that restores them.
func SetWaitLimit(d time.Duration) (restore func()) {
	old := waitLimit
	waitLimit = d
	return func() { waitLimit = old }
}
