//go:build !race

package lomond

// streamRace: the tests run without -race.
const streamRace = false
