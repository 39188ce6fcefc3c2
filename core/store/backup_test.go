package store_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rpacloud/rpacloud/core/store"
	"github.com/rpacloud/rpacloud/ent"
	"github.com/rpacloud/rpacloud/ent/batch"
)

// A backup taken while writers commit is one consistent snapshot: every
// batch in the copy has exactly the tasks its transaction wrote with it,
// the copy passes SQLite's checks, has mode 0600, and opens with the store.
func TestBackupSQLiteWhileWriting(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "rpacloud.db")
	ctx := sys()
	db, err := store.Open(ctx, store.SQLite, src)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	cust := db.Customer.Create().SetName("acme").SaveX(ctx)
	pl := db.Pool.Create().SetName("p").SetProvider("local").SaveX(ctx)
	pr := db.Process.Create().SetName("echo").SetPoolID(pl.ID).SaveX(ctx)

	// Writers: each transaction makes a batch of n tasks with total = n.
	var wrote atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 2 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				n := 1 + (i+w)%20
				tx, err := db.Tx(ctx)
				if err != nil {
					t.Error(err)
					return
				}
				b := tx.Batch.Create().SetCustomerID(cust.ID).SetProcessID(pr.ID).SetPoolID(pl.ID).SetTotal(n).SetPending(n).SaveX(ctx)
				tcs := make([]*ent.TaskCreate, n)
				for j := range tcs {
					tcs[j] = tx.Task.Create().SetBatchID(b.ID).SetProcessID(pr.ID).SetPoolID(pl.ID).SetCustomerID(cust.ID).SetSeq(j)
				}
				tx.Task.CreateBulk(tcs...).ExecX(ctx)
				tx.Event.Create().SetType("batch.submitted").SetBatchID(b.ID).ExecX(ctx)
				if err := tx.Commit(); err != nil {
					t.Error(err)
					return
				}
				wrote.Add(1)
			}
		})
	}
	for wrote.Load() < 50 {
		time.Sleep(5 * time.Millisecond)
	}
	dst := filepath.Join(t.TempDir(), "copy.db")
	var bk *store.Backup
	for i := range 3 { // three copies while the writers go on; the last is kept
		if bk, err = store.BackupSQLite(context.Background(), src, dst, i > 0); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()

	if _, err := store.BackupSQLite(context.Background(), src, dst, false); !errors.Is(err, store.ErrBackupExists) {
		t.Fatalf("backup over an existing file without force: %v", err)
	}
	st, err := os.Stat(dst)
	if err != nil || st.Mode().Perm() != 0o600 || st.Size() != bk.Bytes {
		t.Fatalf("copy: %v %v, reported %d bytes", st.Mode(), err, bk.Bytes)
	}
	if left, _ := filepath.Glob(filepath.Join(filepath.Dir(dst), ".copy.db.tmp-*")); len(left) > 0 {
		t.Fatalf("temporary files left: %v", left)
	}
	if bk.Rows["batches"] == 0 || bk.Rows["tasks"] < bk.Rows["batches"] || bk.Rows["events"] != bk.Rows["batches"] {
		t.Fatalf("rows of the copy: %v", bk.Rows)
	}
	cp, err := store.Open(ctx, store.SQLite, dst)
	if err != nil {
		t.Fatal(err)
	}
	defer cp.Close()
	bs := cp.Batch.Query().WithTasks().Order(batch.ByID()).AllX(ctx)
	if len(bs) != bk.Rows["batches"] {
		t.Fatalf("store reads %d batches, backup counted %d", len(bs), bk.Rows["batches"])
	}
	for _, b := range bs {
		if len(b.Edges.Tasks) != b.Total {
			t.Fatalf("batch %d: %d tasks in the copy, its transaction wrote %d: not a snapshot", b.ID, len(b.Edges.Tasks), b.Total)
		}
	}
	if n := db.Batch.Query().CountX(ctx); n <= len(bs) {
		t.Logf("the writers wrote nothing after the copy (%d batches)", n)
	}
}

func TestBackupSQLiteRefusals(t *testing.T) {
	dir := t.TempDir()
	if _, err := store.BackupSQLite(context.Background(), filepath.Join(dir, "none.db"), filepath.Join(dir, "b.db"), false); err == nil {
		t.Fatal("backup of a missing database")
	}
	if _, err := os.Stat(filepath.Join(dir, "none.db")); err == nil {
		t.Fatal("backup created the database it was to copy")
	}
	junk := filepath.Join(dir, "junk.db")
	os.WriteFile(junk, []byte("not a database, just text"), 0o600)
	if _, err := store.BackupSQLite(context.Background(), junk, filepath.Join(dir, "b.db"), false); err == nil {
		t.Fatal("backup of a file that is not a database")
	}
	if _, err := store.BackupSQLite(context.Background(), junk, junk, true); err == nil {
		t.Fatal("backup onto the database itself")
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".*tmp-*")); len(left) > 0 || fileExists(filepath.Join(dir, "b.db")) {
		t.Fatalf("a failed backup left files: %v", left)
	}
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// A database holding a row that refers to a missing one (left by an old
// release; migrations tolerate those that exist) is still backed up, and
// the backup says how many such rows the copy holds; a path with "?" and
// "#" in it is a file name, not a URI's query.
func TestBackupSQLiteDanglingRows(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "odd?name#1")
	src := filepath.Join(dir, "rpacloud.db")
	ctx := sys()
	db, err := store.Open(ctx, store.SQLite, src)
	if err != nil {
		t.Fatal(err)
	}
	pl := db.Pool.Create().SetName("p").SetProvider("local").SaveX(ctx)
	db.Process.Create().SetName("echo").SetPoolID(pl.ID).SaveX(ctx)
	raw := db.SQL()
	conn, err := raw.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Off for this connection only, as an old release's rebuild left it.
	for _, q := range []string{"PRAGMA foreign_keys = OFF", "DELETE FROM pools", "PRAGMA foreign_keys = ON"} {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			t.Fatal(q, err)
		}
	}
	conn.Close()
	db.Close()
	b, err := store.BackupSQLite(context.Background(), src, filepath.Join(dir, "copy.db"), false)
	if err != nil {
		t.Fatal(err)
	}
	if b.DanglingRows != 1 || b.Rows["processes"] != 1 {
		t.Fatalf("dangling rows %d, processes %d; want 1 and 1", b.DanglingRows, b.Rows["processes"])
	}
}
