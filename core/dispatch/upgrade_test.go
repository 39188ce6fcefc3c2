package dispatch_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"database/sql"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rpacloud/rpacloud/core/dispatch"
	"github.com/rpacloud/rpacloud/core/events"
	"github.com/rpacloud/rpacloud/core/store"
	"github.com/rpacloud/rpacloud/core/store/storetest"
	"github.com/rpacloud/rpacloud/ent/robot"
	"github.com/rpacloud/rpacloud/ent/task"
)

// The fixtures are databases the release before versioned migrations
// (d835a5a) made and filled, with its own code: core/store/testdata/upgrade
// (make.sh says how). The queue's test holds this one because it ends by
// working the queue on the upgraded database.
const upgradeFixtures = "../store/testdata/upgrade"

// A database made by the previous release opens with this one: it is
// recognised and adopted (baseline marked, later files applied), every row
// is still there and readable through ent, and the queue works on it.
func TestUpgradeFromPreviousRelease(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) {
		gz, err := os.ReadFile(filepath.Join(upgradeFixtures, "prev.sqlite.gz"))
		if err != nil {
			t.Fatal(err)
		}
		zr, err := gzip.NewReader(bytes.NewReader(gz))
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(zr)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(t.TempDir(), "prev.db")
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		checkUpgrade(t, store.SQLite, path, "counts.sqlite.json")
	})
	t.Run("postgres", func(t *testing.T) {
		dsn := storetest.EmptyPostgres(t)
		dump, err := os.ReadFile(filepath.Join(upgradeFixtures, "prev.postgres.sql"))
		if err != nil {
			t.Fatal(err)
		}
		// pg_dump's plain format is SQL but for psql's meta-commands
		// (\restrict): drop those, run the rest as one simple query.
		var lines []string
		for _, l := range strings.Split(string(dump), "\n") {
			if !strings.HasPrefix(l, `\`) {
				lines = append(lines, l)
			}
		}
		raw, err := sql.Open("pgx", dsn)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := raw.ExecContext(context.Background(), strings.Join(lines, "\n")); err != nil {
			t.Fatalf("restore the previous release's dump: %v", err)
		}
		raw.Close()
		checkUpgrade(t, store.Postgres, dsn, "counts.postgres.json")
	})
}

func checkUpgrade(t *testing.T, driver, dsn, countsFile string) {
	ctx, cancel := context.WithTimeout(sys(), time.Minute)
	defer cancel()
	db, err := store.Open(ctx, driver, dsn)
	if err != nil {
		t.Fatalf("open the previous release's database: %v", err)
	}
	t.Cleanup(func() { db.Close() })

	applied, pending, err := store.MigrationStatus(ctx, db.SQL(), driver)
	if err != nil {
		t.Fatal(err)
	}
	if len(applied) == 0 || !applied[0].Baseline || len(pending) != 0 {
		t.Fatalf("revisions %+v, pending %v: want the baseline adopted and nothing pending", applied, pending)
	}

	b, err := os.ReadFile(filepath.Join(upgradeFixtures, countsFile))
	if err != nil {
		t.Fatal(err)
	}
	var counts map[string]int
	if err := json.Unmarshal(b, &counts); err != nil {
		t.Fatal(err)
	}
	for table, want := range counts {
		var n int
		if err := db.SQL().QueryRowContext(ctx, "SELECT count(*) FROM "+table).Scan(&n); err != nil {
			t.Fatalf("count %s: %v", table, err)
		}
		if n != want {
			t.Errorf("%s: %d rows after the upgrade, %d before", table, n, want)
		}
	}

	// Readable through ent, every kind of row the fixture has.
	read := map[string]int{
		"customers":        len(db.Customer.Query().AllX(ctx)),
		"pools":            len(db.Pool.Query().AllX(ctx)),
		"processes":        len(db.Process.Query().AllX(ctx)),
		"batches":          len(db.Batch.Query().AllX(ctx)),
		"tasks":            len(db.Task.Query().AllX(ctx)),
		"attempts":         len(db.Attempt.Query().AllX(ctx)),
		"events":           len(db.Event.Query().AllX(ctx)),
		"robots":           len(db.Robot.Query().AllX(ctx)),
		"tokens":           len(db.Token.Query().AllX(ctx)),
		"audit_entries":    len(db.AuditEntry.Query().AllX(ctx)),
		"download_tickets": len(db.DownloadTicket.Query().AllX(ctx)),
	}
	for table, n := range read {
		if n != counts[table] || n == 0 {
			t.Errorf("%s: ent reads %d rows, the fixture has %d (and should have some)", table, n, counts[table])
		}
	}
	for _, s := range []task.State{task.StatePending, task.StateRunning, task.StateSucceeded, task.StateFailed, task.StateCancelled} {
		if n := db.Task.Query().Where(task.StateEQ(s)).CountX(ctx); n == 0 {
			t.Errorf("no %s task in the upgraded database: the fixture should hold every state", s)
		}
	}

	// The queue works on it: a robot claims a pending task and finishes it.
	q := dispatch.New(db.Client, dispatch.Options{Bus: events.New()})
	r := db.Robot.Query().Where(robot.Name("r0")).OnlyX(ctx)
	db.Robot.UpdateOneID(r.ID).SetState(robot.StateIdle).SetLastSeenAt(time.Now()).ExecX(ctx)
	c, err := q.ClaimTask(ctx, r.ID)
	if err != nil || c == nil {
		t.Fatalf("claim on the upgraded database: %v, %v", c, err)
	}
	done, err := q.Report(ctx, r.ID, c.Task.ID, c.Task.AttemptNo, dispatch.Result{Success: true, Output: json.RawMessage(`{"upgraded":true}`)})
	if err != nil {
		t.Fatalf("report on the upgraded database: %v", err)
	}
	if done.State != task.StateSucceeded {
		t.Fatalf("task %d is %s after a successful report, want succeeded", done.ID, done.State)
	}
}
