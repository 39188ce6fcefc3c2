package dispatch_test

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/rpacloud/rpacloud/core/dispatch"
	"github.com/rpacloud/rpacloud/core/dispatch/policy"
	"github.com/rpacloud/rpacloud/core/robotwire"
	"github.com/rpacloud/rpacloud/core/store"
	"github.com/rpacloud/rpacloud/core/store/storetest"
	"github.com/rpacloud/rpacloud/ent"
	"github.com/rpacloud/rpacloud/ent/attempt"
	"github.com/rpacloud/rpacloud/ent/batch"
	"github.com/rpacloud/rpacloud/ent/event"
	"github.com/rpacloud/rpacloud/ent/pool"
	"github.com/rpacloud/rpacloud/ent/robot"
	"github.com/rpacloud/rpacloud/ent/task"
	"github.com/rpacloud/rpacloud/plugins/sdk/sdktest"
)

// The reference model: what the queue must hold after every step.
type mTask struct {
	id, batch  int
	state      task.State
	reason     task.FailureReason
	attempt    int // latest attempt number
	execFailed int
	timeouts   int
	timedOut   map[int]bool // robots that timed out on it
	robot      int          // robot of the running attempt
	deadline   time.Time
	finishedAt *time.Time
	submitted  time.Time
}

type mRobot struct {
	id       int
	state    robot.State // follows the queue's rules exactly
	lastSeen *time.Time  // its last poll, heartbeat or report that set it
	task     int         // task the live agent works on; 0 none
	att      int         // the attempt it works under
	dead     bool        // the agent stopped: it neither polls nor reports
}

func (r *mRobot) seen(now time.Time) { r.lastSeen = &now }

// otherCanTake: the time-out rule of the draw. Some robot other than self
// that has not timed out on tk is busy, or idle and seen within
// IdleLiveness.
func (m *model) otherCanTake(tk *mTask, self int) bool {
	since := m.clk.Now().Add(-dispatch.IdleLiveness)
	for _, o := range m.robots {
		if o.id == self || tk.timedOut[o.id] {
			continue
		}
		if o.state == robot.StateBusy || (o.state == robot.StateIdle && o.lastSeen != nil && !o.lastSeen.Before(since)) {
			return true
		}
	}
	return false
}

type pastAttempt struct{ task, robot, number int }

type model struct {
	db         *store.DB
	clk        *sdktest.Clock
	q          *dispatch.Queue
	seed       uint64
	cust       int
	proc       string
	poolID     int
	fair       pool.Fairness
	retries    int
	maxDur     time.Duration
	maxWait    time.Duration
	tasks      map[int]*mTask
	batches    []int        // in submission order
	dispatched map[int]bool // batches that ever had a task dispatched
	robots     []*mRobot
	past       []pastAttempt
	delayed    int // task.delayed events expected
}

var modelSeq atomic.Int64

func newModel(t *rapid.T, db *store.DB, clk *sdktest.Clock) *model {
	ctx := sys()
	n := modelSeq.Add(1)
	m := &model{
		db: db, clk: clk, seed: uint64(n),
		fair:       rapid.SampledFrom([]pool.Fairness{pool.FairnessFairShare, pool.FairnessWeighted, pool.FairnessOldestServed}).Draw(t, "fairness"),
		retries:    rapid.IntRange(0, 3).Draw(t, "retries"),
		maxDur:     time.Minute,
		maxWait:    10 * time.Minute,
		tasks:      map[int]*mTask{},
		dispatched: map[int]bool{},
	}
	m.q = dispatch.New(db.Client, dispatch.Options{Now: clk.Now, Seed: m.seed})
	// The database is shared by the runs of one Check: expire and sweep
	// what earlier runs left running, so this run's sweeps see only its own.
	clk.Add(time.Hour)
	if _, err := m.q.Sweep(context.Background()); err != nil {
		t.Fatalf("sweep leftovers: %v", err)
	}
	for {
		n, err := m.q.Expire(context.Background())
		if err != nil {
			t.Fatalf("expire leftovers: %v", err)
		}
		if n == 0 {
			break
		}
	}
	m.cust = db.Customer.Create().SetName(fmt.Sprintf("c%d", n)).SaveX(ctx).ID
	p := db.Pool.Create().SetName(fmt.Sprintf("p%d", n)).SetProvider("local").SetMax(10).SetFairness(m.fair).SaveX(ctx)
	m.poolID = p.ID
	m.proc = fmt.Sprintf("proc%d", n)
	db.Process.Create().SetName(m.proc).SetPoolID(p.ID).SetRunner("echo").
		SetMaxDurationSeconds(int(m.maxDur / time.Second)).SetRetries(m.retries).
		SetMaxWaitSeconds(int(m.maxWait / time.Second)).SaveX(ctx)
	for i := range rapid.IntRange(2, 4).Draw(t, "robots") {
		r := db.Robot.Create().SetName(fmt.Sprintf("m%d-r%d", n, i)).SetPoolID(p.ID).SetState(robot.StateIdle).SaveX(ctx)
		m.robots = append(m.robots, &mRobot{id: r.ID, state: robot.StateIdle})
	}
	return m
}

func (m *model) robotWhere(t *rapid.T, label string, ok func(*mRobot) bool) *mRobot {
	var c []*mRobot
	for _, r := range m.robots {
		if ok(r) {
			c = append(c, r)
		}
	}
	if len(c) == 0 {
		t.Skip("no robot for " + label)
	}
	return rapid.SampledFrom(c).Draw(t, label)
}

func (m *model) finish(tk *mTask, st task.State, reason task.FailureReason) {
	tk.state, tk.reason, tk.robot = st, reason, 0
	now := m.clk.Now()
	tk.finishedAt = &now
}

func (m *model) actions() map[string]func(*rapid.T) {
	ctx := context.Background()
	return map[string]func(*rapid.T){
		"": m.check,
		"submit": func(t *rapid.T) {
			n := rapid.IntRange(1, 4).Draw(t, "tasks")
			in := make([]json.RawMessage, n)
			for i := range in {
				in[i] = json.RawMessage(`{}`)
			}
			b, err := m.q.Submit(ctx, dispatch.SubmitRequest{CustomerID: m.cust, Process: m.proc, Inputs: in})
			if err != nil {
				t.Fatalf("submit: %v", err)
			}
			m.batches = append(m.batches, b.ID)
			for _, tk := range m.db.Task.Query().Where(task.BatchID(b.ID)).AllX(sys()) {
				m.tasks[tk.ID] = &mTask{id: tk.ID, batch: b.ID, state: task.StatePending, timedOut: map[int]bool{}, submitted: m.clk.Now()}
			}
		},
		"poll": func(t *rapid.T) {
			r := m.robotWhere(t, "poller", func(r *mRobot) bool { return !r.dead && r.task == 0 })
			before := m.batchRows()
			c, err := m.q.ClaimTask(ctx, r.id)
			if err != nil {
				t.Fatalf("claim by robot %d: %v", r.id, err)
			}
			// A timed-out robot retries a task only when no other robot
			// could take it (the states before this poll decide).
			eligible := map[int]bool{}
			for _, tk := range m.tasks {
				if tk.state == task.StatePending && (!tk.timedOut[r.id] || !m.otherCanTake(tk, r.id)) {
					eligible[tk.id] = true
				}
			}
			want := m.fairShareChoice(before, eligible)
			r.seen(m.clk.Now())
			if c == nil {
				if len(eligible) > 0 {
					t.Fatalf("robot %d got nothing with %d eligible pending tasks", r.id, len(eligible))
				}
				r.state = robot.StateIdle
				return
			}
			tk := m.tasks[c.Task.ID]
			if tk == nil || !eligible[tk.id] {
				t.Fatalf("robot %d got task %d, not an eligible pending task of its pool", r.id, c.Task.ID)
			}
			// Stack A first: the oldest batch never served, when there is
			// one with pending tasks (a batch can also finish unserved,
			// when its tasks expire).
			for _, b := range m.batches {
				if m.dispatched[b] || !m.hasPending(b) {
					continue
				}
				if tk.batch != b {
					t.Fatalf("claim served batch %d while batch %d was the bottom of stack A", tk.batch, b)
				}
				break
			}
			if want != 0 && tk.batch != want {
				t.Fatalf("fair_share: robot %d served batch %d, the policy chooses batch %d from %+v", r.id, tk.batch, want, before)
			}
			tk.attempt++
			if c.Attempt.Number != tk.attempt || c.Task.AttemptNo != tk.attempt {
				t.Fatalf("task %d: attempt %d, model %d", tk.id, c.Attempt.Number, tk.attempt)
			}
			tk.state, tk.robot, tk.deadline = task.StateRunning, r.id, m.clk.Now().Add(m.maxDur)
			if !c.Deadline.Equal(tk.deadline) {
				t.Fatalf("deadline %v, want %v", c.Deadline, tk.deadline)
			}
			m.dispatched[tk.batch] = true
			m.past = append(m.past, pastAttempt{tk.id, r.id, tk.attempt})
			r.state, r.task, r.att = robot.StateBusy, tk.id, tk.attempt
		},
		"report": func(t *rapid.T) {
			r := m.robotWhere(t, "reporter", func(r *mRobot) bool { return !r.dead && r.task != 0 })
			tk := m.tasks[r.task]
			kind := rapid.SampledFrom([]string{"success", "execution", "data"}).Draw(t, "outcome")
			res := dispatch.Result{Success: kind == "success"}
			if !res.Success {
				res.Class, res.Message = robotwire.ErrorClass(strings.ToUpper(kind)), "boom"
			}
			got, err := m.q.Report(ctx, r.id, tk.id, r.att, res)
			live := tk.state == task.StateRunning && tk.robot == r.id && tk.attempt == r.att
			r.task = 0
			if !live {
				// The sweeper abandoned it before the robot reported.
				if !errors.Is(err, dispatch.ErrStaleAttempt) {
					t.Fatalf("late report for task %d: %v, want ErrStaleAttempt", tk.id, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("report task %d: %v", tk.id, err)
			}
			switch kind {
			case "success":
				m.finish(tk, task.StateSucceeded, "")
			case "data":
				m.finish(tk, task.StateFailed, task.FailureReasonDataError)
			default:
				tk.execFailed++
				if tk.execFailed > m.retries {
					m.finish(tk, task.StateFailed, task.FailureReasonRetriesExhausted)
				} else {
					tk.state, tk.robot = task.StatePending, 0
				}
			}
			if got.State != tk.state {
				t.Fatalf("report returned %s, model %s", got.State, tk.state)
			}
			if r.state == robot.StateBusy {
				r.state = robot.StateIdle
				r.seen(m.clk.Now())
			}
		},
		"staleReport": func(t *rapid.T) {
			var stale []pastAttempt
			for _, a := range m.past {
				tk := m.tasks[a.task]
				if tk.state != task.StateRunning || tk.attempt != a.number || tk.robot != a.robot {
					stale = append(stale, a)
				}
			}
			if len(stale) == 0 {
				t.Skip("no stale attempt")
			}
			a := rapid.SampledFrom(stale).Draw(t, "stale")
			ok := rapid.Bool().Draw(t, "successful")
			res := dispatch.Result{Success: ok, Class: robotwire.ErrorExecution, Message: "late"}
			if _, err := m.q.Report(ctx, a.robot, a.task, a.number, res); !errors.Is(err, dispatch.ErrStaleAttempt) {
				t.Fatalf("stale report task %d attempt %d: %v, want ErrStaleAttempt", a.task, a.number, err)
			}
			if _, err := m.q.Heartbeat(ctx, a.robot, a.task, a.number); !errors.Is(err, dispatch.ErrStaleAttempt) {
				t.Fatalf("stale heartbeat task %d attempt %d: %v, want ErrStaleAttempt", a.task, a.number, err)
			}
		},
		"heartbeat": func(t *rapid.T) {
			r := m.robotWhere(t, "beater", func(r *mRobot) bool { return !r.dead && r.task != 0 })
			tk := m.tasks[r.task]
			d, err := m.q.Heartbeat(ctx, r.id, tk.id, r.att)
			if tk.state != task.StateRunning || tk.robot != r.id || tk.attempt != r.att {
				if !errors.Is(err, dispatch.ErrStaleAttempt) {
					t.Fatalf("heartbeat on an abandoned attempt: %v", err)
				}
				r.task = 0
				return
			}
			if err != nil {
				t.Fatalf("heartbeat: %v", err)
			}
			tk.deadline = m.clk.Now().Add(m.maxDur)
			r.seen(m.clk.Now())
			if !d.Equal(tk.deadline) {
				t.Fatalf("heartbeat deadline %v, want %v", d, tk.deadline)
			}
		},
		"advance": func(t *rapid.T) {
			m.clk.Add(time.Duration(rapid.IntRange(1, 90).Draw(t, "seconds")) * time.Second)
		},
		"sweep": m.sweep,
		// Attempts past their deadline, often: the time-out rules (another
		// robot first, the same one when none could take it, the bound in
		// total) need several time-outs of one task to show.
		"expire": func(t *rapid.T) {
			m.clk.Add(m.maxDur + time.Second)
			m.sweep(t)
		},
		"robotDies": func(t *rapid.T) {
			r := m.robotWhere(t, "victim", func(r *mRobot) bool { return !r.dead })
			r.dead = true
		},
		"robotRestarts": func(t *rapid.T) {
			r := m.robotWhere(t, "revived", func(r *mRobot) bool { return r.dead })
			r.dead, r.task = false, 0 // a fresh agent knows nothing of its old attempt
		},
		"daemonRestarts": func(t *rapid.T) {
			m.seed += 1000
			m.q = dispatch.New(m.db.Client, dispatch.Options{Now: m.clk.Now, Seed: m.seed})
		},
	}
}

// sweep runs the sweeper and applies the time-outs to the model.
func (m *model) sweep(t *rapid.T) {
	n, err := m.q.Sweep(context.Background())
	if err != nil {
		t.Fatalf("sweep: %v", err)
	}
	want := 0
	now := m.clk.Now()
	ids := make([]int, 0, len(m.tasks))
	for id := range m.tasks {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		tk := m.tasks[id]
		if tk.state != task.StateRunning || !tk.deadline.Before(now) {
			continue
		}
		want++
		m.delayed++
		tk.timeouts++
		tk.timedOut[tk.robot] = true
		for _, r := range m.robots {
			if r.id == tk.robot && (r.state == robot.StateBusy || r.state == robot.StateIdle) {
				r.state = robot.StateSuspect
			}
		}
		if tk.timeouts >= dispatch.MaxTimeoutRobots {
			m.finish(tk, task.StateFailed, task.FailureReasonTimeoutExhausted)
		} else {
			tk.state, tk.robot = task.StatePending, 0
		}
	}
	if n != want {
		t.Fatalf("sweep abandoned %d attempts, model %d", n, want)
	}
	// Then the tasks still waiting max_wait after submission expire (the
	// count includes earlier runs' pools: only this pool's tasks are
	// compared, by check).
	if _, err := m.q.Expire(context.Background()); err != nil {
		t.Fatalf("expire: %v", err)
	}
	for _, id := range ids {
		tk := m.tasks[id]
		if tk.state == task.StatePending && tk.submitted.Before(now.Add(-m.maxWait)) {
			m.finish(tk, task.StateFailed, task.FailureReasonExpired)
		}
	}
}

// check compares the database with the model and checks the invariants.
func (m *model) check(t *rapid.T) {
	ctx := sys()
	tasks := m.db.Task.Query().Where(task.PoolID(m.poolID)).AllX(ctx)
	if len(tasks) != len(m.tasks) {
		t.Fatalf("%d tasks in the database, model %d (lost or invented)", len(tasks), len(m.tasks))
	}
	ids := make([]int, len(tasks))
	for i, tk := range tasks {
		ids[i] = tk.ID
	}
	byTask := map[int][]*ent.Attempt{}
	for _, a := range m.db.Attempt.Query().Where(attempt.TaskIDIn(ids...)).Order(attempt.ByNumber()).AllX(ctx) {
		byTask[a.TaskID] = append(byTask[a.TaskID], a)
	}
	type counts struct{ pending, running, succeeded, failed int }
	perBatch := map[int]*counts{}
	totalTimeouts := 0
	for _, tk := range tasks {
		mt := m.tasks[tk.ID]
		if mt == nil {
			t.Fatalf("task %d not in the model", tk.ID)
			return
		}
		if tk.State != mt.state || tk.AttemptNo != mt.attempt || tk.ExecutionsFailed != mt.execFailed || tk.Timeouts != mt.timeouts {
			t.Fatalf("task %d: db state=%s attempt=%d execFailed=%d timeouts=%d; model %s %d %d %d",
				tk.ID, tk.State, tk.AttemptNo, tk.ExecutionsFailed, tk.Timeouts, mt.state, mt.attempt, mt.execFailed, mt.timeouts)
		}
		if mt.reason != "" && (tk.FailureReason == nil || *tk.FailureReason != mt.reason) {
			t.Fatalf("task %d: failure reason %v, model %s", tk.ID, tk.FailureReason, mt.reason)
		}
		if mt.finishedAt != nil && (tk.FinishedAt == nil || !tk.FinishedAt.Equal(*mt.finishedAt)) {
			t.Fatalf("task %d: finished at %v, model %v (a finished task changed)", tk.ID, tk.FinishedAt, mt.finishedAt)
		}
		totalTimeouts += tk.Timeouts
		// Attempts: numbered 1..n, at most one live, and it is the latest.
		as := byTask[tk.ID]
		if len(as) != tk.AttemptNo {
			t.Fatalf("task %d: %d attempts for attempt_no %d", tk.ID, len(as), tk.AttemptNo)
		}
		live, data, abandoned, timeoutRobots := 0, 0, 0, map[int]bool{}
		for i, a := range as {
			if a.Number != i+1 {
				t.Fatalf("task %d: attempt numbers %v", tk.ID, as)
			}
			switch a.State {
			case attempt.StateRunning:
				live++
				if i != len(as)-1 || tk.State != task.StateRunning || a.RobotID != mt.robot {
					t.Fatalf("task %d: live attempt %d is not its current one", tk.ID, a.Number)
				}
			case attempt.StateAbandoned:
				abandoned++
				timeoutRobots[a.RobotID] = true
			case attempt.StateFailed:
				if a.ErrorClass == nil {
					t.Fatalf("task %d attempt %d failed without an error class", tk.ID, a.Number)
				}
				if *a.ErrorClass == attempt.ErrorClassData {
					data++
					if i != len(as)-1 || tk.State != task.StateFailed {
						t.Fatalf("task %d: a data error was retried", tk.ID)
					}
				}
			}
		}
		if live > 1 || (live == 1) != (tk.State == task.StateRunning) {
			t.Fatalf("task %d (%s): %d live attempts", tk.ID, tk.State, live)
		}
		if data > 1 || tk.ExecutionsFailed > m.retries+1 || tk.Timeouts > dispatch.MaxTimeoutRobots || abandoned != tk.Timeouts ||
			!equalSets(timeoutRobots, mt.timedOut) {
			t.Fatalf("task %d: %d data errors, %d execution failures (retries %d), %d time-outs on %d robots",
				tk.ID, data, tk.ExecutionsFailed, m.retries, tk.Timeouts, len(timeoutRobots))
		}
		c := perBatch[tk.BatchID]
		if c == nil {
			c = &counts{}
			perBatch[tk.BatchID] = c
		}
		switch tk.State {
		case task.StatePending:
			c.pending++
		case task.StateRunning:
			c.running++
		case task.StateSucceeded:
			c.succeeded++
		case task.StateFailed:
			c.failed++
		}
	}
	for _, b := range m.db.Batch.Query().Where(batch.PoolID(m.poolID)).AllX(ctx) {
		c := perBatch[b.ID]
		if c == nil || b.Pending != c.pending || b.Running != c.running || b.Succeeded != c.succeeded || b.Failed != c.failed {
			t.Fatalf("batch %d counters %d/%d/%d/%d, tasks say %+v", b.ID, b.Pending, b.Running, b.Succeeded, b.Failed, c)
		}
		want := batch.StackServing
		switch {
		case c.pending+c.running == 0:
			// Finished, possibly without a dispatch: every task expired.
			want = batch.StackFinished
		case !m.dispatched[b.ID]:
			want = batch.StackNew
		}
		if b.Stack != want {
			t.Fatalf("batch %d on stack %s, want %s", b.ID, b.Stack, want)
		}
	}
	for _, r := range m.robots {
		if st := m.db.Robot.GetX(ctx, r.id).State; st != r.state {
			t.Fatalf("robot %d is %s, model %s", r.id, st, r.state)
		}
	}
	if n := m.db.Event.Query().Where(event.PoolID(m.poolID), event.Type("task.delayed")).CountX(ctx); n != m.delayed || n != totalTimeouts {
		t.Fatalf("%d task.delayed events, %d time-outs, model %d", n, totalTimeouts, m.delayed)
	}
}

// TestModel runs random sequences of submissions, polls, results, stale
// reports, heartbeats, clock jumps, sweeps, robot deaths and daemon
// restarts against the reference model, on both databases.
func TestModel(t *testing.T) {
	if testing.Short() {
		t.Skip("model test: skipped in -short mode")
	}
	// 100 runs of about 30 steps per database by default, 25 under the race
	// detector; -rapid.checks=N (or RAPID_CHECKS) overrides both.
	explicit := os.Getenv("RAPID_CHECKS") != ""
	flag.Visit(func(f *flag.Flag) { explicit = explicit || f.Name == "rapid.checks" })
	if f := flag.Lookup("rapid.checks"); f != nil && !explicit && raceEnabled {
		if err := f.Value.Set("25"); err != nil {
			t.Fatal(err)
		}
	}
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		clk := sdktest.NewClock(time.Date(2026, 11, 1, 8, 0, 0, 0, time.UTC))
		rapid.Check(t, func(rt *rapid.T) {
			m := newModel(rt, db, clk)
			rt.Repeat(m.actions())
		})
	})
}

func equalSets(a, b map[int]bool) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if !b[k] {
			return false
		}
	}
	return true
}

// batchRows reads the pool's active batches as a claim sees them, for
// fairShareChoice.
func (m *model) batchRows() []*ent.Batch {
	return m.db.Batch.Query().
		Where(batch.PoolID(m.poolID), batch.StackIn(batch.StackNew, batch.StackServing), batch.PendingGT(0)).
		AllX(sys())
}

// fairShareChoice is the batch a claim must serve under fair_share, given
// the batches before it and the tasks the robot may take: the policy's
// pick, again without each batch that holds none of them (the claim's
// draw finds nothing there and chooses again). 0 when the pool's fairness
// is another, whose choice the model does not predict beyond stack A.
func (m *model) fairShareChoice(rows []*ent.Batch, eligible map[int]bool) int {
	if m.fair != pool.FairnessFairShare {
		return 0
	}
	cands := make([]policy.Candidate, len(rows))
	for i, b := range rows {
		cands[i] = policy.Candidate{ID: b.ID, Stack: policy.StackB, Submitted: b.CreatedAt, Pending: b.Pending, Running: b.Running}
		if b.Stack == batch.StackNew {
			cands[i].Stack = policy.StackA
		}
		if b.LastServedAt != nil {
			cands[i].LastServed = *b.LastServedAt
		}
	}
	for {
		i, ok := policy.Pick(policy.FairShare, cands, nil)
		if !ok {
			return 0
		}
		for _, tk := range m.tasks {
			if tk.batch == cands[i].ID && eligible[tk.id] {
				return cands[i].ID
			}
		}
		cands[i].Pending = 0
	}
}

func (m *model) hasPending(batchID int) bool {
	for _, tk := range m.tasks {
		if tk.batch == batchID && tk.state == task.StatePending {
			return true
		}
	}
	return false
}
