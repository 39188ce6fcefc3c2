//go:build !linux

package pluginhost

import "os/exec"

// Without Pdeathsig, plugins rely on the SDK's parent watch alone.
func setProcAttrs(*exec.Cmd) {}
