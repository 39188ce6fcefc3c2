package dispatch

import (
	"context"
	"errors"
	"fmt"
	"time"

	"entgo.io/ent/dialect/sql"

	"github.com/rpacloud/rpacloud/core/events"
	"github.com/rpacloud/rpacloud/core/textlimit"
	"github.com/rpacloud/rpacloud/ent"
	"github.com/rpacloud/rpacloud/ent/attempt"
	"github.com/rpacloud/rpacloud/ent/batch"
	"github.com/rpacloud/rpacloud/ent/pool"
	"github.com/rpacloud/rpacloud/ent/predicate"
	"github.com/rpacloud/rpacloud/ent/process"
	"github.com/rpacloud/rpacloud/ent/task"
)

// Job control: an operator cancels a batch, stops or retries a task,
// retries a batch, pauses a pool or a process. Every change is a
// compare-and-set like the robots' own (on task state and attempt number),
// so an operator's request and a robot's report or a claim that race each
// other never both win.

// ErrWrongState: the task or batch is not in a state the request applies
// to (stop a finished task, retry a pending one).
var ErrWrongState = errors.New("not in a state for this")

// ErrUnfinished: a batch-wide request (CancelBatch, RetryBatch) stopped
// part-way (the caller went away, the database failed) or, for a cancel,
// robots kept taking or returning the batch's tasks through all its
// passes. What its committed chunks did stays done; the same request
// again finishes the job.
var ErrUnfinished = errors.New("not finished: what was done stays done; run the same request again to finish it")

// ErrStopRequested answers the heartbeat of an attempt an operator asked to
// stop: the robot must stop the run and report; the deadline is not
// extended (it is the stop's grace).
var ErrStopRequested = errors.New("stop requested")

// DefaultStopGrace is how long a robot has, after a stop was requested, to
// stop its run and report before the sweeper treats the attempt like a
// time-out (Options.StopGrace).
const DefaultStopGrace = 60 * time.Second

// controlChunk bounds the tasks one transaction of a batch-wide request
// changes, as expireChunk does for Expire.
const controlChunk = 200

// MaxReasonBytes bounds an operator's reason (stop, cancel, pause).
const MaxReasonBytes = 512

func byWhom(by, reason string) string {
	msg := "by " + by
	if by == "" {
		msg = "by an operator"
	}
	if reason != "" {
		msg += ": " + textlimit.Cut(reason, MaxReasonBytes)
	}
	return msg
}

// StopTask stops task taskID: a pending task ends cancelled at once; a
// running one's attempt gets a stop request (its robot learns of it at its
// next heartbeat or through AwaitStop) and its deadline is cut to now plus
// the stop grace. by names who asked, reason why (both go into the
// events). A finished task answers ErrWrongState.
func (q *Queue) StopTask(ctx context.Context, taskID int, by, reason string) (*ent.Task, error) {
	var out *ent.Task
	err := q.withTx(ctx, func(ctx context.Context, tx *ent.Tx, rec *recorder) error {
		t, err := tx.Task.Get(ctx, taskID)
		if err != nil {
			return fmt.Errorf("stop task %d: %w", taskID, err)
		}
		switch t.State {
		case task.StatePending:
			ok, err := q.cancelPending(ctx, tx, rec, t, "cancelled "+byWhom(by, reason))
			if err != nil {
				return err
			}
			if !ok {
				return fmt.Errorf("stop task %d: it was claimed meanwhile; try again: %w", taskID, ErrWrongState)
			}
			if err := finishBatchIfDone(ctx, tx, rec, t.BatchID); err != nil {
				return err
			}
		case task.StateRunning:
			if _, err := q.requestStop(ctx, tx, rec, t, by, reason); err != nil {
				return err
			}
		default:
			return fmt.Errorf("stop task %d: %w: it is %s", taskID, ErrWrongState, t.State)
		}
		out = t
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out.Unwrap(), nil
}

// cancelPending ends pending task t as cancelled, fenced on (pending,
// attempt number); false when a robot claimed it meanwhile.
func (q *Queue) cancelPending(ctx context.Context, tx *ent.Tx, rec *recorder, t *ent.Task, msg string) (bool, error) {
	reason := task.FailureReasonCancelled
	n, err := tx.Task.Update().Where(task.ID(t.ID), task.StateEQ(task.StatePending), task.AttemptNo(t.AttemptNo)).
		SetState(task.StateCancelled).SetFailureReason(reason).SetErrorMessage(msg).
		SetFinishedAt(rec.now).SetUpdatedAt(rec.now).Save(ctx)
	if err != nil {
		return false, fmt.Errorf("cancel task %d: %w", t.ID, err)
	}
	if n != 1 {
		return false, nil
	}
	k, err := tx.Batch.Update().Where(batch.ID(t.BatchID), batch.PendingGT(0)).
		AddPending(-1).AddCancelled(1).SetUpdatedAt(rec.now).Save(ctx)
	if err != nil {
		return false, fmt.Errorf("cancel task %d: update batch: %w", t.ID, err)
	}
	if k != 1 {
		return false, fmt.Errorf("cancel task %d: batch %d counts no pending task while the task was pending", t.ID, t.BatchID)
	}
	t.State, t.FailureReason, t.ErrorMessage, t.FinishedAt = task.StateCancelled, &reason, msg, &rec.now
	rec.add(tx, events.TaskCancelled, msg, t, nil)
	return true, nil
}

// requestStop marks the running attempt of t as asked to stop and cuts its
// deadline to the grace. It is idempotent: an attempt already asked keeps
// its first request and deadline. false when the attempt had already been
// asked.
func (q *Queue) requestStop(ctx context.Context, tx *ent.Tx, rec *recorder, t *ent.Task, by, reason string) (bool, error) {
	a, err := tx.Attempt.Query().Where(attempt.TaskID(t.ID), attempt.Number(t.AttemptNo)).Only(ctx)
	if err != nil {
		return false, fmt.Errorf("stop task %d: attempt %d: %w", t.ID, t.AttemptNo, err)
	}
	if a.State != attempt.StateRunning || a.StopRequestedAt != nil {
		return false, nil
	}
	deadline := rec.now.Add(q.stopGrace)
	if a.Deadline.Before(deadline) {
		deadline = a.Deadline
	}
	n, err := tx.Attempt.Update().Where(attempt.ID(a.ID), attempt.StateEQ(attempt.StateRunning), attempt.StopRequestedAtIsNil()).
		SetStopRequestedAt(rec.now).SetDeadline(deadline).Save(ctx)
	if err != nil {
		return false, fmt.Errorf("stop task %d: mark attempt %d: %w", t.ID, a.Number, err)
	}
	if n != 1 {
		return false, nil
	}
	rid := a.RobotID
	rec.add(tx, events.TaskStopRequested, fmt.Sprintf("stop of attempt %d requested %s; grace until %s",
		a.Number, byWhom(by, reason), deadline.Format(time.RFC3339)), t, &rid)
	return true, nil
}

// CancelStats says what a batch-wide request changed.
type CancelStats struct {
	Cancelled      int // pending tasks that ended cancelled
	StopsRequested int // running attempts asked to stop
}

// cancelPasses bounds the passes of CancelBatch: a task claimed between a
// pass's two steps is caught by the next.
const cancelPasses = 4

// CancelBatch cancels batch batchID: its pending tasks end cancelled, its
// running ones are asked to stop (StopTask). It works in chunks of
// controlChunk tasks, each its own transaction, and repeats until a pass
// finds nothing left to change (a task a robot claimed, or one whose
// attempt failed and went pending again, while the chunks ran). The batch
// finishes (stack C) once its last running task has ended. A finished
// batch answers ErrWrongState.
func (q *Queue) CancelBatch(ctx context.Context, batchID int, by, reason string) (CancelStats, error) {
	var st CancelStats
	b, err := q.client.Batch.Get(system(ctx), batchID)
	if err != nil {
		return st, fmt.Errorf("cancel batch %d: %w", batchID, err)
	}
	if b.Stack == batch.StackFinished {
		return st, fmt.Errorf("cancel batch %d: %w: it has finished", batchID, ErrWrongState)
	}
	msg := "cancelled with its batch " + byWhom(by, reason)
	// unfinished says what the committed chunks did, so that a caller
	// who sees the error knows that running the cancel again finishes it.
	unfinished := func(err error) error {
		return fmt.Errorf("cancel batch %d: %w (%d tasks cancelled and %d stops requested so far): %w",
			batchID, ErrUnfinished, st.Cancelled, st.StopsRequested, err)
	}
	for range cancelPasses {
		changed := 0
		for {
			n, err := q.cancelChunk(ctx, batchID, msg)
			if err != nil {
				return st, unfinished(err)
			}
			st.Cancelled += n
			changed += n
			if n < controlChunk {
				break
			}
		}
		n, err := q.stopRunning(ctx, batchID, by, reason)
		if err != nil {
			return st, unfinished(err)
		}
		st.StopsRequested += n
		changed += n
		if changed == 0 {
			return st, nil
		}
	}
	// Every pass changed something: robots kept claiming tasks between a
	// pass's two steps or failed attempts kept coming back pending. Say
	// so rather than answer as if the batch were cancelled.
	left, err := q.client.Task.Query().Where(task.BatchID(batchID), task.Or(task.StateEQ(task.StatePending),
		task.And(task.StateEQ(task.StateRunning), task.HasAttemptsWith(attempt.StateEQ(attempt.StateRunning), attempt.StopRequestedAtIsNil())))).
		Count(system(ctx))
	if err != nil {
		return st, unfinished(err)
	}
	if left > 0 {
		return st, unfinished(fmt.Errorf("%d tasks are still pending or running without a stop request after %d passes", left, cancelPasses))
	}
	return st, nil
}

// cancelChunk cancels up to controlChunk pending tasks of a batch.
func (q *Queue) cancelChunk(ctx context.Context, batchID int, msg string) (int, error) {
	n := 0
	err := q.withTx(ctx, func(ctx context.Context, tx *ent.Tx, rec *recorder) error {
		n = 0
		ts, err := tx.Task.Query().Where(task.BatchID(batchID), task.StateEQ(task.StatePending)).
			Order(task.ByID()).Limit(controlChunk).All(ctx)
		if err != nil {
			return fmt.Errorf("cancel batch %d: list pending tasks: %w", batchID, err)
		}
		for _, t := range ts {
			ok, err := q.cancelPending(ctx, tx, rec, t, msg)
			if err != nil {
				return err
			}
			if ok {
				n++
			}
		}
		if n == 0 {
			return nil
		}
		return finishBatchIfDone(ctx, tx, rec, batchID)
	})
	return n, err
}

// stopRunning asks every running attempt of a batch that was not yet asked
// to stop; a batch has at most as many as its pool has robots, so one
// transaction per chunk of them suffices.
func (q *Queue) stopRunning(ctx context.Context, batchID int, by, reason string) (int, error) {
	done := 0
	for {
		n := 0
		err := q.withTx(ctx, func(ctx context.Context, tx *ent.Tx, rec *recorder) error {
			n = 0
			ts, err := tx.Task.Query().Where(task.BatchID(batchID), task.StateEQ(task.StateRunning),
				task.HasAttemptsWith(attempt.StateEQ(attempt.StateRunning), attempt.StopRequestedAtIsNil())).
				Order(task.ByID()).Limit(controlChunk).All(ctx)
			if err != nil {
				return fmt.Errorf("cancel batch %d: list running tasks: %w", batchID, err)
			}
			for _, t := range ts {
				ok, err := q.requestStop(ctx, tx, rec, t, by, reason)
				if err != nil {
					return err
				}
				if ok {
					n++
				}
			}
			return nil
		})
		if err != nil {
			return done, err
		}
		done += n
		if n < controlChunk {
			return done, nil
		}
	}
}

// RetryTask makes finished failed or cancelled task taskID pending again
// for a new attempt: a fresh draw key, its automatic retry and time-out
// counts reset, manual_retries one more, requeued_at now (its max_wait
// counts from there), the failure cleared. Its batch returns to service
// (stack B) when it had finished. Other states answer ErrWrongState.
// The task's process must still take its customer's work as Submit
// requires (active, shared or owned by that customer), or the retry
// answers ErrBadInput like a submit to an unknown process.
func (q *Queue) RetryTask(ctx context.Context, taskID int, by string) (*ent.Task, error) {
	var out *ent.Task
	err := q.withTx(ctx, func(ctx context.Context, tx *ent.Tx, rec *recorder) error {
		t, err := tx.Task.Get(ctx, taskID)
		if err != nil {
			return fmt.Errorf("retry task %d: %w", taskID, err)
		}
		if t.State != task.StateFailed && t.State != task.StateCancelled {
			return fmt.Errorf("retry task %d: %w: it is %s; only a failed or cancelled task can be retried", taskID, ErrWrongState, t.State)
		}
		if err := mayRun(ctx, tx, t.ProcessID, t.CustomerID); err != nil {
			return fmt.Errorf("retry task %d: %w", taskID, err)
		}
		ok, err := q.requeue(ctx, tx, rec, t, by)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("retry task %d: %w: it changed meanwhile", taskID, ErrWrongState)
		}
		requeued(tx, rec, t, 1, by)
		out = t
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out.Unwrap(), nil
}

// mayRun applies submit's rule to a retry of customerID's work on process
// processID: the process must still be active and either shared or owned
// by that customer. The configuration may have removed the process or
// given it to another department since the work was submitted; a retry
// would then run the old inputs with the new owner's credentials, or on a
// removed process. The refusal reads like submit's to an unknown process.
func mayRun(ctx context.Context, tx *ent.Tx, processID, customerID int) error {
	ok, err := tx.Process.Query().Where(process.ID(processID), process.Active(true),
		process.Or(process.OwnerIDIsNil(), process.OwnerID(customerID))).Exist(ctx)
	if err != nil {
		return fmt.Errorf("find process: %w", err)
	}
	if ok {
		return nil
	}
	name := fmt.Sprintf("#%d", processID)
	if p, err := tx.Process.Get(ctx, processID); err == nil {
		name = p.Name
	}
	return fmt.Errorf("%w: no active process %q for this customer", ErrBadInput, name)
}

// requeue makes finished task t pending again, fenced on its state and
// attempt number, and moves its batch's counters.
func (q *Queue) requeue(ctx context.Context, tx *ent.Tx, rec *recorder, t *ent.Task, by string) (bool, error) {
	was := t.State
	n, err := tx.Task.Update().Where(task.ID(t.ID), task.StateEQ(was), task.AttemptNo(t.AttemptNo)).
		SetState(task.StatePending).SetRandKey(q.randKey()).
		SetExecutionsFailed(0).SetTimeouts(0).AddManualRetries(1).SetRequeuedAt(rec.now).
		ClearFailureReason().SetErrorMessage("").ClearFinishedAt().SetUpdatedAt(rec.now).Save(ctx)
	if err != nil {
		return false, fmt.Errorf("retry task %d: %w", t.ID, err)
	}
	if n != 1 {
		return false, nil
	}
	bu := tx.Batch.Update().Where(batch.ID(t.BatchID)).AddPending(1).SetUpdatedAt(rec.now)
	if was == task.StateFailed {
		bu.Where(batch.FailedGT(0)).AddFailed(-1)
	} else {
		bu.Where(batch.CancelledGT(0)).AddCancelled(-1)
	}
	k, err := bu.Save(ctx)
	if err != nil {
		return false, fmt.Errorf("retry task %d: update batch: %w", t.ID, err)
	}
	if k != 1 {
		return false, fmt.Errorf("retry task %d: batch %d counts no %s task while the task was %s", t.ID, t.BatchID, was, was)
	}
	// A finished batch returns to service: stack B, as a batch that has
	// been served before.
	if err := tx.Batch.Update().Where(batch.ID(t.BatchID), batch.StackEQ(batch.StackFinished)).
		SetStack(batch.StackServing).ClearFinishedAt().Exec(ctx); err != nil {
		return false, fmt.Errorf("retry task %d: return batch %d to service: %w", t.ID, t.BatchID, err)
	}
	t.ManualRetries++
	t.State, t.FailureReason, t.ErrorMessage, t.FinishedAt = task.StatePending, nil, "", nil
	t.ExecutionsFailed, t.Timeouts, t.RequeuedAt = 0, 0, &rec.now
	msg := fmt.Sprintf("retry %d requested by %s (was %s)", t.ManualRetries, orOperator(by), was)
	rec.add(tx, events.TaskRequeued, msg, t, nil)
	return true, nil
}

// requeued records the batch.requeued event of a transaction that made n
// tasks of t's batch pending again: one wake for the pool's robots per
// transaction, not one per task.
func requeued(tx *ent.Tx, rec *recorder, t *ent.Task, n int, by string) {
	what := fmt.Sprintf("%d tasks", n)
	if n == 1 {
		what = "1 task"
	}
	rec.evs = append(rec.evs, events.Create(tx.Event, events.BatchRequeued, rec.now).
		SetBatchID(t.BatchID).SetCustomerID(t.CustomerID).SetPoolID(t.PoolID).SetProcessID(t.ProcessID).
		SetMessage(fmt.Sprintf("%s pending again after a retry by %s", what, orOperator(by))))
}

func orOperator(by string) string {
	if by == "" {
		return "an operator"
	}
	return by
}

// RetryBatch retries (RetryTask) the finished tasks of batch batchID that
// failed (failed) and/or were cancelled (cancelled), in chunks of
// controlChunk tasks. It returns how many it made pending. Like RetryTask
// it answers ErrBadInput when the batch's process no longer takes the
// batch's customer's work.
func (q *Queue) RetryBatch(ctx context.Context, batchID int, failed, cancelled bool, by string) (int, error) {
	var states []task.State
	if failed {
		states = append(states, task.StateFailed)
	}
	if cancelled {
		states = append(states, task.StateCancelled)
	}
	if len(states) == 0 {
		return 0, fmt.Errorf("retry batch %d: %w: say which tasks to retry (failed, cancelled or both)", batchID, ErrBadInput)
	}
	if _, err := q.client.Batch.Get(system(ctx), batchID); err != nil {
		return 0, fmt.Errorf("retry batch %d: %w", batchID, err)
	}
	done := 0
	// Tasks are taken in id order after the last one seen, so a chunk never
	// looks at a task twice (a retried one may fail again meanwhile).
	after := 0
	for {
		n, last, err := q.retryChunk(ctx, batchID, states, after, by)
		if err != nil {
			if done == 0 {
				return done, err
			}
			return done, fmt.Errorf("retry batch %d: %w (%d tasks pending again so far): %w", batchID, ErrUnfinished, done, err)
		}
		done += n
		if last == 0 {
			return done, nil
		}
		after = last
	}
}

func (q *Queue) retryChunk(ctx context.Context, batchID int, states []task.State, after int, by string) (n, last int, err error) {
	err = q.withTx(ctx, func(ctx context.Context, tx *ent.Tx, rec *recorder) error {
		n, last = 0, 0
		ts, err := tx.Task.Query().Where(task.BatchID(batchID), task.StateIn(states...), task.IDGT(after)).
			Order(task.ByID()).Limit(controlChunk).All(ctx)
		if err != nil {
			return fmt.Errorf("retry batch %d: list tasks: %w", batchID, err)
		}
		if len(ts) == 0 {
			return nil
		}
		// Every task of a batch has its batch's process and customer;
		// checked in each chunk's transaction, so a configuration change
		// while the chunks run stops the rest.
		if err := mayRun(ctx, tx, ts[0].ProcessID, ts[0].CustomerID); err != nil {
			return fmt.Errorf("retry batch %d: %w", batchID, err)
		}
		for _, t := range ts {
			ok, err := q.requeue(ctx, tx, rec, t, by)
			if err != nil {
				return err
			}
			if ok {
				n++
			}
			last = t.ID
		}
		if n > 0 {
			requeued(tx, rec, ts[0], n, by)
		}
		return nil
	})
	return n, last, err
}

// notPaused keeps the batches whose pool and process are not paused. It is
// read from the database at each claim, not through the settings cache, so
// a pause stops dispatch at the next claim on every daemon.
func notPaused() predicate.Batch {
	return func(s *sql.Selector) {
		s.Where(sql.P(func(b *sql.Builder) {
			b.WriteString("NOT EXISTS (SELECT 1 FROM " + pool.Table + " pp WHERE pp.id = " + s.C(batch.FieldPoolID) +
				" AND pp.paused_at IS NOT NULL) AND NOT EXISTS (SELECT 1 FROM " + process.Table + " pr WHERE pr.id = " +
				s.C(batch.FieldProcessID) + " AND pr.paused_at IS NOT NULL)")
		}))
	}
}

// PausePool pauses pool name: none of its work is dispatched (running
// attempts go on), its pending tasks do not expire, the scaler rents no VM
// for its demand. Pausing a paused pool changes nothing and returns it as
// it is (the first pause's who and why stay).
func (q *Queue) PausePool(ctx context.Context, name, by, reason string) (*ent.Pool, error) {
	var out *ent.Pool
	err := q.withTx(ctx, func(ctx context.Context, tx *ent.Tx, rec *recorder) error {
		p, err := tx.Pool.Query().Where(pool.Name(name)).Only(ctx)
		if err != nil {
			return fmt.Errorf("pause pool %q: %w", name, err)
		}
		if p.PausedAt == nil {
			p, err = tx.Pool.UpdateOne(p).SetPausedAt(rec.now).SetPausedBy(textlimit.Cut(by, 128)).
				SetPauseReason(textlimit.Cut(reason, MaxReasonBytes)).Save(ctx)
			if err != nil {
				return fmt.Errorf("pause pool %q: %w", name, err)
			}
			rec.evs = append(rec.evs, events.Create(tx.Event, events.PoolPaused, rec.now).
				SetPoolID(p.ID).SetMessage(fmt.Sprintf("pool %s paused %s", name, byWhom(by, reason))))
		}
		out = p
		return nil
	})
	if err != nil {
		return nil, err
	}
	q.ForgetSettings()
	return out.Unwrap(), nil
}

// ResumePool ends the pause of pool name; its waiting robots are woken
// (event pool.resumed) and its pending tasks' max_wait counts again from
// now.
func (q *Queue) ResumePool(ctx context.Context, name, by string) (*ent.Pool, error) {
	start := q.clock()
	if p, err := q.client.Pool.Query().Where(pool.Name(name)).Only(system(ctx)); err == nil && p.PausedAt != nil {
		if err := q.restartWaitChunks(ctx, task.PoolID(p.ID), start); err != nil {
			return nil, fmt.Errorf("resume pool %q: %w", name, err)
		}
	}
	var out *ent.Pool
	err := q.withTx(ctx, func(ctx context.Context, tx *ent.Tx, rec *recorder) error {
		p, err := tx.Pool.Query().Where(pool.Name(name)).Only(ctx)
		if err != nil {
			return fmt.Errorf("resume pool %q: %w", name, err)
		}
		if p.PausedAt != nil {
			p, err = tx.Pool.UpdateOne(p).ClearPausedAt().ClearPausedBy().ClearPauseReason().Save(ctx)
			if err != nil {
				return fmt.Errorf("resume pool %q: %w", name, err)
			}
			if err := restartWait(ctx, tx, rec, task.PoolID(p.ID), start); err != nil {
				return fmt.Errorf("resume pool %q: %w", name, err)
			}
			rec.evs = append(rec.evs, events.Create(tx.Event, events.PoolResumed, rec.now).
				SetPoolID(p.ID).SetMessage(fmt.Sprintf("pool %s resumed %s", name, byWhom(by, ""))))
		}
		out = p
		return nil
	})
	if err != nil {
		return nil, err
	}
	q.ForgetSettings()
	return out.Unwrap(), nil
}

// PauseProcess pauses process name as PausePool pauses a pool. scope, when
// not nil, restricts the processes found (a department's operator pauses
// only its own).
func (q *Queue) PauseProcess(ctx context.Context, name string, scope predicate.Process, by, reason string) (*ent.Process, error) {
	var out *ent.Process
	err := q.withTx(ctx, func(ctx context.Context, tx *ent.Tx, rec *recorder) error {
		p, err := findProcess(ctx, tx.Process.Query(), name, scope)
		if err != nil {
			return fmt.Errorf("pause process %q: %w", name, err)
		}
		if p.PausedAt == nil {
			p, err = tx.Process.UpdateOne(p).SetPausedAt(rec.now).SetPausedBy(textlimit.Cut(by, 128)).
				SetPauseReason(textlimit.Cut(reason, MaxReasonBytes)).Save(ctx)
			if err != nil {
				return fmt.Errorf("pause process %q: %w", name, err)
			}
			rec.evs = append(rec.evs, processEvent(tx, rec, events.ProcessPaused, p, fmt.Sprintf("process %s paused %s", name, byWhom(by, reason))))
		}
		out = p
		return nil
	})
	if err != nil {
		return nil, err
	}
	q.ForgetSettings()
	return out.Unwrap(), nil
}

// ResumeProcess ends the pause of process name (see ResumePool).
func (q *Queue) ResumeProcess(ctx context.Context, name string, scope predicate.Process, by string) (*ent.Process, error) {
	start := q.clock()
	if p, err := findProcess(system(ctx), q.client.Process.Query(), name, scope); err == nil && p.PausedAt != nil {
		if err := q.restartWaitChunks(ctx, task.ProcessID(p.ID), start); err != nil {
			return nil, fmt.Errorf("resume process %q: %w", name, err)
		}
	}
	var out *ent.Process
	err := q.withTx(ctx, func(ctx context.Context, tx *ent.Tx, rec *recorder) error {
		p, err := findProcess(ctx, tx.Process.Query(), name, scope)
		if err != nil {
			return fmt.Errorf("resume process %q: %w", name, err)
		}
		if p.PausedAt != nil {
			p, err = tx.Process.UpdateOne(p).ClearPausedAt().ClearPausedBy().ClearPauseReason().Save(ctx)
			if err != nil {
				return fmt.Errorf("resume process %q: %w", name, err)
			}
			if err := restartWait(ctx, tx, rec, task.ProcessID(p.ID), start); err != nil {
				return fmt.Errorf("resume process %q: %w", name, err)
			}
			rec.evs = append(rec.evs, processEvent(tx, rec, events.ProcessResumed, p, fmt.Sprintf("process %s resumed %s", name, byWhom(by, ""))))
		}
		out = p
		return nil
	})
	if err != nil {
		return nil, err
	}
	q.ForgetSettings()
	return out.Unwrap(), nil
}

func findProcess(ctx context.Context, qr *ent.ProcessQuery, name string, scope predicate.Process) (*ent.Process, error) {
	qr = qr.Where(process.Name(name))
	if scope != nil {
		qr.Where(scope)
	}
	return qr.Only(ctx)
}

// processEvent is a process's event; it carries the pool (so the pool's
// waiting robots are woken on resume) and the owner, when there is one
// (so the department sees it).
func processEvent(tx *ent.Tx, rec *recorder, typ events.Type, p *ent.Process, msg string) *ent.EventCreate {
	return events.Create(tx.Event, typ, rec.now).SetPoolID(p.PoolID).SetProcessID(p.ID).
		SetNillableCustomerID(p.OwnerID).SetMessage(msg)
}

// restartWait gives the pending tasks matched by where a fresh max_wait
// from now (requeued_at), so that a pause longer than max_wait does not
// expire them all at the first sweep after the resume. It runs in the
// resume's transaction and only changes the tasks restartWaitChunks did
// not (their requeued_at is before start): the few that became pending
// while the chunks ran.
func restartWait(ctx context.Context, tx *ent.Tx, rec *recorder, where predicate.Task, start time.Time) error {
	if err := tx.Task.Update().Where(where, task.StateEQ(task.StatePending),
		task.Or(task.RequeuedAtIsNil(), task.RequeuedAtLT(start))).SetRequeuedAt(rec.now).Exec(ctx); err != nil {
		return fmt.Errorf("restart the wait of pending tasks: %w", err)
	}
	return nil
}

// restartWaitChunks does restartWait's work before the resume, while the
// pool or process is still paused (so none of its tasks can expire
// meanwhile), in chunks of controlChunk tasks, each its own transaction:
// a pool with 200 000 waiting tasks never holds the writer long. Tasks
// whose requeued_at is start or later are done.
func (q *Queue) restartWaitChunks(ctx context.Context, where predicate.Task, start time.Time) error {
	after := 0
	for {
		var ids []int
		err := q.withTx(ctx, func(ctx context.Context, tx *ent.Tx, rec *recorder) error {
			var err error
			ids, err = tx.Task.Query().Where(where, task.StateEQ(task.StatePending), task.IDGT(after),
				task.Or(task.RequeuedAtIsNil(), task.RequeuedAtLT(start))).
				Order(task.ByID()).Limit(controlChunk).IDs(ctx)
			if err != nil || len(ids) == 0 {
				return err
			}
			// Still pending: a task claimed meanwhile keeps its requeued_at.
			return tx.Task.Update().Where(task.IDIn(ids...), task.StateEQ(task.StatePending)).
				SetRequeuedAt(rec.now).Exec(ctx)
		})
		if err != nil {
			return fmt.Errorf("restart the wait of pending tasks: %w", err)
		}
		if len(ids) < controlChunk {
			return nil
		}
		after = ids[len(ids)-1]
	}
}

// StopRequested reports whether an operator asked robot robotID to stop
// its running attempt attemptNo of task taskID. An attempt that is no
// longer running (reported, timed out, another robot's) answers
// ErrStaleAttempt: the robot's run counts for nothing any more either.
func (q *Queue) StopRequested(ctx context.Context, robotID, taskID, attemptNo int) (bool, error) {
	_, stop, err := q.StopCheck(ctx, robotID, taskID, attemptNo)
	return stop, err
}

// StopCheck is StopRequested that also returns the attempt's id, which
// StoppedAttempts takes.
func (q *Queue) StopCheck(ctx context.Context, robotID, taskID, attemptNo int) (attemptID int, stop bool, err error) {
	a, err := q.client.Attempt.Query().Where(attempt.TaskID(taskID), attempt.Number(attemptNo)).Only(system(ctx))
	if ent.IsNotFound(err) {
		return 0, false, fmt.Errorf("task %d attempt %d: %w: no such attempt", taskID, attemptNo, ErrStaleAttempt)
	}
	if err != nil {
		return 0, false, fmt.Errorf("task %d attempt %d: %w", taskID, attemptNo, err)
	}
	if a.RobotID != robotID {
		return 0, false, fmt.Errorf("task %d attempt %d: %w: it belongs to another robot", taskID, attemptNo, ErrStaleAttempt)
	}
	if a.State != attempt.StateRunning {
		return 0, false, fmt.Errorf("task %d attempt %d: %w: attempt is %s", taskID, attemptNo, ErrStaleAttempt, a.State)
	}
	return a.ID, a.StopRequestedAt != nil, nil
}

// stopChunk bounds the ids of one StoppedAttempts statement.
const stopChunk = 500

// StoppedAttempts returns which of the attempts ids were asked to stop or
// are no longer running: one read-only statement per stopChunk ids, so
// that the robots' open awaitStop calls are checked together, not one read
// per robot (robotapi's backstop for a missed task.stop_requested event).
func (q *Queue) StoppedAttempts(ctx context.Context, ids []int) ([]int, error) {
	var out []int
	for start := 0; start < len(ids); start += stopChunk {
		chunk := ids[start:min(start+stopChunk, len(ids))]
		got, err := q.client.Attempt.Query().
			Where(attempt.IDIn(chunk...), attempt.Or(attempt.StopRequestedAtNotNil(), attempt.StateNEQ(attempt.StateRunning))).
			IDs(system(ctx))
		if err != nil {
			return nil, fmt.Errorf("stopped attempts: %w", err)
		}
		out = append(out, got...)
	}
	return out, nil
}
