package fleetbench

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// clockTicks is Linux's USER_HZ, the unit of /proc/PID/stat's times (100
// on every architecture Go supports there).
const clockTicks = 100

// postgresCPU sums the CPU seconds (user and system) of the processes
// named postgres on this machine, read from /proc: the database's share
// of the cores while the bench runs a daemon on a local PostgreSQL. ok is
// false where /proc cannot be read or no such process runs (another OS, a
// remote or SQLite database). Backends that exit between two readings
// take their time with them, so the figure can only be low, never high;
// the daemon keeps its connections open, so little is lost.
func postgresCPU() (secs float64, ok bool) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return 0, false
	}
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		s := string(b)
		// The name is in parentheses and may hold spaces; fields follow
		// the last ')'.
		open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if open < 0 || end < open || s[open+1:end] != "postgres" {
			continue
		}
		f := strings.Fields(s[end+1:])
		if len(f) < 13 {
			continue
		}
		// Fields 14 and 15 of stat (utime, stime): 12 and 13 after the name.
		ut, err1 := strconv.ParseFloat(f[11], 64)
		st, err2 := strconv.ParseFloat(f[12], 64)
		if err1 != nil || err2 != nil {
			continue
		}
		secs += (ut + st) / clockTicks
		ok = true
	}
	return secs, ok
}
