//go:build !unix

package local

import (
	"errors"
	"os"
	"os/exec"
)

// The local provider relies on process groups and signals; elsewhere it
// builds (so the daemon does) but refuses to run robots.
var errUnsupported = errors.New("the local provider needs a Unix system")

type signal int

var (
	sigTerm signal = 15
	sigKill signal = 9
)

func setProcAttrs(*exec.Cmd)           {}
func signalGroup(int, signal) error    { return errUnsupported }
func isRobot(int, string) bool         { return false }
func lockDir(string) (*os.File, error) { return nil, errUnsupported }
