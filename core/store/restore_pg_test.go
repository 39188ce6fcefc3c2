package store_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rpacloud/rpacloud/core/store"
	"github.com/rpacloud/rpacloud/core/store/storetest"
	"github.com/rpacloud/rpacloud/ent/task"
)

// pgBin is PostgreSQL's bin directory (.ci/services.sh exports it), the
// same version as the test server: pg_dump refuses a newer server.
func pgBin(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("RPACLOUD_PG_BIN")
	if dir == "" {
		if os.Getenv("RPACLOUD_REQUIRE_POSTGRES") == "1" {
			t.Fatal("RPACLOUD_REQUIRE_POSTGRES=1 but RPACLOUD_PG_BIN is empty (run through .ci/services.sh)")
		}
		t.Skip("no RPACLOUD_PG_BIN: run through .ci/services.sh")
	}
	return dir
}

// The PostgreSQL backup the README documents: pg_dump -Fc of a database
// the store made and filled, pg_restore into a new empty database; the
// store opens it (its migration finds nothing to do), the data is there,
// and new rows get new ids.
func TestPostgresDumpRestore(t *testing.T) {
	bin := pgBin(t)
	dsn, db, other := storetest.SharedPostgres(t)
	other.Close()
	ctx := sys()
	cust := db.Customer.Create().SetName("acme").SaveX(ctx)
	pl := db.Pool.Create().SetName("p").SetProvider("local").SaveX(ctx)
	pr := db.Process.Create().SetName("echo").SetPoolID(pl.ID).SaveX(ctx)
	b := db.Batch.Create().SetCustomerID(cust.ID).SetProcessID(pr.ID).SetPoolID(pl.ID).SetTotal(3).SetPending(3).SaveX(ctx)
	for i := range 3 {
		db.Task.Create().SetBatchID(b.ID).SetProcessID(pr.ID).SetPoolID(pl.ID).SetCustomerID(cust.ID).SetSeq(i).SetInput(fmt.Sprintf(`{"n":%d,"name":"税务 %d"}`, i, i)).ExecX(ctx)
	}
	db.Event.Create().SetType("batch.submitted").SetBatchID(b.ID).ExecX(ctx)

	dump := filepath.Join(t.TempDir(), "rpacloud.dump")
	run := func(name string, args ...string) {
		t.Helper()
		cmd := exec.Command(filepath.Join(bin, name), args...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
		}
	}
	run("pg_dump", "-Fc", "--file", dump, dsn)

	// A new, empty database on the same server, dropped at the end.
	name := fmt.Sprintf("rpt_restored_%d_%d", os.Getpid(), time.Now().UnixNano()%1e6)
	admin, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatal(err)
	}
	restored := swapDatabase(dsn, name)
	run("pg_restore", "--no-owner", "--exit-on-error", "-d", restored, dump)

	rdb, err := store.Open(ctx, store.Postgres, restored)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		rdb.Close()
		_, _ = admin.ExecContext(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
	})
	tasks := rdb.Task.Query().Where(task.BatchID(b.ID)).Order(task.BySeq()).AllX(ctx)
	if len(tasks) != 3 || tasks[2].Input != `{"n":2,"name":"税务 2"}` || rdb.Event.Query().CountX(ctx) != 1 {
		t.Fatalf("restored tasks: %v", tasks)
	}
	if got := rdb.Customer.GetX(ctx, cust.ID); got.Name != "acme" {
		t.Fatalf("restored customer %+v", got)
	}
	// The sequences came along: a new batch does not collide.
	nb := rdb.Batch.Create().SetCustomerID(cust.ID).SetProcessID(pr.ID).SetPoolID(pl.ID).SetTotal(0).SetPending(0).SaveX(ctx)
	if nb.ID <= b.ID {
		t.Fatalf("new batch id %d after restore, old %d", nb.ID, b.ID)
	}
}

func swapDatabase(dsn, name string) string {
	q := ""
	if i := strings.IndexByte(dsn, '?'); i >= 0 {
		dsn, q = dsn[:i], dsn[i:]
	}
	return dsn[:strings.LastIndexByte(dsn, '/')+1] + name + q
}
