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

// selfCPU is the CPU time this process (the bench and its virtual robots)
// has used, user and system.
func selfCPU() (float64, bool) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, false
	}
	tv := func(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
	return tv(ru.Utime) + tv(ru.Stime), true
}
