package dispatch

import (
	"context"
	"errors"
	"fmt"
	"time"

	"entgo.io/ent/dialect"
	"entgo.io/ent/dialect/sql"

	"github.com/rpacloud/rpacloud/core/dispatch/policy"
	"github.com/rpacloud/rpacloud/core/events"
	"github.com/rpacloud/rpacloud/ent"
	"github.com/rpacloud/rpacloud/ent/batch"
	"github.com/rpacloud/rpacloud/ent/predicate"
	"github.com/rpacloud/rpacloud/ent/robot"
	"github.com/rpacloud/rpacloud/ent/task"
)

// Claim is what a robot receives: one task and the attempt it runs under.
type Claim struct {
	Task     *ent.Task
	Process  *ent.Process
	Attempt  *ent.Attempt
	Deadline time.Time
}

// claimRetries bounds how often a claim starts again after losing a race
// for a task to another claimer (PostgreSQL, read committed).
const claimRetries = 8

// maxDraws bounds the batches one claim tries before answering "nothing":
// a batch whose pending tasks are all locked by other claimers, or all
// timed out on this robot, is set aside and the policy picks again.
const maxDraws = 16

// IdleLiveness is how recently an idle robot must have polled to count as
// another robot able to take a task that timed out (see claimable). Idle
// robots poll at least every 30 s (claimTask waits at most that long), so
// one silent for longer has probably stopped; counting it would keep the
// task from the robots that are really there.
const IdleLiveness = 2 * time.Minute

// claimable is the draw's time-out rule: a robot does not get a task it
// timed out on while another robot could take it, and may get it again
// when none could. Another robot is one of the task's pool, not robot
// robotID, that has not timed out on the task and is busy (it holds an
// attempt, which ends by result or deadline) or idle and polled at or
// after liveSince (now less IdleLiveness). Suspect, draining, released and
// provisioning robots do not count. So a time-out goes to another robot
// whenever the pool has one, and in a pool of one robot, or once every
// live robot of the pool timed out on the task, a robot that timed out
// retries it; Sweep bounds the time-outs of a task in total
// (MaxTimeoutRobots). claimSQL carries the same condition, word for word.
func claimable(robotID int, liveSince time.Time) predicate.Task {
	return func(s *sql.Selector) {
		id, pool := s.C(task.FieldID), s.C(task.FieldPoolID)
		s.Where(sql.P(func(b *sql.Builder) {
			b.WriteString("(" + id + " NOT IN (SELECT task_id FROM attempts WHERE robot_id = ").Arg(robotID).
				WriteString(" AND state = 'abandoned') OR NOT EXISTS (SELECT 1 FROM robots o WHERE o.pool_id = " + pool + " AND o.id <> ").Arg(robotID).
				WriteString(" AND (o.state = 'busy' OR (o.state = 'idle' AND o.last_seen_at >= ").Arg(liveSince).
				WriteString(")) AND o.id NOT IN (SELECT robot_id FROM attempts WHERE task_id = " + id + " AND state = 'abandoned')))")
		}))
	}
}

// ClaimResult is what one claim saw and did.
type ClaimResult struct {
	// Claim is the task handed out, nil when none.
	Claim *Claim
	// Backlog is how many pending tasks the claimable batches (stacks A
	// and B, pool and process not paused) of the robot's pool held as
	// this claim read them, less the one it took; 0: nothing there. It
	// costs nothing (the claim reads those counters to choose a batch)
	// and tells robotapi how many more waiting robots to wake. A robot
	// may get nothing although Backlog > 0 (the time-out rule keeps it
	// from a task, or it is draining).
	Backlog int
	// PoolID is the robot's pool (0 when the robot was not read).
	PoolID int
}

// ClaimTask gives robot robotID its next task, or nil when there is none:
// Claim without what it saw.
func (q *Queue) ClaimTask(ctx context.Context, robotID int) (*Claim, error) {
	res, err := q.Claim(ctx, robotID)
	return res.Claim, err
}

// Claim gives robot robotID its next task, if any, with the pool's
// backlog as the claim saw it (ClaimResult). The poll is also the robot's
// check-in: a suspect robot becomes idle. Draining and released robots
// get nothing.
func (q *Queue) Claim(ctx context.Context, robotID int) (res ClaimResult, err error) {
	if q.metrics != nil {
		// The claim's own work, on the wall clock whatever the queue's
		// clock: a latency, not a moment of the queue's model.
		start := time.Now()
		defer func() {
			if err == nil {
				q.metrics.Claimed(q.poolName(ctx, res.PoolID), time.Since(start), res.Claim != nil)
			}
		}()
	}
	return q.claim(ctx, robotID)
}

func (q *Queue) claim(ctx context.Context, robotID int) (ClaimResult, error) {
	if q.postgres.Load() {
		res, err := q.claimFast(ctx, robotID)
		if !errors.Is(err, errSlowPath) {
			return res, err
		}
	}
	// last is the latest attempt's view: a claim that lost every race
	// still tells robotapi the pool's backlog and pool, so the other
	// robots are woken for the work it could not take.
	var last ClaimResult
	for range claimRetries {
		var res ClaimResult
		lost := false
		err := q.withTx(ctx, func(ctx context.Context, tx *ent.Tx, rec *recorder) error {
			r, err := tx.Robot.Get(ctx, robotID)
			if err != nil {
				return fmt.Errorf("claim: robot %d: %w", robotID, err)
			}
			res.PoolID = r.PoolID
			switch r.State {
			case robot.StateDraining, robot.StateReleased:
				// The check-in is only a moment: kept in memory and
				// written with the next liveness flush (liveness.go).
				q.Seen(robotID, rec.now)
				// The pool's backlog still matters to the robots that
				// may take it (robotapi wakes them by it).
				res.Backlog, err = q.backlog(ctx, tx.Batch, r.PoolID)
				return err
			}
			t, backlog, err := q.pick(ctx, tx, r)
			if err != nil {
				return err
			}
			res.Backlog = backlog
			if t == nil {
				if r.State == robot.StateIdle {
					// Nothing changes but the moment: no write.
					q.Seen(robotID, rec.now)
					return nil
				}
				// A suspect (or otherwise not idle) robot polling is
				// trusted again: a state change, written at once.
				return tx.Robot.Update().Where(robot.ID(robotID)).SetLastSeenAt(rec.now).SetState(robot.StateIdle).Exec(ctx)
			}
			c, ok, err := q.start(ctx, tx, rec, r, t)
			if err != nil {
				return err
			}
			if !ok {
				lost = true
				return nil
			}
			res.Claim = c
			res.Backlog = max(backlog-1, 0)
			return nil
		})
		if err != nil {
			return ClaimResult{}, err
		}
		if !lost {
			return res, nil
		}
		last = res
	}
	return last, nil
}

// claimableBatches are the batches of pool poolID a claim chooses from:
// stacks A and B with pending work, pool and process not paused.
func claimableBatches(poolID int) []predicate.Batch {
	return []predicate.Batch{batch.PoolID(poolID), batch.StackIn(batch.StackNew, batch.StackServing), batch.PendingGT(0), notPaused()}
}

// backlog sums the pending tasks of pool poolID's claimable batches.
func (q *Queue) backlog(ctx context.Context, bc *ent.BatchClient, poolID int) (int, error) {
	var rows []struct {
		Sum *int `json:"sum"`
	}
	err := bc.Query().Where(claimableBatches(poolID)...).Aggregate(ent.Sum(batch.FieldPending)).Scan(ctx, &rows)
	if err != nil {
		return 0, fmt.Errorf("claim: backlog of pool %d: %w", poolID, err)
	}
	if len(rows) == 0 || rows[0].Sum == nil {
		return 0, nil
	}
	return *rows[0].Sum, nil
}

// PoolsWithWork returns which of pools have a claimable batch (stack A or
// B with pending tasks, neither pool nor process paused), in one
// read-only statement. robotapi's backstop asks it for the pools that have
// waiting robots, in case an event that should have woken one was missed
// (another daemon's, a time-out made pending elsewhere).
func (q *Queue) PoolsWithWork(ctx context.Context, pools []int) (map[int]bool, error) {
	out := make(map[int]bool)
	if len(pools) == 0 {
		return out, nil
	}
	// A pool per id at most: bounded by the ids asked.
	ids, err := q.client.Batch.Query().
		Where(batch.PoolIDIn(pools...), batch.StackIn(batch.StackNew, batch.StackServing), batch.PendingGT(0), notPaused()).
		Unique(true).Select(batch.FieldPoolID).Ints(system(ctx))
	if err != nil {
		return nil, fmt.Errorf("pools with work: %w", err)
	}
	for _, id := range ids {
		out[id] = true
	}
	return out, nil
}

// pick chooses the next task for robot r by its pool's fairness; backlog
// is the pending tasks of the batches it chose from.
func (q *Queue) pick(ctx context.Context, tx *ent.Tx, r *ent.Robot) (t *ent.Task, backlog int, err error) {
	p, fair, err := q.poolFairness(ctx, tx.Pool, r.ID, r.PoolID)
	if err != nil {
		return nil, 0, err
	}
	// Active orders only (stacks A and B with pending work), and only the
	// columns the policy reads.
	var rows []batchRow
	err = tx.Batch.Query().
		Where(claimableBatches(r.PoolID)...).
		Select(batch.FieldID, batch.FieldStack, batch.FieldCreatedAt, batch.FieldLastServedAt, batch.FieldPending, batch.FieldRunning).
		Modify(func(s *sql.Selector) { q.postgres.Store(s.Dialect() == dialect.Postgres) }).
		Scan(ctx, &rows)
	if err != nil {
		return nil, 0, fmt.Errorf("claim: list batches of pool %s: %w", p.Name, err)
	}
	cands := make([]policy.Candidate, len(rows))
	for i, b := range rows {
		cands[i] = b.candidate()
		backlog += b.Pending
	}
	liveSince := q.clock().Add(-IdleLiveness)
	for range maxDraws {
		i, ok := policy.Pick(fair, cands, q)
		if !ok {
			return nil, backlog, nil
		}
		t, err := q.draw(ctx, tx, cands[i].ID, r.ID, liveSince)
		if err != nil {
			return nil, 0, err
		}
		if t != nil {
			return t, backlog, nil
		}
		cands[i].Pending = 0 // nothing this robot can take now; choose again
	}
	return nil, backlog, nil
}

// poolFairness reads (through the settings cache) the pool of robot
// robotID and its fairness.
func (q *Queue) poolFairness(ctx context.Context, pc *ent.PoolClient, robotID, poolID int) (*ent.Pool, policy.Fairness, error) {
	p, err := q.poolFrom(ctx, pc, poolID)
	if err != nil {
		return nil, "", fmt.Errorf("claim: pool of robot %d: %w", robotID, err)
	}
	fair, err := policy.ParseFairness(string(p.Fairness))
	if err != nil {
		return nil, "", fmt.Errorf("claim: pool %s: %w", p.Name, err)
	}
	return p, fair, nil
}

// batchRow is what the policy reads of an active batch.
type batchRow struct {
	ID           int        `json:"id"`
	Stack        string     `json:"stack"`
	CreatedAt    time.Time  `json:"created_at"`
	LastServedAt *time.Time `json:"last_served_at"`
	Pending      int        `json:"pending"`
	Running      int        `json:"running"`
}

func (b batchRow) candidate() policy.Candidate {
	c := policy.Candidate{ID: b.ID, Stack: policy.StackB, Submitted: b.CreatedAt, Pending: b.Pending, Running: max(b.Running, 0)}
	if b.Stack == string(batch.StackNew) {
		c.Stack = policy.StackA
	}
	if b.LastServedAt != nil {
		c.LastServed = *b.LastServedAt
	}
	return c
}

// draw takes a pending task of batch batchID at random, skipping tasks on
// which robot robotID timed out while another robot could take them
// (claimable) and, on PostgreSQL, tasks another claimer holds. It returns
// nil when there is none.
func (q *Queue) draw(ctx context.Context, tx *ent.Tx, batchID, robotID int, liveSince time.Time) (*ent.Task, error) {
	from := q.randKey()
	for _, lower := range []bool{true, false} {
		qr := tx.Task.Query().Where(
			task.BatchID(batchID), task.StateEQ(task.StatePending),
			claimable(robotID, liveSince),
		)
		if lower {
			qr.Where(task.RandKeyGTE(from))
		} else {
			qr.Where(task.RandKeyLT(from))
		}
		t, err := qr.Order(task.ByRandKey()).Limit(1).
			Modify(func(s *sql.Selector) {
				if s.Dialect() == dialect.Postgres {
					s.ForUpdate(sql.WithLockAction(sql.SkipLocked), sql.WithLockTables(task.Table))
				}
			}).
			All(ctx)
		if err != nil {
			return nil, fmt.Errorf("claim: draw a task of batch %d: %w", batchID, err)
		}
		if len(t) == 1 {
			return t[0], nil
		}
	}
	return nil, nil
}

// start moves t to running under a new attempt. ok is false when another
// claimer won the task first.
func (q *Queue) start(ctx context.Context, tx *ent.Tx, rec *recorder, r *ent.Robot, t *ent.Task) (*Claim, bool, error) {
	p, err := q.process(ctx, tx, t.ProcessID)
	if err != nil {
		return nil, false, fmt.Errorf("claim: process of task %d: %w", t.ID, err)
	}
	next := t.AttemptNo + 1
	n, err := tx.Task.Update().
		Where(task.ID(t.ID), task.StateEQ(task.StatePending), task.AttemptNo(t.AttemptNo)).
		SetState(task.StateRunning).SetAttemptNo(next).SetUpdatedAt(rec.now).
		Save(ctx)
	if err != nil {
		return nil, false, fmt.Errorf("claim: mark task %d running: %w", t.ID, err)
	}
	if n != 1 {
		return nil, false, nil
	}
	deadline := rec.now.Add(time.Duration(p.MaxDurationSeconds) * time.Second)
	a, err := tx.Attempt.Create().
		SetTaskID(t.ID).SetRobotID(r.ID).SetCustomerID(t.CustomerID).SetNumber(next).
		SetStartedAt(rec.now).SetDeadline(deadline).
		Save(ctx)
	if err != nil {
		return nil, false, fmt.Errorf("claim: create attempt: %w", err)
	}
	// The batch goes to the top of B: its served moment is now.
	n, err = tx.Batch.Update().Where(batch.ID(t.BatchID), batch.PendingGT(0)).
		AddPending(-1).AddRunning(1).
		SetStack(batch.StackServing).SetLastServedAt(rec.now).SetUpdatedAt(rec.now).Save(ctx)
	if err != nil {
		return nil, false, fmt.Errorf("claim: update batch %d: %w", t.BatchID, err)
	}
	if n != 1 {
		return nil, false, fmt.Errorf("claim: batch %d counts no pending task while task %d was pending", t.BatchID, t.ID)
	}
	if err := tx.Robot.Update().Where(robot.ID(r.ID)).SetState(robot.StateBusy).SetLastSeenAt(rec.now).Exec(ctx); err != nil {
		return nil, false, fmt.Errorf("claim: mark robot busy: %w", err)
	}
	t.State, t.AttemptNo = task.StateRunning, next
	rid := r.ID
	rec.add(tx, events.TaskDispatched, fmt.Sprintf("attempt %d on robot %s", next, r.Name), t, &rid)
	rec.dispatched(t, next)
	return &Claim{Task: t, Process: p, Attempt: a, Deadline: deadline}, true, nil
}
