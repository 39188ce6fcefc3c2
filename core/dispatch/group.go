package dispatch

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/rpacloud/rpacloud/ent"
)

// Group commit. With many robots, heartbeats and reports arrive together,
// and each written on its own costs a transaction: a commit (an fsync on
// PostgreSQL) and, on SQLite's one connection, a turn of the single writer
// that every other request waits behind. A grouper writes the requests of
// one kind that arrived while the previous group was being written as the
// next group, in one statement or one transaction: the classic group
// commit. There is no artificial delay: a request that finds no group being
// written is written at once, as a group of one.
//
// A caller that finds a writer's slot free leads: it takes up to max
// queued requests, writes them, answers them, and hands its slot to the
// first request still queued that no other writer was handed, whose caller
// writes the next group. Nobody waits for a group after its own, and no
// goroutine is started. On SQLite, whose one connection serialises every
// transaction anyway, one group is written at a time. On PostgreSQL up to
// pgGroupWriters groups are written at once, so that one group waiting for
// a row lock (an operator's stop, the sweeper) does not hold up every
// heartbeat behind it; under load the commits are still shared. Reports
// are grouped on SQLite only (see Queue.Report).
//
// A group's write settles what it can. A request it does not settle (a
// fence failed, a stop was requested, the group's transaction failed) is
// answered "not settled", and its caller then takes the one-by-one path,
// the reference, which finds the precise answer (ErrStaleAttempt,
// ErrStopRequested...) with its own context. The group's write changed
// nothing for such a request.

// groupWriteTimeout bounds how long one group is written before it is
// given up.
const groupWriteTimeout = 15 * time.Second

// DefaultGroupMax bounds the requests written in one group (Options.GroupMax).
const DefaultGroupMax = 256

// pgGroupWriters is how many groups of one kind are written at once on
// PostgreSQL (one on SQLite).
const pgGroupWriters = 4

// groupCall is one request in a grouper.
type groupCall[Req, Res any] struct {
	ctx context.Context
	req Req

	// Set by the group's write before done is closed.
	res     Res
	err     error
	settled bool

	done chan struct{} // closed once answered
	lead chan struct{} // receives when this call's caller is to lead

	// Guarded by grouper.mu.
	taken  bool // in a group being written: its answer will come
	leader bool // handed a writer's slot (lead has or had its token)
}

// grouper coalesces requests of one kind. write is called with one group
// per writer's slot at a time (writers() slots, at least 1) and must set
// each call's res, err and settled; ctx is the leader's context without
// its cancellation, since the group carries other callers' requests.
type grouper[Req, Res any] struct {
	max     int
	writers func() int // nil: 1
	write   func(ctx context.Context, group []*groupCall[Req, Res])

	mu      sync.Mutex
	queue   []*groupCall[Req, Res]
	leaders int // slots in use: groups being written, plus calls handed a slot
}

// do writes req in a group and returns its answer; settled is false when
// the group did not settle it (the caller then takes the one-by-one path)
// or when ctx ended before it was taken into a group (err is then ctx's).
func (g *grouper[Req, Res]) do(ctx context.Context, req Req) (res Res, err error, settled bool) {
	if err := ctx.Err(); err != nil {
		var zero Res
		return zero, err, false
	}
	c := &groupCall[Req, Res]{ctx: ctx, req: req, done: make(chan struct{}), lead: make(chan struct{}, 1)}
	slots := 1
	if g.writers != nil {
		slots = max(1, g.writers())
	}
	g.mu.Lock()
	g.queue = append(g.queue, c)
	if g.leaders < slots {
		g.leaders++
		c.leader = true
		c.lead <- struct{}{}
	}
	g.mu.Unlock()
	for {
		select {
		case <-c.done:
			return c.res, c.err, c.settled
		case <-c.lead:
			g.writeNext(ctx, c)
		case <-ctx.Done():
			g.mu.Lock()
			if c.taken {
				// Its group is being written: wait for the answer, which
				// says what happened to it.
				g.mu.Unlock()
				<-c.done
				return c.res, c.err, c.settled
			}
			g.remove(c)
			if c.leader {
				// It had been handed a slot (its token may be pending or
				// taken): pass the slot on.
				g.handOffLocked()
			}
			g.mu.Unlock()
			var zero Res
			return zero, ctx.Err(), false
		}
	}
}

// writeNext writes the next group, led by self (whose caller holds a
// writer's slot), and hands the slot on.
func (g *grouper[Req, Res]) writeNext(ctx context.Context, self *groupCall[Req, Res]) {
	g.mu.Lock()
	// Take the queued calls no other writer was handed (those lead their
	// own group), itself first.
	group := make([]*groupCall[Req, Res], 1, min(len(g.queue), g.max))
	group[0], self.taken = self, true
	rest := g.queue[:0]
	for _, c := range g.queue {
		if c != self && !c.leader && len(group) < g.max {
			group = append(group, c)
			c.taken = true
			continue
		}
		if c != self {
			rest = append(rest, c)
		}
	}
	// rest reuses the queue's array, so it does not grow without bound
	// under steady load.
	clear(g.queue[len(rest):])
	g.queue = rest
	g.mu.Unlock()
	// The group outlives its callers' contexts (each is answered), but
	// not without bound: a group stuck on the database is given up after
	// groupWriteTimeout, its requests unsettled (nothing written) and left
	// to the one-by-one path under each caller's own context.
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), groupWriteTimeout)
	g.write(wctx, group)
	cancel()
	for _, c := range group {
		close(c.done)
	}
	g.mu.Lock()
	g.handOffLocked()
	g.mu.Unlock()
}

// handOffLocked gives a writer's slot to the first queued call that has
// none, or frees it.
func (g *grouper[Req, Res]) handOffLocked() {
	for _, c := range g.queue {
		if !c.leader {
			c.leader = true
			c.lead <- struct{}{}
			return
		}
	}
	g.leaders--
}

func (g *grouper[Req, Res]) remove(c *groupCall[Req, Res]) {
	for i, q := range g.queue {
		if q == c {
			g.queue = append(g.queue[:i], g.queue[i+1:]...)
			return
		}
	}
}

// beat is one heartbeat in a group.
type beat struct{ robot, task, attempt int }

// reportReq is one report in a group.
type reportReq struct {
	robot, task, attempt int
	res                  Result
}

// newGroupers sets up the queue's heartbeat and report groupers.
func (q *Queue) newGroupers(max int) {
	q.beats = &grouper[beat, time.Time]{max: max, writers: q.groupWriters, write: q.writeBeats}
	q.reports = &grouper[reportReq, *ent.Task]{max: max, write: q.writeReports}
}

// groupWriters is how many groups of one kind may be written at once:
// pgGroupWriters once the queue knows it is on PostgreSQL, else one.
func (q *Queue) groupWriters() int {
	if q.postgres.Load() {
		return pgGroupWriters
	}
	return 1
}

// heartbeatSQL extends a group of running attempts in one statement: for
// each heartbeat i, attempt $3[i] of task $2[i] held by robot $1[i], when
// it is running and no stop was requested (the fences of running and
// Heartbeat), gets the deadline $4 plus its process's max_duration and the
// heartbeat moment $4. The attempts are locked in id order first, so two
// groups never wait on each other in a cycle, and a stop committed
// meanwhile is seen (the lock re-reads the row and the fences). An attempt
// another transaction holds (a report, a stop, a batch cancel locking its
// chunk in task order) is skipped, not waited for: its heartbeat comes
// back unsettled and goes the one-by-one way under its caller's context,
// so one held row never stalls the group's other heartbeats and no lock
// cycle can form with a writer that locks in another order. It returns
// the attempts it extended with their max_duration, from which the
// answers' deadlines are computed exactly as the ent path computes them.
const heartbeatSQL = `WITH x AS (
	SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[]) AS x(robot_id, task_id, number)
), l AS (
	SELECT attempts.id FROM attempts JOIN x
		ON attempts.task_id = x.task_id AND attempts.number = x.number AND attempts.robot_id = x.robot_id
	WHERE attempts.state = 'running' AND attempts.stop_requested_at IS NULL
	ORDER BY attempts.id
	FOR UPDATE OF attempts SKIP LOCKED
)
UPDATE attempts SET deadline = $4::timestamptz + p.max_duration_seconds * interval '1 second', heartbeat_at = $4
FROM l, tasks t, processes p
WHERE attempts.id = l.id AND attempts.state = 'running' AND attempts.stop_requested_at IS NULL
	AND t.id = attempts.task_id AND t.state = 'running' AND t.attempt_no = attempts.number AND p.id = t.process_id
RETURNING attempts.robot_id, attempts.task_id, attempts.number, p.max_duration_seconds`

type beatRow struct {
	RobotID            int `json:"robot_id"`
	TaskID             int `json:"task_id"`
	Number             int `json:"number"`
	MaxDurationSeconds int `json:"max_duration_seconds"`
}

// writeBeats writes a group of heartbeats: one statement on PostgreSQL,
// one transaction on SQLite.
func (q *Queue) writeBeats(ctx context.Context, group []*groupCall[beat, time.Time]) {
	pg, err := q.isPostgres(ctx)
	if err != nil {
		return // all unsettled: the ent path says what is wrong
	}
	if !pg {
		q.writeBeatsTx(ctx, group)
		return
	}
	ctx = system(ctx)
	now := q.clock()
	robots, tasks, numbers := make([]int64, len(group)), make([]int64, len(group)), make([]int64, len(group))
	for i, c := range group {
		robots[i], tasks[i], numbers[i] = int64(c.req.robot), int64(c.req.task), int64(c.req.attempt)
	}
	rows, err := q.client.QueryContext(ctx, heartbeatSQL, robots, tasks, numbers, now)
	if err != nil {
		q.log.Warn("group of heartbeats failed; writing them one by one", "heartbeats", len(group), "err", err)
		return
	}
	var got []beatRow
	if err := scanAll(rows, &got); err != nil {
		for _, c := range group {
			c.err, c.settled = fmt.Errorf("heartbeat: task %d attempt %d: %w", c.req.task, c.req.attempt, err), true
		}
		return
	}
	extended := make(map[beat]int, len(got))
	for _, r := range got {
		extended[beat{r.RobotID, r.TaskID, r.Number}] = r.MaxDurationSeconds
	}
	for _, c := range group {
		secs, ok := extended[c.req]
		if !ok {
			continue // fenced out: the ent path finds why
		}
		c.res, c.settled = now.Add(time.Duration(secs)*time.Second), true
		q.Seen(c.req.robot, now)
	}
}

// writeBeatsTx writes a group of heartbeats in one ent transaction, each
// with the ent path's reads and fences. A heartbeat fenced out
// (ErrStaleAttempt, ErrStopRequested) wrote nothing and gets its answer;
// any other error rolls the group back and leaves it to the ent path one
// by one.
func (q *Queue) writeBeatsTx(ctx context.Context, group []*groupCall[beat, time.Time]) {
	type answer struct {
		d   time.Time
		err error
	}
	answers := make([]answer, len(group))
	err := q.withTx(ctx, func(ctx context.Context, tx *ent.Tx, rec *recorder) error {
		for i, c := range group {
			d, err := q.heartbeatTx(ctx, tx, rec, c.req.robot, c.req.task, c.req.attempt)
			if err != nil && !errors.Is(err, ErrStaleAttempt) && !errors.Is(err, ErrStopRequested) {
				return err
			}
			answers[i] = answer{d, err}
		}
		return nil
	})
	if err != nil {
		return
	}
	for i, c := range group {
		c.res, c.err, c.settled = answers[i].d, answers[i].err, true
	}
}

// writeReports writes a group of reports in one transaction (SQLite; on
// PostgreSQL reports are not grouped, see Report).
func (q *Queue) writeReports(ctx context.Context, group []*groupCall[reportReq, *ent.Task]) {
	type answer struct {
		t   *ent.Task
		err error
	}
	answers := make([]answer, len(group))
	err := q.withTx(ctx, func(ctx context.Context, tx *ent.Tx, rec *recorder) error {
		for i, c := range group {
			// running writes nothing: a stale report is answered and
			// the group goes on.
			t, a, err := running(ctx, tx, c.req.robot, c.req.task, c.req.attempt)
			if err != nil {
				if !errors.Is(err, ErrStaleAttempt) {
					return err
				}
				answers[i].err = fmt.Errorf("report: %w", err)
				continue
			}
			// Past the fence any error may leave the report half
			// written: the whole group is rolled back.
			if answers[i].t, err = q.reportRunning(ctx, tx, rec, t, a, c.req.robot, c.req.attempt, c.req.res); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return
	}
	for i, c := range group {
		c.res, c.err, c.settled = answers[i].t, answers[i].err, true
	}
}
