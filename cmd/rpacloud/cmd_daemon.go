package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/rpacloud/rpacloud/cmd/rpacloud/builtin"
	"github.com/rpacloud/rpacloud/cmd/rpacloud/daemon"
	"github.com/rpacloud/rpacloud/cmd/rpacloud/quickstart"
	"github.com/rpacloud/rpacloud/core/config"
	"github.com/rpacloud/rpacloud/core/gqlclient"
	"github.com/rpacloud/rpacloud/core/robotagent"
	"github.com/rpacloud/rpacloud/core/robotwire"
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

type devOptions struct {
	dataDir, listen, logLevel, cfgPath, debugListen string
	newToken                                        bool
}

func newDevCmd() *cobra.Command {
	var o devOptions
	cmd := &cobra.Command{
		Use:   "dev [--data-dir DIR] [--listen ADDR] [--new-token]",
		Short: "run the embedded platform (SQLite, local robots)",
		Long: `Run the embedded platform from the built-in quickstart configuration (or
--config): SQLite in the data directory, local robots, the dashboard, and an
admin token, printed and kept in DIR/admin.token (mode 0600; the database
keeps only its hash). The token stays the same across restarts on the same
data directory, so a browser or kiosk holding it keeps working;
--new-token issues a new one and revokes the old.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return exit(runDev(cmd.Context(), o, cmd.OutOrStdout(), cmd.ErrOrStderr()))
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.dataDir, "data-dir", ".rpacloud", "data directory (SQLite file, tokens, robot logs)")
	f.StringVar(&o.listen, "listen", "127.0.0.1:8080", "address to serve on")
	f.StringVar(&o.logLevel, "log-level", "info", "debug, info, warn or error")
	f.StringVar(&o.cfgPath, "config", "", "HCL file or directory to run instead of the built-in quickstart (its server block is overridden, except plugin_dir, the TLS files and trusted_proxies); SIGHUP re-reads it")
	f.StringVar(&o.debugListen, "debug-listen", "", debugListenUsage)
	f.BoolVar(&o.newToken, "new-token", false, "issue a new admin token and revoke the one in DIR/admin.token")
	return cmd
}

// runDev runs the embedded platform from the built-in quickstart config.
func runDev(ctx context.Context, o devOptions, stdout, stderr io.Writer) int {
	abs, err := filepath.Abs(o.dataDir)
	if err != nil {
		fmt.Fprintf(stderr, "rpacloud dev: data directory: %v\n", err)
		return 1
	}
	// dev runs in its own data directory, where plugins are looked for
	// unless the configuration names a plugin_dir.
	plugins := &builtin.Schemas{SelfExe: selfExe(), DataDir: abs}
	cfg, diags, files := config.LoadSourcesWith(ctx, plugins, quickstart.Sources())
	var paths []string
	if o.cfgPath != "" {
		cfg, diags, files = config.LoadWith(ctx, plugins, o.cfgPath)
		paths = []string{o.cfgPath}
	}
	plugins.Close()
	if diags.HasErrors() {
		_ = config.WriteDiagnostics(stderr, files, diags)
		return 1
	}
	loaded := *cfg // as read, before the overrides below: what reloads compare with
	cfg.Server.DataDir = abs
	cfg.Server.Listen = o.listen
	cfg.Server.PublicURL = "http://" + o.listen
	if cfg.Server.TLSOn() { // the configuration's tls_cert_file is kept, like plugin_dir
		cfg.Server.PublicURL = "https://" + o.listen
	}
	cfg.Server.Database.Driver, cfg.Server.Database.DSN = "sqlite", ""
	if cfg.Server.PluginDir == "" {
		cfg.Server.PluginDir = filepath.Join(abs, "plugins")
	}
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
	if err := runDaemon(ctx, cfg, &loaded, paths, daemon.Options{Dev: true, NewToken: o.newToken}, log, stdout, ln, o.debugListen); err != nil {
		log.Error("rpacloud dev stopped", "err", err)
		return 1
	}
	return 0
}

const debugListenUsage = "serve Go's profiler (/debug/pprof/) on this loopback address, e.g. 127.0.0.1:6060; off by default"

type serverOptions struct{ cfgPath, logFormat, debugListen string }

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
logged, and the running configuration stays. SIGHUP also re-reads the
server block's tls_cert_file and tls_key_file: a bad pair is logged and
the running certificate keeps serving.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return exit(runServer(cmd.Context(), o, cmd.OutOrStdout(), cmd.ErrOrStderr()))
		},
	}
	cmd.Flags().StringVar(&o.cfgPath, "config", "", "HCL configuration file or directory (required)")
	cmd.Flags().StringVar(&o.logFormat, "log-format", "json", "json or text")
	cmd.Flags().StringVar(&o.debugListen, "debug-listen", "", debugListenUsage)
	return cmd
}

// runServer runs the daemon from an HCL configuration directory.
func runServer(ctx context.Context, o serverOptions, stdout, stderr io.Writer) int {
	if o.cfgPath == "" {
		fmt.Fprintln(stderr, "rpacloud server: --config is required")
		return 2
	}
	// Every plugin the configuration names is checked now, as `rpacloud
	// validate` does: a misspelt attribute stops the start, not a vendor
	// poller later.
	plugins := &builtin.Schemas{SelfExe: selfExe()}
	cfg, diags, files := config.LoadWith(ctx, plugins, o.cfgPath)
	plugins.Close()
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
	if err := runDaemon(ctx, cfg, &loaded, []string{o.cfgPath}, daemon.Options{}, log, stdout, nil, o.debugListen); err != nil {
		log.Error("rpacloud server stopped", "err", err)
		return 1
	}
	return 0
}

// runDaemon is the one place the CLI starts the daemon's composition root
// (cmd/rpacloud/daemon) for both dev and server. SIGHUP re-reads paths and
// applies them without a restart (daemon.Reload).
// mode carries dev's choices (Dev, NewToken); the rest of Options is set here.
func runDaemon(ctx context.Context, cfg, loaded *config.Config, paths []string, mode daemon.Options, log *slog.Logger, stdout io.Writer, ln net.Listener, debugListen string) error {
	if debugListen != "" {
		stop, err := serveDebug(debugListen, log)
		if err != nil {
			return err
		}
		defer stop()
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	return daemon.Run(ctx, daemon.Options{Config: cfg, Loaded: loaded, Paths: paths, Reload: hup,
		Dev: mode.Dev, NewToken: mode.NewToken, Logger: log, SelfExe: selfExe(), Stdout: stdout, Listener: ln})
}

type robotOptions struct {
	servers                           []string
	token, name, logLevel             string
	joinToken, stateDir, remoteAccess string
	pluginDir                         string
	// artifactRetention: how long artefacts of failed attempts stay on
	// this machine; 0: robotagent.DefaultArtifactRetention, negative:
	// forever.
	artifactRetention time.Duration
}

func newRobotCmd() *cobra.Command {
	var o robotOptions
	cmd := &cobra.Command{
		Use:   "robot --server URL[,URL...] [--join-token T] [--name N] [--state-dir DIR]",
		Short: "run a robot agent: enrol with a join token, or run with a robot token",
		Long: `Run the robot agent against a daemon.

An existing machine enrols once with a join token (rpacloud pool join-token
create): from RPACLOUD_JOIN_TOKEN by preference, or --join-token. The agent
exchanges it for the robot's own identity (its name, --name or the hostname;
its pool; its robot token), which it keeps in --state-dir (default
$STATE_DIRECTORY under systemd, else /var/lib/rpacloud-robot, on Windows
%ProgramData%\rpacloud-robot) as identity.json, mode 0600. From then on it
starts with that identity and ignores any join token. The agent refuses to
start with an identity file others may read.

A robot rpacloud rented gets its token from RPACLOUD_ROBOT_TOKEN by
preference (or --token) and keeps no state. A command line is visible to
every user of the machine: prefer the environment for secrets. The server
comes from --server or RPACLOUD_SERVER, or from the stored identity.

Several daemons sharing one PostgreSQL may be given (--server repeated, or
a comma-separated list, in --server or RPACLOUD_SERVER); an enrolment keeps
them all in the identity. The agent talks to one at a time, starting with
the first, and moves to the next when the one in use cannot be reached,
answers an HTTP 5xx or times out, saying so in its log; a task it is
running carries on, its heartbeats and result going to the daemon that
answers. A refusal (a revoked token) is not a reason to move.

If the daemon refuses the robot's identity (revoked, or unknown to it) and
a join token is at hand, the agent enrols again and replaces the stored
identity (under the same name: a revoked robot's name may be enrolled
again, with a join token created after the revoke). Without a join token it exits 3, which the systemd unit does not
restart. Third-party crawler and vendor plugins are looked up in
--plugin-dir (default $RPACLOUD_PLUGIN_DIR).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return exit(runRobot(cmd.Context(), o, cmd.ErrOrStderr()))
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&o.servers, "server", nil, "daemon URL, e.g. http://127.0.0.1:8080; repeat it or separate by commas for several daemons sharing one database (default $RPACLOUD_SERVER, or the stored identity's)")
	f.StringVar(&o.token, "token", "", "robot token of a rented robot (prefer the RPACLOUD_ROBOT_TOKEN environment variable)")
	f.StringVar(&o.joinToken, "join-token", "", "join token to enrol this machine with (prefer the RPACLOUD_JOIN_TOKEN environment variable)")
	f.StringVar(&o.name, "name", "", "robot name to enrol under (default: the hostname); a rented robot is known by its token, and the name only labels its process")
	f.StringVar(&o.stateDir, "state-dir", "", "where an enrolled robot keeps its identity (default "+robotagent.DefaultStateDir()+")")
	f.StringVar(&o.remoteAccess, "remote-access", "", "how people reach this machine, reported at enrolment: PROTOCOL://[USER@]HOST[:PORT] (rdp, ssh or vnc)")
	f.StringVar(&o.pluginDir, "plugin-dir", os.Getenv("RPACLOUD_PLUGIN_DIR"), "directory of third-party crawler and vendor plugin executables (default $RPACLOUD_PLUGIN_DIR)")
	f.StringVar(&o.logLevel, "log-level", "info", "debug, info, warn or error")
	f.DurationVar(&o.artifactRetention, "artifact-retention", robotagent.DefaultArtifactRetention, "how long the artefacts of failed attempts (screenshots) stay on this machine; older ones are deleted whenever new ones are kept; a negative value keeps them forever")
	cmd.AddCommand(newRobotRevokeCmd())  // cmd_enrol.go
	cmd.AddCommand(newRobotServiceCmd()) // cmd_robotsvc.go
	return cmd
}

// runRobot runs the robot agent. Secrets come from the environment by
// preference (a command line is visible to every user of the machine) and
// are removed from it, so nothing this process starts later inherits them.
func runRobot(ctx context.Context, o robotOptions, stderr io.Writer) int {
	secret := firstNonEmpty(os.Getenv("RPACLOUD_ROBOT_TOKEN"), o.token)
	join := firstNonEmpty(os.Getenv("RPACLOUD_JOIN_TOKEN"), o.joinToken)
	_ = os.Unsetenv("RPACLOUD_ROBOT_TOKEN")
	_ = os.Unsetenv("RPACLOUD_JOIN_TOKEN")
	log := newLogger(stderr, o.logLevel, "text")
	server, err := gqlclient.ParseServers("--server", o.servers...)
	if err == nil && len(server) == 0 {
		server, err = gqlclient.ParseServers("RPACLOUD_SERVER", os.Getenv("RPACLOUD_SERVER"))
	}
	if err != nil {
		fmt.Fprintln(stderr, "rpacloud robot: "+err.Error())
		return exitUsage
	}
	rented := secret != ""
	robotagent.Version = buildVersion().Version
	name, renew := "", false
	refused := func() int {
		fmt.Fprintf(stderr, "rpacloud robot: robot %s: its identity was revoked or is unknown to the server; enrol the machine again: put a new join token in RPACLOUD_JOIN_TOKEN (rpacloud pool join-token create) and start the agent again\n", name)
		return exitRefused
	}
	for {
		if !rented {
			var code int
			var got string
			server, secret, got, code = robotIdentity(ctx, o, server, join, renew, log)
			if code == exitRefused {
				return refused()
			}
			if code != exitOK {
				return code
			}
			name = got
		}
		if len(server) == 0 || secret == "" {
			fmt.Fprintln(stderr, "rpacloud robot: --server (or RPACLOUD_SERVER) and a robot token (RPACLOUD_ROBOT_TOKEN) or a join token (RPACLOUD_JOIN_TOKEN) are required")
			return exitUsage
		}
		err := runAgent(ctx, o, server, secret, log)
		if err == nil {
			return exitOK
		}
		if !errors.Is(err, gqlclient.ErrUnauthorized) {
			log.Error("robot stopped", "err", err)
			return exitFailure
		}
		// The token was refused: say so in one line, without the
		// daemon's raw answer, and restart only by enrolling again.
		switch {
		case rented:
			fmt.Fprintln(stderr, "rpacloud robot: the daemon refused this robot's token (revoked or unknown); a rented robot is started again by its pool")
			return exitRefused
		case join == "" || renew:
			return refused()
		}
		log.Warn("the daemon refused the robot's identity (revoked or unknown); enrolling again with the join token", "robot", name)
		renew = true
	}
}

// runAgent runs one robot agent with a robot token until ctx ends or the
// agent stops. One client, failing over between the daemons, serves the
// agent and its plugins' spec requests alike.
func runAgent(ctx context.Context, o robotOptions, servers []string, secret string, log *slog.Logger) error {
	client := gqlclient.NewFailover(servers, secret, log)
	plugins, host := robotPlugins(client, o.pluginDir, log) // cmd_plugins.go
	plugins.ArtifactRetention = o.artifactRetention
	defer host.Close()
	a := &robotagent.Agent{Client: client, Log: log, Runners: robotagent.Builtin(), Plugins: plugins}
	return a.Run(ctx)
}

// robotIdentity finds the robot's identity for an agent without a robot
// token: the one stored in the state directory, or a new one from the
// join token, which is then stored. renew enrols again even if an
// identity is stored (the daemon refused it), under the stored name unless
// --name says otherwise, and replaces it. It returns the servers, the robot
// token, the robot's name and an exit code. Neither token is ever logged.
func robotIdentity(ctx context.Context, o robotOptions, server []string, join string, renew bool, log *slog.Logger) ([]string, string, string, int) {
	dir := firstNonEmpty(o.stateDir, robotagent.DefaultStateDir())
	id, found, err := robotagent.LoadIdentity(dir)
	if err != nil {
		log.Error("rpacloud robot: cannot start", "err", err)
		return nil, "", "", exitFailure
	}
	if found && !renew {
		if join != "" {
			log.Info("robot identity found; the join token is not needed and was ignored", "robot", id.Robot, "state_dir", dir)
		}
		if len(server) == 0 {
			server = id.ServerList()
		}
		return server, id.Token, id.Robot, exitOK
	}
	if join == "" {
		return server, "", "", exitOK // runRobot names what is missing
	}
	if len(server) == 0 {
		server = id.ServerList()
	}
	if len(server) == 0 {
		log.Error("rpacloud robot: --server (or RPACLOUD_SERVER) is required to enrol")
		return nil, "", "", exitUsage
	}
	host, _ := os.Hostname()
	req := robotwire.EnrolRequest{JoinToken: join, Name: firstNonEmpty(o.name, id.Robot, host), Hostname: host,
		OS: runtime.GOOS + "/" + runtime.GOARCH, Addresses: robotagent.Addresses()}
	if o.remoteAccess != "" {
		if req.RemoteAccess, err = robotagent.ParseRemoteAccess(o.remoteAccess); err != nil {
			log.Error("rpacloud robot: " + err.Error())
			return nil, "", "", exitUsage
		}
	}
	// Fail before spending a use of the join token if the identity
	// could not be kept.
	if err := os.MkdirAll(dir, 0o700); err != nil {
		log.Error("rpacloud robot: robot state directory", "err", err)
		return nil, "", "", exitFailure
	}
	log.Info("enrolling", "server", server[0], "robot", req.Name, "state_dir", dir)
	id, err = robotagent.EnrolAny(ctx, nil, server, req, log.Warn)
	if err != nil {
		log.Error("rpacloud robot: cannot enrol", "err", err)
		if renew && errors.Is(err, robotagent.ErrEnrolRefused) {
			// The join token at hand will not do (used up, expired,
			// revoked): restarting cannot help either.
			return nil, "", "", exitRefused
		}
		return nil, "", "", exitFailure
	}
	if err := robotagent.SaveIdentity(dir, id); err != nil {
		// The token is spent on the daemon's side; without the file the
		// machine must enrol again, which an administrator must allow.
		log.Error("rpacloud robot: enrolled, but the identity could not be stored; revoke the robot and enrol again", "robot", id.Robot, "err", err)
		return nil, "", "", exitFailure
	}
	log.Info("enrolled", "robot", id.Robot, "pool", id.Pool, "identity", filepath.Join(dir, robotagent.IdentityFile))
	return server, id.Token, id.Robot, exitOK
}
