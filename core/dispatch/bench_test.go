package dispatch_test

import (
	"context"
	"testing"

	"github.com/rpacloud/rpacloud/core/dispatch"
	"github.com/rpacloud/rpacloud/core/store"
	"github.com/rpacloud/rpacloud/core/store/storetest"
	"github.com/rpacloud/rpacloud/plugins/sdk/sdktest"
)

// BenchmarkClaimReport measures one full task cycle (claim + success
// report, two transactions) by one robot with a backlog of 10 000 pending
// tasks in two batches. The burn-down with many robots and the backlog
// sweep are `rpacloud bench dispatch` (package dispatchbench).
func BenchmarkClaimReport(b *testing.B) {
	for _, tc := range []struct {
		name string
		open func(testing.TB) *store.DB
	}{{"sqlite", storetest.SQLite}, {"postgres", storetest.Postgres}} {
		b.Run(tc.name, func(b *testing.B) {
			db := tc.open(b)
			f := newBenchFixture(b, db)
			ctx := context.Background()
			b.ResetTimer()
			for b.Loop() {
				c, err := f.q.ClaimTask(ctx, f.robots[0].ID)
				if err != nil || c == nil {
					b.Fatalf("claim: %v %v", c, err)
				}
				if _, err := f.q.Report(ctx, f.robots[0].ID, c.Task.ID, c.Attempt.Number, dispatch.Result{Success: true}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func newBenchFixture(b *testing.B, db *store.DB) *fixture {
	b.Helper()
	ctx := sys()
	f := &fixture{db: db, clock: new(sdktest.Clock)}
	f.q = dispatch.New(db.Client, dispatch.Options{})
	f.cust = db.Customer.Create().SetName("acme").SaveX(ctx)
	f.pool = db.Pool.Create().SetName("p").SetProvider("local").SetMax(10).SaveX(ctx)
	db.Process.Create().SetName("echo").SetPoolID(f.pool.ID).SetRunner("echo").SaveX(ctx)
	f.robots = append(f.robots, db.Robot.Create().SetName("r").SetPoolID(f.pool.ID).SaveX(ctx))
	for range 2 {
		if _, err := f.q.Submit(context.Background(), dispatch.SubmitRequest{CustomerID: f.cust.ID, Process: "echo", Inputs: inputs(5000)}); err != nil {
			b.Fatal(err)
		}
	}
	return f
}
