package dispatch_test

import (
	"context"
	stdsql "database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"entgo.io/ent/dialect"
	entsql "entgo.io/ent/dialect/sql"

	"github.com/rpacloud/rpacloud/core/dispatch"
	"github.com/rpacloud/rpacloud/core/robotwire"
	"github.com/rpacloud/rpacloud/core/store"
	"github.com/rpacloud/rpacloud/core/store/storetest"
	"github.com/rpacloud/rpacloud/ent"
	"github.com/rpacloud/rpacloud/ent/batch"
	"github.com/rpacloud/rpacloud/ent/event"
	"github.com/rpacloud/rpacloud/ent/robot"
	"github.com/rpacloud/rpacloud/ent/task"
)

// countingDriver counts the round trips that can commit: transactions
// begun and statements run outside a transaction.
type countingDriver struct {
	*entsql.Driver
	writes atomic.Int64
}

func (d *countingDriver) Tx(ctx context.Context) (dialect.Tx, error) {
	d.writes.Add(1)
	return d.Driver.Tx(ctx)
}

func (d *countingDriver) Exec(ctx context.Context, query string, args, v any) error {
	d.writes.Add(1)
	return d.Driver.Exec(ctx, query, args, v)
}

func (d *countingDriver) Query(ctx context.Context, query string, args, v any) error {
	d.writes.Add(1)
	return d.Driver.Query(ctx, query, args, v)
}

func (d *countingDriver) ExecContext(ctx context.Context, query string, args ...any) (stdsql.Result, error) {
	d.writes.Add(1)
	return d.Driver.ExecContext(ctx, query, args...)
}

func (d *countingDriver) QueryContext(ctx context.Context, query string, args ...any) (*stdsql.Rows, error) {
	d.writes.Add(1)
	return d.Driver.QueryContext(ctx, query, args...)
}

// counted is db with a client whose round trips are counted.
func counted(db *store.DB) (*store.DB, *countingDriver) {
	dia := dialect.SQLite
	if db.Driver == store.Postgres {
		dia = dialect.Postgres
	}
	d := &countingDriver{Driver: entsql.OpenDB(dia, db.SQL())}
	return &store.DB{Client: ent.NewClient(ent.Driver(d)), Driver: db.Driver}, d
}

// answerClass names an answer by the error it wraps.
func answerClass(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, dispatch.ErrStaleAttempt):
		return "stale"
	case errors.Is(err, dispatch.ErrStopRequested):
		return "stop"
	default:
		return "error: " + err.Error()
	}
}

// groupOutcome is what a scenario ends with, named by role (batch and rank
// of the robot's task in it), never by ids, so that two runs on two
// databases compare.
type groupOutcome struct {
	Answers map[string][]string // role -> sorted answer classes (and deadlines)
	Tasks   map[string]string   // role -> state, reason, executions failed
	Batches map[string]string   // label -> counters and stack
	Robots  map[string]string   // role -> state
	Events  map[string]int      // type -> count
}

// groupScenario runs, on a fresh database, 38 claimed tasks in two batches
// ("a": 8 tasks all reported, finishing it; "b": 30 tasks, stopped ones,
// failures, stale requests, a duplicate report) through heartbeats and
// reports, concurrently through Queue (group commit) or one by one through
// the ent path, and returns the outcome.
func groupScenario(t *testing.T, db *store.DB, grouped bool) groupOutcome {
	t.Helper()
	ctx := context.Background()
	f := newFixture(t, db, 40, 1)
	f.q = dispatch.New(db.Client, dispatch.Options{Bus: f.bus, Now: f.clock.Now, Seed: 42})
	bA, bB := f.submit(t, 8), f.submit(t, 30)
	label := map[int]string{bA.ID: "a", bB.ID: "b"}
	type held struct {
		robot int
		c     *dispatch.Claim
		role  string
		rank  int
	}
	var hs []held
	rank := map[string]int{}
	for i := range 38 {
		c := f.claim(t, i)
		if c == nil {
			t.Fatalf("robot %d claimed nothing", i)
		}
		l := label[c.Task.BatchID]
		hs = append(hs, held{robot: f.robots[i].ID, c: c, role: fmt.Sprintf("%s%d", l, rank[l]), rank: rank[l]})
		rank[l]++
	}
	if rank["a"] != 8 || rank["b"] != 30 {
		t.Fatalf("claims per batch: %v", rank)
	}
	kind := func(h held) int {
		if h.role[0] == 'a' {
			return -1
		}
		return h.rank % 6
	}
	for _, h := range hs {
		if k := kind(h); k == 0 || k == 1 {
			if _, err := f.q.StopTask(sys(), h.c.Task.ID, "ops", "test"); err != nil {
				t.Fatalf("stop %s: %v", h.role, err)
			}
		}
	}
	heartbeat, report := f.q.Heartbeat, f.q.Report
	if !grouped {
		heartbeat, report = f.q.HeartbeatOneByOne, f.q.ReportOneByOne
	}
	var mu sync.Mutex
	out := groupOutcome{Answers: map[string][]string{}, Tasks: map[string]string{}, Batches: map[string]string{}, Robots: map[string]string{}, Events: map[string]int{}}
	answer := func(role string, s string) {
		mu.Lock()
		defer mu.Unlock()
		out.Answers[role] = append(out.Answers[role], s)
	}
	// run runs the calls at once (grouped) or one after another.
	run := func(calls []func()) {
		if !grouped {
			for _, c := range calls {
				c()
			}
			return
		}
		var wg sync.WaitGroup
		start := make(chan struct{})
		for _, c := range calls {
			wg.Go(func() { <-start; c() })
		}
		close(start)
		wg.Wait()
	}
	now := f.clock.Now()
	var beats []func()
	for _, h := range hs {
		n := h.c.Attempt.Number
		if kind(h) == 4 {
			n++ // names an attempt that does not exist
		}
		beats = append(beats, func() {
			d, err := heartbeat(ctx, h.robot, h.c.Task.ID, n)
			answer("hb "+h.role, fmt.Sprintf("%s %s", answerClass(err), d.Sub(now)))
		})
	}
	beats = append(beats, func() { // an idle robot naming another's task
		_, err := heartbeat(ctx, f.robots[38].ID, hs[0].c.Task.ID, hs[0].c.Attempt.Number)
		answer("hb idle", answerClass(err))
	})
	run(beats)
	var reports []func()
	for _, h := range hs {
		n := h.c.Attempt.Number
		res := dispatch.Result{Success: true, Output: json.RawMessage(`{"ok":1}`)}
		switch kind(h) {
		case 0, 2:
			res = dispatch.Result{Class: robotwire.ErrorExecution, Message: "portal down"}
		case 3:
			res = dispatch.Result{Class: robotwire.ErrorData, Message: "no such id"}
		case 4:
			n++
		}
		times := 1
		if h.role == "a0" || h.role == "b5" {
			times = 2 // a duplicate: one records it, the other is stale
		}
		for range times {
			reports = append(reports, func() {
				tk, err := report(ctx, h.robot, h.c.Task.ID, n, res)
				s := answerClass(err)
				if tk != nil {
					s += " " + string(tk.State)
				}
				answer("report "+h.role, s)
			})
		}
	}
	run(reports)
	for _, a := range out.Answers {
		sort.Strings(a)
	}
	for _, h := range hs {
		tk := db.Task.GetX(sys(), h.c.Task.ID)
		reason := ""
		if tk.FailureReason != nil {
			reason = string(*tk.FailureReason)
		}
		out.Tasks[h.role] = fmt.Sprintf("%s %s %d %q", tk.State, reason, tk.ExecutionsFailed, tk.Output)
		out.Robots[h.role] = string(db.Robot.GetX(sys(), h.robot).State)
	}
	for _, b := range db.Batch.Query().AllX(sys()) {
		out.Batches[label[b.ID]] = fmt.Sprintf("pending %d running %d succeeded %d failed %d cancelled %d stack %s finished %v",
			b.Pending, b.Running, b.Succeeded, b.Failed, b.Cancelled, b.Stack, b.FinishedAt != nil)
	}
	for _, e := range db.Event.Query().Where(event.TypeNEQ("")).AllX(sys()) {
		out.Events[e.Type]++
	}
	return out
}

// TestGroupCommitSameAsOneByOne: heartbeats and reports written together
// (group commit) give every caller the answer the one-by-one ent path
// gives, and leave the database in the same state.
func TestGroupCommitSameAsOneByOne(t *testing.T) {
	for _, tc := range []struct {
		name string
		open func(testing.TB) *store.DB
	}{{"sqlite", storetest.SQLite}, {"postgres", storetest.Postgres}} {
		t.Run(tc.name, func(t *testing.T) {
			want := groupScenario(t, tc.open(t), false)
			got := groupScenario(t, tc.open(t), true)
			for _, c := range []struct {
				what      string
				want, got any
			}{{"answers", want.Answers, got.Answers}, {"tasks", want.Tasks, got.Tasks}, {"batches", want.Batches, got.Batches},
				{"robots", want.Robots, got.Robots}, {"events", want.Events, got.Events}} {
				if fmt.Sprint(c.want) != fmt.Sprint(c.got) {
					t.Errorf("%s differ:\none by one: %v\ngrouped:    %v", c.what, c.want, c.got)
				}
			}
			// The scenario covers what it says.
			if a := want.Answers["report a0"]; !slices.Equal(a, []string{"ok succeeded", "stale"}) {
				t.Errorf("duplicate report answers %v", a)
			}
			if !strings.Contains(want.Batches["a"], "stack finished") || want.Events["batch.finished"] != 1 {
				t.Errorf("batch a not finished once: %s, events %v", want.Batches["a"], want.Events)
			}
			if a := want.Answers["hb b0"]; len(a) != 1 || !strings.Contains(a[0], "stop") {
				t.Errorf("stopped attempt's heartbeat answered %v", a)
			}
			if a := want.Answers["hb b4"]; len(a) != 1 || !strings.Contains(a[0], "stale") {
				t.Errorf("stale heartbeat answered %v", a)
			}
		})
	}
}

// TestGroupCommitForms: 99 heartbeats (both databases) and 99 reports
// (SQLite) arriving together are written in far fewer than 99
// transactions or statements.
func TestGroupCommitForms(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		cdb, counter := counted(db)
		f := newFixture(t, cdb, 100, 1)
		f.submit(t, 100)
		var cs []*dispatch.Claim
		for i := range 100 {
			c := f.claim(t, i)
			if c == nil {
				t.Fatalf("robot %d claimed nothing", i)
			}
			cs = append(cs, c)
		}
		for i, c := range cs { // learn the dialect and warm the caches
			if i == 0 {
				if _, err := f.q.Report(context.Background(), f.robots[i].ID, c.Task.ID, c.Attempt.Number, dispatch.Result{Success: true}); err != nil {
					t.Fatal(err)
				}
			}
		}
		// together runs fn for robots 1..99 at once and returns the round
		// trips they took.
		together := func(what string, fn func(i int, c *dispatch.Claim) error) int64 {
			counter.writes.Store(0)
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i, c := range cs[1:] {
				wg.Go(func() {
					<-start
					if err := fn(i+1, c); err != nil {
						t.Errorf("%s: %v", what, err)
					}
				})
			}
			close(start)
			wg.Wait()
			n := counter.writes.Load()
			t.Logf("99 concurrent %s: %d transactions and statements", what, n)
			if n > 30 {
				t.Errorf("99 concurrent %s took %d transactions and statements; want groups (far fewer)", what, n)
			}
			return n
		}
		together("heartbeats", func(i int, c *dispatch.Claim) error {
			_, err := f.q.Heartbeat(context.Background(), f.robots[i].ID, c.Task.ID, c.Attempt.Number)
			return err
		})
		report := func(i int, c *dispatch.Claim) error {
			_, err := f.q.Report(context.Background(), f.robots[i].ID, c.Task.ID, c.Attempt.Number, dispatch.Result{Success: true})
			return err
		}
		if db.Driver == store.SQLite {
			together("reports", report)
		} else {
			// Reports are not grouped on PostgreSQL (see Queue.Report).
			for i, c := range cs[1:] {
				if err := report(i+1, c); err != nil {
					t.Fatal(err)
				}
			}
		}
		if got := db.Task.Query().Where(task.StateEQ(task.StateSucceeded)).CountX(sys()); got != 100 {
			t.Errorf("%d tasks succeeded", got)
		}
		b := db.Batch.Query().OnlyX(sys())
		if b.Stack != batch.StackFinished || b.Succeeded != 100 || b.Running != 0 {
			t.Errorf("batch: %+v", b)
		}
		if n := db.Event.Query().Where(event.Type("batch.finished")).CountX(sys()); n != 1 {
			t.Errorf("%d batch.finished events", n)
		}
		if n := db.Robot.Query().Where(robot.StateEQ(robot.StateIdle)).CountX(sys()); n != 100 {
			t.Errorf("%d robots idle after reporting, want 100", n)
		}
	})
}

// TestGroupCommitCancelled: a caller whose context ends before its request
// is written gets the context's error and its request is not written.
func TestGroupCommitCancelled(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db, 1, 1)
		f.submit(t, 1)
		c := f.claim(t, 0)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := f.q.Report(ctx, f.robots[0].ID, c.Task.ID, c.Attempt.Number, dispatch.Result{Success: true})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("report with a cancelled context: %v", err)
		}
		if st := db.Task.GetX(sys(), c.Task.ID).State; st != task.StateRunning {
			t.Fatalf("task %s after a cancelled report", st)
		}
		// The queue still serves others: the grouper's slot was freed.
		dctx, dcancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer dcancel()
		if _, err := f.q.Report(dctx, f.robots[0].ID, c.Task.ID, c.Attempt.Number, dispatch.Result{Success: true}); err != nil {
			t.Fatal(err)
		}
	})
}
