// Command migrategen writes the next migration file of both databases from
// ent/schema: `make migration NAME=add_x` (from the repository root) runs
// it with a PostgreSQL from .ci/services.sh. It replays the checked-in
// files on an empty dev database (SQLite in memory; a scratch database on
// the server RPACLOUD_TEST_POSTGRES_DSN names), diffs the result against
// the ent schema, and writes the difference as
// core/store/migrations/{sqlite,postgres}/VERSION_NAME.sql with atlas.sum.
// Review the files, then commit them with the ent/schema change.
package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
	"time"

	"ariga.io/atlas/sql/migrate"
	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/rpacloud/rpacloud/core/store"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "migrategen:", err)
		os.Exit(1)
	}
}

var validName = regexp.MustCompile(`^[a-z0-9_]+$`)

func run() error {
	if len(os.Args) != 2 || !validName.MatchString(os.Args[1]) {
		return errors.New("usage: migrategen NAME (lower case, digits and _; e.g. add_pool_quota), from the repository root")
	}
	name := os.Args[1]
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	pgDSN := os.Getenv("RPACLOUD_TEST_POSTGRES_DSN")
	if pgDSN == "" {
		return errors.New("RPACLOUD_TEST_POSTGRES_DSN is empty: run `make migration NAME=...`, which starts a PostgreSQL through .ci/services.sh")
	}
	version := migrate.NewVersion() // one for both databases' files
	for _, drv := range []string{store.SQLite, store.Postgres} {
		if err := generate(ctx, drv, pgDSN, version, name); err != nil {
			return err
		}
	}
	return nil
}

func generate(ctx context.Context, drv, pgDSN, version, name string) error {
	src, err := store.MigrationSource(drv)
	if err != nil {
		return err
	}
	dir, err := migrate.NewLocalDir(src)
	if err != nil {
		return fmt.Errorf("%s: %w (run from the repository root)", src, err)
	}
	var dev *sql.DB
	if drv == store.Postgres {
		d, drop, err := scratchPostgres(ctx, pgDSN)
		if err != nil {
			return err
		}
		defer drop()
		dev = d
	} else if dev, err = store.OpenSQLiteDev(); err != nil {
		return err
	}
	defer dev.Close()
	err = store.PlanMigration(ctx, drv, dev, dir, version, name)
	if errors.Is(err, store.ErrNoChanges) {
		fmt.Printf("%s: no changes: the files in %s already make the ent schema\n", drv, src)
		return nil
	}
	if err != nil {
		return err
	}
	fmt.Printf("%s: wrote the next migration %q in %s: review it and commit it\n", drv, name, src)
	return nil
}

// scratchPostgres creates an empty database on the server and returns it
// with the function that drops it.
func scratchPostgres(ctx context.Context, dsn string) (*sql.DB, func(), error) {
	admin, err := sql.Open("pgx", dsn)
	if err != nil {
		return nil, nil, err
	}
	name := fmt.Sprintf("rpacloud_migrategen_%d", os.Getpid())
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		admin.Close()
		return nil, nil, fmt.Errorf("create the dev database %s: %w", name, err)
	}
	drop := func() {
		_, _ = admin.ExecContext(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
		admin.Close()
	}
	dev, err := sql.Open("pgx", withDatabase(dsn, name))
	if err != nil {
		drop()
		return nil, nil, err
	}
	return dev, drop, nil
}

// withDatabase swaps the database name of a postgres:// URL.
func withDatabase(dsn, name string) string {
	q := ""
	if i := strings.IndexByte(dsn, '?'); i >= 0 {
		dsn, q = dsn[:i], dsn[i:]
	}
	i := strings.LastIndexByte(dsn, '/')
	return dsn[:i+1] + name + q
}
