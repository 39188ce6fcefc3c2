package store_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"ariga.io/atlas/sql/migrate"
	entsql "entgo.io/ent/dialect/sql"

	"github.com/rpacloud/rpacloud/core/store"
	"github.com/rpacloud/rpacloud/core/store/storetest"
	"github.com/rpacloud/rpacloud/ent"
)

// both runs fn for SQLite and PostgreSQL with the DSN of an empty,
// never-migrated database.
func both(t *testing.T, fn func(t *testing.T, driver, dsn string)) {
	t.Run("sqlite", func(t *testing.T) { fn(t, store.SQLite, filepath.Join(t.TempDir(), "db.sqlite")) })
	t.Run("postgres", func(t *testing.T) { fn(t, store.Postgres, storetest.EmptyPostgres(t)) })
}

func storetestSys() context.Context { return sys() }

func rawOpen(t *testing.T, driver, dsn string) *sql.DB {
	t.Helper()
	name, d := "pgx", dsn
	if driver == store.SQLite {
		name, d = "sqlite", store.SQLiteDSN(dsn)
	}
	db, err := sql.Open(name, d)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func files(t *testing.T, driver string) []migrate.File {
	t.Helper()
	dir, err := store.MigrationDir(driver)
	if err != nil {
		t.Fatal(err)
	}
	fs, err := dir.Files()
	if err != nil {
		t.Fatal(err)
	}
	return fs
}

// The checked-in migration files make exactly the schema ent/schema
// describes, on both databases: replayed on an empty dev database and
// compared with the ent schema, nothing is left to write.
func TestMigrationsMatchSchema(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) {
		dev, err := store.OpenSQLiteDev()
		if err != nil {
			t.Fatal(err)
		}
		defer dev.Close()
		checkNoDrift(t, store.SQLite, dev)
	})
	t.Run("postgres", func(t *testing.T) {
		dev := rawOpen(t, store.Postgres, storetest.EmptyPostgres(t))
		checkNoDrift(t, store.Postgres, dev)
	})
}

func checkNoDrift(t *testing.T, driver string, dev *sql.DB) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dir, err := store.MigrationDir(driver)
	if err != nil {
		t.Fatal(err)
	}
	before, _ := dir.Files()
	err = store.PlanMigration(ctx, driver, dev, dir, "", "drift")
	if errors.Is(err, store.ErrNoChanges) {
		return
	}
	if err != nil {
		t.Fatalf("%v\n(a file of core/store/migrations/%s edited by hand? atlas.sum guards them: add a new migration instead)", err, driver)
	}
	after, _ := dir.Files()
	var sql string
	if len(after) > len(before) {
		sql = string(after[len(after)-1].Bytes())
	}
	t.Fatalf("ent/schema and core/store/migrations/%s disagree: run `make migration NAME=<what_changed>` from the repository root and commit the files it writes. The missing migration:\n%s", driver, sql)
}

// A fresh database gets every file, recorded once each; opening it again
// applies nothing.
func TestMigrateFreshAndReopen(t *testing.T) {
	both(t, func(t *testing.T, driver, dsn string) {
		ctx := context.Background()
		for range 2 {
			db, err := store.Open(ctx, driver, dsn)
			if err != nil {
				t.Fatal(err)
			}
			db.Close()
		}
		applied, pending, err := store.MigrationStatus(ctx, rawOpen(t, driver, dsn), driver)
		if err != nil {
			t.Fatal(err)
		}
		if len(applied) != len(files(t, driver)) || len(pending) != 0 {
			t.Fatalf("applied %v, pending %v; want every one of %d files applied once", applied, pending, len(files(t, driver)))
		}
		if applied[0].Baseline {
			t.Fatal("a fresh database's baseline is marked adopted, not run")
		}
	})
}

// Daemons starting together on one database migrate it once: the others
// wait for the lock, then find nothing pending.
func TestMigrateConcurrentOpens(t *testing.T) {
	both(t, func(t *testing.T, driver, dsn string) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		const n = 4
		var wg sync.WaitGroup
		errs := make([]error, n)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				db, err := store.Open(ctx, driver, dsn)
				if err == nil {
					db.Close()
				}
				errs[i] = err
			}()
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Errorf("open %d: %v", i, err)
			}
		}
		var rows int
		if err := rawOpen(t, driver, dsn).QueryRowContext(ctx, "SELECT count(*) FROM "+store.RevisionsTable).Scan(&rows); err != nil {
			t.Fatal(err)
		}
		if want := len(files(t, driver)); rows != want {
			t.Fatalf("%d revisions after %d racing opens, want %d (one per file)", rows, n, want)
		}
	})
}

// A database a newer release migrated is refused: this binary does not
// know what its unknown revisions changed.
func TestMigrateRefusesNewerDatabase(t *testing.T) {
	both(t, func(t *testing.T, driver, dsn string) {
		ctx := context.Background()
		db, err := store.Open(ctx, driver, dsn)
		if err != nil {
			t.Fatal(err)
		}
		db.Close()
		raw := rawOpen(t, driver, dsn)
		q := `INSERT INTO ` + store.RevisionsTable + ` (version, description, type, applied, total, executed_at, execution_time, error, error_stmt, hash, partial_hashes, operator_version)
			VALUES ('99991231000000', 'from_the_future', 2, 1, 1, '2999-01-01T00:00:00Z', 0, '', '', '', '', 'rpacloud')`
		if _, err := raw.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
		_, err = store.Open(ctx, driver, dsn)
		if err == nil || !strings.Contains(err.Error(), "newer rpacloud") || !strings.Contains(err.Error(), "99991231000000_from_the_future") {
			t.Fatalf("open of a newer database: %v; want a refusal naming the unknown revision", err)
		}
	})
}

// A database with tables but no revisions that is not the baseline's
// schema is refused, with its differences named, never adopted.
func TestMigrateRefusesUnknownSchema(t *testing.T) {
	both(t, func(t *testing.T, driver, dsn string) {
		ctx := context.Background()
		raw := rawOpen(t, driver, dsn)
		if _, err := raw.ExecContext(ctx, "CREATE TABLE customers (id integer PRIMARY KEY, nickname text)"); err != nil {
			t.Fatal(err)
		}
		_, err := store.Open(ctx, driver, dsn)
		if err == nil || !strings.Contains(err.Error(), "differs from the baseline") || !strings.Contains(err.Error(), "nickname") {
			t.Fatalf("open of a foreign schema: %v; want a refusal naming the differences", err)
		}
		// SQLite rolled back the revisions table with the rest; PostgreSQL
		// keeps it, empty.
		var n int
		err = raw.QueryRowContext(ctx, "SELECT count(*) FROM "+store.RevisionsTable).Scan(&n)
		if (err != nil && !strings.Contains(err.Error(), "no such table")) || n != 0 {
			t.Fatalf("revisions after a refusal: %d, %v; want none", n, err)
		}
	})
}

// A failing migration file leaves the database as it was, and the error
// names the file and the statement.
func TestMigrateFailureRollsBack(t *testing.T) {
	both(t, func(t *testing.T, driver, dsn string) {
		ctx := context.Background()
		db, err := store.Open(ctx, driver, dsn)
		if err != nil {
			t.Fatal(err)
		}
		db.Close()
		dir, err := store.MigrationDir(driver)
		if err != nil {
			t.Fatal(err)
		}
		bad := "ALTER TABLE pools ADD COLUMN half_done integer NULL;\nCREATE INDEX broken ON no_such_table (x);\n"
		if err := dir.WriteFile("99990101000000_broken.sql", []byte(bad)); err != nil {
			t.Fatal(err)
		}
		sum, err := dir.Checksum()
		if err != nil {
			t.Fatal(err)
		}
		if err := migrate.WriteSumFile(dir, sum); err != nil {
			t.Fatal(err)
		}
		raw := rawOpen(t, driver, dsn)
		err = store.ApplyMigrations(ctx, raw, driver, dir)
		if err == nil || !strings.Contains(err.Error(), "99990101000000_broken.sql") || !strings.Contains(err.Error(), "no_such_table") {
			t.Fatalf("apply of a broken file: %v; want an error naming the file and the statement", err)
		}
		if _, err := raw.ExecContext(ctx, "SELECT half_done FROM pools"); err == nil {
			t.Fatal("the failed file's first statement stayed applied")
		}
		var n int
		if err := raw.QueryRowContext(ctx, "SELECT count(*) FROM "+store.RevisionsTable+" WHERE version = '99990101000000'").Scan(&n); err != nil || n != 0 {
			t.Fatalf("revision of the failed file: %d rows, %v; want none", n, err)
		}
		// And the database still opens with the good files.
		db, err = store.Open(ctx, driver, dsn)
		if err != nil {
			t.Fatalf("reopen after a failed migration: %v", err)
		}
		db.Close()
	})
}

// A SQLite migration that rebuilds a referenced table (how SQLite changes
// one) keeps the rows that point at it, and foreign keys are enforced
// again afterwards.
func TestMigrateSQLiteRebuildKeepsReferences(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "db.sqlite")
	db, err := store.Open(ctx, store.SQLite, path)
	if err != nil {
		t.Fatal(err)
	}
	c := storetestSys()
	pl := db.Pool.Create().SetName("p").SetProvider("local").SaveX(c)
	db.Process.Create().SetName("echo").SetPoolID(pl.ID).SaveX(c)
	db.Close()
	dir, err := store.MigrationDir(store.SQLite)
	if err != nil {
		t.Fatal(err)
	}
	var cols string
	raw := rawOpen(t, store.SQLite, path)
	raw.SetMaxOpenConns(1) // the connection the migration used is the one checked after
	if err := raw.QueryRowContext(ctx, "SELECT group_concat(name, ', ') FROM pragma_table_info('pools')").Scan(&cols); err != nil {
		t.Fatal(err)
	}
	var ddl string
	if err := raw.QueryRowContext(ctx, "SELECT sql FROM sqlite_master WHERE name = 'pools'").Scan(&ddl); err != nil {
		t.Fatal(err)
	}
	rebuild := strings.Replace(ddl, "`pools`", "`new_pools`", 1) + ";\n" +
		"INSERT INTO `new_pools` (" + cols + ") SELECT " + cols + " FROM `pools`;\n" +
		"DROP TABLE `pools`;\n" +
		"ALTER TABLE `new_pools` RENAME TO `pools`;\n" +
		"CREATE UNIQUE INDEX `pools_name_key` ON `pools` (`name`);\n"
	if err := dir.WriteFile("99990101000000_rebuild_pools.sql", []byte(rebuild)); err != nil {
		t.Fatal(err)
	}
	sum, err := dir.Checksum()
	if err != nil {
		t.Fatal(err)
	}
	if err := migrate.WriteSumFile(dir, sum); err != nil {
		t.Fatal(err)
	}
	if err := store.ApplyMigrations(ctx, raw, store.SQLite, dir); err != nil {
		t.Fatalf("rebuild of a referenced table: %v", err)
	}
	var n, fk int
	if err := raw.QueryRowContext(ctx, "SELECT count(*) FROM processes").Scan(&n); err != nil || n != 1 {
		t.Fatalf("processes after rebuilding their pools: %d, %v; want 1", n, err)
	}
	if err := raw.QueryRowContext(ctx, "PRAGMA foreign_keys").Scan(&fk); err != nil || fk != 1 {
		t.Fatalf("foreign keys after a migration: %d, %v; want enforced", fk, err)
	}
}

// What opening a fresh database costs with the migration files, beside
// what ent's auto-migration (the release before) cost: every test of the
// repository opens one.
func BenchmarkOpenFresh(b *testing.B) {
	ctx := context.Background()
	for _, driver := range []string{store.SQLite, store.Postgres} {
		fresh := func(b *testing.B, i int) string {
			if driver == store.SQLite {
				return filepath.Join(b.TempDir(), fmt.Sprintf("%d.db", i))
			}
			b.StopTimer()
			defer b.StartTimer()
			return storetest.EmptyPostgres(b)
		}
		b.Run(driver+"/migrations", func(b *testing.B) {
			for i := range b.N {
				db, err := store.Open(ctx, driver, fresh(b, i))
				if err != nil {
					b.Fatal(err)
				}
				db.Close()
			}
		})
		b.Run(driver+"/auto-migration", func(b *testing.B) {
			for i := range b.N {
				dsn, name, dia := fresh(b, i), "pgx", "postgres"
				if driver == store.SQLite {
					dsn, name, dia = store.SQLiteDSN(dsn), "sqlite", "sqlite3"
				}
				raw, err := sql.Open(name, dsn)
				if err != nil {
					b.Fatal(err)
				}
				if driver == store.SQLite {
					raw.SetMaxOpenConns(1)
				}
				c := ent.NewClient(ent.Driver(entsql.OpenDB(dia, raw)))
				if err := c.Schema.Create(ctx); err != nil {
					b.Fatal(err)
				}
				c.Close()
			}
		})
	}
}
