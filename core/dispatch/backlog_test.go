package dispatch_test

import (
	"context"
	"testing"

	"github.com/rpacloud/rpacloud/core/store"
	"github.com/rpacloud/rpacloud/core/store/storetest"
	"github.com/rpacloud/rpacloud/ent/robot"
)

// TestClaimBacklog: a claim tells the pool's pending tasks as it saw them
// less the one it took, and its pool, on both paths (the fast path on
// PostgreSQL once a claim has told the dialect); PoolsWithWork agrees.
func TestClaimBacklog(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db, 2, 0)
		ctx := context.Background()
		res, err := f.q.Claim(ctx, f.robots[0].ID)
		if err != nil || res.Claim != nil || res.Backlog != 0 || res.PoolID != f.pool.ID {
			t.Fatalf("claim of an empty pool: %+v, %v", res, err)
		}
		if w, err := f.q.PoolsWithWork(ctx, []int{f.pool.ID}); err != nil || w[f.pool.ID] {
			t.Fatalf("pools with work, empty: %v, %v", w, err)
		}
		f.submit(t, 3)
		f.submit(t, 2)
		if w, err := f.q.PoolsWithWork(ctx, []int{f.pool.ID, f.pool.ID + 1000}); err != nil || !w[f.pool.ID] || len(w) != 1 {
			t.Fatalf("pools with work: %v, %v", w, err)
		}
		for want := 4; want >= 0; want-- {
			res, err := f.q.Claim(ctx, f.robots[want%2].ID)
			if err != nil || res.Claim == nil || res.Backlog != want || res.PoolID != f.pool.ID {
				t.Fatalf("claim, want backlog %d: %+v, %v", want, res, err)
			}
		}
		if w, err := f.q.PoolsWithWork(ctx, []int{f.pool.ID}); err != nil || w[f.pool.ID] {
			t.Fatalf("pools with work, all taken: %v, %v", w, err)
		}
		// A draining robot gets nothing but still tells the backlog, so
		// that robotapi wakes a robot that can take it.
		f.submit(t, 2)
		db.Robot.UpdateOneID(f.robots[0].ID).SetState(robot.StateDraining).ExecX(sys())
		res, err = f.q.Claim(ctx, f.robots[0].ID)
		if err != nil || res.Claim != nil || res.Backlog != 2 {
			t.Fatalf("claim of a draining robot: %+v, %v", res, err)
		}
	})
}
