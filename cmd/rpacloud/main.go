// Command rpacloud is the one binary of the platform: the daemon (dev and
// server), the robot agent, the built-in plugins, and the operator's CLI.
//
// Commands are parsed with cobra: one constructor per command in the
// cmd_*.go files, assembled in newRootCmd. Adding a command is writing its
// constructor and adding it to newRootCmd; the tests walk the tree, so its
// --help and -o json are checked without editing them.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"regexp"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// Exit codes of every command, documented in the root's help and the README.
const (
	exitOK          = 0   // success
	exitFailure     = 1   // the command ran and failed (or found problems: validate, fmt --check, failed tasks)
	exitUsage       = 2   // bad command line: unknown command or flag, missing or bad argument
	exitRefused     = 3   // robot: the daemon refused the robot's identity (revoked or unknown); restarting will not help
	exitInterrupted = 130 // interrupted (Ctrl-C) while waiting, as shells report SIGINT
)

const rootLong = `rpacloud — control plane for RPA robot fleets.

One binary: the daemon (dev, server), the robot agent (robot), and the
operator's CLI. Client commands read the daemon URL from --server or
RPACLOUD_SERVER (default http://127.0.0.1:8080) and the token from --token,
RPACLOUD_TOKEN or ./.rpacloud/admin.token.

Commands that print data take -o json (--output json) for one JSON document
on stdout; text is the default. Progress bars are drawn only on a terminal.

Exit codes:
  0    success
  1    failure: the command ran and failed, or found problems (validate
       errors, fmt --check differences, failed or cancelled tasks of task submit --wait)
  2    usage: unknown command or flag, missing or bad argument
  3    robot: the daemon refused the robot's identity (revoked or unknown);
       restarting will not help (the systemd unit does not restart on 3)
  130  interrupted while waiting (task submit --wait)`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run executes one command line and returns its exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return execute(ctx, args, os.Stdin, stdout, stderr)
}

func execute(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	root := newRootCmd()
	if args == nil {
		args = []string{} // cobra reads os.Args for nil
	}
	root.SetArgs(goFlagSpellings(root, args))
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return exitOK
	}
	var code exitCode
	if errors.As(err, &code) {
		return int(code)
	}
	// Errors that are not an exitCode come from cobra itself, before the
	// command ran: the command line was wrong.
	fmt.Fprintf(stderr, "%s: %v\nRun '%s --help' for usage.\n", cmd.CommandPath(), err, cmd.CommandPath())
	return exitUsage
}

// exitCode is what a command's RunE returns when it has already said what
// went wrong on stderr: only the code is left to pass to os.Exit.
type exitCode int

func (c exitCode) Error() string { return fmt.Sprintf("exit status %d", int(c)) }

// exit turns a command body's exit code into RunE's error.
func exit(code int) error {
	if code == exitOK {
		return nil
	}
	return exitCode(code)
}

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "rpacloud",
		Short:         "control plane for RPA robot fleets",
		Long:          rootLong,
		Version:       buildVersion().String(),
		SilenceErrors: true, // execute prints them, with the usage hint
		SilenceUsage:  true, // a failing command is not a usage error
		// Without a command: the usage on stderr and exit 2, as before.
		Args:                  cobra.NoArgs,
		RunE:                  usageError,
		DisableFlagsInUseLine: true,
	}
	root.SetVersionTemplate("rpacloud {{.Version}}\n")
	root.AddCommand(
		newDevCmd(), newServerCmd(), newRobotCmd(),
		newValidateCmd(), newFmtCmd(),
		newTaskCmd(), newBatchCmd(), newPoolCmd(), newTokenCmd(), newCredentialCmd(),
		newProcessCmd(), newConfigCmd(), newDocsCmd(), newAuditCmd(),
		newTriggerCmd(), newAnomalyCmd(),
		newSimulateCmd(), newBenchCmd(),
		newVersionCmd(), newPluginCmd(), newMigrateCmd(),
		newBackupCmd(),
	)
	flagsInUse(root)
	return root
}

// flagsInUse stops cobra appending "[flags]" to a usage line that already
// shows the command's flags.
func flagsInUse(c *cobra.Command) {
	if _, args, _ := strings.Cut(c.Use, " "); strings.Contains(args, "-") {
		c.DisableFlagsInUseLine = true
	}
	for _, sub := range c.Commands() {
		flagsInUse(sub)
	}
}

// group makes cmd a container of subcommands: without one it prints its
// usage to stderr and exits 2; an unknown one is a usage error.
func group(cmd *cobra.Command, subs ...*cobra.Command) *cobra.Command {
	cmd.Args = func(c *cobra.Command, args []string) error {
		if len(args) > 0 {
			return fmt.Errorf("unknown subcommand %q", args[0])
		}
		return nil
	}
	cmd.RunE = usageError
	cmd.DisableFlagsInUseLine = true // it has no flags of its own but --help
	cmd.AddCommand(subs...)
	return cmd
}

func usageError(cmd *cobra.Command, _ []string) error {
	fmt.Fprint(cmd.ErrOrStderr(), cmd.UsageString())
	return exitCode(exitUsage)
}

var (
	singleDashLong = regexp.MustCompile(`^-([A-Za-z][A-Za-z0-9-]+)(=.*)?$`)
	doubleDashOne  = regexp.MustCompile(`^--([A-Za-z])(=.*)?$`)
)

// goFlagSpellings rewrites the spellings of Go's flag package, which the
// CLI parsed with before cobra and which scripts may use, into pflag's:
// -name for a long flag becomes --name (rpacloud fmt -check), --o for a
// one-letter flag becomes -o. Everything after "--" is left alone.
func goFlagSpellings(root *cobra.Command, args []string) []string {
	cmd, _, err := root.Find(args)
	if err != nil {
		return args
	}
	cmd.InitDefaultHelpFlag()
	flags := pflag.NewFlagSet("", pflag.ContinueOnError)
	flags.AddFlagSet(cmd.Flags())
	flags.AddFlagSet(cmd.InheritedFlags())
	out := make([]string, len(args))
	copy(out, args)
	for i, a := range out {
		if a == "--" {
			break
		}
		if m := singleDashLong.FindStringSubmatch(a); m != nil && flags.Lookup(m[1]) != nil {
			out[i] = "-" + a
		} else if m := doubleDashOne.FindStringSubmatch(a); m != nil && flags.Lookup(m[1]) == nil && flags.ShorthandLookup(m[1]) != nil {
			out[i] = a[1:]
		}
	}
	return out
}
