package pluginhost

import (
	"os/exec"
	"syscall"
)

// setProcAttrs makes Linux send the plugin SIGTERM when the daemon dies
// (even by SIGKILL), a second guard next to the SDK's parent watch; the SDK
// catches SIGTERM and runs the plugin's clean-up. Linux sends it when the
// thread that started the plugin ends; Go ends threads only under
// goroutines that exit locked to them, which the host never does, and if
// it happened the supervisor would just restart the plugin.
func setProcAttrs(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}
