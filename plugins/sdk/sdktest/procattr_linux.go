package sdktest

import (
	"os/exec"
	"syscall"
)

// setPdeathsig makes a helper server die with the test process, so a
// crashed test never leaves a Vault holding secrets behind.
func setPdeathsig(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}
