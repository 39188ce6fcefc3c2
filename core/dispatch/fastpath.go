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
const candidatesSQL = `SELECT b.id, b.stack, b.created_at, b.last_served_at, b.pending, b.process_id,
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
	ProcessID    int        `json:"process_id"`
	RobotName    string     `json:"robot_name"`
	RobotPool    int        `json:"robot_pool"`
}

func (c candidateRow) candidate() policy.Candidate {
	return batchRow{ID: c.ID, Stack: c.Stack, CreatedAt: c.CreatedAt, LastServedAt: c.LastServedAt, Pending: c.Pending}.candidate()
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
		'attempt ' || attempt_no || ' on robot ' || $7::text, '', ''
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
func (q *Queue) claimFast(ctx context.Context, robotID int) (*Claim, error) {
	ctx = system(ctx)
	rows, err := q.client.QueryContext(ctx, candidatesSQL, robotID)
	if err != nil {
		return nil, fmt.Errorf("claim: list batches for robot %d: %w", robotID, err)
	}
	var bs []candidateRow
	if err := scanAll(rows, &bs); err != nil {
		return nil, fmt.Errorf("claim: list batches for robot %d: %w", robotID, err)
	}
	if len(bs) == 0 {
		return nil, errSlowPath
	}
	_, fair, err := q.poolFairness(ctx, q.client.Pool, robotID, bs[0].RobotPool)
	if err != nil {
		return nil, err
	}
	cands := make([]policy.Candidate, len(bs))
	for i, b := range bs {
		cands[i] = b.candidate()
	}
	for range maxDraws {
		i, ok := policy.Pick(fair, cands, q)
		if !ok {
			break
		}
		proc, err := q.processFrom(ctx, q.client.Process, bs[i].ProcessID)
		if err != nil {
			return nil, fmt.Errorf("claim: process of batch %d: %w", bs[i].ID, err)
		}
		c, err := q.startFast(ctx, robotID, bs[i].RobotName, bs[i].ID, proc)
		if err != nil || c != nil {
			return c, err
		}
		cands[i].Pending = 0 // nothing this robot can take now; choose again
	}
	return nil, errSlowPath
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
		return &Claim{Task: &t, Process: p, Attempt: a, Deadline: deadline}, nil
	}
	return nil, nil
}

// reportSuccessSQL records a group of successes in one statement: for each
// report i, running attempt $2[i] of task $1[i], held by robot $3[i], closes
// as succeeded with output $4[i] at $5: the attempt and the task fenced on
// (task, state, attempt number, robot) as the ent path checks them, each
// batch's counters moved by its number of reports in the group and the
// batch finished (stack C, its batch.finished event after its tasks'
// events) when they were its last running tasks and none is pending, the
// robots idle ($6: the wall clock of robots.updated_at), and the events.
// Every part of a report hangs on its attempt's update, so a report whose
// fence fails comes back with no row and changed nothing. Attempts and
// then batches are locked in id order (l, lb), so two groups (on two
// daemons) never wait on each other in a cycle, and in the order every
// other writer takes (attempt, task, batch, robot).
const reportSuccessSQL = `WITH x AS (
	SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::text[]) AS x(task_id, number, robot_id, output)
), l AS (
	SELECT attempts.id, x.output FROM attempts JOIN x
		ON attempts.task_id = x.task_id AND attempts.number = x.number AND attempts.robot_id = x.robot_id
	WHERE attempts.state = 'running'
	ORDER BY attempts.id
	FOR UPDATE OF attempts
), a AS (
	UPDATE attempts SET state = 'succeeded', finished_at = $5, output = l.output
	FROM l WHERE attempts.id = l.id AND attempts.state = 'running'
	RETURNING attempts.task_id, attempts.number, attempts.robot_id, l.output
), t AS (
	UPDATE tasks SET state = 'succeeded', output = a.output, error_message = '', finished_at = $5, updated_at = $5
	FROM a WHERE tasks.id = a.task_id AND tasks.state = 'running' AND tasks.attempt_no = a.number
	RETURNING tasks.*, a.robot_id AS reporter
), c AS (
	SELECT batch_id, count(*) AS n FROM t GROUP BY batch_id
), lb AS (
	SELECT batches.id FROM batches JOIN c ON batches.id = c.batch_id
	ORDER BY batches.id
	FOR UPDATE OF batches
), b AS (
	UPDATE batches SET running = batches.running - c.n, succeeded = batches.succeeded + c.n,
		last_served_at = $5, updated_at = $5,
		stack = CASE WHEN batches.pending = 0 AND batches.running = c.n THEN 'finished' ELSE batches.stack END,
		finished_at = CASE WHEN batches.pending = 0 AND batches.running = c.n THEN $5 ELSE batches.finished_at END
	FROM c JOIN lb ON lb.id = c.batch_id WHERE batches.id = c.batch_id
	RETURNING batches.id, batches.customer_id, batches.pool_id, batches.process_id, batches.succeeded, batches.failed, batches.cancelled,
		batches.stack = 'finished' AND batches.pending = 0 AND batches.running = 0 AS done
), r AS (
	UPDATE robots SET state = 'idle', last_seen_at = $5, updated_at = $6
	FROM t WHERE robots.id = t.reporter AND robots.state = 'busy'
), tev AS (
	INSERT INTO events (at, type, status, customer_id, pool_id, process_id, batch_id, task_id, robot_id, attempt_no, message, vendor, external_id)
	SELECT $5, '` + string(events.TaskSucceeded) + `', 'succeeded', customer_id, pool_id, process_id, batch_id, id, reporter, attempt_no,
		'attempt ' || attempt_no || ' succeeded', '', ''
	FROM t ORDER BY id
	RETURNING id, task_id
), bev AS (
	INSERT INTO events (at, type, status, customer_id, pool_id, process_id, batch_id, message, vendor, external_id)
	SELECT $5, '` + string(events.BatchFinished) + `', 'finished', b.customer_id, b.pool_id, b.process_id, b.id,
		b.succeeded || ' succeeded, ' || b.failed || ' failed' || CASE WHEN b.cancelled > 0 THEN ', ' || b.cancelled || ' cancelled' ELSE '' END, '', ''
	FROM b WHERE b.done AND (SELECT count(*) FROM tev) > 0
	ORDER BY b.id
	RETURNING id, batch_id
)
SELECT t.*, b.done, b.succeeded AS batch_succeeded, b.failed AS batch_failed, b.cancelled AS batch_cancelled,
	tev.id AS event_id, bev.id AS batch_event_id
FROM t JOIN b ON b.id = t.batch_id JOIN tev ON tev.task_id = t.id LEFT JOIN bev ON bev.batch_id = t.batch_id`

type reportedRow struct {
	ent.Task
	Reporter       int  `json:"reporter"`
	Done           bool `json:"done"`
	BatchSucceeded int  `json:"batch_succeeded"`
	BatchFailed    int  `json:"batch_failed"`
	BatchCancelled int  `json:"batch_cancelled"`
	EventID        int  `json:"event_id"`
	BatchEventID   *int `json:"batch_event_id"`
}

// reportSuccessesFast records a group of successes on PostgreSQL in one
// statement and answers the reports it recorded; the others (a fence
// failed) changed nothing and stay unsettled, for the ent path to find out
// which and say so. An error of the statement leaves them all unsettled.
func (q *Queue) reportSuccessesFast(ctx context.Context, group []*groupCall[reportReq, *ent.Task]) {
	ctx = system(ctx)
	now := q.clock()
	tasks, numbers, robots := make([]int64, len(group)), make([]int64, len(group)), make([]int64, len(group))
	outputs := make([]string, len(group))
	for i, c := range group {
		tasks[i], numbers[i], robots[i], outputs[i] = int64(c.req.task), int64(c.req.attempt), int64(c.req.robot), string(c.req.res.Output)
	}
	rows, err := q.client.QueryContext(ctx, reportSuccessSQL, tasks, numbers, robots, outputs, now, time.Now().UTC())
	if err != nil {
		q.log.Warn("group of success reports failed; recording them one by one", "reports", len(group), "err", err)
		return
	}
	var got []reportedRow
	if err := scanAll(rows, &got); err != nil {
		// The statement ran and may have committed: each report gets
		// the error, as one written on its own would.
		for _, c := range group {
			c.err, c.settled = fmt.Errorf("report: read task %d: %w", c.req.task, err), true
		}
		return
	}
	byTask := make(map[int]*reportedRow, len(got))
	for i := range got {
		byTask[got[i].ID] = &got[i]
	}
	var evs, batchEvs []*ent.Event
	for _, c := range group {
		row := byTask[c.req.task]
		if row == nil || row.AttemptNo != c.req.attempt || row.Reporter != c.req.robot || row.State != task.StateSucceeded {
			continue
		}
		delete(byTask, c.req.task) // a duplicate request is answered by the ent path: stale
		t := row.Task
		c.res, c.settled = &t, true
		evs = append(evs, taskEvent(row.EventID, now, events.TaskSucceeded, fmt.Sprintf("attempt %d succeeded", c.req.attempt), &t, c.req.robot))
		if row.Done && row.BatchEventID != nil {
			batchEvs = append(batchEvs, &ent.Event{
				ID: *row.BatchEventID, At: now, Type: string(events.BatchFinished), Status: "finished",
				CustomerID: &t.CustomerID, PoolID: &t.PoolID, ProcessID: &t.ProcessID, BatchID: &t.BatchID,
				Message: batchSummary(&ent.Batch{Succeeded: row.BatchSucceeded, Failed: row.BatchFailed, Cancelled: row.BatchCancelled}),
			})
		}
	}
	// Each batch's event once, after its tasks' events.
	seen := map[int]bool{}
	for _, e := range batchEvs {
		if !seen[e.ID] {
			seen[e.ID] = true
			evs = append(evs, e)
		}
	}
	q.bus.Publish(evs...)
}

// taskEvent is the stored event row the fast path inserted, as the ent path
// (recorder.add) would have returned it.
func taskEvent(id int, at time.Time, typ events.Type, msg string, t *ent.Task, robotID int) *ent.Event {
	attemptNo := t.AttemptNo
	return &ent.Event{
		ID: id, At: at, Type: string(typ), Status: string(typ[len(events.FamilyTask):]), Message: msg,
		CustomerID: &t.CustomerID, PoolID: &t.PoolID, ProcessID: &t.ProcessID, BatchID: &t.BatchID,
		TaskID: &t.ID, RobotID: &robotID, AttemptNo: &attemptNo,
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
