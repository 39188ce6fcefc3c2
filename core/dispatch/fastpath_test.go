package dispatch_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/rpacloud/rpacloud/core/dispatch"
	"github.com/rpacloud/rpacloud/core/events"
	"github.com/rpacloud/rpacloud/core/store/storetest"
	"github.com/rpacloud/rpacloud/ent"
	"github.com/rpacloud/rpacloud/ent/attempt"
	"github.com/rpacloud/rpacloud/ent/batch"
	"github.com/rpacloud/rpacloud/ent/event"
	"github.com/rpacloud/rpacloud/ent/robot"
)

// On PostgreSQL claims and successful reports run as single statements
// (fastpath.go) once the queue has seen the dialect. The events they
// publish are built in Go from the statement's result; they must be the
// stored rows exactly, or live subscribers and history would disagree.
// The stored rows themselves are the ent path's (checked by every other
// test of this package, which run both paths on PostgreSQL).
func TestPostgresFastPath(t *testing.T) {
	db := storetest.Postgres(t)
	f := newFixture(t, db, 1, 3)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sub := f.bus.Subscribe(ctx, events.Filter{Types: map[events.Type]bool{"task.dispatched": true, "task.succeeded": true, "batch.finished": true}})
	b := f.submit(t, 3)
	r := f.robots[0]
	var published []*ent.Event
	for i := range 3 {
		c, err := f.q.ClaimTask(ctx, r.ID)
		if err != nil || c == nil {
			t.Fatalf("claim %d: %v %v", i, c, err)
		}
		if i > 0 && !f.q.FastPathActive() {
			t.Fatal("the queue did not switch to the PostgreSQL fast path after its first claim")
		}
		a := db.Attempt.GetX(sys(), c.Attempt.ID)
		if a.TaskID != c.Task.ID || a.RobotID != r.ID || a.Number != c.Task.AttemptNo || a.State != attempt.StateRunning ||
			!a.Deadline.Equal(f.clock.Now().Add(60*time.Second)) || !c.Deadline.Equal(a.Deadline) {
			t.Fatalf("claim %d: attempt row %+v for claim %+v", i, a, c.Attempt)
		}
		if got := db.Robot.GetX(sys(), r.ID).State; got != robot.StateBusy {
			t.Fatalf("claim %d: robot %s, want busy", i, got)
		}
		f.clock.Add(time.Second)
		if _, err := f.q.Report(ctx, r.ID, c.Task.ID, c.Attempt.Number, dispatch.Result{Success: true, Output: []byte(`{"ok":true}`)}); err != nil {
			t.Fatalf("report %d: %v", i, err)
		}
		// A second report of the same attempt is stale: the fast path finds
		// no running attempt and the ent path says why.
		if _, err := f.q.Report(ctx, r.ID, c.Task.ID, c.Attempt.Number, dispatch.Result{Success: true}); err == nil {
			t.Fatalf("report %d twice: accepted", i)
		}
	}
	bb := db.Batch.GetX(sys(), b.ID)
	if bb.Stack != batch.StackFinished || bb.Succeeded != 3 || bb.Running != 0 || bb.Pending != 0 || bb.FinishedAt == nil {
		t.Fatalf("batch after three successes: %+v", bb)
	}
	if got := db.Robot.GetX(sys(), r.ID).State; got != robot.StateIdle {
		t.Fatalf("robot %s after its report, want idle", got)
	}
	// A drained robot gets nothing, and stays draining.
	db.Robot.UpdateOneID(r.ID).SetState(robot.StateDraining).ExecX(sys())
	f.submit(t, 1)
	if c, err := f.q.ClaimTask(ctx, r.ID); err != nil || c != nil {
		t.Fatalf("claim by a draining robot: %+v %v", c, err)
	}
	if got := db.Robot.GetX(sys(), r.ID).State; got != robot.StateDraining {
		t.Fatalf("draining robot is %s after its poll", got)
	}
	cancel()
	for e := range sub {
		published = append(published, e)
	}
	stored := db.Event.Query().Where(event.TypeIn("task.dispatched", "task.succeeded", "batch.finished")).
		Order(ent.Asc(event.FieldID)).AllX(sys())
	if len(published) != 7 || len(stored) != 7 {
		t.Fatalf("published %d events, stored %d, want 7 each (3 dispatched, 3 succeeded, 1 batch finished)", len(published), len(stored))
	}
	byID := map[int]*ent.Event{}
	for _, e := range stored {
		byID[e.ID] = e
	}
	for _, p := range published {
		s := byID[p.ID]
		if s == nil {
			t.Fatalf("published event %d (%s) is not stored", p.ID, p.Type)
		}
		if s.Type != p.Type || s.Status != p.Status || s.Message != p.Message || !s.At.Equal(p.At) ||
			!sameInt(s.CustomerID, p.CustomerID) || !sameInt(s.PoolID, p.PoolID) || !sameInt(s.ProcessID, p.ProcessID) ||
			!sameInt(s.BatchID, p.BatchID) || !sameInt(s.TaskID, p.TaskID) || !sameInt(s.RobotID, p.RobotID) ||
			!sameInt(s.AttemptNo, p.AttemptNo) || s.Vendor != p.Vendor || s.ExternalID != p.ExternalID {
			t.Errorf("event %d: published %s, stored %s", p.ID, describe(p), describe(s))
		}
		if s.Vendor != events.OwnVendor {
			t.Errorf("event %d (%s) has vendor %q, want rpacloud's own", s.ID, s.Type, s.Vendor)
		}
	}
}

func sameInt(a, b *int) bool { return (a == nil) == (b == nil) && (a == nil || *a == *b) }

func describe(e *ent.Event) string {
	p := func(v *int) any {
		if v == nil {
			return nil
		}
		return *v
	}
	return fmt.Sprintf("{%s %s %q at %s customer %v pool %v process %v batch %v task %v robot %v attempt %v}",
		e.Type, e.Status, e.Message, e.At.Format(time.RFC3339Nano), p(e.CustomerID), p(e.PoolID), p(e.ProcessID),
		p(e.BatchID), p(e.TaskID), p(e.RobotID), p(e.AttemptNo))
}
