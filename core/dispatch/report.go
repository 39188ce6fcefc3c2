package dispatch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"entgo.io/ent/dialect"
	"entgo.io/ent/dialect/sql"

	"github.com/rpacloud/rpacloud/core/events"
	"github.com/rpacloud/rpacloud/core/textlimit"
	"github.com/rpacloud/rpacloud/ent"
	"github.com/rpacloud/rpacloud/ent/attempt"
	"github.com/rpacloud/rpacloud/ent/batch"
	"github.com/rpacloud/rpacloud/ent/robot"
	"github.com/rpacloud/rpacloud/ent/task"

	"github.com/rpacloud/rpacloud/core/robotwire"
)

// running loads the running attempt named by a robot, refusing a stale one.
//
// On PostgreSQL the attempt's row is locked (FOR UPDATE) before anything
// is read, and the task is read after it: an operator's stop (requestStop)
// writes the same row, so under read committed a stop that commits while
// a heartbeat, a report or the sweeper is deciding would otherwise be
// missed (a failure retried instead of cancelled, the stop's grace
// overwritten by a heartbeat's max_duration). With the lock, either the
// stop waits for this transaction and then finds the attempt as it left
// it, or this transaction waits for the stop and sees it.
func running(ctx context.Context, tx *ent.Tx, robotID, taskID, attemptNo int) (*ent.Task, *ent.Attempt, error) {
	ctx = system(ctx)
	a, err := tx.Attempt.Query().Where(attempt.TaskID(taskID), attempt.Number(attemptNo)).Modify(lockOnPostgres).Only(ctx)
	if ent.IsNotFound(err) {
		return nil, nil, fmt.Errorf("task %d attempt %d: %w: no such attempt", taskID, attemptNo, ErrStaleAttempt)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("task %d attempt %d: %w", taskID, attemptNo, err)
	}
	t, err := tx.Task.Get(ctx, taskID)
	if ent.IsNotFound(err) {
		return nil, nil, fmt.Errorf("task %d: %w: no such task", taskID, ErrStaleAttempt)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("task %d: %w", taskID, err)
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

// lockOnPostgres makes a query lock the rows it reads until the end of the
// transaction, on PostgreSQL (SQLite has one writer at a time anyway, and
// no FOR UPDATE).
func lockOnPostgres(s *sql.Selector) {
	if s.Dialect() == dialect.Postgres {
		s.ForUpdate()
	}
}

// Heartbeat extends the deadline of a running attempt by its process's
// max_duration from now, and returns the new deadline. For an attempt an
// operator asked to stop it extends nothing and answers ErrStopRequested
// (with the stop's deadline).
func (q *Queue) Heartbeat(ctx context.Context, robotID, taskID, attemptNo int) (time.Time, error) {
	d, err, settled := q.beats.do(ctx, beat{robot: robotID, task: taskID, attempt: attemptNo})
	if settled || err != nil {
		return d, err
	}
	return q.heartbeat(ctx, robotID, taskID, attemptNo)
}

// heartbeat is Heartbeat one by one through ent, the reference path.
func (q *Queue) heartbeat(ctx context.Context, robotID, taskID, attemptNo int) (time.Time, error) {
	var deadline time.Time
	err := q.withTx(ctx, func(ctx context.Context, tx *ent.Tx, rec *recorder) error {
		var err error
		deadline, err = q.heartbeatTx(ctx, tx, rec, robotID, taskID, attemptNo)
		return err
	})
	return deadline, err
}

// heartbeatTx is a heartbeat inside tx. When it fails with ErrStaleAttempt
// or ErrStopRequested it has written nothing (a group's transaction goes
// on with the others).
func (q *Queue) heartbeatTx(ctx context.Context, tx *ent.Tx, rec *recorder, robotID, taskID, attemptNo int) (time.Time, error) {
	t, a, err := running(ctx, tx, robotID, taskID, attemptNo)
	if err != nil {
		return time.Time{}, fmt.Errorf("heartbeat: %w", err)
	}
	if a.StopRequestedAt != nil {
		// The deadline stays the stop's grace: a robot that keeps
		// beating without stopping is timed out at its end.
		return a.Deadline, fmt.Errorf("heartbeat: task %d attempt %d: %w at %s: stop the run and report",
			taskID, attemptNo, ErrStopRequested, a.StopRequestedAt.Format(time.RFC3339))
	}
	p, err := q.process(ctx, tx, t.ProcessID)
	if err != nil {
		return time.Time{}, fmt.Errorf("heartbeat: process: %w", err)
	}
	deadline := rec.now.Add(time.Duration(p.MaxDurationSeconds) * time.Second)
	n, err := tx.Attempt.Update().Where(attempt.ID(a.ID), attempt.StateEQ(attempt.StateRunning)).
		SetDeadline(deadline).SetHeartbeatAt(rec.now).Save(system(ctx))
	if err != nil {
		return time.Time{}, fmt.Errorf("heartbeat: extend deadline: %w", err)
	}
	if n != 1 {
		return time.Time{}, fmt.Errorf("heartbeat: task %d attempt %d: %w", taskID, attemptNo, ErrStaleAttempt)
	}
	// The robot's moment goes with the next liveness flush.
	q.Seen(robotID, rec.now)
	return deadline, nil
}

// Result is what a robot reports for an attempt.
type Result struct {
	Success bool
	Output  json.RawMessage      // JSON, for successes
	Class   robotwire.ErrorClass // for failures: execution or data, as the robot reported it
	Message string               // for failures
}

// MaxOutputBytes is the default bound on what one task may store as
// output or error text (Options.MaxResultBytes; server.limits.result_bytes).
const MaxOutputBytes = 1 << 20

// refusal says why the daemon cannot record res as the robot sent it, or
// "" when it can. A refused result is never simply dropped: Report then
// ends the attempt as an execution error carrying this reason, because a
// robot that sent it believes its attempt is over and will not send
// anything else for it (left running, the attempt would only end at its
// deadline, and count as a time-out on a robot that did its work).
func refusal(res Result, limit int) string {
	if res.Success {
		if len(res.Output) > limit {
			return fmt.Sprintf("output of %d bytes exceeds the limit of %d bytes", len(res.Output), limit)
		}
		if !json.Valid(res.Output) {
			return "output is not valid JSON"
		}
		// encoding/json lets invalid UTF-8 through inside strings;
		// PostgreSQL refuses it in a text column.
		if !utf8.Valid(res.Output) {
			return "output is not valid UTF-8"
		}
		return ""
	}
	if !res.Class.IsValid() {
		return fmt.Sprintf("error class %q is neither execution nor data", res.Class)
	}
	return ""
}

// truncateMessage cuts a failure message to MaxOutputBytes on a UTF-8
// boundary. A long message still carries the robot's verdict (and a data
// error must stay a data error), so it is shortened rather than refused.
func truncateMessage(msg string, limit int) string {
	if len(msg) <= limit {
		return msg
	}
	suffix := fmt.Sprintf(" … (message of %d bytes truncated)", len(msg))
	return textlimit.Cut(msg, limit-len(suffix)) + suffix
}

// Report records the outcome of an attempt. A report for an attempt that is
// no longer running (timed out, already reported) returns ErrStaleAttempt
// and changes nothing.
//
// A result the daemon cannot record (output over the result limit, output
// that is not JSON, an unknown error class) is refused: the running
// attempt fails at once as an execution error whose message gives the
// reason ("result refused: output of N bytes exceeds the limit of M
// bytes"), retried per the process's retries like any execution error,
// and Report returns the task together with an error wrapping
// ErrResultRefused, so the robot learns that its result did not count.
func (q *Queue) Report(ctx context.Context, robotID, taskID, attemptNo int, res Result) (*ent.Task, error) {
	if res.Success && len(res.Output) == 0 {
		res.Output = json.RawMessage("{}")
	}
	// A failure's message is kept even when the robot passed on bytes
	// PostgreSQL cannot store in text (invalid UTF-8, NUL): they become
	// U+FFFD, so that the failure is recorded rather than lost.
	res.Message = truncateMessage(strings.ReplaceAll(strings.ToValidUTF8(res.Message, "\uFFFD"), "\x00", "\uFFFD"), q.maxResult)
	if why := refusal(res, q.maxResult); why != "" {
		return q.refuse(ctx, robotID, taskID, attemptNo, why)
	}
	pg, err := q.isPostgres(ctx)
	if err != nil {
		return nil, fmt.Errorf("report task %d attempt %d: %w", taskID, attemptNo, err)
	}
	if pg {
		// Reports are not grouped on PostgreSQL: a group's statement would
		// hold the row locks of every batch it touches until it ends, and
		// each claim of those batches would wait for it. Measured with
		// `rpacloud bench dispatch` (5 000 tasks, 16 and 64 robots,
		// synchronous_commit off), one multi-row statement per group made
		// the burn-down 2 to 4 times slower than one statement per report.
		if res.Success {
			t, err := q.reportSuccessFast(ctx, robotID, taskID, attemptNo, string(res.Output))
			if !errors.Is(err, errSlowPath) {
				return t, err
			}
		}
		return q.report(ctx, robotID, taskID, attemptNo, res)
	}
	// On SQLite's one writer, reports arriving together share one
	// transaction (group.go).
	t, err, settled := q.reports.do(ctx, reportReq{robot: robotID, task: taskID, attempt: attemptNo, res: res})
	if settled || err != nil {
		return t, err
	}
	return q.report(ctx, robotID, taskID, attemptNo, res)
}

// refuse ends a running attempt whose result was refused for reason why.
func (q *Queue) refuse(ctx context.Context, robotID, taskID, attemptNo int, why string) (*ent.Task, error) {
	t, err := q.report(ctx, robotID, taskID, attemptNo, Result{Class: robotwire.ErrorExecution, Message: "result refused: " + why})
	if errors.Is(err, ErrStaleAttempt) {
		// Nothing to end: the report would have changed nothing anyway.
		return nil, fmt.Errorf("%w (its result would have been refused: %s)", err, why)
	}
	if err != nil {
		return nil, err
	}
	return t, fmt.Errorf("report task %d attempt %d: %w: %s; the attempt failed as an execution error", taskID, attemptNo, ErrResultRefused, why)
}

// report records res through ent, the reference path.
func (q *Queue) report(ctx context.Context, robotID, taskID, attemptNo int, res Result) (*ent.Task, error) {
	var out *ent.Task
	err := q.withTx(ctx, func(ctx context.Context, tx *ent.Tx, rec *recorder) error {
		t, a, err := running(ctx, tx, robotID, taskID, attemptNo)
		if err != nil {
			return fmt.Errorf("report: %w", err)
		}
		out, err = q.reportRunning(ctx, tx, rec, t, a, robotID, attemptNo, res)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// reportRunning records res for running attempt a of task t (as running
// found them) inside tx.
func (q *Queue) reportRunning(ctx context.Context, tx *ent.Tx, rec *recorder, t *ent.Task, a *ent.Attempt, robotID, attemptNo int, res Result) (*ent.Task, error) {
	sctx := system(ctx)
	p, err := q.process(ctx, tx, t.ProcessID)
	if err != nil {
		return nil, fmt.Errorf("report: process: %w", err)
	}
	au := tx.Attempt.Update().Where(attempt.ID(a.ID), attempt.StateEQ(attempt.StateRunning)).SetFinishedAt(rec.now)
	tu := tx.Task.Update().Where(task.ID(t.ID), task.StateEQ(task.StateRunning), task.AttemptNo(attemptNo)).SetUpdatedAt(rec.now)
	bu := tx.Batch.Update().Where(batch.ID(t.BatchID)).AddRunning(-1).SetLastServedAt(rec.now).SetUpdatedAt(rec.now)
	var evType events.Type
	var evMsg string
	var attemptOutcome attempt.State
	switch {
	case !res.Success && a.StopRequestedAt != nil:
		// The robot stopped at the operator's request (or failed
		// while stopping): the attempt ends stopped and the task
		// cancelled, never retried. A success that raced the stop
		// is kept as a success (the case below): the work was done.
		msg := "stopped at the operator's request"
		if res.Message != "" {
			msg += "; the robot reported: " + res.Message
		}
		msg = truncateMessage(msg, q.maxResult)
		attemptOutcome = attempt.StateStopped
		au.SetState(attemptOutcome).SetErrorMessage(msg)
		if res.Class == robotwire.ErrorData {
			au.SetErrorClass(attempt.ErrorClassData)
		} else {
			au.SetErrorClass(attempt.ErrorClassExecution)
		}
		reason := task.FailureReasonCancelled
		tu.SetState(task.StateCancelled).SetFailureReason(reason).SetErrorMessage(msg).SetFinishedAt(rec.now)
		bu.AddCancelled(1)
		t.State, t.FailureReason, t.ErrorMessage, t.FinishedAt = task.StateCancelled, &reason, msg, &rec.now
		evType, evMsg = events.TaskCancelled, fmt.Sprintf("attempt %d %s", attemptNo, msg)
	case res.Success:
		attemptOutcome = attempt.StateSucceeded
		au.SetState(attemptOutcome).SetOutput(string(res.Output))
		tu.SetState(task.StateSucceeded).SetOutput(string(res.Output)).SetFinishedAt(rec.now).SetErrorMessage("")
		bu.AddSucceeded(1)
		t.State, t.Output, t.ErrorMessage, t.FinishedAt = task.StateSucceeded, string(res.Output), "", &rec.now
		evType, evMsg = events.TaskSucceeded, fmt.Sprintf("attempt %d succeeded", attemptNo)
	case res.Class == robotwire.ErrorData:
		attemptOutcome = attempt.StateFailed
		au.SetState(attemptOutcome).SetErrorClass(attempt.ErrorClassData).SetErrorMessage(res.Message)
		tu.SetState(task.StateFailed).SetFailureReason(task.FailureReasonDataError).SetErrorMessage(res.Message).SetFinishedAt(rec.now)
		bu.AddFailed(1)
		reason := task.FailureReasonDataError
		t.State, t.FailureReason, t.ErrorMessage, t.FinishedAt = task.StateFailed, &reason, res.Message, &rec.now
		evType, evMsg = events.TaskFailed, "data error: "+res.Message
	default:
		attemptOutcome = attempt.StateFailed
		au.SetState(attemptOutcome).SetErrorClass(attempt.ErrorClassExecution).SetErrorMessage(res.Message)
		tu.AddExecutionsFailed(1).SetErrorMessage(res.Message)
		t.ExecutionsFailed++
		t.ErrorMessage = res.Message
		if t.ExecutionsFailed > p.Retries {
			tu.SetState(task.StateFailed).SetFailureReason(task.FailureReasonRetriesExhausted).SetFinishedAt(rec.now)
			bu.AddFailed(1)
			reason := task.FailureReasonRetriesExhausted
			t.State, t.FailureReason, t.FinishedAt = task.StateFailed, &reason, &rec.now
			evType, evMsg = events.TaskFailed, fmt.Sprintf("execution error, %d retries exhausted: %s", p.Retries, res.Message)
		} else {
			tu.SetState(task.StatePending).SetRandKey(q.randKey())
			bu.AddPending(1)
			t.State = task.StatePending
			evType, evMsg = events.TaskRetrying, fmt.Sprintf("execution error on attempt %d, will retry: %s", attemptNo, res.Message)
		}
	}
	if n, err := au.Save(sctx); err != nil || n != 1 {
		return nil, fmt.Errorf("report: close attempt: %w", errOr(err, ErrStaleAttempt))
	}
	if n, err := tu.Save(sctx); err != nil || n != 1 {
		return nil, fmt.Errorf("report: update task %d: %w", t.ID, errOr(err, ErrStaleAttempt))
	}
	if err := bu.Exec(sctx); err != nil {
		return nil, fmt.Errorf("report: update batch: %w", err)
	}
	if t.State != task.StatePending {
		if err := finishBatchIfDone(sctx, tx, rec, t.BatchID); err != nil {
			return nil, err
		}
	}
	if err := tx.Robot.Update().Where(robot.ID(robotID), robot.StateEQ(robot.StateBusy)).
		SetState(robot.StateIdle).SetLastSeenAt(rec.now).Exec(sctx); err != nil {
		return nil, fmt.Errorf("report: mark robot idle: %w", err)
	}
	rid := robotID
	rec.add(tx, evType, evMsg, t, &rid)
	rec.attemptEnded(t, string(attemptOutcome))
	t.UpdatedAt = rec.now
	return t, nil
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
		c := events.Create(tx.Event, events.BatchFinished, rec.now).
			SetBatchID(b.ID).SetCustomerID(b.CustomerID).SetPoolID(b.PoolID).SetProcessID(b.ProcessID).
			SetMessage(batchSummary(b))
		rec.evs = append(rec.evs, c)
	}
	return nil
}

// batchSummary is a finished batch's event message.
func batchSummary(b *ent.Batch) string {
	if b.Cancelled > 0 {
		return fmt.Sprintf("%d succeeded, %d failed, %d cancelled", b.Succeeded, b.Failed, b.Cancelled)
	}
	return fmt.Sprintf("%d succeeded, %d failed", b.Succeeded, b.Failed)
}
