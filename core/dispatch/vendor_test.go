package dispatch_test

import (
	"context"
	"testing"

	"github.com/rpacloud/rpacloud/core/dispatch"
	"github.com/rpacloud/rpacloud/core/events"
	"github.com/rpacloud/rpacloud/core/store/storetest"
	"github.com/rpacloud/rpacloud/ent/event"
)

// TestOwnEventsCarryVendor: every event the queue records of its own work
// (batch submitted, task dispatched and succeeded, batch finished) carries
// the vendor rpacloud, so events(where:{vendor:"rpacloud"}) finds them
// (the fast path's rows on PostgreSQL: TestPostgresFastPath).
func TestOwnEventsCarryVendor(t *testing.T) {
	db := storetest.SQLite(t)
	f := newFixture(t, db, 1, 0)
	ctx := context.Background()
	f.submit(t, 2)
	for range 2 {
		c, err := f.q.ClaimTask(ctx, f.robots[0].ID)
		if err != nil || c == nil {
			t.Fatalf("claim: %v %v", c, err)
		}
		if _, err := f.q.Report(ctx, f.robots[0].ID, c.Task.ID, c.Attempt.Number, dispatch.Result{Success: true}); err != nil {
			t.Fatal(err)
		}
	}
	all := db.Event.Query().CountX(sys())
	own := db.Event.Query().Where(event.Vendor(events.OwnVendor)).CountX(sys())
	if all < 6 || own != all {
		t.Fatalf("%d of %d events carry vendor rpacloud, want every one (at least 6)", own, all)
	}
}
