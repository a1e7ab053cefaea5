//go:build !race

package lomond

// raceEnabled: the tests run without -race.
const raceEnabled = false
