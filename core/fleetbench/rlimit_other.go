//go:build !unix

package fleetbench

func raiseFileLimit(func(string, ...any)) {}

func selfCPU() (float64, bool) { return 0, false }
