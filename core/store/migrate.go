package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"

	"ariga.io/atlas/sql/migrate"
	"ariga.io/atlas/sql/postgres"
	atschema "ariga.io/atlas/sql/schema"
	"ariga.io/atlas/sql/sqlite"
)

// The schema is changed only by the checked-in migration files, one
// directory per dialect, written by `make migration NAME=...` (migrategen)
// from ent/schema and verified by atlas.sum. The first file of each is the
// baseline: the schema exactly as the release before versioned migrations
// (d835a5a) made it with ent's auto-migration, so that a database made by
// that release can be adopted (see adopt).
//
//go:embed migrations
var migrationFiles embed.FS

// RevisionsTable is where the applied migration files are recorded, one row
// per file, beside the schema they made.
const RevisionsTable = "rpacloud_schema_revisions"

// migrationLockKey is the PostgreSQL advisory lock the daemons migrate
// under: any constant unlikely to collide with another application's on the
// same server ("rpacmigr" in ASCII).
const migrationLockKey int64 = 0x7270_6163_6d69_6772

// MigrationDir returns the checked-in migration files of a driver, in
// memory: a copy, so callers may write to it.
func MigrationDir(driverName string) (*migrate.MemDir, error) {
	d, err := dialectDir(driverName)
	if err != nil {
		return nil, err
	}
	entries, err := fs.ReadDir(migrationFiles, d)
	if err != nil {
		return nil, fmt.Errorf("migrations of %s: %w", driverName, err)
	}
	dir := &migrate.MemDir{}
	for _, e := range entries {
		b, err := fs.ReadFile(migrationFiles, path.Join(d, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("migrations of %s: %w", driverName, err)
		}
		if err := dir.WriteFile(e.Name(), b); err != nil {
			return nil, fmt.Errorf("migrations of %s: %w", driverName, err)
		}
	}
	return dir, nil
}

// MigrationSource is the directory, relative to the repository root, that
// holds a driver's migration files; migrategen writes there.
func MigrationSource(driverName string) (string, error) {
	d, err := dialectDir(driverName)
	return path.Join("core/store", d), err
}

func dialectDir(driverName string) (string, error) {
	switch driverName {
	case SQLite, "":
		return "migrations/sqlite", nil
	case Postgres:
		return "migrations/postgres", nil
	}
	return "", fmt.Errorf("migrations: unknown driver %q (want %q or %q)", driverName, SQLite, Postgres)
}

// atlasOpen opens Atlas's driver of a dialect over a connection or a
// transaction.
func atlasOpen(driverName string, conn atschema.ExecQuerier) (migrate.Driver, error) {
	if driverName == Postgres {
		return postgres.Open(conn)
	}
	return sqlite.Open(conn)
}

// applyMigrations brings the database to the newest migration file, under
// a lock so that daemons starting together migrate once: the others wait,
// then find nothing pending.
//
// PostgreSQL: a session advisory lock on one connection, each pending file
// in its own transaction (PostgreSQL's DDL is transactional). SQLite: the
// file's write lock, taken by BEGIN IMMEDIATE, held over all pending files
// in one transaction (SQLite's single writer is the lock; a failure leaves
// the file as it was).
func applyMigrations(ctx context.Context, db *sql.DB, driverName, operator string, dir migrate.Dir) (err error) {
	conn, err := db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("migrate: connection: %w", err)
	}
	defer conn.Close()
	if driverName == Postgres {
		if _, err := conn.ExecContext(ctx, "SELECT pg_advisory_lock($1)", migrationLockKey); err != nil {
			return fmt.Errorf("migrate: take the migration lock: %w", err)
		}
		defer func() {
			// A lock left on a pooled connection would block every later
			// start: on failure to release it, the connection is discarded
			// (closing it ends the session and its locks). false means this
			// session did not hold the lock: a transaction-pooling proxy
			// (PgBouncer) moved the session, and the lock is stuck in
			// another one; say so, since later starts will wait on it.
			var released bool
			if uerr := conn.QueryRowContext(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", migrationLockKey).Scan(&released); uerr != nil || !released {
				_ = conn.Raw(func(any) error { return driver.ErrBadConn })
				if uerr == nil && err == nil {
					err = errors.New("migrate: the migration lock was not held by this session at the end (a transaction-pooling proxy such as PgBouncer between the daemon and PostgreSQL?): use a direct or session-pooled DSN")
				}
			}
		}()
		if _, err := conn.ExecContext(ctx, revisionsDDL(driverName)); err != nil {
			return fmt.Errorf("migrate: create %s: %w", RevisionsTable, err)
		}
		pending, err := prepare(ctx, conn, driverName, dir, operator)
		if err != nil || len(pending) == 0 {
			return err
		}
		for _, f := range pending {
			if err := inTx(ctx, conn, "BEGIN", func() error {
				return execute(ctx, conn, driverName, dir, operator, f)
			}); err != nil {
				return err
			}
		}
		return nil
	}
	// SQLite rebuilds a table to change it (create, copy, drop, rename),
	// and with foreign keys enforced dropping the old table would run its
	// children's ON DELETE actions. The pragma cannot change inside a
	// transaction, so it is off around it, and the transaction commits only
	// if it broke no reference (foreign_key_check), as Atlas's own tool does.
	if _, err := conn.ExecContext(ctx, "PRAGMA foreign_keys = off"); err != nil {
		return fmt.Errorf("migrate sqlite: foreign keys off: %w", err)
	}
	defer func() {
		if _, ferr := conn.ExecContext(context.WithoutCancel(ctx), "PRAGMA foreign_keys = on"); ferr != nil {
			// Never hand the pool a connection without foreign keys.
			_ = conn.Raw(func(any) error { return driver.ErrBadConn })
		}
	}()
	return inTx(ctx, conn, "BEGIN IMMEDIATE", func() error {
		if _, err := conn.ExecContext(ctx, revisionsDDL(driverName)); err != nil {
			return fmt.Errorf("migrate: create %s: %w", RevisionsTable, err)
		}
		pending, err := prepare(ctx, conn, driverName, dir, operator)
		if err != nil || len(pending) == 0 {
			return err
		}
		before, err := brokenReferences(ctx, conn)
		if err != nil {
			return err
		}
		for _, f := range pending {
			if err := execute(ctx, conn, driverName, dir, operator, f); err != nil {
				return err
			}
		}
		after, err := brokenReferences(ctx, conn)
		if err != nil {
			return err
		}
		if after > before {
			return fmt.Errorf("migrate sqlite: the migration broke %d foreign key references (PRAGMA foreign_key_check); nothing was applied", after-before)
		}
		return nil
	})
}

// brokenReferences counts the rows whose foreign keys point nowhere.
func brokenReferences(ctx context.Context, conn *sql.Conn) (int, error) {
	rows, err := conn.QueryContext(ctx, "PRAGMA foreign_key_check")
	if err != nil {
		return 0, fmt.Errorf("migrate sqlite: foreign key check: %w", err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		n++
	}
	return n, rows.Err()
}

// inTx runs fn between begin and COMMIT on one connection, rolling back
// when fn fails. Plain statements rather than BeginTx: SQLite needs BEGIN
// IMMEDIATE whatever the DSN says, and Atlas's driver needs the connection.
func inTx(ctx context.Context, conn *sql.Conn, begin string, fn func() error) error {
	if _, err := conn.ExecContext(ctx, begin); err != nil {
		return fmt.Errorf("migrate: %s: %w", begin, err)
	}
	if err := fn(); err != nil {
		if _, rerr := conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK"); rerr != nil {
			// The session may still be in the transaction: not back to the pool.
			_ = conn.Raw(func(any) error { return driver.ErrBadConn })
			return errors.Join(err, fmt.Errorf("migrate: rollback: %w", rerr))
		}
		return err
	}
	if _, err := conn.ExecContext(ctx, "COMMIT"); err != nil {
		return fmt.Errorf("migrate: commit: %w", err)
	}
	return nil
}

// prepare reads where the database stands, under the lock, and returns the
// files still to apply. It adopts a database made by the release before
// versioned migrations, and refuses one made by a newer release.
func prepare(ctx context.Context, conn *sql.Conn, driverName string, dir migrate.Dir, operator string) ([]migrate.File, error) {
	files, err := dir.Files()
	if err != nil || len(files) == 0 {
		return nil, fmt.Errorf("migrate: no migration files for %s: %v", driverName, err)
	}
	rrw := &revisions{conn: conn, driver: driverName}
	revs, err := rrw.ReadRevisions(ctx)
	if err != nil {
		return nil, err
	}
	if err := refuseNewer(revs, files); err != nil {
		return nil, err
	}
	if len(revs) == 0 {
		adopted, err := adopt(ctx, conn, driverName, files[0])
		if err != nil {
			return nil, err
		}
		if adopted {
			if err := rrw.WriteRevision(ctx, &migrate.Revision{
				Version: files[0].Version(), Description: files[0].Desc(),
				Type: migrate.RevisionTypeBaseline, OperatorVersion: operator,
			}); err != nil {
				return nil, err
			}
		}
	}
	ex, err := executor(ctx, conn, driverName, dir, operator)
	if err != nil {
		return nil, err
	}
	pending, err := ex.Pending(ctx)
	if errors.Is(err, migrate.ErrNoPendingFiles) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("migrate %s: %w", driverName, err)
	}
	return pending, nil
}

// execute applies one file with Atlas's executor, which records it in the
// revisions table; the error names the file and the statement.
func execute(ctx context.Context, conn *sql.Conn, driverName string, dir migrate.Dir, operator string, f migrate.File) error {
	ex, err := executor(ctx, conn, driverName, dir, operator)
	if err != nil {
		return err
	}
	if err := ex.Execute(ctx, f); err != nil {
		var se *migrate.StmtExecError
		if errors.As(err, &se) {
			return fmt.Errorf("migrate %s: file %s: statement %q: %w", driverName, f.Name(), se.Stmt.Text, se.Err)
		}
		return fmt.Errorf("migrate %s: file %s: %w", driverName, f.Name(), err)
	}
	return nil
}

func executor(ctx context.Context, conn *sql.Conn, driverName string, dir migrate.Dir, operator string) (*migrate.Executor, error) {
	drv, err := atlasOpen(driverName, conn)
	if err != nil {
		return nil, fmt.Errorf("migrate %s: %w", driverName, err)
	}
	rrw := &revisions{conn: conn, driver: driverName}
	if driverName == Postgres {
		if err := conn.QueryRowContext(ctx, "SELECT current_schema()").Scan(&rrw.schema); err != nil {
			return nil, fmt.Errorf("migrate postgres: current schema: %w", err)
		}
	}
	ex, err := migrate.NewExecutor(checkedClean{drv}, dir, rrw, migrate.WithOperatorVersion(operator))
	if err != nil {
		return nil, fmt.Errorf("migrate %s: %w", driverName, err)
	}
	return ex, nil
}

// refuseNewer stops a binary from running on a schema a newer release made:
// it does not know what the unknown revisions changed, and going back is
// restoring a backup, never a guess.
func refuseNewer(revs []*migrate.Revision, files []migrate.File) error {
	known := make(map[string]bool, len(files))
	for _, f := range files {
		known[f.Version()] = true
	}
	var unknown []string
	for _, r := range revs {
		if !known[r.Version] {
			unknown = append(unknown, r.Version+"_"+r.Description)
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	return fmt.Errorf("migrate: the database was migrated by a newer rpacloud (revisions %s unknown to this binary, whose newest is %s): refusing to start; run the newer release, or restore the backup taken before the upgrade",
		strings.Join(unknown, ", "), files[len(files)-1].Name())
}

// adopt recognises a database made by the release before versioned
// migrations: ent's auto-migration made its tables, and it has no
// revisions. It is adopted only when its schema equals the baseline file's;
// otherwise the error names every difference. An empty database is not
// adopted (false): the executor applies everything to it.
func adopt(ctx context.Context, conn *sql.Conn, driverName string, baseline migrate.File) (bool, error) {
	if empty, err := isEmpty(ctx, conn, driverName); err != nil || empty {
		return false, err
	}
	drv, err := atlasOpen(driverName, conn)
	if err != nil {
		return false, fmt.Errorf("migrate %s: %w", driverName, err)
	}
	current, err := drv.InspectSchema(ctx, "", &atschema.InspectOptions{Exclude: []string{RevisionsTable}})
	if err != nil {
		return false, fmt.Errorf("migrate %s: inspect the database: %w", driverName, err)
	}
	if len(current.Tables) == 0 && len(current.Views) == 0 {
		return false, nil
	}
	want, err := baselineSchema(ctx, conn, driverName, baseline)
	if err != nil {
		return false, err
	}
	diffs, err := schemaDiff(drv, current, want)
	if err != nil {
		return false, err
	}
	if n := len(diffs); n > 0 {
		// Bounded: a database of another application differs everywhere.
		if n > 20 {
			diffs = append(diffs[:20], fmt.Sprintf("and %d more", n-20))
		}
		return false, fmt.Errorf("migrate %s: the database has tables but no %s, and its schema differs from the baseline %s in %d ways, so it was not made by the release before versioned migrations; refusing to guess:\n  %s",
			driverName, RevisionsTable, baseline.Name(), n, strings.Join(diffs, "\n  "))
	}
	return true, nil
}

// isEmpty tells whether the database has no table but the revisions', the
// common case, without Atlas's inspection (slow on PostgreSQL's catalogue).
func isEmpty(ctx context.Context, conn *sql.Conn, driverName string) (bool, error) {
	q := `SELECT count(*) FROM sqlite_master WHERE type IN ('table', 'view') AND name NOT LIKE 'sqlite_%' AND name <> ?`
	if driverName == Postgres {
		q = `SELECT count(*) FROM information_schema.tables WHERE table_schema = current_schema() AND table_name <> $1`
	}
	var n int
	if err := conn.QueryRowContext(ctx, q, RevisionsTable).Scan(&n); err != nil {
		return false, fmt.Errorf("migrate %s: count tables: %w", driverName, err)
	}
	return n == 0, nil
}

// checkedClean is Atlas's driver without its check that a database
// without revisions is empty: prepare made that check already, under the
// lock and cheaper (isEmpty), and adopted the database otherwise.
type checkedClean struct{ migrate.Driver }

func (checkedClean) CheckClean(context.Context, *migrate.TableIdent) error { return nil }

// schemaDiff describes the differences that would turn from into to, one
// line each; the sequences' positions are data, not schema, and are
// ignored.
func schemaDiff(drv migrate.Driver, from, to *atschema.Schema) ([]string, error) {
	for _, s := range []*atschema.Schema{from, to} {
		s.Name = ""
		for _, t := range s.Tables {
			t.Attrs = slices.DeleteFunc(t.Attrs, func(a atschema.Attr) bool {
				_, seq := a.(*sqlite.AutoIncrement)
				return seq
			})
		}
	}
	changes, err := drv.SchemaDiff(from, to)
	if err != nil {
		return nil, fmt.Errorf("migrate: compare with the baseline: %w", err)
	}
	var out []string
	for _, c := range changes {
		out = append(out, describeChange(c)...)
	}
	return out, nil
}

func describeChange(c atschema.Change) []string {
	switch c := c.(type) {
	case *atschema.AddTable:
		return []string{fmt.Sprintf("table %s is missing", c.T.Name)}
	case *atschema.DropTable:
		return []string{fmt.Sprintf("table %s is not in the baseline", c.T.Name)}
	case *atschema.ModifyTable:
		var out []string
		for _, tc := range c.Changes {
			var d string
			switch tc := tc.(type) {
			case *atschema.AddColumn:
				d = "column " + tc.C.Name + " is missing"
			case *atschema.DropColumn:
				d = "column " + tc.C.Name + " is not in the baseline"
			case *atschema.ModifyColumn:
				d = "column " + tc.From.Name + " differs"
			case *atschema.AddIndex:
				d = "index " + tc.I.Name + " is missing"
			case *atschema.DropIndex:
				d = "index " + tc.I.Name + " is not in the baseline"
			case *atschema.ModifyIndex:
				d = "index " + tc.From.Name + " differs"
			case *atschema.AddForeignKey:
				d = "foreign key " + tc.F.Symbol + " is missing"
			case *atschema.DropForeignKey:
				d = "foreign key " + tc.F.Symbol + " is not in the baseline"
			case *atschema.ModifyForeignKey:
				d = "foreign key " + tc.From.Symbol + " differs"
			default:
				d = fmt.Sprintf("%T", tc)
			}
			out = append(out, fmt.Sprintf("table %s: %s", c.T.Name, d))
		}
		return out
	}
	return []string{fmt.Sprintf("%T", c)}
}

// baselineSchema is the schema the baseline file makes, replayed where it
// leaves no trace: SQLite on a private in-memory database, PostgreSQL in a
// scratch schema inside a transaction that is rolled back.
func baselineSchema(ctx context.Context, conn *sql.Conn, driverName string, baseline migrate.File) (*atschema.Schema, error) {
	stmts, err := baseline.Stmts()
	if err != nil {
		return nil, fmt.Errorf("migrate: read %s: %w", baseline.Name(), err)
	}
	if driverName != Postgres {
		dev, err := openSQLiteMemory()
		if err != nil {
			return nil, err
		}
		defer dev.Close()
		for _, s := range stmts {
			if _, err := dev.ExecContext(ctx, s); err != nil {
				return nil, fmt.Errorf("migrate: replay %s: statement %q: %w", baseline.Name(), s, err)
			}
		}
		drv, err := sqlite.Open(dev)
		if err != nil {
			return nil, err
		}
		return drv.InspectSchema(ctx, "", nil)
	}
	var out *atschema.Schema
	err = func() error {
		tx, err := conn.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		defer tx.Rollback()
		const scratch = "rpacloud_baseline_check"
		for _, s := range []string{"CREATE SCHEMA " + scratch, "SET LOCAL search_path TO " + scratch} {
			if _, err := tx.ExecContext(ctx, s); err != nil {
				return fmt.Errorf("%s: %w", s, err)
			}
		}
		for _, s := range stmts {
			if _, err := tx.ExecContext(ctx, s); err != nil {
				return fmt.Errorf("replay %s: statement %q: %w", baseline.Name(), s, err)
			}
		}
		drv, err := postgres.Open(tx)
		if err != nil {
			return err
		}
		out, err = drv.InspectSchema(ctx, scratch, nil)
		return err
	}()
	if err != nil {
		return nil, fmt.Errorf("migrate postgres: the baseline's schema: %w", err)
	}
	return out, nil
}

// openSQLiteMemory opens a private in-memory SQLite database (one
// connection: each connection to :memory: is a database of its own).
func openSQLiteMemory() (*sql.DB, error) {
	registerDriver()
	db, err := sql.Open(sqliteDriverName, "file::memory:?_pragma=foreign_keys(1)")
	if err != nil {
		return nil, fmt.Errorf("open in-memory sqlite: %w", err)
	}
	db.SetMaxOpenConns(1)
	return db, nil
}
