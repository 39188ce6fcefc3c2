//go:build race

package dispatch_test

// raceEnabled: the race detector slows modernc's SQLite (pure Go) about
// tenfold, so the heaviest tests do fewer runs under it.
const raceEnabled = true
