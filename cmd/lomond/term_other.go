//go:build !linux

package main

import "os"

// isTerminal reports false on systems other than Linux: output there is
// plain (no colour, no escaping of control characters in messages).
func isTerminal(*os.File) bool { return false }
