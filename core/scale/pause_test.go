package scale

import (
	"testing"
	"time"

	"github.com/rpacloud/rpacloud/core/store/storetest"
	"github.com/rpacloud/rpacloud/ent/task"
)

// Pending tasks of a paused pool or process are not dispatched, so they are
// no demand (no VM is rented for them); running tasks still are.
func TestPausedWorkIsNoDemand(t *testing.T) {
	db := storetest.SQLite(t)
	ctx := sys()
	p := db.Pool.Create().SetName("p").SetProvider("local").SetMax(5).SaveX(ctx)
	cust := db.Customer.Create().SetName("acme").SaveX(ctx)
	procs := []int{
		db.Process.Create().SetName("a").SetPoolID(p.ID).SetRunner("echo").SaveX(ctx).ID,
		db.Process.Create().SetName("b").SetPoolID(p.ID).SetRunner("echo").SaveX(ctx).ID,
	}
	for i, proc := range procs {
		b := db.Batch.Create().SetCustomerID(cust.ID).SetProcessID(proc).SetPoolID(p.ID).SetTotal(3).SetPending(2).SetRunning(1).SaveX(ctx)
		for seq, st := range []task.State{task.StatePending, task.StatePending, task.StateRunning} {
			db.Task.Create().SetBatchID(b.ID).SetProcessID(proc).SetPoolID(p.ID).SetCustomerID(cust.ID).
				SetSeq(seq).SetState(st).SetRandKey(int64(i*10 + seq)).SaveX(ctx)
		}
	}
	s := &Scaler{Fleet: &Fleet{Client: db.Client}}
	want := func(n int, what string) {
		t.Helper()
		d, err := s.demand(sys(), p)
		if err != nil || d != n {
			t.Fatalf("%s: demand %d (%v), want %d", what, d, err, n)
		}
	}
	want(6, "nothing paused")
	db.Process.UpdateOneID(procs[0]).SetPausedAt(time.Now()).ExecX(ctx)
	want(4, "process a paused")
	db.Pool.UpdateOneID(p.ID).SetPausedAt(time.Now()).ExecX(ctx)
	want(2, "pool paused")
}
