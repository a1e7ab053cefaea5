//go:build !linux

package main

import "testing"

// The pseudo-terminal tests open /dev/ptmx with Linux ioctls; elsewhere the
// CLI prints plainly (isTerminal is false), so there is nothing to test.
func TestInteractiveTerminal(t *testing.T) {
	t.Skip("pseudo-terminal tests use Linux ioctls (TIOCSPTLCK, TIOCGPTN)")
}
