//go:build unix

package local

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
)

// A robot leads its own process group, so a signal reaches everything it
// started, and a crash of the plugin (or a Ctrl-C to the daemon's group)
// leaves it running, as a VM survives an outage of its cloud's API.
func setProcAttrs(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
}

// signalGroup signals the process group led by pid. A group that no longer
// exists is not an error.
func signalGroup(pid int, sig syscall.Signal) error {
	if pid <= 1 {
		return fmt.Errorf("refusing to signal process group %d", pid)
	}
	if err := syscall.Kill(-pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("signal process group %d: %w", pid, err)
	}
	return nil
}

var (
	sigTerm = syscall.SIGTERM
	sigKill = syscall.SIGKILL
)

// isRobot reports whether pid is a live robot named name. Checking the
// command line, not just the pid, keeps a recycled pid from being adopted
// (and later killed) as if it were the robot.
func isRobot(pid int, name string) bool {
	if pid <= 1 {
		return false
	}
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	args, zombie, err := procInfo(pid)
	if err != nil || zombie {
		return false
	}
	for i := 0; i+1 < len(args); i++ {
		if args[i] == "--name" && args[i+1] == name {
			return true
		}
	}
	return false
}

// procInfo returns the command line of pid and whether it is a zombie (a
// dead process its parent has not reaped, which signal 0 still finds).
func procInfo(pid int) (args []string, zombie bool, err error) {
	if runtime.GOOS == "linux" {
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return nil, false, err
		}
		// The state follows the command name, which is in parentheses and
		// may itself contain spaces or parentheses.
		if i := bytes.LastIndexByte(stat, ')'); i >= 0 && i+2 < len(stat) {
			zombie = stat[i+2] == 'Z' || stat[i+2] == 'X'
		}
		raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil {
			return nil, false, err
		}
		return strings.Split(strings.TrimRight(string(raw), "\x00"), "\x00"), zombie, nil
	}
	out, err := exec.Command("ps", "-o", "stat=,command=", "-p", fmt.Sprint(pid)).Output()
	if err != nil {
		return nil, false, err
	}
	fields := strings.Fields(string(out))
	if len(fields) == 0 {
		return nil, false, errors.New("no such process")
	}
	return fields[1:], strings.HasPrefix(fields[0], "Z"), nil
}

// lockDir takes an exclusive lock on the state directory, so two plugin
// processes never manage (and overwrite the records of) the same robots.
// The kernel drops the lock when the process dies.
func lockDir(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, errors.New("another local provider process uses this state directory")
		}
		return nil, err
	}
	return f, nil
}
