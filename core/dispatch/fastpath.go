package dispatch

import (
	"context"
	"errors"
	"fmt"
	"time"

	"entgo.io/ent/dialect/sql"

	"github.com/rpacloud/rpacloud/core/dispatch/policy"
	"github.com/rpacloud/rpacloud/core/events"
	"github.com/rpacloud/rpacloud/ent"
	"github.com/rpacloud/rpacloud/ent/attempt"
	"github.com/rpacloud/rpacloud/ent/task"
)

// PostgreSQL fast path. Through ent a claim is about ten round trips (begin,
// robot, batches, the draw, the fenced task update, the attempt, the batch
// counters, the robot, the event, commit) and a report as many. With many
// robots on two cores the statements' system calls and ent's per-statement
// work are what the dispatcher spends its CPU on (see the README's
// performance section), not the work inside the database. On PostgreSQL a
// claim is therefore two statements (the candidate batches, then one
// data-modifying CTE that draws and starts the task) and a successful
// report one. Each CTE is atomic on its own and makes exactly the changes of
// the ent path, behind the same fences; its parts are chained through their
// results so that the task's changes happen all together or not at all.
//
// The ent path stays the reference and takes everything else: SQLite (one
// serialised writer in process, where a statement is a function call),
// draining or idle robots, failures, and stale reports, whose precise
// error it finds. The model-based and crash tests run both paths on
// PostgreSQL.

// errSlowPath sends the caller to the ent path; the fast path then has
// changed nothing.
var errSlowPath = errors.New("dispatch: take the general path")

// candidatesSQL reads the active batches (stacks A and B with pending
// tasks, pool and process not paused: notPaused) of robot $1's pool, and
// the robot's name and pool, when the robot may take work.
const candidatesSQL = `SELECT b.id, b.stack, b.created_at, b.last_served_at, b.pending, b.running, b.process_id,
	r.name AS robot_name, r.pool_id AS robot_pool
FROM robots r JOIN batches b ON b.pool_id = r.pool_id
WHERE r.id = $1 AND r.state NOT IN ('draining', 'released')
  AND b.stack IN ('new', 'serving') AND b.pending > 0
  AND NOT EXISTS (SELECT 1 FROM pools pp WHERE pp.id = b.pool_id AND pp.paused_at IS NOT NULL)
  AND NOT EXISTS (SELECT 1 FROM processes pr WHERE pr.id = b.process_id AND pr.paused_at IS NOT NULL)`

// candidateRow is flat: ScanSlice skips embedded structs of unexported types.
type candidateRow struct {
	ID           int        `json:"id"`
	Stack        string     `json:"stack"`
	CreatedAt    time.Time  `json:"created_at"`
	LastServedAt *time.Time `json:"last_served_at"`
	Pending      int        `json:"pending"`
	Running      int        `json:"running"`
	ProcessID    int        `json:"process_id"`
	RobotName    string     `json:"robot_name"`
	RobotPool    int        `json:"robot_pool"`
}

func (c candidateRow) candidate() policy.Candidate {
	return batchRow{ID: c.ID, Stack: c.Stack, CreatedAt: c.CreatedAt, LastServedAt: c.LastServedAt, Pending: c.Pending, Running: c.Running}.candidate()
}

// claimSQL draws one pending task of batch $1 that robot $2 may take (not
// timed out on it, or no other robot could take it: the condition of
// claimable, with $8 its liveSince), from random key $3 (>= or <, by the
// variant), and starts it. The
// task is locked with SKIP LOCKED, so concurrent claimers never take the
// same one and never wait on each other's tasks; the batch counters move
// only for a locked task and the task starts only when they moved. Rows
// are locked in the order every other writer uses (task, batch, robot;
// sweeper and reports: attempt, task, batch, robot), so no lock cycle can
// form. The robot is checked on the statement's snapshot and its update is
// conditional: a drain that lands in between (the scaler's compare-and-set
// on the idle state) leaves it draining, never busy again, and the started
// attempt ends by time-out and is retried, as under the ent path. $4 is the
// queue's clock, $5 the attempt's deadline, $6 the wall clock that ent's
// update default writes to robots.updated_at, $7 the robot's name for the
// event.
const claimSQL = `WITH t AS (
	SELECT id FROM tasks
	WHERE batch_id = $1 AND state = 'pending' AND rand_key %s $3
	  AND (id NOT IN (SELECT task_id FROM attempts WHERE robot_id = $2 AND state = 'abandoned') OR NOT EXISTS (SELECT 1 FROM robots o WHERE o.pool_id = tasks.pool_id AND o.id <> $2 AND (o.state = 'busy' OR (o.state = 'idle' AND o.last_seen_at >= $8)) AND o.id NOT IN (SELECT robot_id FROM attempts WHERE task_id = tasks.id AND state = 'abandoned')))
	  AND EXISTS (SELECT 1 FROM robots WHERE id = $2 AND state NOT IN ('draining', 'released'))
	ORDER BY rand_key LIMIT 1
	FOR UPDATE OF tasks SKIP LOCKED
), b AS (
	UPDATE batches SET pending = pending - 1, running = running + 1, stack = 'serving',
		last_served_at = $4, updated_at = $4
	WHERE id = $1 AND pending > 0 AND EXISTS (SELECT 1 FROM t)
	RETURNING id
), ut AS (
	UPDATE tasks SET state = 'running', attempt_no = tasks.attempt_no + 1, updated_at = $4
	FROM t, b WHERE tasks.id = t.id AND tasks.state = 'pending'
	RETURNING tasks.*
), a AS (
	INSERT INTO attempts (task_id, robot_id, customer_id, number, state, started_at, deadline, error_message, output)
	SELECT id, $2, customer_id, attempt_no, 'running', $4, $5, '', '' FROM ut
	RETURNING id
), rb AS (
	UPDATE robots SET state = 'busy', last_seen_at = $4, updated_at = $6
	WHERE id = $2 AND state NOT IN ('draining', 'released') AND EXISTS (SELECT 1 FROM ut)
), ev AS (
	INSERT INTO events (at, type, status, customer_id, pool_id, process_id, batch_id, task_id, robot_id, attempt_no, message, vendor, external_id)
	SELECT $4, '` + string(events.TaskDispatched) + `', 'dispatched', customer_id, pool_id, process_id, batch_id, id, $2, attempt_no,
		'attempt ' || attempt_no || ' on robot ' || $7::text, '` + events.OwnVendor + `', ''
	FROM ut
	RETURNING id
)
SELECT ut.*, a.id AS attempt_id, ev.id AS event_id FROM ut, a, ev`

var (
	claimSQLFrom  = fmt.Sprintf(claimSQL, ">=")
	claimSQLBelow = fmt.Sprintf(claimSQL, "<")
)

type claimedRow struct {
	ent.Task
	AttemptID int `json:"attempt_id"`
	EventID   int `json:"event_id"`
}

// claimFast is ClaimTask on PostgreSQL for a robot that may take work and
// has candidates. errSlowPath means it found nothing to start (no
// candidates, robot not available, or every drawn batch empty for this
// robot now): the ent path then checks the robot in and decides.
func (q *Queue) claimFast(ctx context.Context, robotID int) (ClaimResult, error) {
	ctx = system(ctx)
	rows, err := q.client.QueryContext(ctx, candidatesSQL, robotID)
	if err != nil {
		return ClaimResult{}, fmt.Errorf("claim: list batches for robot %d: %w", robotID, err)
	}
	var bs []candidateRow
	if err := scanAll(rows, &bs); err != nil {
		return ClaimResult{}, fmt.Errorf("claim: list batches for robot %d: %w", robotID, err)
	}
	if len(bs) == 0 {
		return ClaimResult{}, errSlowPath
	}
	_, fair, err := q.poolFairness(ctx, q.client.Pool, robotID, bs[0].RobotPool)
	if err != nil {
		return ClaimResult{}, err
	}
	backlog := 0
	cands := make([]policy.Candidate, len(bs))
	for i, b := range bs {
		cands[i] = b.candidate()
		backlog += b.Pending
	}
	for range maxDraws {
		i, ok := policy.Pick(fair, cands, q)
		if !ok {
			break
		}
		proc, err := q.processFrom(ctx, q.client.Process, bs[i].ProcessID)
		if err != nil {
			return ClaimResult{}, fmt.Errorf("claim: process of batch %d: %w", bs[i].ID, err)
		}
		c, err := q.startFast(ctx, robotID, bs[i].RobotName, bs[i].ID, proc)
		if err != nil {
			return ClaimResult{}, err
		}
		if c != nil {
			return ClaimResult{Claim: c, Backlog: max(backlog-1, 0), PoolID: bs[0].RobotPool}, nil
		}
		cands[i].Pending = 0 // nothing this robot can take now; choose again
	}
	return ClaimResult{}, errSlowPath
}

// startFast runs claimSQL for one batch; nil when it started nothing.
func (q *Queue) startFast(ctx context.Context, robotID int, robotName string, batchID int, p *ent.Process) (*Claim, error) {
	now := q.clock()
	deadline := now.Add(time.Duration(p.MaxDurationSeconds) * time.Second)
	from := q.randKey()
	for _, stmt := range []string{claimSQLFrom, claimSQLBelow} {
		rows, err := q.client.QueryContext(ctx, stmt, batchID, robotID, from, now, deadline, time.Now().UTC(), robotName, now.Add(-IdleLiveness))
		if err != nil {
			return nil, fmt.Errorf("claim: draw and start a task of batch %d: %w", batchID, err)
		}
		var got []claimedRow
		if err := scanAll(rows, &got); err != nil {
			return nil, fmt.Errorf("claim: read the started task of batch %d: %w", batchID, err)
		}
		if len(got) == 0 {
			continue
		}
		t := got[0].Task
		a := &ent.Attempt{
			ID: got[0].AttemptID, TaskID: t.ID, RobotID: robotID, CustomerID: t.CustomerID, Number: t.AttemptNo,
			State: attempt.StateRunning, StartedAt: now, Deadline: deadline,
		}
		q.bus.Publish(taskEvent(got[0].EventID, now, events.TaskDispatched,
			fmt.Sprintf("attempt %d on robot %s", t.AttemptNo, robotName), &t, robotID))
		rec := recorder{now: now}
		rec.dispatched(&t, t.AttemptNo)
		q.observe(ctx, rec.obs)
		return &Claim{Task: &t, Process: p, Attempt: a, Deadline: deadline}, nil
	}
	return nil, nil
}

// reportSuccessSQL closes running attempt $2 of task $1, held by robot $3,
// as succeeded with output $5 at $4: the attempt and the task fenced on
// (task, state, attempt number, robot) as the ent path checks them, the
// batch's counters moved and the batch finished (stack C) when this was its
// last task, the robot idle ($6: the wall clock of robots.updated_at), and
// the events. Every part hangs on the attempt's update, so when a fence
// fails no row comes back and nothing changed.
const reportSuccessSQL = `WITH a AS (
	UPDATE attempts SET state = 'succeeded', finished_at = $4, output = $5
	WHERE task_id = $1 AND number = $2 AND robot_id = $3 AND state = 'running'
	RETURNING id
), t AS (
	UPDATE tasks SET state = 'succeeded', output = $5, error_message = '', finished_at = $4, updated_at = $4
	FROM a WHERE tasks.id = $1 AND tasks.state = 'running' AND tasks.attempt_no = $2
	RETURNING tasks.*
), b AS (
	UPDATE batches SET running = batches.running - 1, succeeded = batches.succeeded + 1,
		last_served_at = $4, updated_at = $4,
		stack = CASE WHEN batches.pending = 0 AND batches.running = 1 THEN 'finished' ELSE batches.stack END,
		finished_at = CASE WHEN batches.pending = 0 AND batches.running = 1 THEN $4 ELSE batches.finished_at END
	FROM t WHERE batches.id = t.batch_id
	RETURNING batches.id, batches.customer_id, batches.pool_id, batches.process_id, batches.succeeded, batches.failed, batches.cancelled,
		batches.stack = 'finished' AND batches.pending = 0 AND batches.running = 0 AS done
), r AS (
	UPDATE robots SET state = 'idle', last_seen_at = $4, updated_at = $6
	WHERE id = $3 AND state = 'busy' AND EXISTS (SELECT 1 FROM t)
), tev AS (
	INSERT INTO events (at, type, status, customer_id, pool_id, process_id, batch_id, task_id, robot_id, attempt_no, message, vendor, external_id)
	SELECT $4, '` + string(events.TaskSucceeded) + `', 'succeeded', customer_id, pool_id, process_id, batch_id, id, $3, attempt_no,
		'attempt ' || attempt_no || ' succeeded', '` + events.OwnVendor + `', ''
	FROM t
	RETURNING id
), bev AS (
	INSERT INTO events (at, type, status, customer_id, pool_id, process_id, batch_id, message, vendor, external_id)
	SELECT $4, '` + string(events.BatchFinished) + `', 'finished', b.customer_id, b.pool_id, b.process_id, b.id,
		b.succeeded || ' succeeded, ' || b.failed || ' failed' || CASE WHEN b.cancelled > 0 THEN ', ' || b.cancelled || ' cancelled' ELSE '' END, '` + events.OwnVendor + `', ''
	FROM b, tev WHERE b.done
	RETURNING id
)
SELECT t.*, b.done, b.succeeded AS batch_succeeded, b.failed AS batch_failed, b.cancelled AS batch_cancelled,
	tev.id AS event_id, (SELECT id FROM bev) AS batch_event_id
FROM t, b, tev`

type reportedRow struct {
	ent.Task
	Done           bool `json:"done"`
	BatchSucceeded int  `json:"batch_succeeded"`
	BatchFailed    int  `json:"batch_failed"`
	BatchCancelled int  `json:"batch_cancelled"`
	EventID        int  `json:"event_id"`
	BatchEventID   *int `json:"batch_event_id"`
}

// reportSuccessFast is Report of a success on PostgreSQL. errSlowPath
// means a fence failed and nothing changed: the ent path then finds out
// which and says so.
func (q *Queue) reportSuccessFast(ctx context.Context, robotID, taskID, attemptNo int, output string) (*ent.Task, error) {
	ctx = system(ctx)
	now := q.clock()
	rows, err := q.client.QueryContext(ctx, reportSuccessSQL, taskID, attemptNo, robotID, now, output, time.Now().UTC())
	if err != nil {
		return nil, fmt.Errorf("report: record success of task %d: %w", taskID, err)
	}
	var got []reportedRow
	if err := scanAll(rows, &got); err != nil {
		return nil, fmt.Errorf("report: read task %d: %w", taskID, err)
	}
	if len(got) != 1 {
		return nil, errSlowPath
	}
	row := got[0]
	t := row.Task
	if t.State != task.StateSucceeded {
		return nil, fmt.Errorf("report: task %d is %s after recording its success", taskID, t.State)
	}
	evs := []*ent.Event{taskEvent(row.EventID, now, events.TaskSucceeded, fmt.Sprintf("attempt %d succeeded", attemptNo), &t, robotID)}
	if row.Done && row.BatchEventID != nil {
		evs = append(evs, &ent.Event{
			ID: *row.BatchEventID, At: now, Type: string(events.BatchFinished), Status: "finished", Vendor: events.OwnVendor,
			CustomerID: &t.CustomerID, PoolID: &t.PoolID, ProcessID: &t.ProcessID, BatchID: &t.BatchID,
			Message: batchSummary(&ent.Batch{Succeeded: row.BatchSucceeded, Failed: row.BatchFailed, Cancelled: row.BatchCancelled}),
		})
	}
	q.bus.Publish(evs...)
	rec := recorder{now: now}
	rec.noteEvent(events.TaskSucceeded, &t)
	rec.attemptEnded(&t, string(attempt.StateSucceeded))
	q.observe(ctx, rec.obs)
	return &t, nil
}

// taskEvent is the stored event row the fast path inserted, as the ent path
// (recorder.add) would have returned it.
func taskEvent(id int, at time.Time, typ events.Type, msg string, t *ent.Task, robotID int) *ent.Event {
	attemptNo := t.AttemptNo
	return &ent.Event{
		ID: id, At: at, Type: string(typ), Status: string(typ[len(events.FamilyTask):]), Message: msg,
		CustomerID: &t.CustomerID, PoolID: &t.PoolID, ProcessID: &t.ProcessID, BatchID: &t.BatchID,
		TaskID: &t.ID, RobotID: &robotID, AttemptNo: &attemptNo, Vendor: events.OwnVendor,
	}
}

// scanAll scans every row into dst (a pointer to a slice of structs whose
// json tags name the columns) and closes rows.
func scanAll(rows interface {
	sql.ColumnScanner
	Close() error
}, dst any) error {
	err := sql.ScanSlice(rows, dst)
	if cerr := rows.Close(); err == nil {
		err = cerr
	}
	return err
}

// PostgresClaimStatement is the claim's data-modifying statement on
// PostgreSQL (the variant drawing at or above the random key), for EXPLAIN
// in benchmarks. Its parameters: batch, robot, random key, now, deadline,
// wall clock, robot name, and the moment since which an idle robot counts
// as live (now less IdleLiveness).
func PostgresClaimStatement() string { return claimSQLFrom }
