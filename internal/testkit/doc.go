// Package testkit holds what the library's own tests share: one event
// recorder (Recorder, and EventRecorder for lomond's events), waits bounded
// by Timeout, scripts and steps for internal/wstest servers, a server that
// restarts on the same port, and addresses that refuse connections.
//
// It does not import the root package, so that the root package's internal
// tests (package lomond) can use it; helpers that need a WebSocket live in
// the root package's helpers_test.go. Failures are reported through the
// testing.TB given; steps that run in a server script's goroutine report
// with Errorf and return false instead of calling Fatal.
package testkit
