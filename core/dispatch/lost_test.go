package dispatch_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/rpacloud/rpacloud/core/dispatch"
	"github.com/rpacloud/rpacloud/core/store"
	"github.com/rpacloud/rpacloud/core/store/storetest"
	"github.com/rpacloud/rpacloud/ent/attempt"
	"github.com/rpacloud/rpacloud/ent/process"
	"github.com/rpacloud/rpacloud/ent/robot"
	"github.com/rpacloud/rpacloud/ent/task"
)

// TestRobotLostAbandonsAttempt: a robot killed mid-task (its heartbeats
// stop) has its attempt abandoned within twice its heartbeat interval, not
// at the process's max_duration of 20 minutes, with the deadline sweep's
// fencing: a late report or heartbeat is stale, the robot is suspect and
// the task is retried on another robot. A live robot whose task runs
// longer than the timeout is left alone. The clock is the test's.
func TestRobotLostAbandonsAttempt(t *testing.T) {
	const (
		beat      = 30 * time.Second      // the robot checks in this often while it runs (awaitStop)
		lostAfter = dispatch.MinLostAfter // the monitor's heartbeat_timeout, at its floor
		sweep     = 5 * time.Second       // the sweeper's interval
	)
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db, 2, 3)
		db.Process.Update().Where(process.Name("echo")).SetMaxDurationSeconds(1200).ExecX(sys())
		f.checkIn(0)
		f.checkIn(1)
		f.submit(t, 1)
		c := f.claim(t, 0)
		if c == nil {
			t.Fatal("no claim")
		}
		flushAndSweep := func() int {
			t.Helper()
			if _, err := f.q.FlushLiveness(ctx); err != nil {
				t.Fatal(err)
			}
			n, err := f.q.SweepLost(ctx, lostAfter)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
		// Alive for four and a half minutes: every sweep leaves it be, even between
		// flushes (its moment is in this daemon's memory).
		for range 9 {
			f.clock.Add(beat)
			if _, err := f.q.Heartbeat(ctx, f.robots[0].ID, c.Task.ID, c.Attempt.Number); err != nil {
				t.Fatalf("heartbeat: %v", err)
			}
			if n, err := f.q.SweepLost(ctx, lostAfter); err != nil || n != 0 {
				t.Fatalf("sweep before the flush abandoned %d (%v)", n, err)
			}
			if n := flushAndSweep(); n != 0 {
				t.Fatalf("a live robot's attempt abandoned (%d)", n)
			}
			// A heartbeat_timeout under the robots' check-in interval
			// takes nothing from a live robot (MinLostAfter).
			if n, err := f.q.SweepLost(ctx, time.Second); err != nil || n != 0 {
				t.Fatalf("a 1s timeout abandoned %d (%v)", n, err)
			}
		}
		// Killed right after its last heartbeat; the sweeper goes on.
		killed := f.clock.Now()
		var after time.Duration
		for after == 0 {
			f.clock.Add(sweep)
			n := flushAndSweep()
			since := f.clock.Now().Sub(killed)
			switch {
			case n == 1:
				after = since
			case n != 0:
				t.Fatalf("sweep abandoned %d", n)
			case since > 2*beat:
				t.Fatalf("still running %s after the robot died", since)
			}
		}
		if after <= lostAfter || after > 2*beat {
			t.Fatalf("abandoned %s after the robot died, want within (%s, %s]", after, lostAfter, 2*beat)
		}
		a := db.Attempt.Query().Where(attempt.TaskID(c.Task.ID), attempt.Number(c.Attempt.Number)).OnlyX(sys())
		if a.State != attempt.StateAbandoned || *a.ErrorClass != attempt.ErrorClassTimeout || !strings.Contains(a.ErrorMessage, "heartbeat") {
			t.Fatalf("attempt: %+v", a)
		}
		if st := db.Robot.GetX(sys(), f.robots[0].ID).State; st != robot.StateSuspect {
			t.Fatalf("dead robot is %s, want suspect", st)
		}
		tk := db.Task.GetX(sys(), c.Task.ID)
		if tk.State != task.StatePending || tk.Timeouts != 1 {
			t.Fatalf("task: %s, %d time-outs; want pending again after 1", tk.State, tk.Timeouts)
		}
		// The robot was only frozen: its late report and heartbeat are stale.
		if _, err := f.q.Report(ctx, f.robots[0].ID, c.Task.ID, c.Attempt.Number, dispatch.Result{Success: true}); !errors.Is(err, dispatch.ErrStaleAttempt) {
			t.Fatalf("late report: %v", err)
		}
		if _, err := f.q.Heartbeat(ctx, f.robots[0].ID, c.Task.ID, c.Attempt.Number); !errors.Is(err, dispatch.ErrStaleAttempt) {
			t.Fatalf("late heartbeat: %v", err)
		}
		f.checkIn(1)
		again := f.claim(t, 1)
		if again == nil || again.Task.ID != c.Task.ID || again.Attempt.Number != 2 {
			t.Fatalf("retry: %+v", again)
		}
		// The deadline sweep has nothing left to do for the first attempt.
		if n, err := f.q.Sweep(ctx); err != nil || n != 0 {
			t.Fatalf("deadline sweep: %d, %v", n, err)
		}
	})
}
