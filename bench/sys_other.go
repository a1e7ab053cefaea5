//go:build !linux

package main

import "os/exec"

// startPinned starts cmd; pinning is implemented on Linux only.
func startPinned(cmd *exec.Cmd, _ int) error { return cmd.Start() }

// affinity is unknown off Linux.
func affinity() string { return "" }

// pinCPUs: pinning is implemented on Linux only.
func pinCPUs() (client, server int, ok bool) { return -1, -1, false }
