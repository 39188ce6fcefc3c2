package main

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"path/filepath"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/rpacloud/rpacloud/cmd/rpacloud/builtin"
	"github.com/rpacloud/rpacloud/core/config"
	"github.com/rpacloud/rpacloud/core/store"
)

type backupOptions struct {
	cfgPath  string
	database string
	force    bool
}

func newBackupCmd() *cobra.Command {
	var o backupOptions
	cmd := &cobra.Command{
		Use:   "backup [--config PATH | --database FILE] [--force] DEST",
		Short: "copy the SQLite database to DEST while the daemon runs",
		Long: `Copy the daemon's SQLite database to the file DEST, online: the daemon keeps
serving while SQLite writes one consistent snapshot (VACUUM INTO). The
copy is written next to DEST with mode 0600, checked (integrity check,
foreign keys, rows per table) and only then renamed to DEST; an existing
DEST is refused unless --force. The database is the server block's
data_dir/rpacloud.db of --config, or --database FILE, or by default
.rpacloud/rpacloud.db (rpacloud dev's).

To restore: stop the daemon, copy DEST to data_dir/rpacloud.db, delete
rpacloud.db-wal and rpacloud.db-shm next to it, start the daemon.

PostgreSQL is backed up with its own tools (pg_dump -Fc, or the provider's
snapshots): with a postgres database the command says how and exits 1.

-o json prints {"path", "bytes", "rows": {table: n}, "took_ns"}.`,
		Args: cobra.ExactArgs(1),
	}
	cmd.Flags().StringVar(&o.cfgPath, "config", "", "the daemon's HCL file or directory: its server block names the database")
	cmd.Flags().StringVar(&o.database, "database", "", "the SQLite database file (instead of --config)")
	cmd.Flags().BoolVar(&o.force, "force", false, "replace DEST if it exists")
	cmd.MarkFlagsMutuallyExclusive("config", "database")
	out := addOutputFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		return exit(runBackup(cmd.Context(), o, args[0], out, cmd.OutOrStdout(), cmd.ErrOrStderr()))
	}
	return cmd
}

func runBackup(ctx context.Context, o backupOptions, dest string, out *output, stdout, stderr io.Writer) int {
	src := o.database
	if src == "" {
		src = filepath.Join(config.DefaultDataDir, "rpacloud.db")
	}
	if o.cfgPath != "" {
		plugins := &builtin.Schemas{SelfExe: selfExe()}
		cfg, diags, files := config.LoadWith(ctx, plugins, o.cfgPath)
		plugins.Close()
		if diags.HasErrors() {
			_ = config.WriteDiagnostics(stderr, files, diags)
			return exitFailure
		}
		db := cfg.Server.Database
		if db.Driver == store.Postgres {
			fmt.Fprint(stderr, postgresBackupHelp(db.DSN))
			return exitFailure
		}
		// A DSN may be a file: URI with the store's pragmas.
		src, _, _ = strings.Cut(strings.TrimPrefix(db.DSN, "file:"), "?")
		if strings.HasPrefix(db.DSN, "file:") {
			if p, err := url.PathUnescape(src); err == nil {
				src = p // a URI's path is escaped (%20 for a space)
			}
		}
		if src == "" {
			src = filepath.Join(cfg.Server.DataDir, "rpacloud.db")
		}
	}
	b, err := store.BackupSQLite(ctx, src, dest, o.force)
	if err != nil {
		fmt.Fprintln(stderr, "rpacloud:", err)
		return exitFailure
	}
	if out.JSON() {
		return printJSON(stdout, stderr, b)
	}
	tables := make([]string, 0, len(b.Rows))
	total := 0
	for t, n := range b.Rows {
		tables = append(tables, t)
		total += n
	}
	sort.Strings(tables)
	fmt.Fprintf(stdout, "backed up %s to %s: %d bytes, %d rows in %d tables, checked, in %s\n", src, b.Path, b.Bytes, total, len(tables), b.Took.Round(1e6))
	if b.DanglingRows > 0 {
		fmt.Fprintf(stdout, "  warning: %d rows (counted up to 1000) refer to a missing row, in the source as in the copy: PRAGMA foreign_key_check lists them\n", b.DanglingRows)
	}
	for _, t := range []string{"batches", "tasks", "attempts", "events", "audit_entries"} {
		if n, ok := b.Rows[t]; ok {
			fmt.Fprintf(stdout, "  %-14s %d\n", t, n)
		}
	}
	return exitOK
}

// postgresBackupHelp says how to back up a PostgreSQL deployment; the DSN
// is shown without its password.
func postgresBackupHelp(dsn string) string {
	shown := "$RPACLOUD_DATABASE_DSN"
	if dsn != "" {
		shown = "'" + redactDSN(dsn) + "'"
	}
	return `rpacloud backup copies SQLite databases only. This configuration uses
PostgreSQL: back it up with PostgreSQL's own tools, from a machine whose
pg_dump is at least the server's version, while the daemons run:

  pg_dump -Fc --file rpacloud-$(date +%F).dump ` + shown + `

(the password from ~/.pgpass or PGPASSWORD, never the command line). Restore
into a new, empty database, then point the daemons' DSN at it:

  createdb rpacloud_restored && pg_restore --no-owner -d rpacloud_restored rpacloud-DATE.dump

See README.md, "Backups", for Vault's snapshot and the order of a restore.
`
}

func redactDSN(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil || u.Scheme == "" {
		return "DSN"
	}
	return u.Redacted() // the password, if any, as xxxxx
}
