package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"

	"github.com/rpacloud/rpacloud/core/config"
	"github.com/rpacloud/rpacloud/core/robotagent"
	"github.com/rpacloud/rpacloud/core/server"
	"github.com/rpacloud/rpacloud/examples"
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

// runDev runs the embedded platform from the built-in quickstart config.
func runDev(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("dev", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dataDir := fs.String("data-dir", ".rpacloud", "data directory (SQLite file, tokens, robot logs)")
	listen := fs.String("listen", "127.0.0.1:8080", "address to serve on")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	cfgPath := fs.String("config", "", "HCL file or directory to run instead of the built-in quickstart (its server block is overridden)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg, diags, files := config.LoadSources(examples.QuickstartSources())
	if *cfgPath != "" {
		cfg, diags, files = config.Load(*cfgPath)
	}
	if diags.HasErrors() {
		_ = config.WriteDiagnostics(stderr, files, diags)
		return 1
	}
	abs, err := filepath.Abs(*dataDir)
	if err != nil {
		fmt.Fprintf(stderr, "rpacloud dev: data directory: %v\n", err)
		return 1
	}
	cfg.Server.DataDir = abs
	cfg.Server.Listen = *listen
	cfg.Server.PublicURL = "http://" + *listen
	cfg.Server.Database.Driver, cfg.Server.Database.DSN = "sqlite", ""
	cfg.Server.PluginDir = filepath.Join(abs, "plugins")
	// The address is bound before a Vault dev server picks its free port,
	// which could otherwise be this one.
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintf(stderr, "rpacloud dev: listen on %s: %v\n", *listen, err)
		return 1
	}
	defer ln.Close()
	stopVault, err := devVault(ctx, cfg, abs, stdout) // cmd_credential.go
	if err != nil {
		fmt.Fprintf(stderr, "rpacloud dev: %v\n", err)
		return 1
	}
	defer stopVault()
	log := newLogger(stderr, *logLevel, "text")
	err = server.Run(ctx, server.Options{Config: cfg, Dev: true, Logger: log, SelfExe: selfExe(), Stdout: stdout, Listener: ln})
	if err != nil {
		log.Error("rpacloud dev stopped", "err", err)
		return 1
	}
	return 0
}

// runServer runs the daemon from an HCL configuration directory.
func runServer(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("server", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "HCL configuration file or directory (required)")
	logFormat := fs.String("log-format", "json", "json or text")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *cfgPath == "" {
		fmt.Fprintln(stderr, "rpacloud server: --config is required")
		return 2
	}
	cfg, diags, files := config.Load(*cfgPath)
	if len(diags) > 0 {
		_ = config.WriteDiagnostics(stderr, files, diags)
	}
	if diags.HasErrors() {
		return 1
	}
	if env := os.Getenv("RPACLOUD_DATABASE_DSN"); env != "" && cfg.Server.Database.DSN == "" {
		cfg.Server.Database.DSN = env
	}
	log := newLogger(stderr, cfg.Server.LogLevel, *logFormat)
	if err := server.Run(ctx, server.Options{Config: cfg, Logger: log, SelfExe: selfExe(), Stdout: stdout}); err != nil {
		log.Error("rpacloud server stopped", "err", err)
		return 1
	}
	return 0
}

// runRobot runs the robot agent. The token comes from the environment by
// preference: a command line is visible to every user of the machine.
func runRobot(ctx context.Context, args []string, _ io.Writer, stderr io.Writer) int {
	fs := flag.NewFlagSet("robot", flag.ContinueOnError)
	fs.SetOutput(stderr)
	serverURL := fs.String("server", "", "daemon URL, e.g. http://127.0.0.1:8080 (required)")
	tok := fs.String("token", "", "robot token (prefer the RPACLOUD_ROBOT_TOKEN environment variable)")
	_ = fs.String("name", "", "robot name, for the process list only (the daemon knows the robot by its token)")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	secret := *tok
	if secret == "" {
		secret = os.Getenv("RPACLOUD_ROBOT_TOKEN")
	}
	if *serverURL == "" || secret == "" {
		fmt.Fprintln(stderr, "rpacloud robot: --server and a token (--token or RPACLOUD_ROBOT_TOKEN) are required")
		return 2
	}
	// The token must not reach anything this process starts later.
	_ = os.Unsetenv("RPACLOUD_ROBOT_TOKEN")
	log := newLogger(stderr, *logLevel, "text")
	robotagent.Version = version
	plugins, host := robotPlugins(*serverURL, secret, log) // cmd_plugins.go
	defer host.Close()
	a := &robotagent.Agent{Client: newClient(*serverURL, secret), Log: log, Runners: robotagent.Builtin(), Plugins: plugins}
	if err := a.Run(ctx); err != nil {
		log.Error("robot stopped", "err", err)
		return 1
	}
	return 0
}
