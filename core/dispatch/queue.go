// Package dispatch keeps the task queue in the database: batches are
// submitted, robots claim tasks, heartbeat and report results, and a sweeper
// abandons attempts whose deadline passed. Every state change is a
// compare-and-set on (task, state, attempt number) whose row count is
// checked, so a late or duplicate report can never change a task twice.
package dispatch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/rpacloud/rpacloud/core/events"
	"github.com/rpacloud/rpacloud/ent"
	"github.com/rpacloud/rpacloud/ent/attempt"
	"github.com/rpacloud/rpacloud/ent/batch"
	"github.com/rpacloud/rpacloud/ent/privacy"
	"github.com/rpacloud/rpacloud/ent/process"
	"github.com/rpacloud/rpacloud/ent/robot"
	"github.com/rpacloud/rpacloud/ent/task"
)

// Errors callers can test for.
var (
	// ErrStaleAttempt: the report or heartbeat names an attempt that is no
	// longer the task's running attempt (it timed out, was already
	// reported, or belongs to another robot).
	ErrStaleAttempt = errors.New("stale attempt")
	// ErrRobotUnavailable: the robot may not take work (draining, released).
	ErrRobotUnavailable = errors.New("robot may not take work")
	// ErrBadInput: the submission itself is wrong.
	ErrBadInput = errors.New("bad input")
)

// MaxTimeoutRobots is how many different robots may time out on a task
// before it fails with timeout_exhausted (the seed: "the ingredients are
// probably bad").
const MaxTimeoutRobots = 3

// Queue is the task queue on the database.
type Queue struct {
	client *ent.Client
	bus    *events.Bus
	log    *slog.Logger
	now    func() time.Time

	mu  sync.Mutex
	rnd *rand.Rand
}

// Options configure a Queue.
type Options struct {
	Bus    *events.Bus
	Logger *slog.Logger
	Now    func() time.Time // injectable clock for tests
	Seed   uint64           // random seed; 0 picks one
}

// New returns a queue on client.
func New(client *ent.Client, o Options) *Queue {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	seed := o.Seed
	if seed == 0 {
		seed = rand.Uint64()
	}
	return &Queue{client: client, bus: o.Bus, log: o.Logger, now: o.Now, rnd: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

func (q *Queue) intn(n int) int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.rnd.IntN(n)
}

func (q *Queue) clock() time.Time { return q.now().UTC() }

// system marks ctx as the daemon acting on its own authority: callers have
// already checked what the principal may do.
func system(ctx context.Context) context.Context {
	return privacy.DecisionContext(ctx, privacy.Allow)
}

// withTx runs fn in one transaction and publishes the events it recorded
// once the transaction has committed.
func (q *Queue) withTx(ctx context.Context, fn func(ctx context.Context, tx *ent.Tx, rec *recorder) error) error {
	ctx = system(ctx)
	tx, err := q.client.Tx(ctx)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	rec := &recorder{now: q.clock()}
	if err := fn(ctx, tx, rec); err != nil {
		if rerr := tx.Rollback(); rerr != nil {
			return fmt.Errorf("%w (rollback: %v)", err, rerr)
		}
		return err
	}
	stored, err := rec.flush(ctx, tx)
	if err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	q.bus.Publish(stored...)
	return nil
}

// recorder collects the events of one transaction.
type recorder struct {
	now time.Time
	evs []*ent.EventCreate
}

func (r *recorder) add(tx *ent.Tx, typ, msg string, t *ent.Task, robotID *int) {
	c := tx.Event.Create().SetType(typ).SetMessage(msg).SetAt(r.now)
	if t != nil {
		c.SetTaskID(t.ID).SetBatchID(t.BatchID).SetCustomerID(t.CustomerID).
			SetPoolID(t.PoolID).SetProcessID(t.ProcessID).SetAttemptNo(t.AttemptNo)
	}
	c.SetNillableRobotID(robotID)
	r.evs = append(r.evs, c)
}

func (r *recorder) flush(ctx context.Context, tx *ent.Tx) ([]*ent.Event, error) {
	if len(r.evs) == 0 {
		return nil, nil
	}
	out, err := tx.Event.CreateBulk(r.evs...).Save(ctx)
	if err != nil {
		return nil, fmt.Errorf("record events: %w", err)
	}
	return out, nil
}

// SubmitRequest is one batch of tasks for one process.
type SubmitRequest struct {
	CustomerID  int
	Process     string
	Label       string
	Inputs      []json.RawMessage // one JSON object per task
	SubmittedBy string
}

// MaxBatchSize bounds one submission so that one request cannot hold the
// writer for long; bigger orders are several batches.
const MaxBatchSize = 10000

// Submit writes a batch and its tasks in one transaction. The batch goes on
// top of its pool's stack A.
func (q *Queue) Submit(ctx context.Context, req SubmitRequest) (*ent.Batch, error) {
	if len(req.Inputs) == 0 {
		return nil, fmt.Errorf("submit to %q: %w: a batch needs at least one task", req.Process, ErrBadInput)
	}
	if len(req.Inputs) > MaxBatchSize {
		return nil, fmt.Errorf("submit to %q: %w: %d tasks in one batch, at most %d", req.Process, ErrBadInput, len(req.Inputs), MaxBatchSize)
	}
	for i, in := range req.Inputs {
		var obj map[string]any
		if err := json.Unmarshal(in, &obj); err != nil || obj == nil {
			return nil, fmt.Errorf("submit to %q: %w: task %d: input must be a JSON object", req.Process, ErrBadInput, i)
		}
	}
	var out *ent.Batch
	err := q.withTx(ctx, func(ctx context.Context, tx *ent.Tx, rec *recorder) error {
		p, err := tx.Process.Query().Where(process.Name(req.Process), process.Active(true)).Only(ctx)
		if ent.IsNotFound(err) {
			return fmt.Errorf("submit: %w: no active process %q", ErrBadInput, req.Process)
		}
		if err != nil {
			return fmt.Errorf("submit: find process: %w", err)
		}
		n := len(req.Inputs)
		b, err := tx.Batch.Create().
			SetCustomerID(req.CustomerID).SetProcessID(p.ID).SetPoolID(p.PoolID).
			SetLabel(req.Label).SetTotal(n).SetPending(n).SetSubmittedBy(req.SubmittedBy).
			SetCreatedAt(rec.now).SetUpdatedAt(rec.now).
			Save(system(ctx))
		if err != nil {
			return fmt.Errorf("submit: create batch: %w", err)
		}
		// Bulk inserts in chunks keep each statement under the databases'
		// bind-parameter limits.
		const chunk = 500
		for start := 0; start < n; start += chunk {
			end := min(start+chunk, n)
			creates := make([]*ent.TaskCreate, 0, end-start)
			for i := start; i < end; i++ {
				creates = append(creates, tx.Task.Create().
					SetBatchID(b.ID).SetProcessID(p.ID).SetPoolID(p.PoolID).
					SetCustomerID(req.CustomerID).SetSeq(i).SetInput(string(req.Inputs[i])).
					SetCreatedAt(rec.now).SetUpdatedAt(rec.now))
			}
			if err := tx.Task.CreateBulk(creates...).Exec(system(ctx)); err != nil {
				return fmt.Errorf("submit: create tasks: %w", err)
			}
		}
		c := tx.Event.Create().SetType("batch.submitted").SetAt(rec.now).
			SetBatchID(b.ID).SetCustomerID(req.CustomerID).SetPoolID(p.PoolID).SetProcessID(p.ID).
			SetMessage(fmt.Sprintf("%d tasks for %s", n, p.Name))
		rec.evs = append(rec.evs, c)
		out = b
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Claim is what a robot receives: one task and the attempt it runs under.
type Claim struct {
	Task     *ent.Task
	Process  *ent.Process
	Attempt  *ent.Attempt
	Deadline time.Time
}

// errLostRace means another claimer changed the queue under this one.
var errLostRace = errors.New("lost a race for a task")

// claimRetries bounds how often a claim retries after losing a race for a
// task to another daemon; each retry picks again.
const claimRetries = 8

// ClaimTask gives robot robotID its next task, or nil when there is none.
// The poll is also the robot's check-in: a suspect robot becomes idle.
func (q *Queue) ClaimTask(ctx context.Context, robotID int) (*Claim, error) {
	for range claimRetries {
		var claim *Claim
		lost := false
		err := q.withTx(ctx, func(ctx context.Context, tx *ent.Tx, rec *recorder) error {
			r, err := tx.Robot.Get(system(ctx), robotID)
			if err != nil {
				return fmt.Errorf("claim: robot %d: %w", robotID, err)
			}
			switch r.State {
			case robot.StateDraining, robot.StateReleased:
				if err := tx.Robot.UpdateOneID(robotID).SetLastSeenAt(rec.now).Exec(system(ctx)); err != nil {
					return fmt.Errorf("claim: check in: %w", err)
				}
				return nil
			}
			t, err := q.pick(ctx, tx, r)
			if errors.Is(err, errLostRace) {
				lost = true
				return nil
			}
			if err != nil {
				return err
			}
			if t == nil {
				return tx.Robot.UpdateOneID(robotID).SetLastSeenAt(rec.now).SetState(robot.StateIdle).Exec(system(ctx))
			}
			c, ok, err := q.start(ctx, tx, rec, r, t)
			if err != nil {
				return err
			}
			if !ok {
				lost = true
				return nil
			}
			claim = c
			return nil
		})
		if err != nil {
			return nil, err
		}
		if !lost {
			return claim, nil
		}
	}
	return nil, nil
}

// pick chooses the next task of the robot's pool: the oldest new batch
// first (stack A), else the batch in service whose last service is oldest
// (stack B); within the batch a random pending task. Tasks on which this
// robot already timed out are left for other robots.
func (q *Queue) pick(ctx context.Context, tx *ent.Tx, r *ent.Robot) (*ent.Task, error) {
	ctx = system(ctx)
	order := []batch.OrderOption{batch.ByCreatedAt(), batch.ByID()}
	for _, stack := range []batch.Stack{batch.StackNew, batch.StackServing} {
		bs := tx.Batch.Query().Where(batch.PoolID(r.PoolID), batch.StackEQ(stack), batch.PendingGT(0))
		if stack == batch.StackServing {
			order = []batch.OrderOption{batch.ByLastServedAt(), batch.ByID()}
		}
		batches, err := bs.Order(order...).Limit(16).All(ctx)
		if err != nil {
			return nil, fmt.Errorf("claim: list batches: %w", err)
		}
		for _, b := range batches {
			pending := tx.Task.Query().Where(task.BatchID(b.ID), task.StateEQ(task.StatePending),
				task.Not(task.HasAttemptsWith(attempt.RobotID(r.ID), attempt.StateEQ(attempt.StateAbandoned))))
			n, err := pending.Clone().Count(ctx)
			if err != nil {
				return nil, fmt.Errorf("claim: count pending of batch %d: %w", b.ID, err)
			}
			if n == 0 {
				continue
			}
			t, err := pending.Order(task.BySeq()).Offset(q.intn(n)).First(ctx)
			if ent.IsNotFound(err) {
				// Another daemon took tasks between the count and the
				// pick (PostgreSQL, read committed): pick again.
				return nil, errLostRace
			}
			if err != nil {
				return nil, fmt.Errorf("claim: pick task of batch %d: %w", b.ID, err)
			}
			return t, nil
		}
	}
	return nil, nil
}

// start moves t to running under a new attempt. ok is false when another
// claimer won the task first.
func (q *Queue) start(ctx context.Context, tx *ent.Tx, rec *recorder, r *ent.Robot, t *ent.Task) (*Claim, bool, error) {
	ctx = system(ctx)
	p, err := tx.Process.Get(ctx, t.ProcessID)
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
	if err := tx.Batch.UpdateOneID(t.BatchID).AddPending(-1).AddRunning(1).
		SetStack(batch.StackServing).SetLastServedAt(rec.now).SetUpdatedAt(rec.now).Exec(ctx); err != nil {
		return nil, false, fmt.Errorf("claim: update batch %d: %w", t.BatchID, err)
	}
	if err := tx.Robot.UpdateOneID(r.ID).SetState(robot.StateBusy).SetLastSeenAt(rec.now).Exec(ctx); err != nil {
		return nil, false, fmt.Errorf("claim: mark robot busy: %w", err)
	}
	t.State, t.AttemptNo = task.StateRunning, next
	rid := r.ID
	rec.add(tx, "task.dispatched", fmt.Sprintf("attempt %d on robot %s", next, r.Name), t, &rid)
	return &Claim{Task: t, Process: p, Attempt: a, Deadline: deadline}, true, nil
}

// running loads the running attempt named by a robot, refusing a stale one.
func running(ctx context.Context, tx *ent.Tx, robotID, taskID, attemptNo int) (*ent.Task, *ent.Attempt, error) {
	ctx = system(ctx)
	t, err := tx.Task.Get(ctx, taskID)
	if ent.IsNotFound(err) {
		return nil, nil, fmt.Errorf("task %d: %w: no such task", taskID, ErrStaleAttempt)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("task %d: %w", taskID, err)
	}
	a, err := tx.Attempt.Query().Where(attempt.TaskID(taskID), attempt.Number(attemptNo)).Only(ctx)
	if ent.IsNotFound(err) {
		return nil, nil, fmt.Errorf("task %d attempt %d: %w: no such attempt", taskID, attemptNo, ErrStaleAttempt)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("task %d attempt %d: %w", taskID, attemptNo, err)
	}
	switch {
	case a.RobotID != robotID:
		return nil, nil, fmt.Errorf("task %d attempt %d: %w: it belongs to another robot", taskID, attemptNo, ErrStaleAttempt)
	case a.State != attempt.StateRunning:
		return nil, nil, fmt.Errorf("task %d attempt %d: %w: attempt is %s", taskID, attemptNo, ErrStaleAttempt, a.State)
	case t.State != task.StateRunning || t.AttemptNo != attemptNo:
		return nil, nil, fmt.Errorf("task %d attempt %d: %w: task is %s at attempt %d", taskID, attemptNo, ErrStaleAttempt, t.State, t.AttemptNo)
	}
	return t, a, nil
}

// Heartbeat extends the deadline of a running attempt by its process's
// max_duration from now, and returns the new deadline.
func (q *Queue) Heartbeat(ctx context.Context, robotID, taskID, attemptNo int) (time.Time, error) {
	var deadline time.Time
	err := q.withTx(ctx, func(ctx context.Context, tx *ent.Tx, rec *recorder) error {
		t, a, err := running(ctx, tx, robotID, taskID, attemptNo)
		if err != nil {
			return fmt.Errorf("heartbeat: %w", err)
		}
		p, err := tx.Process.Get(system(ctx), t.ProcessID)
		if err != nil {
			return fmt.Errorf("heartbeat: process: %w", err)
		}
		deadline = rec.now.Add(time.Duration(p.MaxDurationSeconds) * time.Second)
		n, err := tx.Attempt.Update().Where(attempt.ID(a.ID), attempt.StateEQ(attempt.StateRunning)).
			SetDeadline(deadline).SetHeartbeatAt(rec.now).Save(system(ctx))
		if err != nil {
			return fmt.Errorf("heartbeat: extend deadline: %w", err)
		}
		if n != 1 {
			return fmt.Errorf("heartbeat: task %d attempt %d: %w", taskID, attemptNo, ErrStaleAttempt)
		}
		return tx.Robot.UpdateOneID(robotID).SetLastSeenAt(rec.now).Exec(system(ctx))
	})
	return deadline, err
}

// ErrorClass classifies a failed attempt.
type ErrorClass string

// Error classes a robot may report.
const (
	// Execution errors may succeed on another try: retried per process.
	Execution ErrorClass = "execution"
	// Data errors mean the customer's input is wrong: final at once.
	Data ErrorClass = "data"
)

// Result is what a robot reports for an attempt.
type Result struct {
	Success bool
	Output  json.RawMessage // JSON, for successes
	Class   ErrorClass      // for failures
	Message string          // for failures
}

// MaxOutputBytes bounds what one task may store as output or error text.
const MaxOutputBytes = 1 << 20

// Report records the outcome of an attempt. A report for an attempt that is
// no longer running (timed out, already reported) returns ErrStaleAttempt
// and changes nothing.
func (q *Queue) Report(ctx context.Context, robotID, taskID, attemptNo int, res Result) (*ent.Task, error) {
	if res.Success {
		if len(res.Output) == 0 {
			res.Output = json.RawMessage("{}")
		}
		if !json.Valid(res.Output) {
			return nil, fmt.Errorf("report task %d: %w: output is not valid JSON", taskID, ErrBadInput)
		}
	} else if res.Class != Execution && res.Class != Data {
		return nil, fmt.Errorf("report task %d: %w: error class %q (want execution or data)", taskID, ErrBadInput, res.Class)
	}
	if len(res.Output) > MaxOutputBytes || len(res.Message) > MaxOutputBytes {
		return nil, fmt.Errorf("report task %d: %w: output or message larger than %d bytes", taskID, ErrBadInput, MaxOutputBytes)
	}
	var out *ent.Task
	err := q.withTx(ctx, func(ctx context.Context, tx *ent.Tx, rec *recorder) error {
		sctx := system(ctx)
		t, a, err := running(ctx, tx, robotID, taskID, attemptNo)
		if err != nil {
			return fmt.Errorf("report: %w", err)
		}
		p, err := tx.Process.Get(sctx, t.ProcessID)
		if err != nil {
			return fmt.Errorf("report: process: %w", err)
		}
		au := tx.Attempt.Update().Where(attempt.ID(a.ID), attempt.StateEQ(attempt.StateRunning)).SetFinishedAt(rec.now)
		tu := tx.Task.Update().Where(task.ID(t.ID), task.StateEQ(task.StateRunning), task.AttemptNo(attemptNo)).SetUpdatedAt(rec.now)
		bu := tx.Batch.UpdateOneID(t.BatchID).AddRunning(-1).SetLastServedAt(rec.now).SetUpdatedAt(rec.now)
		var evType, evMsg string
		switch {
		case res.Success:
			au.SetState(attempt.StateSucceeded).SetOutput(string(res.Output))
			tu.SetState(task.StateSucceeded).SetOutput(string(res.Output)).SetFinishedAt(rec.now).SetErrorMessage("")
			bu.AddSucceeded(1)
			t.State = task.StateSucceeded
			evType, evMsg = "task.succeeded", fmt.Sprintf("attempt %d succeeded", attemptNo)
		case res.Class == Data:
			au.SetState(attempt.StateFailed).SetErrorClass(attempt.ErrorClassData).SetErrorMessage(res.Message)
			tu.SetState(task.StateFailed).SetFailureReason(task.FailureReasonDataError).SetErrorMessage(res.Message).SetFinishedAt(rec.now)
			bu.AddFailed(1)
			t.State = task.StateFailed
			evType, evMsg = "task.failed", "data error: "+res.Message
		default:
			au.SetState(attempt.StateFailed).SetErrorClass(attempt.ErrorClassExecution).SetErrorMessage(res.Message)
			tu.AddExecutionsFailed(1).SetErrorMessage(res.Message)
			if t.ExecutionsFailed+1 > p.Retries {
				tu.SetState(task.StateFailed).SetFailureReason(task.FailureReasonRetriesExhausted).SetFinishedAt(rec.now)
				bu.AddFailed(1)
				t.State = task.StateFailed
				evType, evMsg = "task.failed", fmt.Sprintf("execution error, %d retries exhausted: %s", p.Retries, res.Message)
			} else {
				tu.SetState(task.StatePending)
				bu.AddPending(1)
				t.State = task.StatePending
				evType, evMsg = "task.retrying", fmt.Sprintf("execution error on attempt %d, will retry: %s", attemptNo, res.Message)
			}
		}
		if n, err := au.Save(sctx); err != nil || n != 1 {
			return fmt.Errorf("report: close attempt: %w", errOr(err, ErrStaleAttempt))
		}
		if n, err := tu.Save(sctx); err != nil || n != 1 {
			return fmt.Errorf("report: update task %d: %w", t.ID, errOr(err, ErrStaleAttempt))
		}
		if err := bu.Exec(sctx); err != nil {
			return fmt.Errorf("report: update batch: %w", err)
		}
		if err := finishBatchIfDone(sctx, tx, rec, t.BatchID); err != nil {
			return err
		}
		if err := tx.Robot.Update().Where(robot.ID(robotID), robot.StateEQ(robot.StateBusy)).
			SetState(robot.StateIdle).SetLastSeenAt(rec.now).Exec(sctx); err != nil {
			return fmt.Errorf("report: mark robot idle: %w", err)
		}
		rid := robotID
		rec.add(tx, evType, evMsg, t, &rid)
		out, err = tx.Task.Get(sctx, t.ID)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func errOr(err, fallback error) error {
	if err != nil {
		return err
	}
	return fallback
}

// finishBatchIfDone moves a batch whose last task finished to stack C.
func finishBatchIfDone(ctx context.Context, tx *ent.Tx, rec *recorder, batchID int) error {
	n, err := tx.Batch.Update().
		Where(batch.ID(batchID), batch.Pending(0), batch.Running(0), batch.StackNEQ(batch.StackFinished)).
		SetStack(batch.StackFinished).SetFinishedAt(rec.now).Save(ctx)
	if err != nil {
		return fmt.Errorf("finish batch %d: %w", batchID, err)
	}
	if n == 1 {
		b, err := tx.Batch.Get(ctx, batchID)
		if err != nil {
			return fmt.Errorf("finish batch %d: %w", batchID, err)
		}
		c := tx.Event.Create().SetType("batch.finished").SetAt(rec.now).
			SetBatchID(b.ID).SetCustomerID(b.CustomerID).SetPoolID(b.PoolID).SetProcessID(b.ProcessID).
			SetMessage(fmt.Sprintf("%d succeeded, %d failed", b.Succeeded, b.Failed))
		rec.evs = append(rec.evs, c)
	}
	return nil
}

// Sweep abandons every running attempt whose deadline has passed: the
// customer is told the task is delayed, the robot becomes suspect (no work
// until it polls again), and the task goes back to pending for another
// robot, or fails with timeout_exhausted once MaxTimeoutRobots different
// robots timed out on it. It returns how many attempts it abandoned.
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
	robots, err := tx.Attempt.Query().
		Where(attempt.TaskID(t.ID), attempt.StateEQ(attempt.StateAbandoned)).
		Unique(true).Select(attempt.FieldRobotID).Ints(sctx)
	if err != nil {
		return fmt.Errorf("abandon attempt %d: count robots: %w", a.ID, err)
	}
	tu := tx.Task.Update().Where(task.ID(t.ID), task.StateEQ(task.StateRunning), task.AttemptNo(a.Number)).
		AddTimeouts(1).SetUpdatedAt(rec.now)
	bu := tx.Batch.UpdateOneID(t.BatchID).AddRunning(-1).SetUpdatedAt(rec.now)
	exhausted := len(robots) >= MaxTimeoutRobots
	if exhausted {
		tu.SetState(task.StateFailed).SetFailureReason(task.FailureReasonTimeoutExhausted).
			SetErrorMessage(fmt.Sprintf("timed out on %d different robots", len(robots))).SetFinishedAt(rec.now)
		bu.AddFailed(1)
	} else {
		tu.SetState(task.StatePending)
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
