package scale

import (
	"context"
	"testing"
	"time"

	"github.com/rpacloud/rpacloud/core/scale/decide"
	"github.com/rpacloud/rpacloud/core/store"
	"github.com/rpacloud/rpacloud/core/store/storetest"
	"github.com/rpacloud/rpacloud/ent/robot"
	"github.com/rpacloud/rpacloud/ent/task"
)

// TestDrainRemovedPool: a pool that left the configuration keeps its
// robots, permanent ones included, while it has accepted work (pending or
// running), so that work finishes on them; then Drain releases them all.
func TestDrainRemovedPool(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		r := newRig(t, db, decide.Settings{Min: 2, Max: 2, TasksPerRobot: 1})
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := r.fleet.Reconcile(ctx, r.pool); err != nil { // rents the two permanent robots
			t.Fatal(err)
		}
		r.setRobots(robot.StateIdle, robot.StateProvisioning)
		r.submit(1)
		// The reload deactivates the pool; the fleet drains it with no
		// minimum to keep.
		r.pool = db.Pool.UpdateOne(r.pool).SetActive(false).SaveX(sys())
		q := *r.pool
		q.Min = 0
		if left, err := r.scaler.Drain(ctx, &q); err != nil || left != 2 {
			t.Fatalf("with a pending task: left %d, err %v; want both robots kept", left, err)
		}
		if n := db.Robot.Query().Where(robot.StateEQ(robot.StateIdle)).CountX(sys()); n != 2 {
			t.Fatalf("%d idle robots, want 2 kept for the pending task", n)
		}
		db.Task.Update().SetState(task.StateSucceeded).ExecX(sys())
		if err := r.fleet.Reconcile(ctx, &q); err != nil { // no permanent robot rented again
			t.Fatal(err)
		}
		left, err := r.scaler.Drain(ctx, &q)
		if err != nil || left != 0 {
			t.Fatalf("after the work: left %d, err %v", left, err)
		}
		waitFor(t, func() bool { return r.running() == 0 }, "the drained pool's robots to be destroyed")
		if n := db.Robot.Query().Where(robot.StateIn(liveRobot...)).CountX(sys()); n != 0 {
			t.Fatalf("%d live robots after the drain", n)
		}
	})
}
