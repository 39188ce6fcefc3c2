// Package storetest runs a test against every supported database: an
// SQLite file always, and PostgreSQL when RPACLOUD_TEST_POSTGRES_DSN names
// a server (the test command starts one). With RPACLOUD_REQUIRE_POSTGRES=1
// a missing PostgreSQL fails the test instead of skipping it, so CI cannot
// pass without having run the PostgreSQL half.
package storetest

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rpacloud/rpacloud/core/store"
)

var seq atomic.Int64

// Each runs fn once per database, each time on a fresh, migrated one.
func Each(t *testing.T, fn func(t *testing.T, db *store.DB)) {
	t.Helper()
	t.Run("sqlite", func(t *testing.T) { fn(t, SQLite(t)) })
	t.Run("postgres", func(t *testing.T) { fn(t, Postgres(t)) })
}

// SQLite opens a fresh database file in a temporary directory.
func SQLite(t testing.TB) *store.DB {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	db, err := store.Open(ctx, store.SQLite, filepath.Join(t.TempDir(), "test.db"))
	if err != nil {
		t.Fatalf("open sqlite: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// PostgresDSN returns the test server's DSN, skipping (or failing, when
// PostgreSQL is required) when there is none.
func PostgresDSN(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv("RPACLOUD_TEST_POSTGRES_DSN")
	if dsn == "" {
		if os.Getenv("RPACLOUD_REQUIRE_POSTGRES") == "1" {
			t.Fatal("RPACLOUD_REQUIRE_POSTGRES=1 but RPACLOUD_TEST_POSTGRES_DSN is empty")
		}
		t.Skip("no PostgreSQL: set RPACLOUD_TEST_POSTGRES_DSN (make test does)")
	}
	return dsn
}

// Postgres creates a fresh database on the test server and drops it when
// the test ends, so tests never see each other's rows.
func Postgres(t testing.TB) *store.DB {
	t.Helper()
	_, dbs := freshPostgres(t, 1)
	return dbs[0]
}

// SharedPostgres creates a fresh database and opens it twice, as two
// daemons sharing one PostgreSQL would, and returns its DSN too (for the
// event relay). The database is dropped when the test ends, after both are
// closed.
func SharedPostgres(t testing.TB) (dsn string, a, b *store.DB) {
	t.Helper()
	dsn, dbs := freshPostgres(t, 2)
	return dsn, dbs[0], dbs[1]
}

// freshPostgres creates a database and opens it n times.
func freshPostgres(t testing.TB, n int) (string, []*store.DB) {
	t.Helper()
	dsn := EmptyPostgres(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var dbs []*store.DB
	// Registered after EmptyPostgres's drop, so it runs before it.
	t.Cleanup(func() {
		for _, db := range dbs {
			db.Close()
		}
	})
	for range n {
		db, err := store.Open(ctx, store.Postgres, dsn)
		if err != nil {
			t.Fatalf("open postgres database %s: %v", dsn, err)
		}
		dbs = append(dbs, db)
	}
	return dsn, dbs
}

// EmptyPostgres creates an empty database on the test server, never
// migrated, and returns its DSN; it is dropped when the test ends (after
// whatever the test closes in its own cleanups).
func EmptyPostgres(t testing.TB) string {
	t.Helper()
	dsn := PostgresDSN(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	admin, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatalf("open postgres: %v", err)
	}
	defer admin.Close()
	name := fmt.Sprintf("rpt_%d_%d", os.Getpid(), seq.Add(1))
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		admin, err := sql.Open("pgx", dsn)
		if err != nil {
			return
		}
		defer admin.Close()
		_, _ = admin.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
	})
	return withDatabase(dsn, name)
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
