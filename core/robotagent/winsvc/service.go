package winsvc

import "time"

// Config is a service to install.
type Config struct {
	Name        string   // service name, also the Event Log source
	DisplayName string   // shown in services.msc
	Description string   // shown in services.msc
	Exe         string   // absolute path of rpacloud.exe
	Args        []string // the command line after Exe; never a secret (the SCM's registry key is readable by users)
	// StopLimit is the most a stop may take (Handler.StopLimit); it is
	// also the preshutdown time-out, so a machine's shutdown waits for it.
	StopLimit time.Duration
}

// Info is a service's state as the SCM reports it.
type Info struct {
	State State
	PID   uint32
	// Win32ExitCode is 1066 (ERROR_SERVICE_SPECIFIC_ERROR) when the
	// agent's own exit code is in ServiceExitCode.
	Win32ExitCode   uint32
	ServiceExitCode uint32
}

// RecoveryDelays are the SCM's restarts after the service fails (a crash,
// or a stop with a non-zero exit code): the first, second and every later
// failure; the count of failures resets after RecoveryReset without one.
var (
	RecoveryDelays = []time.Duration{10 * time.Second, 30 * time.Second, time.Minute}
	RecoveryReset  = 24 * time.Hour
)
