//go:build !linux

package main

import "os/exec"

// startPinned starts cmd; pinning is implemented on Linux only.
func startPinned(cmd *exec.Cmd, _ int) error { return cmd.Start() }

// affinity is unknown off Linux.
func affinity() string { return "" }

// canPin: pinning is implemented on Linux only.
func canPin() bool { return false }
