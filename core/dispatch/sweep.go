package dispatch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/rpacloud/rpacloud/ent"
	"github.com/rpacloud/rpacloud/ent/attempt"
	"github.com/rpacloud/rpacloud/ent/batch"
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
			return q.abandon(ctx, tx, rec, a)
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

func (q *Queue) abandon(ctx context.Context, tx *ent.Tx, rec *recorder, a *ent.Attempt) error {
	sctx := system(ctx)
	n, err := tx.Attempt.Update().
		Where(attempt.ID(a.ID), attempt.StateEQ(attempt.StateRunning), attempt.DeadlineLT(rec.now)).
		SetState(attempt.StateAbandoned).SetErrorClass(attempt.ErrorClassTimeout).
		SetErrorMessage("no result before the deadline").SetFinishedAt(rec.now).Save(sctx)
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
	rec.add(tx, "task.delayed", fmt.Sprintf("attempt %d passed its deadline on robot %d", a.Number, a.RobotID), t, &rid)
	if exhausted {
		t.State = task.StateFailed
		rec.add(tx, "task.failed", "timeout_exhausted", t, &rid)
		return finishBatchIfDone(sctx, tx, rec, t.BatchID)
	}
	return nil
}

// Elector is the leader election RunSweeper needs; *lease.Elector
// satisfies it.
type Elector interface {
	Campaign(ctx context.Context) (term int64, leader bool, err error)
	Leading() bool
	Resign(ctx context.Context) error
}

// SweeperOptions configure RunSweeper.
type SweeperOptions struct {
	// Interval between sweeps; default 5s.
	Interval time.Duration
	// Elector, when set, makes only the lease holder sweep. Nil means this
	// daemon is alone on its database (SQLite) and always sweeps.
	Elector Elector
	// Tick waits for the next round; default a real timer of Interval.
	// Simulators and tests pass a virtual one. It returns false when ctx
	// is done.
	Tick func(ctx context.Context, d time.Duration) bool
	// Logger; default the queue's.
	Logger *slog.Logger
}

// RunSweeper sweeps expired attempts every Interval until ctx is done,
// campaigning for leadership first when an Elector is given, and resigns
// on the way out so a peer takes over at once.
func (q *Queue) RunSweeper(ctx context.Context, o SweeperOptions) {
	if o.Interval <= 0 {
		o.Interval = 5 * time.Second
	}
	if o.Tick == nil {
		o.Tick = sleep
	}
	log := o.Logger
	if log == nil {
		log = q.log
	}
	wasLeader := false
	for o.Tick(ctx, o.Interval) {
		if o.Elector != nil {
			_, leader, err := o.Elector.Campaign(ctx)
			if err != nil && ctx.Err() == nil {
				log.Error("sweeper: leader election", "err", err)
			}
			if leader != wasLeader {
				log.Info("sweeper: leadership changed", "leader", leader)
				wasLeader = leader
			}
			if !leader || !o.Elector.Leading() {
				continue
			}
		}
		n, err := q.Sweep(ctx)
		if err != nil && ctx.Err() == nil {
			log.Error("sweep", "err", err)
		}
		if n > 0 {
			log.Warn("abandoned attempts past their deadline", "count", n)
		}
	}
	if o.Elector != nil {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := o.Elector.Resign(rctx); err != nil {
			log.Warn("sweeper: resign", "err", err)
		}
	}
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
