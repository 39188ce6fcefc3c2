//go:build !linux

package sdktest

import "os/exec"

// setPdeathsig: only Linux kills a child with its parent.
func setPdeathsig(*exec.Cmd) {}
