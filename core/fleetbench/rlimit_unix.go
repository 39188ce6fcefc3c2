//go:build unix

package fleetbench

import "syscall"

// raiseFileLimit lifts the soft limit of open files to the hard one: every
// robot holds one or two connections, and a daemon the bench starts
// inherits the limit.
func raiseFileLimit(logf func(string, ...any)) {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		logf("cannot read the open-file limit: %v", err)
		return
	}
	if l.Cur < l.Max {
		l.Cur = l.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
			logf("cannot raise the open-file limit to %d: %v", l.Max, err)
		}
	}
}
