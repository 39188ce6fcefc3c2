package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/rpacloud/rpacloud/core/gqlclient"
	"github.com/rpacloud/rpacloud/core/robotagent"
	"github.com/rpacloud/rpacloud/core/robotagent/winsvc"
)

// serviceStopLimit is how long a stop of the service may take: the agent's
// 30 s stop grace for a running task plus a minute to report its result.
// It is also the service's preshutdown time-out.
const serviceStopLimit = 90 * time.Second

// defaultServiceName is the service's name, and its Event Log source.
const defaultServiceName = "rpacloud-robot"

type robotServiceOptions struct {
	robotOptions
	service string
}

func (o *robotServiceOptions) serviceFlag(cmd *cobra.Command) {
	cmd.Flags().StringVar(&o.service, "service-name", defaultServiceName, "Windows service name (also its Event Log source)")
}

// newRobotServiceCmd is `rpacloud robot service`: the agent as a Windows
// service (core/robotagent/winsvc).
func newRobotServiceCmd() *cobra.Command {
	return group(&cobra.Command{
		Use:   "service",
		Short: "run the robot agent as a Windows service: install, start, stop, status, uninstall",
		Long: `Run the robot agent as a Windows service (Windows only; on Linux use the
systemd unit in deploy/systemd). From an elevated prompt:

  set RPACLOUD_JOIN_TOKEN=rpj_...
  rpacloud robot service install --server https://rpacloud.example:8080
  rpacloud robot service start

install enrols the machine first (unless its state directory already holds
an identity), so the service never needs a token on its command line, then
installs the service: automatic (delayed) start as LocalSystem, restarted by
Windows 10 s, 30 s and 60 s after a failure. Its log goes to the Windows
Event Log (Application, source rpacloud-robot). A stop lets a running task
finish within its 30 s grace and report it; a revoked identity stops the
service without a failure, so it is not restarted in a loop.`,
	}, newRobotServiceInstallCmd(), newRobotServiceUninstallCmd(), newRobotServiceStartCmd(),
		newRobotServiceStopCmd(), newRobotServiceStatusCmd(), newRobotServiceRunCmd())
}

func newRobotServiceInstallCmd() *cobra.Command {
	var o robotServiceOptions
	cmd := &cobra.Command{
		Use:   "install --server URL[,URL...] [--name N] [--state-dir DIR] [--service-name S]",
		Short: "enrol this machine (if needed) and install the agent as a Windows service",
		Long: `Enrol this machine with the join token in RPACLOUD_JOIN_TOKEN (or
--join-token), unless --state-dir (default ` + robotagent.DefaultStateDir() + `) already holds an
identity, and install the Windows service that runs the agent with it. The
state directory is restricted to SYSTEM and Administrators: the identity in
it holds the robot's token. The service's command line holds the flags
below but never a token. A rented robot's token (RPACLOUD_ROBOT_TOKEN) is
refused: a service cannot be given it safely; enrol with a join token.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return exit(installRobotService(cmd.Context(), o, cmd.OutOrStdout(), cmd.ErrOrStderr()))
		},
	}
	f := cmd.Flags()
	o.serviceFlag(cmd)
	f.StringArrayVar(&o.servers, "server", nil, "daemon URL(s) to enrol with and run against (default $RPACLOUD_SERVER, or the stored identity's)")
	f.StringVar(&o.joinToken, "join-token", "", "join token to enrol this machine with (prefer the RPACLOUD_JOIN_TOKEN environment variable); used here, never stored")
	f.StringVar(&o.name, "name", "", "robot name to enrol under (default: the hostname)")
	f.StringVar(&o.stateDir, "state-dir", "", "where the robot keeps its identity (default "+robotagent.DefaultStateDir()+")")
	f.StringVar(&o.remoteAccess, "remote-access", "", "how people reach this machine, reported at enrolment: PROTOCOL://[USER@]HOST[:PORT]")
	f.StringVar(&o.pluginDir, "plugin-dir", os.Getenv("RPACLOUD_PLUGIN_DIR"), "directory of third-party crawler and vendor plugin executables")
	f.StringVar(&o.logLevel, "log-level", "info", "the service's log level: debug, info, warn or error")
	return cmd
}

// serviceArgs is the installed service's command line after the
// executable. No token is ever on it: the SCM keeps it in a registry key
// every user of the machine may read.
func serviceArgs(o robotServiceOptions) []string {
	args := []string{"robot", "service", "run", "--service-name", o.service, "--state-dir", o.stateDir, "--log-level", o.logLevel}
	for _, s := range o.servers {
		args = append(args, "--server", s)
	}
	if o.pluginDir != "" {
		args = append(args, "--plugin-dir", o.pluginDir)
	}
	return args
}

// checkServiceName refuses a name the SCM would refuse, before anything
// is enrolled.
func checkServiceName(name string) error {
	if name == "" || len(name) > 256 || strings.ContainsAny(name, `/\`) {
		return fmt.Errorf("--service-name %q: want 1 to 256 characters without / or \\", name)
	}
	return nil
}

func installRobotService(ctx context.Context, o robotServiceOptions, stdout, stderr io.Writer) int {
	const me = "rpacloud robot service install: "
	if err := checkServiceName(o.service); err != nil {
		fmt.Fprintln(stderr, me+err.Error())
		return exitUsage
	}
	if os.Getenv("RPACLOUD_ROBOT_TOKEN") != "" {
		fmt.Fprintln(stderr, me+"RPACLOUD_ROBOT_TOKEN is set: a service cannot be given a rented robot's token safely; enrol the machine with a join token (RPACLOUD_JOIN_TOKEN) instead")
		return exitUsage
	}
	join := firstNonEmpty(os.Getenv("RPACLOUD_JOIN_TOKEN"), o.joinToken)
	_ = os.Unsetenv("RPACLOUD_JOIN_TOKEN")
	servers, err := gqlclient.ParseServers("--server", o.servers...)
	if err == nil && len(servers) == 0 {
		servers, err = gqlclient.ParseServers("RPACLOUD_SERVER", os.Getenv("RPACLOUD_SERVER"))
	}
	if err != nil {
		fmt.Fprintln(stderr, me+err.Error())
		return exitUsage
	}
	o.servers = servers
	// The service starts in System32: every path it is given is absolute.
	if o.stateDir, err = filepath.Abs(firstNonEmpty(o.stateDir, robotagent.DefaultStateDir())); err != nil {
		fmt.Fprintln(stderr, me+"--state-dir: "+err.Error())
		return exitUsage
	}
	if o.pluginDir != "" {
		if o.pluginDir, err = filepath.Abs(o.pluginDir); err != nil {
			fmt.Fprintln(stderr, me+"--plugin-dir: "+err.Error())
			return exitUsage
		}
	}
	exe := selfExe()
	if exe == "" {
		fmt.Fprintln(stderr, me+"cannot find this executable's path")
		return exitFailure
	}
	// Restrict the directory before an identity is written into it (and
	// off Windows, say so before a join token is spent).
	if err := winsvc.SecureDir(o.stateDir); err != nil {
		fmt.Fprintln(stderr, me+err.Error())
		return exitFailure
	}
	log := newLogger(stderr, o.logLevel, "text")
	_, _, robot, code := robotIdentity(ctx, o.robotOptions, servers, join, false, log)
	if code != exitOK {
		return code
	}
	if robot == "" {
		fmt.Fprintf(stderr, "%sno robot identity in %s and no join token: put one in RPACLOUD_JOIN_TOKEN (rpacloud pool join-token create)\n", me, o.stateDir)
		return exitUsage
	}
	err = winsvc.Install(winsvc.Config{Name: o.service, DisplayName: "rpacloud robot agent (" + robot + ")",
		Description: "Runs rpacloud tasks on this machine as robot " + robot + "; log: Event Viewer, Application, source " + o.service,
		Exe:         exe, Args: serviceArgs(o), StopLimit: serviceStopLimit})
	if err != nil {
		fmt.Fprintln(stderr, me+err.Error())
		return exitFailure
	}
	fmt.Fprintf(stdout, "service %s installed for robot %s (identity in %s); start it: rpacloud robot service start --service-name %s\n",
		o.service, robot, o.stateDir, o.service)
	return exitOK
}

// serviceCmd is a command that acts on the installed service by name.
func serviceCmd(use, short string, act func(name string, stdout io.Writer) error) *cobra.Command {
	var o robotServiceOptions
	cmd := &cobra.Command{
		Use:   use + " [--service-name S]",
		Short: short,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkServiceName(o.service); err != nil {
				fmt.Fprintln(cmd.ErrOrStderr(), "rpacloud robot service "+use+": "+err.Error())
				return exit(exitUsage)
			}
			if err := act(o.service, cmd.OutOrStdout()); err != nil {
				fmt.Fprintln(cmd.ErrOrStderr(), "rpacloud robot service "+use+": "+err.Error())
				return exit(exitFailure)
			}
			return nil
		},
	}
	o.serviceFlag(cmd)
	return cmd
}

func newRobotServiceUninstallCmd() *cobra.Command {
	return serviceCmd("uninstall", "stop and remove the service (the robot's identity stays in its state directory)", func(name string, w io.Writer) error {
		if err := winsvc.Uninstall(name, serviceStopLimit+10*time.Second); err != nil {
			return err
		}
		fmt.Fprintf(w, "service %s removed\n", name)
		return nil
	})
}

func newRobotServiceStartCmd() *cobra.Command {
	return serviceCmd("start", "start the service", func(name string, w io.Writer) error {
		if err := winsvc.Start(name); err != nil {
			return err
		}
		fmt.Fprintf(w, "service %s started\n", name)
		return nil
	})
}

func newRobotServiceStopCmd() *cobra.Command {
	return serviceCmd("stop", "stop the service; a running task finishes within its grace and reports first", func(name string, w io.Writer) error {
		if err := winsvc.Stop(name, serviceStopLimit+10*time.Second); err != nil {
			return err
		}
		fmt.Fprintf(w, "service %s stopped\n", name)
		return nil
	})
}

// serviceStatus is `robot service status -o json`.
type serviceStatus struct {
	Service         string `json:"service"`
	State           string `json:"state"`
	PID             uint32 `json:"pid"`
	Win32ExitCode   uint32 `json:"win32_exit_code"`
	ServiceExitCode uint32 `json:"service_exit_code"`
}

func newRobotServiceStatusCmd() *cobra.Command {
	var out *output
	cmd := serviceCmd("status", "the service's state, process and last exit code", func(name string, w io.Writer) error {
		info, err := winsvc.Query(name)
		if err != nil {
			return err
		}
		st := serviceStatus{Service: name, State: info.State.String(), PID: info.PID, Win32ExitCode: info.Win32ExitCode, ServiceExitCode: info.ServiceExitCode}
		if out.JSON() {
			return writeJSON(w, st)
		}
		fmt.Fprintln(w, serviceStatusText(st))
		return nil
	})
	cmd.Long = `The service's state, its process and its last exit code. -o json prints
{"service", "state", "pid", "win32_exit_code", "service_exit_code"}.`
	out = addOutputFlag(cmd)
	return cmd
}

// errServiceSpecific is Windows' ERROR_SERVICE_SPECIFIC_ERROR: the exit
// code is the agent's own, in ServiceExitCode.
const errServiceSpecific = 1066

func serviceStatusText(st serviceStatus) string {
	s := fmt.Sprintf("service %s: %s", st.Service, st.State)
	if st.PID != 0 {
		s += fmt.Sprintf(" (pid %d)", st.PID)
	}
	switch {
	case st.Win32ExitCode == errServiceSpecific:
		s += fmt.Sprintf("; the agent last exited with code %d (Windows restarts it; see the Event Log)", st.ServiceExitCode)
	case st.Win32ExitCode != 0:
		s += fmt.Sprintf("; last Windows exit code %d", st.Win32ExitCode)
	}
	return s
}

// newRobotServiceRunCmd is what the service manager starts; people use
// `rpacloud robot` for a foreground agent.
func newRobotServiceRunCmd() *cobra.Command {
	var o robotServiceOptions
	cmd := &cobra.Command{
		Use:    "run [--service-name S] [--server URL] [--state-dir DIR]",
		Short:  "the service itself, as the Windows service manager starts it",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return exit(runRobotService(cmd.Context(), o, cmd.ErrOrStderr()))
		},
	}
	f := cmd.Flags()
	o.serviceFlag(cmd)
	f.StringArrayVar(&o.servers, "server", nil, "daemon URL(s) (default: the stored identity's)")
	f.StringVar(&o.stateDir, "state-dir", "", "where the robot keeps its identity")
	f.StringVar(&o.pluginDir, "plugin-dir", "", "directory of third-party plugin executables")
	f.StringVar(&o.logLevel, "log-level", "info", "debug, info, warn or error")
	return cmd
}

// runRobotService serves the agent to the service manager, its log going
// to the Event Log, until the service is stopped.
func runRobotService(ctx context.Context, o robotServiceOptions, stderr io.Writer) int {
	const me = "rpacloud robot service run: "
	isService, err := winsvc.IsService()
	if err != nil {
		fmt.Fprintln(stderr, me+err.Error())
		return exitFailure
	}
	if !isService {
		fmt.Fprintln(stderr, me+"only the Windows service manager starts this (rpacloud robot service start); for an agent in the foreground run rpacloud robot")
		return exitUsage
	}
	elog, err := winsvc.OpenEventLog(o.service)
	if err != nil {
		fmt.Fprintln(stderr, me+err.Error())
		return exitFailure
	}
	defer elog.Close()
	w := winsvc.EventWriter{Sink: elog}
	h := &winsvc.Handler{
		Run:       func(ctx context.Context) int { return runRobot(ctx, o.robotOptions, w) },
		NoRestart: []int{exitRefused, exitUsage}, // restarting cannot fix a refused identity or a wrong command line
		StopLimit: serviceStopLimit,
		Log:       newLogger(w, o.logLevel, "text"),
	}
	// Only the service manager stops the service: a console control event
	// (a user logging off) must not cancel the agent through main's
	// signal context.
	if err := winsvc.Run(context.WithoutCancel(ctx), o.service, h); err != nil {
		_, _ = fmt.Fprintln(w, me+err.Error())
		return exitFailure
	}
	return exitOK
}
