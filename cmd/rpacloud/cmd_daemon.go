package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/rpacloud/rpacloud/cmd/rpacloud/daemon"
	"github.com/rpacloud/rpacloud/cmd/rpacloud/quickstart"
	"github.com/rpacloud/rpacloud/core/config"
	"github.com/rpacloud/rpacloud/core/robotagent"
)

func newLogger(w io.Writer, level, format string) *slog.Logger {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		lv = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: lv}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func selfExe() string {
	exe, err := os.Executable()
	if err != nil {
		return ""
	}
	if abs, err := filepath.EvalSymlinks(exe); err == nil {
		return abs
	}
	return exe
}

type devOptions struct{ dataDir, listen, logLevel, cfgPath string }

func newDevCmd() *cobra.Command {
	var o devOptions
	cmd := &cobra.Command{
		Use:   "dev [--data-dir DIR] [--listen ADDR]",
		Short: "run the embedded platform (SQLite, local robots)",
		Long: `Run the embedded platform from the built-in quickstart configuration (or
--config): SQLite in the data directory, local robots, the dashboard, and a
fresh admin token at each start, printed and written to DIR/admin.token.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return exit(runDev(cmd.Context(), o, cmd.OutOrStdout(), cmd.ErrOrStderr()))
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.dataDir, "data-dir", ".rpacloud", "data directory (SQLite file, tokens, robot logs)")
	f.StringVar(&o.listen, "listen", "127.0.0.1:8080", "address to serve on")
	f.StringVar(&o.logLevel, "log-level", "info", "debug, info, warn or error")
	f.StringVar(&o.cfgPath, "config", "", "HCL file or directory to run instead of the built-in quickstart (its server block is overridden); SIGHUP re-reads it")
	return cmd
}

// runDev runs the embedded platform from the built-in quickstart config.
func runDev(ctx context.Context, o devOptions, stdout, stderr io.Writer) int {
	cfg, diags, files := config.LoadSources(quickstart.Sources())
	var paths []string
	if o.cfgPath != "" {
		cfg, diags, files = config.Load(o.cfgPath)
		paths = []string{o.cfgPath}
	}
	if diags.HasErrors() {
		_ = config.WriteDiagnostics(stderr, files, diags)
		return 1
	}
	loaded := *cfg // as read, before the overrides below: what reloads compare with
	abs, err := filepath.Abs(o.dataDir)
	if err != nil {
		fmt.Fprintf(stderr, "rpacloud dev: data directory: %v\n", err)
		return 1
	}
	cfg.Server.DataDir = abs
	cfg.Server.Listen = o.listen
	cfg.Server.PublicURL = "http://" + o.listen
	cfg.Server.Database.Driver, cfg.Server.Database.DSN = "sqlite", ""
	cfg.Server.PluginDir = filepath.Join(abs, "plugins")
	// The address is bound before a Vault dev server picks its free port,
	// which could otherwise be this one.
	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		fmt.Fprintf(stderr, "rpacloud dev: listen on %s: %v\n", o.listen, err)
		return 1
	}
	defer ln.Close()
	stopVault, err := devVault(ctx, cfg, abs, stdout) // cmd_credential.go
	if err != nil {
		fmt.Fprintf(stderr, "rpacloud dev: %v\n", err)
		return 1
	}
	defer stopVault()
	log := newLogger(stderr, o.logLevel, "text")
	if err := runDaemon(ctx, cfg, &loaded, paths, true, log, stdout, ln); err != nil {
		log.Error("rpacloud dev stopped", "err", err)
		return 1
	}
	return 0
}

type serverOptions struct{ cfgPath, logFormat string }

func newServerCmd() *cobra.Command {
	var o serverOptions
	cmd := &cobra.Command{
		Use:   "server --config PATH",
		Short: "run the daemon from HCL configuration",
		Long: `Run the production daemon from HCL (a file or a directory of *.hcl). The
PostgreSQL DSN comes from the server.database block or RPACLOUD_DATABASE_DSN;
an admin token is made into DATA_DIR/admin.token only if none exists.

SIGHUP re-reads --config and applies it without a restart, as
` + "`rpacloud config apply`" + ` does: an invalid configuration, or one that changes
what needs a restart (the server and vault blocks, the monitor's webhook, a
changed provider), is refused whole and
logged, and the running configuration stays.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return exit(runServer(cmd.Context(), o, cmd.OutOrStdout(), cmd.ErrOrStderr()))
		},
	}
	cmd.Flags().StringVar(&o.cfgPath, "config", "", "HCL configuration file or directory (required)")
	cmd.Flags().StringVar(&o.logFormat, "log-format", "json", "json or text")
	return cmd
}

// runServer runs the daemon from an HCL configuration directory.
func runServer(ctx context.Context, o serverOptions, stdout, stderr io.Writer) int {
	if o.cfgPath == "" {
		fmt.Fprintln(stderr, "rpacloud server: --config is required")
		return 2
	}
	cfg, diags, files := config.Load(o.cfgPath)
	if len(diags) > 0 {
		_ = config.WriteDiagnostics(stderr, files, diags)
	}
	if diags.HasErrors() {
		return 1
	}
	loaded := *cfg // as read, before the DSN from the environment: what reloads compare with
	if env := os.Getenv("RPACLOUD_DATABASE_DSN"); env != "" && cfg.Server.Database.DSN == "" {
		cfg.Server.Database.DSN = env
	}
	log := newLogger(stderr, cfg.Server.LogLevel, o.logFormat)
	if err := runDaemon(ctx, cfg, &loaded, []string{o.cfgPath}, false, log, stdout, nil); err != nil {
		log.Error("rpacloud server stopped", "err", err)
		return 1
	}
	return 0
}

// runDaemon is the one place the CLI starts the daemon's composition root
// (cmd/rpacloud/daemon) for both dev and server. SIGHUP re-reads paths and
// applies them without a restart (daemon.Reload).
func runDaemon(ctx context.Context, cfg, loaded *config.Config, paths []string, dev bool, log *slog.Logger, stdout io.Writer, ln net.Listener) error {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	return daemon.Run(ctx, daemon.Options{Config: cfg, Loaded: loaded, Paths: paths, Reload: hup,
		Dev: dev, Logger: log, SelfExe: selfExe(), Stdout: stdout, Listener: ln})
}

type robotOptions struct{ serverURL, token, name, logLevel string }

func newRobotCmd() *cobra.Command {
	var o robotOptions
	cmd := &cobra.Command{
		Use:   "robot --server URL",
		Short: "run a robot agent (token from RPACLOUD_ROBOT_TOKEN)",
		Long: `Run the robot agent against a daemon. The token comes from the
RPACLOUD_ROBOT_TOKEN environment variable by preference (or --token): a
command line is visible to every user of the machine.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return exit(runRobot(cmd.Context(), o, cmd.ErrOrStderr()))
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.serverURL, "server", "", "daemon URL, e.g. http://127.0.0.1:8080 (required)")
	f.StringVar(&o.token, "token", "", "robot token (prefer the RPACLOUD_ROBOT_TOKEN environment variable)")
	f.StringVar(&o.name, "name", "", "robot name, for the process list only (the daemon knows the robot by its token)")
	f.StringVar(&o.logLevel, "log-level", "info", "debug, info, warn or error")
	return cmd
}

// runRobot runs the robot agent. The token comes from the environment by
// preference: a command line is visible to every user of the machine.
func runRobot(ctx context.Context, o robotOptions, stderr io.Writer) int {
	secret := o.token
	if secret == "" {
		secret = os.Getenv("RPACLOUD_ROBOT_TOKEN")
	}
	if o.serverURL == "" || secret == "" {
		fmt.Fprintln(stderr, "rpacloud robot: --server and a token (--token or RPACLOUD_ROBOT_TOKEN) are required")
		return 2
	}
	// The token must not reach anything this process starts later.
	_ = os.Unsetenv("RPACLOUD_ROBOT_TOKEN")
	log := newLogger(stderr, o.logLevel, "text")
	robotagent.Version = buildVersion().Version
	plugins, host := robotPlugins(o.serverURL, secret, log) // cmd_plugins.go
	defer host.Close()
	a := &robotagent.Agent{Client: newClient(o.serverURL, secret), Log: log, Runners: robotagent.Builtin(), Plugins: plugins}
	if err := a.Run(ctx); err != nil {
		log.Error("robot stopped", "err", err)
		return 1
	}
	return 0
}
