package store_test

import (
	"context"
	"testing"

	"github.com/rpacloud/rpacloud/core/store"
	"github.com/rpacloud/rpacloud/core/store/storetest"
	"github.com/rpacloud/rpacloud/ent/privacy"
	"github.com/rpacloud/rpacloud/ent/schema/viewer"
)

func sys() context.Context { return privacy.DecisionContext(context.Background(), privacy.Allow) }

func as(p viewer.Principal) context.Context { return viewer.NewContext(context.Background(), p) }

// The access rules hold in the storage layer on both databases: whatever
// path a request takes to the rows, it sees only what its token may see.
func TestPrivacy(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := sys()
		acme := db.Customer.Create().SetName("acme").SaveX(ctx)
		globex := db.Customer.Create().SetName("globex").SaveX(ctx)
		pl := db.Pool.Create().SetName("p").SetProvider("local").SaveX(ctx)
		pr := db.Process.Create().SetName("echo").SetPoolID(pl.ID).SaveX(ctx)
		for _, c := range []int{acme.ID, globex.ID} {
			b := db.Batch.Create().SetCustomerID(c).SetProcessID(pr.ID).SetPoolID(pl.ID).SetTotal(1).SetPending(1).SaveX(ctx)
			db.Task.Create().SetBatchID(b.ID).SetProcessID(pr.ID).SetPoolID(pl.ID).SetCustomerID(c).SetSeq(0).SaveX(ctx)
		}
		rb := db.Robot.Create().SetName("r").SetPoolID(pl.ID).SaveX(ctx)

		operator := as(viewer.Principal{Name: "op", Role: viewer.Operator, CustomerID: &acme.ID})
		if n := db.Task.Query().CountX(operator); n != 1 {
			t.Fatalf("operator of acme sees %d tasks, want 1", n)
		}
		if n := db.Batch.Query().CountX(operator); n != 1 {
			t.Fatalf("operator of acme sees %d batches, want 1", n)
		}
		if n := db.Customer.Query().CountX(operator); n != 1 {
			t.Fatalf("operator of acme sees %d customers, want 1", n)
		}
		viewerAll := as(viewer.Principal{Name: "v", Role: viewer.Viewer})
		if n := db.Task.Query().CountX(viewerAll); n != 2 {
			t.Fatalf("unbound viewer sees %d tasks, want 2", n)
		}
		if err := db.Pool.UpdateOneID(pl.ID).SetMax(9).Exec(viewerAll); err == nil {
			t.Fatal("a viewer changed a pool")
		}
		if err := db.Pool.UpdateOneID(pl.ID).SetMax(9).Exec(operator); err == nil {
			t.Fatal("an operator wrote around the core")
		}
		robotCtx := as(viewer.Principal{Name: "robot/r", Role: viewer.Robot, RobotID: &rb.ID})
		if _, err := db.Task.Query().All(robotCtx); err == nil {
			t.Fatal("a robot token read customer tasks")
		}
		if n := db.Pool.Query().CountX(robotCtx); n != 1 {
			t.Fatalf("robot sees %d pools, want 1", n)
		}
		if _, err := db.Task.Query().All(context.Background()); err == nil {
			t.Fatal("a query without a principal was allowed")
		}
		if _, err := db.Token.Query().All(operator); err == nil {
			t.Fatal("an operator read tokens")
		}
	})
}
