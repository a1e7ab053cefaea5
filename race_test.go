//go:build race

package lomond

// raceEnabled: the tests run with -race, whose own bookkeeping grows with the
// frames a stream takes (the bound on the peak RSS allows for it).
const raceEnabled = true
