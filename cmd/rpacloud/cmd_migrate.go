package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/rpacloud/rpacloud/cmd/rpacloud/builtin"
	"github.com/rpacloud/rpacloud/core/config"
	"github.com/rpacloud/rpacloud/core/store"
)

// newMigrateCmd is for operators who migrate before rolling the daemons:
// the daemon applies the same files at start, under the same lock.
func newMigrateCmd() *cobra.Command {
	var cfgPath string
	status := &cobra.Command{
		Use:   "status --config PATH",
		Short: "list the migrations applied to the database and those this binary would apply (never creates the database)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return exit(runMigrate(cmd.Context(), cfgPath, false, cmd.OutOrStdout(), cmd.ErrOrStderr()))
		},
	}
	apply := &cobra.Command{
		Use:   "apply --config PATH",
		Short: "apply the pending migrations under the database lock and exit, as the daemon does at start",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return exit(runMigrate(cmd.Context(), cfgPath, true, cmd.OutOrStdout(), cmd.ErrOrStderr()))
		},
	}
	for _, c := range []*cobra.Command{status, apply} {
		c.Flags().StringVar(&cfgPath, "config", "", "the daemon's HCL configuration file or directory (required): its server.database block, or RPACLOUD_DATABASE_DSN")
	}
	return group(&cobra.Command{
		Use:   "migrate",
		Short: "the database schema's versioned migrations",
		Long: `The daemon applies the migration files it carries at start, under a
database lock, so that daemons starting together migrate once. These
commands show where a database stands and migrate it without starting a
daemon, e.g. before rolling the daemons to a new release.`,
	}, status, apply)
}

func runMigrate(ctx context.Context, cfgPath string, apply bool, stdout, stderr io.Writer) int {
	if cfgPath == "" {
		fmt.Fprintln(stderr, "rpacloud migrate: --config is required")
		return 2
	}
	plugins := &builtin.Schemas{SelfExe: selfExe()}
	cfg, diags, files := config.LoadWith(ctx, plugins, cfgPath)
	plugins.Close()
	if len(diags) > 0 {
		_ = config.WriteDiagnostics(stderr, files, diags)
	}
	if diags.HasErrors() {
		return 1
	}
	// The same database the daemon would open (cmd/rpacloud/daemon).
	driver, dsn := cfg.Server.Database.Driver, cfg.Server.Database.DSN
	switch driver {
	case "", store.SQLite:
		driver = store.SQLite
		if dsn == "" {
			dsn = filepath.Join(cfg.Server.DataDir, "rpacloud.db")
		}
	case store.Postgres:
		if dsn == "" {
			dsn = os.Getenv("RPACLOUD_DATABASE_DSN")
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	if apply {
		db, err := store.Open(ctx, driver, dsn)
		if err != nil {
			fmt.Fprintln(stderr, "rpacloud migrate apply:", err)
			return 1
		}
		db.Close()
	}
	applied, pending, err := store.Status(ctx, driver, dsn)
	if err != nil {
		fmt.Fprintln(stderr, "rpacloud migrate status:", err)
		return 1
	}
	for _, r := range applied {
		how := "applied"
		if r.Baseline {
			how = "baseline (adopted: made by the release before versioned migrations)"
		}
		fmt.Fprintf(stdout, "%s_%s\t%s\t%s\n", r.Version, r.Description, r.ExecutedAt.UTC().Format(time.RFC3339), how)
	}
	for _, p := range pending {
		fmt.Fprintf(stdout, "%s\tpending\n", p)
	}
	if len(applied) == 0 && len(pending) > 0 {
		fmt.Fprintln(stdout, "(no revisions: an empty database, or one made by the release before versioned migrations, adopted at the next start)")
	}
	return 0
}
