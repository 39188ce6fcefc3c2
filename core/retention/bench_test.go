package retention_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/rpacloud/rpacloud/core/dispatch"
	"github.com/rpacloud/rpacloud/core/retention"
	"github.com/rpacloud/rpacloud/core/retention/expire"
	"github.com/rpacloud/rpacloud/core/store"
	"github.com/rpacloud/rpacloud/core/store/storetest"
	"github.com/rpacloud/rpacloud/ent"
	"github.com/rpacloud/rpacloud/ent/attempt"
	"github.com/rpacloud/rpacloud/ent/batch"
	"github.com/rpacloud/rpacloud/ent/robot"
	"github.com/rpacloud/rpacloud/ent/task"
)

// backlog fills db with a year-old history: batches of 100 finished tasks,
// one attempt each, two events each; rows = tasks.
func backlog(b *testing.B, db *store.DB, custID, procID, poolID, robotID, tasks int, at time.Time) {
	b.Helper()
	ctx := sys()
	for done := 0; done < tasks; done += 100 {
		bt := db.Batch.Create().SetCustomerID(custID).SetProcessID(procID).SetPoolID(poolID).SetStack(batch.StackFinished).
			SetTotal(100).SetPending(0).SetSucceeded(100).SetFinishedAt(at).SetCreatedAt(at).SaveX(ctx)
		tcs := make([]*ent.TaskCreate, 100)
		for i := range tcs {
			tcs[i] = db.Task.Create().SetBatchID(bt.ID).SetProcessID(procID).SetPoolID(poolID).SetCustomerID(custID).SetSeq(i).
				SetState(task.StateSucceeded).SetCreatedAt(at).SetFinishedAt(at).SetAttemptNo(1).SetInput(`{"invoice":"2025-000123","amount":1234.5}`).SetOutput(`{"ok":true}`)
		}
		ts := db.Task.CreateBulk(tcs...).SaveX(ctx)
		acs := make([]*ent.AttemptCreate, len(ts))
		ecs := make([]*ent.EventCreate, 0, 2*len(ts))
		for i, t := range ts {
			acs[i] = db.Attempt.Create().SetTaskID(t.ID).SetRobotID(robotID).SetCustomerID(custID).SetNumber(1).SetState(attempt.StateSucceeded).
				SetStartedAt(at).SetDeadline(at).SetFinishedAt(at).SetOutput(`{"ok":true}`)
			for _, typ := range []string{"task.dispatched", "task.succeeded"} {
				ecs = append(ecs, db.Event.Create().SetType(typ).SetAt(at).SetCustomerID(custID).SetTaskID(t.ID).SetBatchID(bt.ID).SetPoolID(poolID))
			}
		}
		db.Attempt.CreateBulk(acs...).ExecX(ctx)
		db.Event.CreateBulk(ecs...).ExecX(ctx)
	}
}

// BenchmarkClaimWhilePruning measures what a robot's claim and report
// cost while the leader prunes a large expired backlog (20 000 finished
// tasks with their attempts and 40 000 events: 80 000 rows), against the
// same without the pruner. The figures that matter are the claim's p50 and
// p99 (ms), reported per sub-benchmark; ns/op is one claim plus its report.
func BenchmarkClaimWhilePruning(b *testing.B) {
	for _, dbname := range []string{"sqlite", "postgres"} {
		for _, pruning := range []bool{false, true} {
			name := dbname + "/idle"
			if pruning {
				name = dbname + "/pruning"
			}
			b.Run(name, func(b *testing.B) {
				var db *store.DB
				if dbname == "sqlite" {
					db = storetest.SQLite(b)
				} else {
					db = storetest.Postgres(b)
				}
				benchClaims(b, db, pruning)
			})
		}
	}
}

func benchClaims(b *testing.B, db *store.DB, pruning bool) {
	ctx := sys()
	now := time.Now()
	cust := db.Customer.Create().SetName("acme").SaveX(ctx)
	pl := db.Pool.Create().SetName("p").SetProvider("local").SetMax(8).SaveX(ctx)
	proc := db.Process.Create().SetName("echo").SetPoolID(pl.ID).SetRunner("echo").SetMaxDurationSeconds(600).SetRetries(3).SaveX(ctx)
	var robots []*ent.Robot
	for i := range 8 {
		robots = append(robots, db.Robot.Create().SetName(fmt.Sprintf("r%d", i)).SetPoolID(pl.ID).SetState(robot.StateIdle).SetLastSeenAt(now).SaveX(ctx))
	}
	backlog(b, db, cust.ID, proc.ID, pl.ID, robots[0].ID, 20000, now.AddDate(-1, 0, 0))
	q := dispatch.New(db.Client, dispatch.Options{Seed: 1})
	inputs := make([]json.RawMessage, b.N)
	for i := range inputs {
		inputs[i] = json.RawMessage(fmt.Sprintf(`{"n":%d}`, i))
	}
	if _, err := q.Submit(context.Background(), dispatch.SubmitRequest{CustomerID: cust.ID, Process: "echo", Inputs: inputs}); err != nil {
		b.Fatal(err)
	}

	pctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	pruned := retention.Counts{}
	if pruning {
		dia := "sqlite3"
		if db.Driver == store.Postgres {
			dia = "postgres"
		}
		p := retention.New(retention.Options{Client: db.Client, DB: db.SQL(), Dialect: dia,
			Policy: func() expire.Policy {
				return expire.Policy{Events: 30 * day, Attempts: 90 * day, FinishedTasks: 90 * day}
			},
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		wg.Go(func() {
			for pctx.Err() == nil {
				c, _ := p.Round(pctx)
				for k, n := range c {
					pruned[k] += n
				}
			}
		})
	}
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		r := robots[i%len(robots)]
		t0 := time.Now()
		c, err := q.ClaimTask(context.Background(), r.ID)
		lat = append(lat, time.Since(t0))
		if err != nil || c == nil {
			b.Fatalf("claim %d: %v %v", i, c, err)
		}
		if _, err := q.Report(context.Background(), r.ID, c.Task.ID, c.Attempt.Number, dispatch.Result{Success: true, Output: json.RawMessage(`{}`)}); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	stop()
	wg.Wait()
	slices.Sort(lat)
	ms := func(d time.Duration) float64 { return float64(d) / 1e6 }
	b.ReportMetric(ms(lat[len(lat)/2]), "claim_p50_ms")
	b.ReportMetric(ms(lat[len(lat)*99/100]), "claim_p99_ms")
	b.ReportMetric(ms(lat[len(lat)-1]), "claim_max_ms")
	if pruning {
		total := 0
		for _, n := range pruned {
			total += n
		}
		b.ReportMetric(float64(total), "rows_pruned")
	}
}
