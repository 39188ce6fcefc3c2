// Package store opens the database behind the daemon: an embedded SQLite
// file by default, PostgreSQL in production. Both go through ent, and both
// are migrated on open so that a fresh data directory is usable at once.
// SyncConfig (sync.go) makes the stored customers, pools and processes
// match the configuration at start-up, in one transaction. Every statement
// sent through the ent client is counted by kind (statements.go,
// DB.Statements), for /metrics and `rpacloud bench fleet`.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"entgo.io/ent/dialect"
	entsql "entgo.io/ent/dialect/sql"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver
	"modernc.org/sqlite"

	"github.com/rpacloud/rpacloud/ent"
	_ "github.com/rpacloud/rpacloud/ent/runtime" // ent hooks and defaults
)

// Driver names accepted in configuration.
const (
	SQLite   = "sqlite"
	Postgres = "postgres"
)

// DB is an open database: the ent client plus what callers need to know
// about the engine behind it.
type DB struct {
	*ent.Client
	Driver string
	sqlDB  *sql.DB
	stmts  *Statements
}

// SQL returns the underlying database handle, for the few statements ent
// cannot express (row locks with SKIP LOCKED, sampling).
func (d *DB) SQL() *sql.DB { return d.sqlDB }

// Close closes the client and the pool.
func (d *DB) Close() error { return d.Client.Close() }

var registerSQLite sync.Once

func registerDriver() {
	registerSQLite.Do(func() { sql.Register(sqliteDriverName, &sqlite.Driver{}) })
}

// sqliteDriverName is the name under which modernc's pure-Go driver is
// registered for ent: ent's dialect name is "sqlite3" but modernc registers
// itself as "sqlite", so we register it again under a private name rather
// than claiming the global "sqlite3".
const sqliteDriverName = "rpacloud-sqlite"

// SQLiteDSN builds the connection string for a database file. The pragmas
// matter: foreign keys on (ent's migration refuses to run without them),
// WAL so readers never block the writer, a busy timeout, immediate
// transactions so a read-then-write transaction takes the write lock at
// BEGIN instead of failing with SQLITE_BUSY half-way, and a sortable time
// format.
func SQLiteDSN(path string) string {
	v := url.Values{}
	v.Add("_pragma", "foreign_keys(1)")
	v.Add("_pragma", "journal_mode(WAL)")
	v.Add("_pragma", "busy_timeout(10000)")
	v.Add("_pragma", "synchronous(NORMAL)")
	v.Set("_txlock", "immediate")
	v.Set("_time_format", "sqlite")
	// Escaped: a "?", "#" or "%" in a directory name would otherwise
	// start the URI's query or fragment, and SQLite would open another file.
	return "file:" + (&url.URL{Path: path}).EscapedPath() + "?" + v.Encode()
}

// PostgresMaxConns is how many connections the daemon opens to PostgreSQL:
// how many of its statements run at once. core/robotapi wakes no more
// robots of a pool to claim at once than this.
const PostgresMaxConns = 32

// Open connects to the database and migrates it to the current schema
// (applyMigrations): it refuses a database a newer release migrated, and
// one that has tables but neither revisions nor the baseline's schema.
func Open(ctx context.Context, driver, dsn string) (*DB, error) {
	db, dia, driver, err := connect(ctx, driver, dsn)
	if err != nil {
		return nil, err
	}
	dir, err := MigrationDir(driver)
	if err != nil {
		db.Close()
		return nil, err
	}
	if err := applyMigrations(ctx, db, driver, "rpacloud", dir); err != nil {
		db.Close()
		return nil, redactErr(err, dsn)
	}
	stmts := &Statements{}
	client := ent.NewClient(ent.Driver(&countingDriver{Driver: entsql.OpenDB(dia, db), n: stmts}))
	return &DB{Client: client, Driver: driver, sqlDB: db, stmts: stmts}, nil
}

// Status connects to the database without migrating it and lists the
// migration files applied to it and those Open would apply
// (`rpacloud migrate status`).
func Status(ctx context.Context, driver, dsn string) (applied []Revision, pending []string, err error) {
	// Asking must not create: a mistyped path would otherwise become an
	// empty database reported as "baseline pending".
	if (driver == SQLite || driver == "") && !strings.HasPrefix(dsn, "file:") {
		if _, err := os.Stat(dsn); err != nil {
			return nil, nil, fmt.Errorf("sqlite database %s: %w", dsn, err)
		}
	}
	db, _, driver, err := connect(ctx, driver, dsn)
	if err != nil {
		return nil, nil, err
	}
	defer db.Close()
	applied, pending, err = MigrationStatus(ctx, db, driver)
	if err != nil {
		return nil, nil, redactErr(err, dsn)
	}
	return applied, pending, nil
}

// connect opens the connection pool of a driver, checked with a ping; it
// returns ent's dialect and the driver's canonical name too.
func connect(ctx context.Context, driver, dsn string) (*sql.DB, string, string, error) {
	var (
		db  *sql.DB
		dia string
		err error
	)
	switch driver {
	case SQLite, "":
		registerDriver()
		if !strings.HasPrefix(dsn, "file:") {
			if err := os.MkdirAll(filepath.Dir(dsn), 0o700); err != nil {
				return nil, "", "", fmt.Errorf("open sqlite: create data directory: %w", err)
			}
			dsn = SQLiteDSN(dsn)
		}
		db, err = sql.Open(sqliteDriverName, dsn)
		if err != nil {
			return nil, "", "", fmt.Errorf("open sqlite: %w", err)
		}
		// One connection is SQLite's one writer. Every transaction is
		// serialised here, in Go, instead of racing for the file lock, so
		// "database is locked" never reaches a caller.
		db.SetMaxOpenConns(1)
		dia = dialect.SQLite
		driver = SQLite
	case Postgres:
		if dsn == "" {
			return nil, "", "", errors.New("open postgres: no DSN (set database.dsn in the server block or RPACLOUD_DATABASE_DSN)")
		}
		db, err = sql.Open("pgx", dsn)
		if err != nil {
			return nil, "", "", fmt.Errorf("open postgres: %w", err)
		}
		db.SetMaxOpenConns(PostgresMaxConns)
		db.SetMaxIdleConns(8)
		dia = dialect.Postgres
	default:
		return nil, "", "", fmt.Errorf("open database: unknown driver %q (want %q or %q)", driver, SQLite, Postgres)
	}
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, "", "", fmt.Errorf("open %s: %w", driver, redactErr(err, dsn))
	}
	return db, dia, driver, nil
}

// redactErr keeps a password that is part of the DSN out of error messages:
// some drivers echo the connection string back.
func redactErr(err error, dsn string) error {
	u, perr := url.Parse(dsn)
	if perr != nil || u.User == nil {
		return err
	}
	pw, ok := u.User.Password()
	if !ok || pw == "" || !strings.Contains(err.Error(), pw) {
		return err
	}
	return errors.New(strings.ReplaceAll(err.Error(), pw, "****"))
}
