// Package dispatch is the task queue on the database and the dispatcher
// that serves it by the restaurant algorithm of seed 003 (the pure policy is
// in package policy).
//
// # API
//
//   - New(client, Options) returns a Queue. Options.Now is the clock every
//     deadline, time-out and "last served" moment is read from (inject a
//     virtual clock in tests and simulators; nothing in this package
//     sleeps or reads time.Now on its own). Options.Seed makes the random
//     draws reproducible.
//   - Queue.Submit writes a batch and its tasks in one transaction; the
//     batch goes on top of its pool's stack A.
//   - Queue.ClaimTask(robot) is a robot's poll: one short transaction (or
//     statement, see below) that
//     picks a task by the pool's fairness (policy.Pick), moves it to
//     running under a new attempt with a deadline (the process's
//     max_duration) and a fencing number, and returns it, or nil. The poll
//     is also the robot's check-in: a suspect robot is trusted again.
//     Queue.Claim is the same poll returning a ClaimResult: the claim, the
//     robot's pool and the Backlog, the pending tasks of the pool's
//     claimable batches as the claim read them (it reads them anyway to
//     choose a batch) less the one it took. core/robotapi wakes that many
//     parked robots. PoolsWithWork (which pools have a claimable batch)
//     and StoppedAttempts (which awaited attempts were asked to stop or
//     ended) are one read-only statement each, for robotapi's backstops.
//   - Liveness (liveness.go): a check-in that changes nothing but the
//     robot's last-seen moment (an idle robot's empty poll, a heartbeat, a
//     draining robot's poll) writes nothing; Seen keeps the moment in
//     memory and FlushLiveness writes the moments in batches
//     (RunLivenessFlusher, every DefaultLivenessFlush on every daemon and
//     at shutdown). State changes are written at once, with their moment.
//   - Queue.Heartbeat extends a running attempt's deadline. Heartbeats (and,
//     on SQLite, reports) arriving together are written together (group
//     commit, below).
//   - Pool fairness and process max_duration/retries are cached for a few
//     seconds of the queue's clock; Queue.ForgetSettings drops the cache
//     after a change.
//   - Queue.Report records a result: success; an execution error (pending
//     again until the process's retries are spent, then failed with
//     retries_exhausted); a data error (failed at once, never retried).
//     The error class and message are kept on the attempt. A result the
//     queue cannot record (too big, not JSON, unknown class) is refused
//     with ErrResultRefused and ends the attempt at once as an execution
//     error carrying the reason.
//   - Queue.Sweep abandons attempts past their deadline: a task.delayed
//     event for the customer, the robot marked suspect (no work until it
//     polls again), the task pending for a different robot while the pool
//     has one that could take it (else for a robot that timed out on it
//     too), or failed with timeout_exhausted at its MaxTimeoutRobots-th
//     time-out.
//   - Queue.SweepLost does the same, at once, for attempts whose robot has
//     not been seen for the monitor's heartbeat_timeout (at least
//     MinLostAfter): a robot killed mid-task gives its task back when its
//     heartbeat_lost anomaly opens, not at max_duration. RunSweeper calls
//     it when SweeperOptions.LostAfter is set (the daemon does).
//   - Queue.Expire fails the tasks still pending their process's max_wait
//     after submission (failure_reason expired), so a task ends in bounded
//     time even in a pool no robot can serve (except while it is paused,
//     below). RunSweeper runs Sweep and
//     Expire periodically; the daemon runs it among its leader services
//     (core/lease.Group), so several daemons sharing a PostgreSQL sweep
//     once.
//   - Job control (control.go): CancelBatch, StopTask, RetryTask,
//     RetryBatch, PausePool/ResumePool, PauseProcess/ResumeProcess. A
//     stop marks the running attempt stop_requested and cuts its deadline
//     to now plus the stop grace (Options.StopGrace, DefaultStopGrace);
//     Heartbeat then answers ErrStopRequested and extends nothing;
//     StopRequested is the robot's check (awaitStop). A failure report
//     for a stop-requested attempt ends it stopped and the task cancelled;
//     a success that raced the stop is kept as a success. Sweep treats a
//     stop-requested attempt past the grace like a time-out (abandoned,
//     robot suspect) but the task ends cancelled, not retried. A retry
//     makes a failed or cancelled task pending (manual_retries + 1,
//     automatic counts reset, requeued_at now) and its finished batch
//     returns to stack B, provided its process still takes its customer's
//     work as Submit requires (else ErrBadInput). Batch-wide requests and
//     a resume's restart of max_wait run in chunks of 200 tasks, one
//     transaction each; a batch-wide request stopped part-way answers
//     ErrUnfinished. A retry's transaction adds one batch.requeued event
//     (the robots' wake) besides each task's task.requeued.
//   - Heartbeat, Report and Sweep lock the attempt's row (FOR UPDATE, on
//     PostgreSQL) before they read it, so a stop committed meanwhile is
//     seen, never overwritten.
//   - Paused pools and processes: no claim (ent path and fast path)
//     hands out their work, read from the database at each claim (not the
//     settings cache), so a pause applies at the next claim on every
//     daemon; Expire leaves their tasks alone, the exception to its
//     bounded-time guarantee, and a resume restarts their max_wait. A task
//     retried by hand waits max_wait from requeued_at, not its submission.
//
// # Guarantees
//
// Every transition is a compare-and-set on (task, state, attempt number)
// whose affected-row count is checked; a report, heartbeat or sweep that
// names an attempt which is no longer the task's running attempt fails with
// ErrStaleAttempt and changes nothing. Everything lives in the database, so
// a daemon killed at any point loses no task and completes none twice (see
// crash_test.go).
//
// # Claim cost
//
// A claim reads the pool's batches that have pending tasks (stacks A and B:
// active orders, not tasks), lets policy.Pick choose one, then draws a task
// of that batch with a random key:
//
//	SELECT … FROM tasks
//	WHERE batch_id = $1 AND state = 'pending' AND rand_key >= $2
//	  AND (id NOT IN (SELECT task_id FROM attempts WHERE robot_id = $3 AND state = 'abandoned')
//	       OR NOT EXISTS (… another live robot of the pool that has not timed out on it …))
//	ORDER BY rand_key LIMIT 1
//	FOR UPDATE SKIP LOCKED          -- PostgreSQL only
//
// with a wrap-around to the smallest key when nothing lies above $2. The
// index tasks(batch_id, state, rand_key) turns this into one index range
// scan that stops at the first row, whatever the backlog (plans in the
// README's performance section). Keys are drawn afresh each time a task
// becomes pending. The draw is uniform over keys, so a task's chance is
// proportional to the gap below its key: every task has the same expected
// chance, not exactly the same chance — the weighted choice between
// batches, which carries the seed's fairness, is exact (pending counters).
//
// On PostgreSQL, FOR UPDATE SKIP LOCKED lets many robots and daemons claim
// at once without double assignment or waiting on each other's tasks. On
// SQLite the store opens one connection, so transactions are serialised in
// Go and "database is locked" never reaches a caller.
//
// # PostgreSQL fast path
//
// On PostgreSQL, claims and successful reports run as single
// data-modifying statements (fastpath.go): the same draw, fences and
// counters as the ent path, rows locked in the same order as every other
// writer (so no lock cycle), in two statements per claim and one per
// report instead of about ten each. Everything else (SQLite,
// robots with nothing to do, failures, stale reports) takes the ent path,
// which stays the reference.
//
// # Group commit
//
// Heartbeats that arrive while the previous group is being written are
// written together as the next group, and so are reports on SQLite
// (group.go): a caller that finds a writer's slot free leads, takes up to
// Options.GroupMax (DefaultGroupMax, 256) queued requests, writes them,
// answers each caller, and hands its slot to the first request still
// queued. Nothing waits for a timer: a lone request is a group of one.
// SQLite has one writer slot (its one connection serialises everything);
// PostgreSQL has pgGroupWriters.
//
//   - PostgreSQL heartbeats: one UPDATE … FROM unnest(…) per group, which
//     extends every attempt that is running, held by the robot named and
//     not stop-requested, to now plus its process's max_duration. The
//     attempts are locked in id order first, so groups never deadlock each
//     other.
//   - SQLite heartbeats and reports: one transaction of the ent path's own
//     steps, each with its fences; a request fenced out there
//     (ErrStaleAttempt, ErrStopRequested) has written nothing and gets its
//     answer while the others commit; any other error rolls the group back.
//   - PostgreSQL reports are not grouped: a multi-row report statement
//     holds every touched batch's row lock until it ends and the claims of
//     those batches wait behind it; measured with `rpacloud bench
//     dispatch`, it made the burn-down 2 to 4 times slower than the fast
//     path's one statement per report, which stays.
//
// A request the group does not settle — a fence failed on PostgreSQL, a
// stop was requested, the group's statement or transaction failed — has
// changed nothing, and its caller takes the one-by-one ent path, which
// gives the precise answer. Each caller thus gets exactly the answer and
// the database the end state the one-by-one path gives (group_test.go). A
// caller whose context ends while its request waits is skipped (its
// request is never written); once taken into a group, the request is
// written and the caller answered. Events are published once the group
// has committed.
//
// # Metrics
//
// With Options.Metrics the queue counts finished tasks (by the event that
// ends them: task.succeeded, task.failed, task.cancelled) and attempts,
// and observes queue waits and claim durations (observe.go). Each fact is
// noted inside its transaction and counted after the commit, ent path and
// PostgreSQL fast path alike, so a rolled-back group or a lost race counts
// nothing.
package dispatch
