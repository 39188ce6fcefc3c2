package dispatch_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/rpacloud/rpacloud/core/dispatch"
	"github.com/rpacloud/rpacloud/core/events"
	"github.com/rpacloud/rpacloud/core/robotwire"
	"github.com/rpacloud/rpacloud/core/store"
	"github.com/rpacloud/rpacloud/core/store/storetest"
	"github.com/rpacloud/rpacloud/ent"
	"github.com/rpacloud/rpacloud/ent/attempt"
	"github.com/rpacloud/rpacloud/ent/batch"
	"github.com/rpacloud/rpacloud/ent/event"
	"github.com/rpacloud/rpacloud/ent/hook"
	"github.com/rpacloud/rpacloud/ent/process"
	"github.com/rpacloud/rpacloud/ent/robot"
	"github.com/rpacloud/rpacloud/ent/task"
	"github.com/rpacloud/rpacloud/plugins/sdk/sdktest"
)

func (f *fixture) countEvents(t *testing.T, typ events.Type) int {
	t.Helper()
	return f.db.Event.Query().Where(event.Type(string(typ))).CountX(sys())
}

// Cancelling a batch cancels its pending tasks at once and asks the robots
// of its running ones to stop: a heartbeat answers ErrStopRequested without
// extending the deadline, a failure report ends the attempt stopped and
// the task cancelled, a success that raced the stop is kept, and a report
// from the stopped attempt afterwards is stale. The counters stay exact
// and the batch finishes once nothing runs.
func TestCancelBatch(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db, 2, 3)
		ctx := context.Background()
		b := f.submit(t, 5)
		c0, c1 := f.claim(t, 0), f.claim(t, 1)
		st, err := f.q.CancelBatch(ctx, b.ID, "ops", "wrong input file")
		if err != nil || st.Cancelled != 3 || st.StopsRequested != 2 {
			t.Fatalf("cancel: %+v %v", st, err)
		}
		got := db.Batch.GetX(sys(), b.ID)
		if got.Pending != 0 || got.Running != 2 || got.Cancelled != 3 || got.Stack == batch.StackFinished {
			t.Fatalf("batch after cancel: %+v", got)
		}
		if f.claim(t, 0) != nil {
			t.Fatal("a task of a cancelled batch was dispatched")
		}
		// Cancelling again changes nothing.
		if st, err := f.q.CancelBatch(ctx, b.ID, "ops", ""); err != nil || st != (dispatch.CancelStats{}) {
			t.Fatalf("second cancel: %+v %v", st, err)
		}
		grace := f.clock.Now().Add(dispatch.DefaultStopGrace)
		f.clock.Add(10 * time.Second)
		d, err := f.q.Heartbeat(ctx, f.robots[0].ID, c0.Task.ID, c0.Attempt.Number)
		if !errors.Is(err, dispatch.ErrStopRequested) || d.After(grace) {
			t.Fatalf("heartbeat after a stop: %v %v, want ErrStopRequested and the grace %v", d, err, grace)
		}
		if stop, err := f.q.StopRequested(ctx, f.robots[0].ID, c0.Task.ID, c0.Attempt.Number); !stop || err != nil {
			t.Fatalf("StopRequested: %v %v", stop, err)
		}
		out, err := f.q.Report(ctx, f.robots[0].ID, c0.Task.ID, c0.Attempt.Number, dispatch.Result{Class: robotwire.ErrorExecution, Message: "context canceled"})
		if err != nil || out.State != task.StateCancelled || *out.FailureReason != task.FailureReasonCancelled {
			t.Fatalf("report after stop: %+v %v", out, err)
		}
		a := db.Attempt.Query().Where(attempt.TaskID(c0.Task.ID), attempt.Number(c0.Attempt.Number)).OnlyX(sys())
		if a.State != attempt.StateStopped || a.ErrorMessage != "stopped at the operator's request; the robot reported: context canceled" {
			t.Fatalf("attempt: %s %q", a.State, a.ErrorMessage)
		}
		// Fencing: the stopped attempt's report again is stale.
		if _, err := f.q.Report(ctx, f.robots[0].ID, c0.Task.ID, c0.Attempt.Number, dispatch.Result{Success: true}); !errors.Is(err, dispatch.ErrStaleAttempt) {
			t.Fatalf("report from a stopped attempt: %v, want ErrStaleAttempt", err)
		}
		// The success that raced the stop wins.
		out, err = f.q.Report(ctx, f.robots[1].ID, c1.Task.ID, c1.Attempt.Number, dispatch.Result{Success: true})
		if err != nil || out.State != task.StateSucceeded {
			t.Fatalf("success after stop: %+v %v", out, err)
		}
		got = db.Batch.GetX(sys(), b.ID)
		if got.Stack != batch.StackFinished || got.Succeeded != 1 || got.Cancelled != 4 || got.Failed != 0 || got.Running != 0 || got.Pending != 0 {
			t.Fatalf("batch at the end: %+v", got)
		}
		// On PostgreSQL the last success took the fast path: its
		// batch.finished counts the cancelled tasks too.
		if e := db.Event.Query().Where(event.Type(string(events.BatchFinished))).OnlyX(sys()); e.Message != "1 succeeded, 0 failed, 4 cancelled" {
			t.Fatalf("batch.finished: %q", e.Message)
		}
		if n := f.countEvents(t, events.TaskStopRequested); n != 2 {
			t.Fatalf("%d task.stop_requested events, want 2", n)
		}
		if n := f.countEvents(t, events.TaskCancelled); n != 4 {
			t.Fatalf("%d task.cancelled events, want 4", n)
		}
		if _, err := f.q.CancelBatch(ctx, b.ID, "ops", ""); !errors.Is(err, dispatch.ErrWrongState) {
			t.Fatalf("cancel of a finished batch: %v", err)
		}
	})
}

// A robot that ignores a stop is treated like one that timed out once the
// grace has passed (attempt abandoned, robot suspect), but its task ends
// cancelled, not retried; its late report is refused.
func TestStopIgnoredIsTimedOut(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db, 2, 3)
		db.Process.Update().Where(process.Name("echo")).SetMaxDurationSeconds(3600).ExecX(sys())
		ctx := context.Background()
		f.submit(t, 1)
		c := f.claim(t, 0)
		if _, err := f.q.StopTask(ctx, c.Task.ID, "ops", "stuck on a captcha"); err != nil {
			t.Fatal(err)
		}
		f.clock.Add(dispatch.DefaultStopGrace - time.Second)
		if n, err := f.q.Sweep(ctx); err != nil || n != 0 {
			t.Fatalf("sweep inside the grace: %d %v", n, err)
		}
		f.clock.Add(2 * time.Second)
		if n, err := f.q.Sweep(ctx); err != nil || n != 1 {
			t.Fatalf("sweep after the grace: %d %v", n, err)
		}
		tk := db.Task.GetX(sys(), c.Task.ID)
		if tk.State != task.StateCancelled || *tk.FailureReason != task.FailureReasonCancelled || tk.Timeouts != 1 {
			t.Fatalf("task: %s %v %d", tk.State, tk.FailureReason, tk.Timeouts)
		}
		if a := db.Attempt.GetX(sys(), c.Attempt.ID); a.State != attempt.StateAbandoned {
			t.Fatalf("attempt %s, want abandoned", a.State)
		}
		if st := db.Robot.GetX(sys(), f.robots[0].ID).State; st != robot.StateSuspect {
			t.Fatalf("robot %s, want suspect", st)
		}
		if b := db.Batch.Query().OnlyX(sys()); b.Stack != batch.StackFinished || b.Cancelled != 1 || b.Running != 0 {
			t.Fatalf("batch: %+v", b)
		}
		if _, err := f.q.Report(ctx, f.robots[0].ID, c.Task.ID, c.Attempt.Number, dispatch.Result{Class: robotwire.ErrorExecution, Message: "late"}); !errors.Is(err, dispatch.ErrStaleAttempt) {
			t.Fatalf("late report: %v", err)
		}
		if _, err := f.q.StopTask(ctx, c.Task.ID, "ops", ""); !errors.Is(err, dispatch.ErrWrongState) {
			t.Fatalf("stop of a cancelled task: %v", err)
		}
	})
}

// A failed task retried by hand is pending again with its automatic counts
// reset and the retry counted apart; its finished batch returns to
// service; a retried batch takes back its cancelled tasks.
func TestRetryTaskAndBatch(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db, 1, 0)
		ctx := context.Background()
		b := f.submit(t, 1)
		c := f.claim(t, 0)
		if _, err := f.q.Report(ctx, f.robots[0].ID, c.Task.ID, 1, dispatch.Result{Class: robotwire.ErrorExecution, Message: "portal down"}); err != nil {
			t.Fatal(err)
		}
		if _, err := f.q.RetryTask(ctx, c.Task.ID, "ops"); err != nil {
			t.Fatal(err)
		}
		tk := db.Task.GetX(sys(), c.Task.ID)
		if tk.State != task.StatePending || tk.ManualRetries != 1 || tk.ExecutionsFailed != 0 || tk.FailureReason != nil || tk.RequeuedAt == nil || tk.FinishedAt != nil {
			t.Fatalf("task after retry: %+v", tk)
		}
		if got := db.Batch.GetX(sys(), b.ID); got.Stack != batch.StackServing || got.Pending != 1 || got.Failed != 0 || got.FinishedAt != nil {
			t.Fatalf("batch after retry: %+v", got)
		}
		c = f.claim(t, 0)
		if c == nil || c.Attempt.Number != 2 {
			t.Fatalf("claim after retry: %+v", c)
		}
		if _, err := f.q.RetryTask(ctx, c.Task.ID, "ops"); !errors.Is(err, dispatch.ErrWrongState) {
			t.Fatalf("retry of a running task: %v", err)
		}
		if _, err := f.q.Report(ctx, f.robots[0].ID, c.Task.ID, 2, dispatch.Result{Success: true}); err != nil {
			t.Fatal(err)
		}
		if got := db.Batch.GetX(sys(), b.ID); got.Stack != batch.StackFinished || got.Succeeded != 1 {
			t.Fatalf("batch at the end: %+v", got)
		}

		b2 := f.submit(t, 3)
		if _, err := f.q.CancelBatch(ctx, b2.ID, "ops", ""); err != nil {
			t.Fatal(err)
		}
		if _, err := f.q.RetryBatch(ctx, b2.ID, false, false, "ops"); !errors.Is(err, dispatch.ErrBadInput) {
			t.Fatalf("retry of nothing: %v", err)
		}
		if n, err := f.q.RetryBatch(ctx, b2.ID, true, false, "ops"); err != nil || n != 0 {
			t.Fatalf("retry failed of a cancelled batch: %d %v", n, err)
		}
		if n, err := f.q.RetryBatch(ctx, b2.ID, true, true, "ops"); err != nil || n != 3 {
			t.Fatalf("retry cancelled: %d %v", n, err)
		}
		if got := db.Batch.GetX(sys(), b2.ID); got.Stack != batch.StackServing || got.Pending != 3 || got.Cancelled != 0 {
			t.Fatalf("batch after retry: %+v", got)
		}
		if n := f.countEvents(t, events.TaskRequeued); n != 4 {
			t.Fatalf("%d task.requeued events, want 4", n)
		}
		// A retried task waits max_wait from its retry, not from its
		// batch's submission.
		db.Process.Update().Where(process.Name("echo")).SetMaxWaitSeconds(3600).ExecX(sys())
		f.q.ForgetSettings()
		f.clock.Add(2 * time.Hour)
		if _, err := f.q.RetryTask(ctx, db.Task.Query().Where(task.BatchID(b2.ID)).FirstIDX(sys()), "ops"); !errors.Is(err, dispatch.ErrWrongState) {
			t.Fatalf("retry of a pending task: %v", err)
		}
		if n, err := f.q.Expire(ctx); err != nil || n != 3 {
			t.Fatalf("expire two hours after the retries: %d %v", n, err)
		}
		n, err := f.q.RetryBatch(ctx, b2.ID, true, false, "ops")
		if err != nil || n != 3 {
			t.Fatalf("retry expired: %d %v", n, err)
		}
		f.clock.Add(30 * time.Minute)
		if n, err := f.q.Expire(ctx); err != nil || n != 0 {
			t.Fatalf("expire within max_wait of the retry: %d %v", n, err)
		}
	})
}

// Paused pools and processes get no work, on the ent path and on the
// PostgreSQL fast path, and their tasks do not expire while paused; a
// resume lets work out again and gives the waiting tasks a fresh max_wait
// (more tasks than one chunk of the resume): they expire max_wait after
// the resume, not before.
func TestPause(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db, 1, 3)
		db.Process.Update().Where(process.Name("echo")).SetMaxWaitSeconds(600).ExecX(sys())
		ctx := context.Background()
		// A first claim lets the queue see the dialect (fast path on
		// PostgreSQL).
		f.submit(t, 1)
		c := f.claim(t, 0)
		if _, err := f.q.Report(ctx, f.robots[0].ID, c.Task.ID, 1, dispatch.Result{Success: true}); err != nil {
			t.Fatal(err)
		}
		b := f.submit(t, 250)
		type pauser struct {
			name          string
			pause, resume func() error
		}
		for _, p := range []pauser{
			{"pool", func() error { _, err := f.q.PausePool(ctx, "p", "ops", "patching the VMs"); return err },
				func() error { _, err := f.q.ResumePool(ctx, "p", "ops"); return err }},
			{"process", func() error {
				_, err := f.q.PauseProcess(ctx, "echo", nil, "ops", "portal maintenance")
				return err
			}, func() error { _, err := f.q.ResumeProcess(ctx, "echo", nil, "ops"); return err }},
		} {
			if err := p.pause(); err != nil {
				t.Fatalf("pause %s: %v", p.name, err)
			}
			if c := f.claim(t, 0); c != nil {
				t.Fatalf("paused %s: task %d dispatched", p.name, c.Task.ID)
			}
			if c, err := f.q.ClaimFastOnly(ctx, f.robots[0].ID); err != nil || c != nil {
				t.Fatalf("paused %s: the fast path dispatched %+v (%v)", p.name, c, err)
			}
			f.clock.Add(time.Hour)
			if n, err := f.q.Expire(ctx); err != nil || n != 0 {
				t.Fatalf("paused %s: expire failed %d tasks (%v)", p.name, n, err)
			}
			if err := p.resume(); err != nil {
				t.Fatalf("resume %s: %v", p.name, err)
			}
			if n, err := f.q.Expire(ctx); err != nil || n != 0 {
				t.Fatalf("resumed %s: expire failed %d tasks at once (%v)", p.name, n, err)
			}
		}
		if db.Pool.Query().OnlyX(sys()).PausedAt != nil || db.Process.Query().OnlyX(sys()).PausedAt != nil {
			t.Fatal("still paused after resume")
		}
		var c2 *dispatch.Claim
		var err error
		if db.Driver == store.Postgres {
			c2, err = f.q.ClaimFastOnly(ctx, f.robots[0].ID)
		} else {
			c2, err = f.q.ClaimTask(ctx, f.robots[0].ID)
		}
		if err != nil || c2 == nil || c2.Task.BatchID != b.ID {
			t.Fatalf("claim after resume: %+v %v", c2, err)
		}
		// The last resume was just now: the 249 waiting tasks expire
		// max_wait (600 s) from it.
		f.clock.Add(599 * time.Second)
		if n, err := f.q.Expire(ctx); err != nil || n != 0 {
			t.Fatalf("expire within max_wait of the resume: %d %v", n, err)
		}
		f.clock.Add(2 * time.Second)
		if n, err := f.q.Expire(ctx); err != nil || n != 249 {
			t.Fatalf("expire after max_wait of the resume: %d %v, want 249", n, err)
		}
		for _, typ := range []events.Type{events.PoolPaused, events.PoolResumed, events.ProcessPaused, events.ProcessResumed} {
			if n := f.countEvents(t, typ); n != 1 {
				t.Fatalf("%d %s events, want 1", n, typ)
			}
		}
		if _, err := f.q.PausePool(ctx, "nope", "ops", ""); !ent.IsNotFound(errors.Unwrap(err)) {
			t.Fatalf("pause of an unknown pool: %v", err)
		}
	})
}

// An operator's stop that commits while a heartbeat, a report or the
// sweeper is deciding about the same attempt is never lost (PostgreSQL,
// read committed). Each case holds a transaction that marks the attempt
// stopped as StopTask does, starts the robot's call (or the sweep), waits
// until that call is blocked on the stop's row lock, and only then commits
// the stop: the call must see it. Without the attempt row locked before
// it is read, the heartbeat set the deadline back to max_duration, the
// failure was retried instead of cancelled and the sweeper retried the
// timed-out attempt.
func TestStopCommittedMidCall(t *testing.T) {
	db := storetest.Postgres(t)
	f := newFixture(t, db, 3, 3)
	db.Process.Update().Where(process.Name("echo")).SetMaxDurationSeconds(8 * 3600).ExecX(sys())
	f.q.ForgetSettings()
	ctx := context.Background()
	f.submit(t, 3)
	var cs []*dispatch.Claim
	for r := range 3 {
		c := f.claim(t, r)
		if c == nil {
			t.Fatalf("robot %d got no task", r)
		}
		cs = append(cs, c)
	}
	waiting := func() int {
		rows, err := db.QueryContext(ctx, `SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		n := 0
		for rows.Next() {
			if err := rows.Scan(&n); err != nil {
				t.Fatal(err)
			}
		}
		return n
	}
	// race runs call while a stop of c's attempt (deadline: min of its
	// own and the grace) is held uncommitted, then commits the stop.
	race := func(c *dispatch.Claim, call func()) time.Time {
		t.Helper()
		a := db.Attempt.GetX(sys(), c.Attempt.ID)
		grace := f.clock.Now().Add(dispatch.DefaultStopGrace)
		if a.Deadline.Before(grace) {
			grace = a.Deadline
		}
		tx, err := db.Tx(sys())
		if err != nil {
			t.Fatal(err)
		}
		tx.Attempt.UpdateOneID(a.ID).SetStopRequestedAt(f.clock.Now()).SetDeadline(grace).ExecX(sys())
		done := make(chan struct{})
		go func() { defer close(done); call() }()
		sdktest.Eventually(t, 10*time.Second, "the call waits for the stop's row lock", func() bool { return waiting() > 0 })
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
		<-done
		return grace
	}

	var d time.Time
	var err error
	grace := race(cs[0], func() { d, err = f.q.Heartbeat(ctx, f.robots[0].ID, cs[0].Task.ID, cs[0].Attempt.Number) })
	if !errors.Is(err, dispatch.ErrStopRequested) || !d.Equal(grace) {
		t.Errorf("heartbeat during a stop: deadline %v, %v; want the grace %v and ErrStopRequested", d, err, grace)
	}
	if got := db.Attempt.GetX(sys(), cs[0].Attempt.ID).Deadline; !got.Equal(grace) {
		t.Errorf("heartbeat during a stop moved the deadline to %v, want the grace %v", got, grace)
	}

	var out *ent.Task
	race(cs[1], func() {
		out, err = f.q.Report(ctx, f.robots[1].ID, cs[1].Task.ID, cs[1].Attempt.Number, dispatch.Result{Class: robotwire.ErrorExecution, Message: "portal down"})
	})
	if err != nil || out.State != task.StateCancelled {
		t.Errorf("failure reported during a stop: %+v %v; want the task cancelled", out, err)
	}
	if got := db.Task.GetX(sys(), cs[1].Task.ID).State; got != task.StateCancelled {
		t.Errorf("failure reported during a stop: task %s, want cancelled", got)
	}

	f.clock.Add(9 * time.Hour)
	race(cs[2], func() { _, err = f.q.Sweep(ctx) })
	if err != nil {
		t.Errorf("sweep during a stop: %v", err)
	}
	if got := db.Task.GetX(sys(), cs[2].Task.ID).State; got != task.StateCancelled {
		t.Errorf("time-out swept during a stop: task %s, want cancelled", got)
	}
}

// A retry applies submit's rule: once the configuration gave the process
// to another department, or removed it, the failed work of the first
// department is not run again (it would run with the new owner's
// credentials, or on a removed process), and the refusal reads like a
// submit to an unknown process. Given back, it can be retried.
func TestRetryChecksTheProcess(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db, 1, 0)
		ctx := context.Background()
		f.submit(t, 1)
		c := f.claim(t, 0)
		if _, err := f.q.Report(ctx, f.robots[0].ID, c.Task.ID, 1, dispatch.Result{Class: robotwire.ErrorExecution, Message: "portal down"}); err != nil {
			t.Fatal(err)
		}
		b2 := f.submit(t, 2)
		if _, err := f.q.CancelBatch(ctx, b2.ID, "ops", ""); err != nil {
			t.Fatal(err)
		}
		other := db.Customer.Create().SetName("tax").SaveX(sys())
		for _, change := range []struct {
			what string
			set  func(*ent.ProcessUpdate) *ent.ProcessUpdate
		}{
			{"given to another department", func(u *ent.ProcessUpdate) *ent.ProcessUpdate { return u.SetOwnerID(other.ID) }},
			{"removed", func(u *ent.ProcessUpdate) *ent.ProcessUpdate { return u.ClearOwnerID().SetActive(false) }},
		} {
			change.set(db.Process.Update().Where(process.Name("echo"))).ExecX(sys())
			want := `no active process "echo" for this customer`
			if _, err := f.q.RetryTask(ctx, c.Task.ID, "ops"); !errors.Is(err, dispatch.ErrBadInput) || !strings.Contains(err.Error(), want) {
				t.Errorf("retry of a task whose process was %s: %v, want ErrBadInput %q", change.what, err, want)
			}
			if n, err := f.q.RetryBatch(ctx, b2.ID, true, true, "ops"); !errors.Is(err, dispatch.ErrBadInput) || n != 0 {
				t.Errorf("retry of a batch whose process was %s: %d %v, want ErrBadInput", change.what, n, err)
			}
			if got := db.Task.GetX(sys(), c.Task.ID).State; got != task.StateFailed {
				t.Errorf("process %s: task %s after a refused retry", change.what, got)
			}
			if got := db.Batch.GetX(sys(), b2.ID); got.Cancelled != 2 || got.Pending != 0 {
				t.Errorf("process %s: batch after a refused retry: %+v", change.what, got)
			}
		}
		db.Process.Update().Where(process.Name("echo")).SetActive(true).SetOwnerID(f.cust.ID).ExecX(sys())
		if _, err := f.q.RetryTask(ctx, c.Task.ID, "ops"); err != nil {
			t.Errorf("retry on the customer's own process: %v", err)
		}
		if n, err := f.q.RetryBatch(ctx, b2.ID, false, true, "ops"); err != nil || n != 2 {
			t.Errorf("batch retry on the customer's own process: %d %v", n, err)
		}
	})
}

// A batch-wide request that stops part-way (here the database fails in
// its second chunk) answers ErrUnfinished, saying what it did, and keeps
// what its committed chunks did; the same request again finishes it.
func TestBatchRequestStoppedPartWay(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db, 1, 0)
		ctx := context.Background()
		// Once failAfter task updates to state fails were made, the next
		// ones fail (failAfter 0: none fails).
		var fails task.State
		failAfter, seen := 0, 0
		db.Task.Use(func(next ent.Mutator) ent.Mutator {
			return hook.TaskFunc(func(ctx context.Context, m *ent.TaskMutation) (ent.Value, error) {
				if st, ok := m.State(); ok && st == fails && m.Op().Is(ent.OpUpdate) && failAfter > 0 {
					if seen++; seen > failAfter {
						return nil, errors.New("database went away")
					}
				}
				return next.Mutate(ctx, m)
			})
		})
		b := f.submit(t, 250)
		fails, failAfter = task.StateCancelled, 200
		st, err := f.q.CancelBatch(ctx, b.ID, "ops", "")
		if !errors.Is(err, dispatch.ErrUnfinished) || st.Cancelled != 200 ||
			!strings.Contains(err.Error(), "200 tasks cancelled") || !strings.Contains(err.Error(), "run the same request again") {
			t.Fatalf("cancel failing in its second chunk: %+v %v", st, err)
		}
		if got := db.Batch.GetX(sys(), b.ID); got.Cancelled != 200 || got.Pending != 50 {
			t.Fatalf("batch after a cancel stopped part-way: %+v", got)
		}
		failAfter = 0
		if st, err := f.q.CancelBatch(ctx, b.ID, "ops", ""); err != nil || st.Cancelled != 50 {
			t.Fatalf("cancel again: %+v %v", st, err)
		}
		if got := db.Batch.GetX(sys(), b.ID); got.Cancelled != 250 || got.Stack != batch.StackFinished {
			t.Fatalf("batch after the second cancel: %+v", got)
		}

		fails, failAfter, seen = task.StatePending, 200, 0
		n, err := f.q.RetryBatch(ctx, b.ID, false, true, "ops")
		if !errors.Is(err, dispatch.ErrUnfinished) || n != 200 || !strings.Contains(err.Error(), "200 tasks pending again") {
			t.Fatalf("retry failing in its second chunk: %d %v", n, err)
		}
		failAfter = 0
		if n, err := f.q.RetryBatch(ctx, b.ID, false, true, "ops"); err != nil || n != 50 {
			t.Fatalf("retry again: %d %v", n, err)
		}
		if got := db.Batch.GetX(sys(), b.ID); got.Pending != 250 || got.Cancelled != 0 {
			t.Fatalf("batch after the second retry: %+v", got)
		}
		// One wake per chunk (200 + 50 tasks), not one per task.
		if n := f.countEvents(t, events.BatchRequeued); n != 2 {
			t.Fatalf("%d batch.requeued events for 250 tasks retried in two chunks, want 2", n)
		}
		if n := f.countEvents(t, events.TaskRequeued); n != 250 {
			t.Fatalf("%d task.requeued events, want one per task", n)
		}
	})
}
