package devvault

import "syscall"

// The dev server dies with its parent, so a crashed test or daemon never
// leaves a Vault holding secrets behind.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}
