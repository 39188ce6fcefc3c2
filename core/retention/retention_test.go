package retention_test

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"testing"
	"time"

	"entgo.io/ent/dialect"
	"go.uber.org/goleak"

	"github.com/rpacloud/rpacloud/core/retention"
	"github.com/rpacloud/rpacloud/core/retention/expire"
	"github.com/rpacloud/rpacloud/core/store"
	"github.com/rpacloud/rpacloud/core/store/storetest"
	"github.com/rpacloud/rpacloud/ent"
	"github.com/rpacloud/rpacloud/ent/anomaly"
	"github.com/rpacloud/rpacloud/ent/attempt"
	"github.com/rpacloud/rpacloud/ent/auditentry"
	"github.com/rpacloud/rpacloud/ent/batch"
	"github.com/rpacloud/rpacloud/ent/privacy"
	"github.com/rpacloud/rpacloud/ent/task"
	"github.com/rpacloud/rpacloud/plugins/sdk/sdktest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func sys() context.Context { return privacy.DecisionContext(context.Background(), privacy.Allow) }

const day = 24 * time.Hour

var policy = expire.Policy{Events: 30 * day, Attempts: 60 * day, FinishedTasks: 90 * day, Anomalies: 90 * day, Audit: 365 * day}

// world is every kind of row at every interesting age, with what the pure
// rule says of each before pruning.
type world struct {
	now      time.Time
	events   map[int]bool // id -> expired
	audit    map[int]bool
	anomaly  map[int]bool
	tasks    map[int]bool
	attempts map[int]bool
	batches  map[int]bool
}

func dialectOf(db *store.DB) string {
	if db.Driver == store.Postgres {
		return dialect.Postgres
	}
	return dialect.SQLite
}

// build makes rows for two customers: events, audit entries and
// anomalies at ages around their cutoffs, and batches in every stack with
// tasks in every state and attempts in every state, finished long ago,
// just past the cutoff, just inside it, recently, or not at all. Rows are
// inserted in the order they would have been made (ids grow with their
// time of making), as the pruner's frontier expects of a real database.
func build(t *testing.T, db *store.DB, now time.Time) *world {
	t.Helper()
	ctx := sys()
	w := &world{now: now, events: map[int]bool{}, audit: map[int]bool{}, anomaly: map[int]bool{}, tasks: map[int]bool{}, attempts: map[int]bool{}, batches: map[int]bool{}}
	pl := db.Pool.Create().SetName("p").SetProvider("local").SetMax(2).SaveX(ctx)
	proc := db.Process.Create().SetName("echo").SetPoolID(pl.ID).SetRunner("echo").SetMaxDurationSeconds(60).SetRetries(3).SaveX(ctx)
	rb := db.Robot.Create().SetName("r0").SetPoolID(pl.ID).SaveX(ctx)
	ages := func(keep time.Duration) []time.Duration {
		return []time.Duration{3 * 365 * day, keep + time.Minute, keep - time.Minute, day, 0}
	}
	at := func(age time.Duration) *time.Time { x := now.Add(-age); return &x }
	custs := []*ent.Customer{db.Customer.Create().SetName("acme").SaveX(ctx), db.Customer.Create().SetName("globex").SaveX(ctx)}
	// oldestFirst orders specs by age, oldest first, customers interleaved.
	type spec struct {
		cust int
		age  time.Duration
		i    int
	}
	oldestFirst := func(ages []time.Duration, per int) []spec {
		var out []spec
		for c := range custs {
			for _, a := range ages {
				for i := range per {
					out = append(out, spec{c, a, i})
				}
			}
		}
		slices.SortStableFunc(out, func(x, y spec) int { return cmp.Compare(y.age, x.age) })
		return out
	}
	for _, s := range oldestFirst(ages(policy.Events), 1) {
		e := db.Event.Create().SetType("task.succeeded").SetAt(*at(s.age)).SetCustomerID(custs[s.cust].ID).SaveX(ctx)
		w.events[e.ID] = expire.EventExpired(policy, now, expire.Event{At: e.At})
	}
	for _, s := range oldestFirst(ages(policy.Audit), 1) {
		a := db.AuditEntry.Create().SetAt(*at(s.age)).SetActor("admin").SetAction("submitBatch").SetOutcome(auditentry.OutcomeOk).SetScopeCustomerID(custs[s.cust].ID).SaveX(ctx)
		w.audit[a.ID] = expire.AuditExpired(policy, now, expire.AuditEntry{At: a.At})
	}
	statuses := []anomaly.Status{anomaly.StatusOpen, anomaly.StatusAcknowledged, anomaly.StatusResolved}
	for _, s := range oldestFirst(ages(policy.Anomalies), len(statuses)) {
		st := statuses[s.i]
		c := db.Anomaly.Create().SetRule(anomaly.RuleRunFaulted).SetKey(fmt.Sprintf("k/%d/%v/%s", s.cust, s.age, st)).
			SetSeverity(anomaly.SeverityWarning).SetStatus(st).SetTitle("t").SetSince(*at(s.age + 2*time.Hour)).
			SetDetectedAt(*at(s.age + time.Hour)).SetCustomerID(custs[s.cust].ID)
		if st == anomaly.StatusResolved {
			c.SetResolvedAt(*at(s.age))
		}
		a := c.SaveX(ctx)
		w.anomaly[a.ID] = expire.AnomalyExpired(policy, now, expire.Anomaly{Status: string(a.Status), ResolvedAt: a.ResolvedAt})
	}

	// Batches: open ones (new, serving) and finished ones at each age, and
	// a finished batch whose tasks are gone already; all submitted four
	// years ago, so that their tasks are all below the tasks' frontier.
	type bspec struct {
		stack batch.Stack
		age   time.Duration // of finished_at; -1: none
		empty bool
	}
	var bspecs []bspec
	for range custs {
		bspecs = append(bspecs, bspec{batch.StackNew, -1, false}, bspec{batch.StackServing, -1, false})
		for _, age := range ages(policy.FinishedTasks) {
			bspecs = append(bspecs, bspec{batch.StackFinished, age, false})
		}
		bspecs = append(bspecs, bspec{batch.StackFinished, 200 * day, true})
	}
	submitted := now.Add(-4 * 365 * day)
	type tspec struct {
		c     *ent.TaskCreate
		batch *ent.Batch
	}
	var tspecs []tspec
	stored := map[int]int{}
	for bi, s := range bspecs {
		cust := custs[bi*len(custs)/len(bspecs)]
		bc := db.Batch.Create().SetCustomerID(cust.ID).SetProcessID(proc.ID).SetPoolID(pl.ID).SetStack(s.stack).SetTotal(0).SetPending(0).SetCreatedAt(submitted)
		if s.age >= 0 {
			bc.SetFinishedAt(*at(s.age))
		}
		b := bc.SaveX(ctx)
		if s.empty {
			continue
		}
		seq := 0
		for _, st := range []task.State{task.StatePending, task.StateRunning, task.StateSucceeded, task.StateFailed, task.StateCancelled} {
			for _, tage := range []time.Duration{3 * 365 * day, policy.FinishedTasks + time.Minute, policy.FinishedTasks - time.Minute, -1} {
				tc := db.Task.Create().SetBatchID(b.ID).SetProcessID(proc.ID).SetPoolID(pl.ID).SetCustomerID(cust.ID).SetSeq(seq).SetState(st).SetCreatedAt(submitted)
				seq++
				if tage >= 0 {
					tc.SetFinishedAt(*at(tage))
				}
				tspecs = append(tspecs, tspec{tc, b})
			}
		}
	}
	tcs := make([]*ent.TaskCreate, len(tspecs))
	for i, s := range tspecs {
		tcs[i] = s.c
	}
	type aspec struct {
		c  *ent.AttemptCreate
		tf expire.Task
	}
	var aspecs []aspec
	for i, tk := range db.Task.CreateBulk(tcs...).SaveX(ctx) {
		b := tspecs[i].batch
		// A running task has a running attempt; so has, against the odds,
		// one finished task in four (a report racing a stop): neither may
		// lose it.
		running := tk.State == task.StateRunning || i%4 == 0
		tf := expire.Task{State: string(tk.State), FinishedAt: tk.FinishedAt, BatchFinished: b.Stack == batch.StackFinished, RunningAttempt: running}
		w.tasks[tk.ID] = expire.TaskExpired(policy, now, tf)
		if !w.tasks[tk.ID] {
			stored[b.ID]++
		}
		states := []attempt.State{attempt.StateSucceeded, attempt.StateFailed, attempt.StateAbandoned, attempt.StateStopped}
		if running {
			states = append(states, attempt.StateRunning)
		}
		n := 0
		for _, ast := range states {
			for _, aage := range []time.Duration{400 * day, policy.Attempts + time.Minute, policy.Attempts - time.Minute} {
				n++
				ac := db.Attempt.Create().SetTaskID(tk.ID).SetRobotID(rb.ID).SetCustomerID(tk.CustomerID).SetNumber(n).SetState(ast).
					SetStartedAt(*at(aage + time.Minute)).SetDeadline(*at(aage))
				if ast != attempt.StateRunning {
					ac.SetFinishedAt(*at(aage))
				}
				aspecs = append(aspecs, aspec{ac, tf})
			}
		}
	}
	// Attempts in the order they started.
	started := func(s aspec) time.Time { t, _ := s.c.Mutation().StartedAt(); return t }
	slices.SortStableFunc(aspecs, func(x, y aspec) int { return started(x).Compare(started(y)) })
	for start := 0; start < len(aspecs); start += 500 {
		part := aspecs[start:min(start+500, len(aspecs))]
		acs := make([]*ent.AttemptCreate, len(part))
		for i, s := range part {
			acs[i] = s.c
		}
		for i, a := range db.Attempt.CreateBulk(acs...).SaveX(ctx) {
			w.attempts[a.ID] = expire.AttemptExpired(policy, now, expire.Attempt{State: string(a.State), FinishedAt: a.FinishedAt, Task: part[i].tf})
		}
	}
	for _, b := range db.Batch.Query().AllX(ctx) {
		w.batches[b.ID] = expire.BatchExpired(policy, now, expire.Batch{Finished: b.Stack == batch.StackFinished, FinishedAt: b.FinishedAt, Tasks: stored[b.ID]})
	}
	return w
}

func count(m map[int]bool) (expired int) {
	for _, e := range m {
		if e {
			expired++
		}
	}
	return expired
}

// check compares what is left with the rule: every expired row is gone and
// every other row is there.
func (w *world) check(t *testing.T, kind string, m map[int]bool, left []int) {
	t.Helper()
	there := map[int]bool{}
	for _, id := range left {
		there[id] = true
	}
	for id, expired := range m {
		if expired == there[id] {
			t.Errorf("%s %d: expired=%v but stored=%v", kind, id, expired, there[id])
		}
	}
}

func TestRoundDeletesExactlyTheExpired(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		clock := sdktest.NewClock(time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC))

		w := build(t, db, clock.Now())
		pauses := 0
		p := retention.New(retention.Options{
			Client: db.Client, DB: db.SQL(), Dialect: dialectOf(db),
			Policy: func() expire.Policy { return policy }, BatchRows: 40, Now: clock.Now,
			Sleep:  func(ctx context.Context, _ time.Duration) bool { pauses++; return ctx.Err() == nil },
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		})
		ctx := sys()
		live := db.Task.Query().Where(task.StateIn(task.StatePending, task.StateRunning)).CountX(ctx)
		runningAttempts := db.Attempt.Query().Where(attempt.StateEQ(attempt.StateRunning)).CountX(ctx)

		got, err := p.Round(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		w.check(t, "event", w.events, db.Event.Query().IDsX(ctx))
		w.check(t, "audit entry", w.audit, db.AuditEntry.Query().IDsX(ctx))
		w.check(t, "anomaly", w.anomaly, db.Anomaly.Query().IDsX(ctx))
		w.check(t, "task", w.tasks, db.Task.Query().IDsX(ctx))
		w.check(t, "attempt", w.attempts, db.Attempt.Query().IDsX(ctx))
		w.check(t, "batch", w.batches, db.Batch.Query().IDsX(ctx))
		want := retention.Counts{expire.Events: count(w.events), expire.Audit: count(w.audit), expire.Anomalies: count(w.anomaly),
			expire.Tasks: count(w.tasks), expire.Attempts: count(w.attempts), expire.Batches: count(w.batches)}
		for _, k := range expire.Kinds {
			if got[k] != want[k] || want[k] == 0 {
				t.Errorf("%s: pruned %d, want %d (> 0)", k, got[k], want[k])
			}
		}
		if pauses == 0 {
			t.Error("no pause between batches of 40 rows")
		}
		// Nothing is left to prune at the same moment; a day later the rows
		// that were a minute inside their cutoff have expired.
		if again, err := p.Round(context.Background()); err != nil || sum(again) != 0 {
			t.Fatalf("second round: %v %v", again, err)
		}
		clock.Add(day)
		later, err := p.Round(context.Background())
		if err != nil || later[expire.Events] == 0 || later[expire.Tasks] == 0 {
			t.Fatalf("a day later: %v %v", later, err)
		}
		// Pending and running tasks, and open batches, are never touched,
		// however old.
		if n := db.Task.Query().Where(task.StateIn(task.StatePending, task.StateRunning)).CountX(ctx); n != live {
			t.Errorf("pending and running tasks left: %d, want %d", n, live)
		}
		if n := db.Batch.Query().Where(batch.StackNEQ(batch.StackFinished)).CountX(ctx); n != 4 {
			t.Errorf("open batches left: %d", n)
		}
		if n := db.Attempt.Query().Where(attempt.StateEQ(attempt.StateRunning)).CountX(ctx); n != runningAttempts {
			t.Errorf("running attempts left: %d of %d", n, runningAttempts)
		}
	})
}

func sum(c retention.Counts) (n int) {
	for _, v := range c {
		n += v
	}
	return n
}

// A policy that keeps everything forever deletes nothing, and Run stops
// with its context.
func TestForeverAndRun(t *testing.T) {
	db := storetest.SQLite(t)
	clock := sdktest.NewClock(time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC))
	w := build(t, db, clock.Now())
	ctx, cancel := context.WithCancel(context.Background())
	rounds := 0
	p := retention.New(retention.Options{
		Client: db.Client, DB: db.SQL(), Dialect: dialect.SQLite, Now: clock.Now,
		Policy:   func() expire.Policy { return expire.Policy{} },
		Interval: func() time.Duration { return time.Hour },
		Sleep: func(ctx context.Context, d time.Duration) bool {
			if rounds++; rounds == 3 {
				cancel()
			}
			return ctx.Err() == nil
		},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	p.Run(ctx, 1)
	if rounds != 3 {
		t.Fatalf("rounds %d", rounds)
	}
	if n := db.Event.Query().CountX(sys()); n != len(w.events) {
		t.Fatalf("events %d of %d left when kept forever", n, len(w.events))
	}
	if n := db.Attempt.Query().CountX(sys()); n != len(w.attempts) {
		t.Fatalf("attempts %d of %d left when kept forever", n, len(w.attempts))
	}
}
