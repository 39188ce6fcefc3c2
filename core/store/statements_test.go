package store_test

import (
	"testing"

	"github.com/rpacloud/rpacloud/core/store"
	"github.com/rpacloud/rpacloud/core/store/storetest"
)

// Every statement ent sends, and every raw statement run through the
// client (the queue's PostgreSQL fast path), is counted by kind, and a
// transaction's end once: the figures behind rpacloud_db_statements_total.
func TestStatementCounter(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := sys()
		before := db.Statements()
		pl := db.Pool.Create().SetName("p").SetProvider("local").SaveX(ctx) // one INSERT
		_ = db.Pool.GetX(ctx, pl.ID)                                        // one SELECT
		tx, err := db.Tx(ctx)
		if err != nil {
			t.Fatal(err)
		}
		tx.Pool.UpdateOneID(pl.ID).SetMax(3).ExecX(ctx) // UPDATE (a SELECT may follow on SQLite)
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
		tx2, err := db.Tx(ctx)
		if err != nil {
			t.Fatal(err)
		}
		_ = tx2.Rollback()
		got := db.Statements()
		// ent may read a row back after a write, and hooks may add their
		// own: at least the statements sent, exactly one commit and one
		// rollback.
		if got.Write-before.Write < 2 || got.Read-before.Read < 1 || got.Commit-before.Commit != 1 || got.Rollback-before.Rollback != 1 {
			t.Fatalf("counted %+v after %+v, want >= 2 writes, >= 1 read, 1 commit, 1 rollback", got, before)
		}
		// A raw statement through the client (the fast path's way) is
		// counted exactly, a data-modifying WITH as a write.
		q, kind := "WITH x AS (UPDATE pools SET max = 4 WHERE id = $1 RETURNING id) SELECT id FROM x", &got.Write
		if db.Driver == store.SQLite {
			q, kind = "SELECT id FROM pools WHERE id = ?", &got.Read
		}
		was := *kind
		rows, err := db.QueryContext(ctx, q, pl.ID)
		if err != nil {
			t.Fatal(err)
		}
		rows.Close()
		got = db.Statements()
		if *kind != was+1 {
			t.Fatalf("a raw statement counted %d times, want 1 (%+v)", *kind-was, got)
		}
	})
}

func TestClassify(t *testing.T) {
	for q, want := range map[string]string{
		"SELECT 1":                             "read",
		"  select * from x":                    "read",
		"(SELECT 1) UNION (SELECT 2)":          "read",
		"INSERT INTO t VALUES (1)":             "write",
		"update t set a = 1":                   "write",
		"DELETE FROM t":                        "write",
		"WITH a AS (SELECT 1) SELECT * FROM a": "read",
		"with a as (select 1), b as (update t set x = 1 returning x) select 1": "write",
		"WITH t AS (SELECT updated_at, deleted FROM x) SELECT * FROM t":        "read",
		"PRAGMA foreign_keys = on": "other",
		"":                         "other",
	} {
		if got := store.Classify(q); got != want {
			t.Errorf("Classify(%q) = %s, want %s", q, got, want)
		}
	}
}

// What counting costs a statement: its first word looked at, an atomic
// add (a WITH also scanned for a changing verb).
func BenchmarkCount(b *testing.B) {
	for _, q := range []string{"SELECT id, name FROM pools WHERE id = $1",
		"WITH t AS (SELECT id FROM tasks WHERE batch_id = $1 FOR UPDATE SKIP LOCKED LIMIT 1), b AS (UPDATE batches SET pending = pending - 1) SELECT 1"} {
		b.Run(q[:4], func(b *testing.B) {
			for b.Loop() {
				store.Classify(q)
			}
		})
	}
}
