package dispatch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/rpacloud/rpacloud/core/events"
	"github.com/rpacloud/rpacloud/core/retry"
	"github.com/rpacloud/rpacloud/ent"
	"github.com/rpacloud/rpacloud/ent/attempt"
	"github.com/rpacloud/rpacloud/ent/batch"
	"github.com/rpacloud/rpacloud/ent/predicate"
	"github.com/rpacloud/rpacloud/ent/robot"
	"github.com/rpacloud/rpacloud/ent/task"
)

// Sweep abandons every running attempt whose deadline has passed: the
// customer is told the task is delayed, the robot becomes suspect (no work
// until it polls again), and the task goes back to pending, for another
// robot when the pool has one (see claimable), or fails with
// timeout_exhausted at its MaxTimeoutRobots-th time-out, on whichever
// robots they happened. It returns how many attempts it abandoned.
func (q *Queue) Sweep(ctx context.Context) (int, error) {
	now := q.clock()
	expired, err := q.client.Attempt.Query().
		Where(attempt.StateEQ(attempt.StateRunning), attempt.DeadlineLT(now)).
		Limit(500).All(system(ctx))
	if err != nil {
		return 0, fmt.Errorf("sweep: list expired attempts: %w", err)
	}
	done := 0
	for _, a := range expired {
		err := q.withTx(ctx, func(ctx context.Context, tx *ent.Tx, rec *recorder) error {
			return q.abandon(ctx, tx, rec, a, pastDeadline(rec.now))
		})
		if errors.Is(err, ErrStaleAttempt) {
			continue // reported or swept meanwhile
		}
		if err != nil {
			return done, fmt.Errorf("sweep: %w", err)
		}
		done++
	}
	return done, nil
}

// cause is why a running attempt is abandoned: past its deadline, or its
// robot lost. holds says, on the attempt read again under lock, whether it
// still applies; fence is the same as the update's condition.
type cause struct {
	holds   func(a *ent.Attempt) bool
	fence   predicate.Attempt
	message string                      // the attempt's error message
	delayed func(a *ent.Attempt) string // the task.delayed event's message
}

func pastDeadline(now time.Time) cause {
	return cause{
		holds:   func(a *ent.Attempt) bool { return a.Deadline.Before(now) },
		fence:   attempt.DeadlineLT(now),
		message: "no result before the deadline",
		delayed: func(a *ent.Attempt) string {
			return fmt.Sprintf("attempt %d passed its deadline on robot %d", a.Number, a.RobotID)
		},
	}
}

// robotLost: the attempt's robot has not been seen since cut (its
// heartbeat is lost), and the attempt had no heartbeat since either.
func robotLost(cut time.Time, silentFor time.Duration) cause {
	quiet := func(a *ent.Attempt) bool {
		return a.StartedAt.Before(cut) && (a.HeartbeatAt == nil || a.HeartbeatAt.Before(cut))
	}
	return cause{
		holds:   quiet,
		fence:   attempt.And(attempt.StartedAtLT(cut), attempt.Or(attempt.HeartbeatAtIsNil(), attempt.HeartbeatAtLT(cut))),
		message: fmt.Sprintf("robot lost: its heartbeat stopped for more than %s", silentFor),
		delayed: func(a *ent.Attempt) string {
			return fmt.Sprintf("attempt %d abandoned: robot %d lost its heartbeat (silent for more than %s)", a.Number, a.RobotID, silentFor)
		},
	}
}

// MinLostAfter is the least silence SweepLost takes for a lost robot,
// whatever it is given: a running robot checks in at least every 30 s (the
// agent's awaitStop long poll, which marks it seen when it starts; its
// heartbeats are a third of max_duration apart) and, when it talks to
// another daemon than the sweeper, its moment may wait one liveness flush
// (10 s) to reach the database: a live robot's moment there can be 40 s
// old and more with a slow round trip. 55 s leaves 15 s of margin. A
// shorter heartbeat_timeout may show an anomaly early; it must not take a
// live robot's work away (a task would then run twice).
const MinLostAfter = 55 * time.Second

// SweepLost abandons every running attempt whose robot has not been seen
// for longer than lostAfter (the monitor's heartbeat_timeout: the moment
// its heartbeat_lost anomaly fires), instead of letting the task wait out
// its max_duration. The fencing is the deadline sweep's: the attempt ends
// abandoned, the robot becomes suspect, a late report or heartbeat gets
// ErrStaleAttempt, and the task is retried on another robot or fails with
// timeout_exhausted (or ends cancelled, if a stop was asked), counted as a
// time-out. A robot seen by this daemon but not yet flushed is alive.
// Moments other daemons have not flushed yet are at most one liveness
// flush old (DefaultLivenessFlush), far below any sensible lostAfter.
func (q *Queue) SweepLost(ctx context.Context, lostAfter time.Duration) (int, error) {
	if lostAfter <= 0 {
		return 0, nil
	}
	lostAfter = max(lostAfter, MinLostAfter)
	now := q.clock()
	cut := now.Add(-lostAfter)
	lost, err := q.client.Attempt.Query().
		Where(attempt.StateEQ(attempt.StateRunning), attempt.StartedAtLT(cut),
			attempt.HasRobotWith(robot.LastSeenAtLT(cut))).
		Limit(500).All(system(ctx))
	if err != nil {
		return 0, fmt.Errorf("sweep lost robots: list attempts: %w", err)
	}
	done := 0
	for _, a := range lost {
		if at, ok := q.LastSeen(a.RobotID); ok && !at.Before(cut) {
			continue
		}
		err := q.withTx(ctx, func(ctx context.Context, tx *ent.Tx, rec *recorder) error {
			// The robot's moment again, inside the transaction: a flush
			// committed since the list means it is back.
			r, err := tx.Robot.Get(system(ctx), a.RobotID)
			if err != nil {
				return fmt.Errorf("robot %d: %w", a.RobotID, err)
			}
			if r.LastSeenAt == nil || !r.LastSeenAt.Before(cut) {
				return ErrStaleAttempt
			}
			return q.abandon(ctx, tx, rec, a, robotLost(cut, lostAfter))
		})
		if errors.Is(err, ErrStaleAttempt) {
			continue // reported, swept or back meanwhile
		}
		if err != nil {
			return done, fmt.Errorf("sweep lost robots: %w", err)
		}
		done++
	}
	return done, nil
}

func (q *Queue) abandon(ctx context.Context, tx *ent.Tx, rec *recorder, a *ent.Attempt, why cause) error {
	sctx := system(ctx)
	// a was listed outside this transaction: read it again, locked (see
	// running), so that a stop or a heartbeat committed since is seen.
	id := a.ID
	a, err := tx.Attempt.Query().Where(attempt.ID(id)).Modify(lockOnPostgres).Only(sctx)
	if ent.IsNotFound(err) {
		return ErrStaleAttempt
	}
	if err != nil {
		return fmt.Errorf("abandon attempt %d: %w", id, err)
	}
	if a.State != attempt.StateRunning || !why.holds(a) {
		return ErrStaleAttempt
	}
	if a.StopRequestedAt != nil {
		return q.abandonStopped(sctx, tx, rec, a, why)
	}
	n, err := tx.Attempt.Update().
		Where(attempt.ID(a.ID), attempt.StateEQ(attempt.StateRunning), why.fence).
		SetState(attempt.StateAbandoned).SetErrorClass(attempt.ErrorClassTimeout).
		SetErrorMessage(why.message).SetFinishedAt(rec.now).Save(sctx)
	if err != nil {
		return fmt.Errorf("abandon attempt %d: %w", a.ID, err)
	}
	if n != 1 {
		return ErrStaleAttempt
	}
	t, err := tx.Task.Get(sctx, a.TaskID)
	if err != nil {
		return fmt.Errorf("abandon attempt %d: task: %w", a.ID, err)
	}
	tu := tx.Task.Update().Where(task.ID(t.ID), task.StateEQ(task.StateRunning), task.AttemptNo(a.Number)).
		AddTimeouts(1).SetUpdatedAt(rec.now)
	bu := tx.Batch.Update().Where(batch.ID(t.BatchID)).AddRunning(-1).SetUpdatedAt(rec.now)
	// Time-outs count in total, not per robot: a robot may retry a task it
	// timed out on when no other robot can take it (a pool of one or two),
	// and the task must still end.
	exhausted := t.Timeouts+1 >= MaxTimeoutRobots
	if exhausted {
		robots, err := tx.Attempt.Query().
			Where(attempt.TaskID(t.ID), attempt.StateEQ(attempt.StateAbandoned)).
			Unique(true).Select(attempt.FieldRobotID).Ints(sctx)
		if err != nil {
			return fmt.Errorf("abandon attempt %d: count robots: %w", a.ID, err)
		}
		on := fmt.Sprintf("%d robots", len(robots))
		if len(robots) == 1 {
			on = "1 robot"
		}
		tu.SetState(task.StateFailed).SetFailureReason(task.FailureReasonTimeoutExhausted).
			SetErrorMessage(fmt.Sprintf("timed out %d times (on %s)", t.Timeouts+1, on)).SetFinishedAt(rec.now)
		bu.AddFailed(1)
	} else {
		tu.SetState(task.StatePending).SetRandKey(q.randKey())
		bu.AddPending(1)
	}
	if n, err := tu.Save(sctx); err != nil || n != 1 {
		return fmt.Errorf("abandon attempt %d: update task: %w", a.ID, errOr(err, ErrStaleAttempt))
	}
	if err := bu.Exec(sctx); err != nil {
		return fmt.Errorf("abandon attempt %d: update batch: %w", a.ID, err)
	}
	if err := tx.Robot.Update().Where(robot.ID(a.RobotID), robot.StateIn(robot.StateBusy, robot.StateIdle)).
		SetState(robot.StateSuspect).Exec(sctx); err != nil {
		return fmt.Errorf("abandon attempt %d: mark robot suspect: %w", a.ID, err)
	}
	rid := a.RobotID
	rec.add(tx, events.TaskDelayed, why.delayed(a), t, &rid)
	rec.attemptEnded(t, string(attempt.StateAbandoned))
	if exhausted {
		reason := task.FailureReasonTimeoutExhausted
		t.State, t.FailureReason = task.StateFailed, &reason
		rec.add(tx, events.TaskFailed, "timeout_exhausted", t, &rid)
		return finishBatchIfDone(sctx, tx, rec, t.BatchID)
	}
	return nil
}

// abandonStopped ends an attempt an operator asked to stop whose robot did
// not report within the grace: like a time-out (attempt abandoned, robot
// suspect, the time-out counted), but the task ends cancelled, as the
// operator asked, and is not retried.
func (q *Queue) abandonStopped(ctx context.Context, tx *ent.Tx, rec *recorder, a *ent.Attempt, why cause) error {
	msg := fmt.Sprintf("did not stop within the grace after the stop requested at %s", a.StopRequestedAt.Format(time.RFC3339))
	n, err := tx.Attempt.Update().
		Where(attempt.ID(a.ID), attempt.StateEQ(attempt.StateRunning), why.fence).
		SetState(attempt.StateAbandoned).SetErrorClass(attempt.ErrorClassTimeout).
		SetErrorMessage(msg).SetFinishedAt(rec.now).Save(ctx)
	if err != nil {
		return fmt.Errorf("abandon attempt %d: %w", a.ID, err)
	}
	if n != 1 {
		return ErrStaleAttempt
	}
	t, err := tx.Task.Get(ctx, a.TaskID)
	if err != nil {
		return fmt.Errorf("abandon attempt %d: task: %w", a.ID, err)
	}
	reason := task.FailureReasonCancelled
	tmsg := "cancelled: the robot " + msg
	k, err := tx.Task.Update().Where(task.ID(t.ID), task.StateEQ(task.StateRunning), task.AttemptNo(a.Number)).
		AddTimeouts(1).SetState(task.StateCancelled).SetFailureReason(reason).SetErrorMessage(tmsg).
		SetFinishedAt(rec.now).SetUpdatedAt(rec.now).Save(ctx)
	if err != nil || k != 1 {
		return fmt.Errorf("abandon attempt %d: update task: %w", a.ID, errOr(err, ErrStaleAttempt))
	}
	if err := tx.Batch.Update().Where(batch.ID(t.BatchID)).AddRunning(-1).AddCancelled(1).SetUpdatedAt(rec.now).Exec(ctx); err != nil {
		return fmt.Errorf("abandon attempt %d: update batch: %w", a.ID, err)
	}
	if err := tx.Robot.Update().Where(robot.ID(a.RobotID), robot.StateIn(robot.StateBusy, robot.StateIdle)).
		SetState(robot.StateSuspect).Exec(ctx); err != nil {
		return fmt.Errorf("abandon attempt %d: mark robot suspect: %w", a.ID, err)
	}
	rid := a.RobotID
	t.State, t.FailureReason, t.ErrorMessage, t.FinishedAt = task.StateCancelled, &reason, tmsg, &rec.now
	rec.add(tx, events.TaskDelayed, fmt.Sprintf("attempt %d on robot %d %s", a.Number, a.RobotID, msg), t, &rid)
	rec.attemptEnded(t, string(attempt.StateAbandoned))
	rec.add(tx, events.TaskCancelled, tmsg, t, &rid)
	return finishBatchIfDone(ctx, tx, rec, t.BatchID)
}

// expireLimit bounds the tasks one Expire call fails, and expireChunk the
// tasks one of its transactions fails, so that a huge expired order
// neither holds the writer for long nor delays the deadline sweep.
const (
	expireLimit = 2000
	expireChunk = 200
)

// Expire fails every task still pending max_wait (its process's
// max_wait_seconds) after its submission, with failure_reason expired and
// the wait in its error message: never started because no robot of its
// pool could take it, or waiting for a retry that never came. A running
// attempt is never cut short; its task expires only once it is pending
// again. So every task ends in bounded time whatever its pool: at most
// max_wait after submission plus its last attempt (and the sweep
// interval). Two exceptions, both an operator's doing: a task retried by
// hand (or waiting in a resumed pool or process) waits max_wait from its
// requeued_at, and the tasks of a paused pool or process do not expire
// while it is paused. It returns how many tasks it failed.
func (q *Queue) Expire(ctx context.Context) (int, error) {
	sctx := system(ctx)
	now := q.clock()
	// Active orders only (stacks A and B with pending tasks): few rows.
	// Tasks carry their batch's creation time, so the batch's says when
	// they were submitted.
	// Paused work does not expire (notPaused): its robots may not take it.
	var rows []struct {
		ID        int       `json:"id"`
		ProcessID int       `json:"process_id"`
		CreatedAt time.Time `json:"created_at"`
	}
	err := q.client.Batch.Query().
		Where(batch.StackIn(batch.StackNew, batch.StackServing), batch.PendingGT(0), notPaused()).
		Order(ent.Asc(batch.FieldCreatedAt), ent.Asc(batch.FieldID)).
		Select(batch.FieldID, batch.FieldProcessID, batch.FieldCreatedAt).Scan(sctx, &rows)
	if err != nil {
		return 0, fmt.Errorf("expire: list active batches: %w", err)
	}
	done := 0
	for _, b := range rows {
		p, err := q.processFrom(sctx, q.client.Process, b.ProcessID)
		if err != nil {
			return done, fmt.Errorf("expire: process of batch %d: %w", b.ID, err)
		}
		maxWait := time.Duration(p.MaxWaitSeconds) * time.Second
		if !b.CreatedAt.Before(now.Add(-maxWait)) {
			continue
		}
		msg := fmt.Sprintf("expired: still waiting for a robot %s after its submission (max_wait of %s is %s)",
			now.Sub(b.CreatedAt).Round(time.Second), p.Name, maxWait)
		requeuedMsg := fmt.Sprintf("expired: still waiting for a robot more than %s after it was last made pending again by a retry or resume (max_wait of %s)",
			maxWait, p.Name)
		for done < expireLimit {
			n, err := q.expireBatch(ctx, b.ID, min(expireChunk, expireLimit-done), now.Add(-maxWait), msg, requeuedMsg)
			if err != nil {
				return done, err
			}
			done += n
			if n == 0 {
				break
			}
		}
	}
	return done, nil
}

// expireBatch fails up to limit pending tasks of batch batchID with
// reason expired, each behind the fence (task, pending, attempt number),
// so a task a robot claimed meanwhile is left alone. It returns how many
// it failed.
func (q *Queue) expireBatch(ctx context.Context, batchID, limit int, cutoff time.Time, submittedMsg, requeuedMsg string) (int, error) {
	n := 0
	err := q.withTx(ctx, func(ctx context.Context, tx *ent.Tx, rec *recorder) error {
		n = 0
		// A task an operator made pending again (retry, resume) waits
		// max_wait from then (requeued_at), the others from the batch's
		// submission, which the caller checked is before cutoff.
		ts, err := tx.Task.Query().Where(task.BatchID(batchID), task.StateEQ(task.StatePending),
			task.Or(task.RequeuedAtIsNil(), task.RequeuedAtLT(cutoff))).
			Order(task.ByID()).Limit(limit).All(ctx)
		if err != nil {
			return fmt.Errorf("expire batch %d: list pending tasks: %w", batchID, err)
		}
		reason := task.FailureReasonExpired
		for _, t := range ts {
			msg := submittedMsg
			if t.RequeuedAt != nil {
				msg = requeuedMsg
			}
			k, err := tx.Task.Update().
				Where(task.ID(t.ID), task.StateEQ(task.StatePending), task.AttemptNo(t.AttemptNo)).
				SetState(task.StateFailed).SetFailureReason(reason).SetErrorMessage(msg).
				SetFinishedAt(rec.now).SetUpdatedAt(rec.now).Save(ctx)
			if err != nil {
				return fmt.Errorf("expire task %d: %w", t.ID, err)
			}
			if k != 1 {
				continue // claimed meanwhile
			}
			n++
			t.State, t.FailureReason, t.ErrorMessage, t.FinishedAt = task.StateFailed, &reason, msg, &rec.now
			rec.add(tx, events.TaskFailed, msg, t, nil)
		}
		if n == 0 {
			return nil
		}
		k, err := tx.Batch.Update().Where(batch.ID(batchID), batch.PendingGTE(n)).
			AddPending(-n).AddFailed(n).SetUpdatedAt(rec.now).Save(ctx)
		if err != nil {
			return fmt.Errorf("expire batch %d: update counters: %w", batchID, err)
		}
		if k != 1 {
			return fmt.Errorf("expire batch %d: it counts fewer than the %d pending tasks expired", batchID, n)
		}
		return finishBatchIfDone(ctx, tx, rec, batchID)
	})
	return n, err
}

// SweeperOptions configure RunSweeper.
type SweeperOptions struct {
	// Interval between sweeps; default 5s.
	Interval time.Duration
	// Tick waits for the next round; default a real timer of Interval.
	// Simulators and tests pass a virtual one. It returns false when ctx
	// is done.
	Tick func(ctx context.Context, d time.Duration) bool
	// Logger; default the queue's.
	Logger *slog.Logger
	// LostAfter, read at each round, is how long a robot running an
	// attempt may go unseen before the attempt is abandoned (SweepLost);
	// nil or 0 leaves such attempts to their deadline. The daemon passes
	// the monitor's heartbeat_timeout, so the attempt ends when the
	// heartbeat_lost anomaly opens.
	LostAfter func() time.Duration
}

// RunSweeper sweeps expired attempts (Sweep) and tasks past their
// max_wait (Expire) every Interval until ctx is done. With several daemons
// on one database, only the leader runs it (the daemon's leader services,
// core/lease.Group); should two overlap during a failover, each sweep
// step is fenced on the rows' states.
func (q *Queue) RunSweeper(ctx context.Context, o SweeperOptions) {
	if o.Interval <= 0 {
		o.Interval = 5 * time.Second
	}
	if o.Tick == nil {
		o.Tick = retry.Sleep
	}
	log := o.Logger
	if log == nil {
		log = q.log
	}
	for o.Tick(ctx, o.Interval) {
		n, err := q.Sweep(ctx)
		if err != nil && ctx.Err() == nil {
			log.Error("sweep", "err", err)
		}
		if n > 0 {
			log.Warn("abandoned attempts past their deadline", "count", n)
		}
		if o.LostAfter != nil {
			n, err = q.SweepLost(ctx, o.LostAfter())
			if err != nil && ctx.Err() == nil {
				log.Error("sweep lost robots", "err", err)
			}
			if n > 0 {
				log.Warn("abandoned attempts of robots whose heartbeat is lost", "count", n)
			}
		}
		n, err = q.Expire(ctx)
		if err != nil && ctx.Err() == nil {
			log.Error("expire", "err", err)
		}
		if n > 0 {
			log.Warn("failed tasks still waiting after their process's max_wait", "count", n)
		}
	}
}
