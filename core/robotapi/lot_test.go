package robotapi_test

import (
	"context"
	stdsql "database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"entgo.io/ent/dialect"
	entsql "entgo.io/ent/dialect/sql"

	"github.com/rpacloud/rpacloud/core/config"
	"github.com/rpacloud/rpacloud/core/dispatch"
	"github.com/rpacloud/rpacloud/core/events"
	"github.com/rpacloud/rpacloud/core/robotapi"
	"github.com/rpacloud/rpacloud/core/robotwire"
	"github.com/rpacloud/rpacloud/core/store"
	"github.com/rpacloud/rpacloud/core/store/storetest"
	"github.com/rpacloud/rpacloud/ent"
	"github.com/rpacloud/rpacloud/ent/customer"
	"github.com/rpacloud/rpacloud/ent/pool"
	"github.com/rpacloud/rpacloud/ent/robot"
	"github.com/rpacloud/rpacloud/plugins/sdk/sdktest"
)

// counting wraps an ent driver and counts its statements, reads and
// writes apart (a statement that inserts, updates or deletes is a write,
// whether ent runs it as Exec or, RETURNING rows, as Query).
type counting struct {
	dialect.Driver
	c *counts
}

type counts struct {
	reads, writes atomic.Int64
	mu            sync.Mutex
	log           []string // the writes, for the failure message
}

func (c *counts) note(query string) {
	q := strings.ToUpper(strings.TrimSpace(query))
	if strings.HasPrefix(q, "SELECT") && !strings.Contains(q, "FOR UPDATE") {
		c.reads.Add(1)
		return
	}
	if strings.HasPrefix(q, "SELECT") || strings.HasPrefix(q, "INSERT") || strings.HasPrefix(q, "UPDATE") ||
		strings.HasPrefix(q, "DELETE") || strings.HasPrefix(q, "WITH") {
		c.writes.Add(1)
		c.mu.Lock()
		c.log = append(c.log, query)
		c.mu.Unlock()
		return
	}
	c.reads.Add(1)
}

func (d counting) Exec(ctx context.Context, query string, args, v any) error {
	d.c.note(query)
	return d.Driver.Exec(ctx, query, args, v)
}

func (d counting) Query(ctx context.Context, query string, args, v any) error {
	d.c.note(query)
	return d.Driver.Query(ctx, query, args, v)
}

// ExecContext and QueryContext serve the statements the queue writes
// itself (the liveness flush, PostgreSQL's fast path).
func (d counting) ExecContext(ctx context.Context, query string, args ...any) (stdsql.Result, error) {
	d.c.note(query)
	return d.Driver.(interface {
		ExecContext(context.Context, string, ...any) (stdsql.Result, error)
	}).ExecContext(ctx, query, args...)
}

func (d counting) QueryContext(ctx context.Context, query string, args ...any) (*stdsql.Rows, error) {
	d.c.note(query)
	return d.Driver.(interface {
		QueryContext(context.Context, string, ...any) (*stdsql.Rows, error)
	}).QueryContext(ctx, query, args...)
}

func (d counting) Tx(ctx context.Context) (dialect.Tx, error) {
	tx, err := d.Driver.Tx(ctx)
	if err != nil {
		return nil, err
	}
	return countingTx{Tx: tx, c: d.c}, nil
}

type countingTx struct {
	dialect.Tx
	c *counts
}

func (t countingTx) Exec(ctx context.Context, query string, args, v any) error {
	t.c.note(query)
	return t.Tx.Exec(ctx, query, args, v)
}

func (t countingTx) Query(ctx context.Context, query string, args, v any) error {
	t.c.note(query)
	return t.Tx.Query(ctx, query, args, v)
}

const lotHCL = `
provider "local" { plugin = "local" }
customer "acme" {}
pool "p" {
  provider = "local"
  max      = 2
}
process "echo" {
  pool    = "p"
  builtin = "echo"
}
`

type lotFixture struct {
	svc    *robotapi.Service
	q      *dispatch.Queue
	bus    *events.Bus
	counts *counts
	db     *store.DB
	cust   int
	pool   int
	robots []int
}

// newLotFixture: n idle robots of pool p, and a Service whose queue and
// client count their statements.
func newLotFixture(t *testing.T, db *store.DB, n int, bus *events.Bus) *lotFixture {
	t.Helper()
	cfg, diags, _ := config.LoadSources(map[string][]byte{"a.hcl": []byte(lotHCL)})
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	ctx := sys()
	if err := store.SyncConfig(ctx, db.Client, cfg); err != nil {
		t.Fatal(err)
	}
	f := &lotFixture{db: db, counts: &counts{}, bus: bus}
	f.pool = db.Pool.Query().Where(pool.Name("p")).OnlyIDX(ctx)
	f.cust = db.Customer.Query().Where(customer.Name("acme")).OnlyIDX(ctx)
	seed := db.Robot.Query().CountX(ctx)
	for i := range n {
		f.robots = append(f.robots, db.Robot.Create().SetName(fmt.Sprintf("r%d-%d", seed, i)).SetPoolID(f.pool).
			SetState(robot.StateIdle).SetLastSeenAt(time.Now()).SaveX(ctx).ID)
	}
	dia := dialect.SQLite
	if db.Driver == store.Postgres {
		dia = dialect.Postgres
	}
	client := ent.NewClient(ent.Driver(counting{Driver: entsql.OpenDB(dia, db.SQL()), c: f.counts}))
	f.q = dispatch.New(client, dispatch.Options{Bus: bus})
	f.svc = &robotapi.Service{Client: client, Queue: f.q, Bus: bus, Backstop: 300 * time.Millisecond}
	return f
}

func (f *lotFixture) submit(t *testing.T, n int) {
	t.Helper()
	in := make([]json.RawMessage, n)
	for i := range in {
		in[i] = json.RawMessage(fmt.Sprintf(`{"n":%d}`, i))
	}
	if _, err := f.q.Submit(context.Background(), dispatch.SubmitRequest{CustomerID: f.cust, Process: "echo", Inputs: in}); err != nil {
		t.Fatal(err)
	}
}

type pollResult struct {
	robot int
	claim *robotwire.Claim
	err   error
}

// park starts a long poll of each robot in turn, each parked before the
// next starts, so the lot's FIFO is the robots' order.
func (f *lotFixture) park(t *testing.T, ctx context.Context, robots []int, wait time.Duration, out chan<- pollResult) {
	t.Helper()
	base := f.svc.Stats().Parked
	for i, r := range robots {
		go func() {
			c, err := f.svc.Claim(ctx, r, wait)
			out <- pollResult{r, c, err}
		}()
		sdktest.Eventually(t, 10*time.Second, "robot parked", func() bool { return f.svc.Stats().Parked == base+i+1 })
	}
}

// TestOneTaskWakesOneRobot: with 50 robots parked, one submitted task wakes
// one robot (one database claim), the others stay parked; ten more wake
// ten, the next ten in the order they became free.
func TestOneTaskWakesOneRobot(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		bus := events.New()
		f := newLotFixture(t, db, 50, bus)
		f.svc.Backstop = time.Hour // the events do it here
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		runDone := make(chan struct{})
		go func() { f.svc.Run(ctx); close(runDone) }()
		defer func() { cancel(); <-runDone }()
		out := make(chan pollResult, 50)
		f.park(t, ctx, f.robots, 25*time.Second, out)
		before := f.svc.Stats()

		f.submit(t, 1)
		got := <-out
		if got.err != nil || got.claim == nil || got.robot != f.robots[0] {
			t.Fatalf("first claim: robot %d (want %d, the first parked) %+v %v", got.robot, f.robots[0], got.claim, got.err)
		}
		after := f.svc.Stats()
		if after.Wakes-before.Wakes != 1 || after.DBClaims-before.DBClaims != 1 || after.Parked != 49 || after.InFlight != 0 {
			t.Fatalf("one task: stats before %+v after %+v; want one wake, one claim, 49 parked", before, after)
		}

		f.submit(t, 10)
		var winners []int
		for range 10 {
			r := <-out
			if r.err != nil || r.claim == nil {
				t.Fatalf("robot %d: %+v %v", r.robot, r.claim, r.err)
			}
			winners = append(winners, r.robot)
		}
		slices.Sort(winners)
		sdktest.Eventually(t, 10*time.Second, "the lot to settle", func() bool { return f.svc.Stats().InFlight == 0 })
		end := f.svc.Stats()
		wakes, claims := int(end.Wakes-after.Wakes), int(end.DBClaims-after.DBClaims)
		t.Logf("ten tasks: %d wakes, %d claims, to %v", wakes, claims, winners)
		if end.Parked != 39 || wakes != claims {
			t.Fatalf("ten tasks: stats %+v after %+v", end, after)
		}
		if db.Driver == store.SQLite {
			// SQLite serialises the claims, so each one's backlog is
			// exact: the next ten free robots, nobody woken in vain.
			if wakes != 10 || !slices.Equal(winners, f.robots[1:11]) {
				t.Fatalf("ten tasks on SQLite: %d wakes, tasks to %v, want 10 to %v", wakes, winners, f.robots[1:11])
			}
		} else {
			// On PostgreSQL concurrent claims skip each other's locked
			// tasks: a claim may come back empty with a backlog, and its
			// robot wakes the next. Still first free first: the tasks
			// went to the first robots woken, none beyond.
			if wakes < 10 || wakes > 20 || winners[9] > f.robots[wakes] {
				t.Fatalf("ten tasks on PostgreSQL: %d wakes, tasks to %v", wakes, winners)
			}
		}
		cancel()
		for range 39 {
			if r := <-out; r.claim != nil {
				t.Fatalf("robot %d got a task nobody submitted", r.robot)
			}
		}
	})
}

// TestWaitingRobotsDoNotWrite: 200 robots polling again and again with
// short waits cause no database write (their check-ins are kept in memory
// for the liveness flush) and only the backstop's reads.
func TestWaitingRobotsDoNotWrite(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newLotFixture(t, db, 200, events.New())
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		runDone := make(chan struct{})
		go func() { f.svc.Run(ctx); close(runDone) }()
		defer func() { cancel(); <-runDone }()
		// The first poll of each robot claims from the database.
		var wg sync.WaitGroup
		for _, r := range f.robots {
			wg.Go(func() {
				if c, err := f.svc.Claim(ctx, r, 0); c != nil || err != nil {
					t.Errorf("first poll of robot %d: %+v %v", r, c, err)
				}
			})
		}
		wg.Wait()
		reads0, writes0 := f.counts.reads.Load(), f.counts.writes.Load()
		st0 := f.svc.Stats()
		start := time.Now()
		for _, r := range f.robots {
			wg.Go(func() {
				for time.Since(start) < 2*time.Second {
					if c, err := f.svc.Claim(ctx, r, 200*time.Millisecond); c != nil || err != nil {
						t.Errorf("poll of robot %d: %+v %v", r, c, err)
						return
					}
				}
			})
		}
		wg.Wait()
		elapsed := time.Since(start)
		st := f.svc.Stats()
		reads, writes := f.counts.reads.Load()-reads0, f.counts.writes.Load()-writes0
		t.Logf("%d polls skipped the database over %v; %d reads, %d writes", st.SkippedClaims-st0.SkippedClaims, elapsed, reads, writes)
		if writes != 0 {
			t.Fatalf("waiting robots wrote %d statements: %q", writes, f.counts.log)
		}
		if st.DBClaims != st0.DBClaims || st.SkippedClaims-st0.SkippedClaims < 1000 {
			t.Fatalf("claims from the database while waiting: %d; polls parked without one: %d", st.DBClaims-st0.DBClaims, st.SkippedClaims-st0.SkippedClaims)
		}
		// The backstop reads once per 300 ms tick at most.
		if limit := int64(elapsed/(300*time.Millisecond)) + 2; reads > limit {
			t.Fatalf("%d reads while waiting, want at most %d (backstop only)", reads, limit)
		}
		// Their moments reach the database with the liveness flush.
		if n, err := f.q.FlushLiveness(context.Background()); err != nil || n != 200 {
			t.Fatalf("flush wrote %d robots: %v", n, err)
		}
	})
}

// TestRevocationEndsParkedPoll: a revoked robot's parked poll ends at once
// with ErrRevoked; the other robots stay parked.
func TestRevocationEndsParkedPoll(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		bus := events.New()
		f := newLotFixture(t, db, 2, bus)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		out := make(chan pollResult, 2)
		f.park(t, ctx, f.robots, 25*time.Second, out)
		id, p := f.robots[1], f.pool
		bus.Publish(&ent.Event{Type: string(events.RobotRevoked), RobotID: &id, PoolID: &p})
		select {
		case r := <-out:
			if r.robot != id || !errors.Is(r.err, robotapi.ErrRevoked) {
				t.Fatalf("robot %d: %+v %v; want robot %d revoked", r.robot, r.claim, r.err, id)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("a revoked robot's poll did not end")
		}
		if st := f.svc.Stats(); st.Parked != 1 {
			t.Fatalf("after revocation: %+v", st)
		}
		cancel()
		<-out
	})
}

// TestWokenAcrossDaemons: a robot parked on daemon B is woken by a task
// submitted on daemon A (PostgreSQL, events relayed by LISTEN/NOTIFY), and
// the task is handed out once.
func TestWokenAcrossDaemons(t *testing.T) {
	dsn, dbA, dbB := storetest.SharedPostgres(t)
	ctx, cancel := context.WithCancel(sys())
	defer cancel()
	busA, busB := events.New(), events.New()
	ra, err := events.StartPGRelay(ctx, dsn, busA, dbA.Client, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ra.Close()
	rb, err := events.StartPGRelay(ctx, dsn, busB, dbB.Client, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer rb.Close()
	fb := newLotFixture(t, dbB, 3, busB)
	fb.svc.Backstop = time.Hour // the event must do it, not the backstop
	qa := dispatch.New(dbA.Client, dispatch.Options{Bus: busA})
	out := make(chan pollResult, 3)
	fb.park(t, ctx, fb.robots, 25*time.Second, out)
	before := fb.svc.Stats()
	if _, err := qa.Submit(context.Background(), dispatch.SubmitRequest{CustomerID: fb.cust, Process: "echo", Inputs: []json.RawMessage{json.RawMessage(`{}`)}}); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-out:
		if r.err != nil || r.claim == nil || r.robot != fb.robots[0] {
			t.Fatalf("robot %d: %+v %v; want the first parked robot %d with the task", r.robot, r.claim, r.err, fb.robots[0])
		}
	case <-time.After(20 * time.Second):
		t.Fatal("a task submitted on daemon A did not wake a robot parked on daemon B")
	}
	if st := fb.svc.Stats(); st.Wakes-before.Wakes != 1 || st.Parked != 2 {
		t.Fatalf("stats before %+v after %+v", before, st)
	}
	cancel()
	for range 2 {
		if r := <-out; r.claim != nil {
			t.Fatalf("task handed out twice: robot %d", r.robot)
		}
	}
}

// TestAwaitStopBackstopIsShared: twenty open awaitStop calls are checked by
// one statement per backstop interval, not one read per call; a stop whose
// event was missed (another daemon's) ends its call at the next check.
func TestAwaitStopBackstopIsShared(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newLotFixture(t, db, 20, events.New())
		f.svc.StopBackstop = 200 * time.Millisecond
		ctx := context.Background()
		f.submit(t, 20)
		type held struct{ robot, task, attempt int }
		var claims []held
		for _, r := range f.robots {
			c, err := f.svc.Claim(ctx, r, 0)
			if err != nil || c == nil {
				t.Fatalf("claim of robot %d: %+v %v", r, c, err)
			}
			claims = append(claims, held{r, c.TaskID, c.Attempt})
		}
		reads0 := f.counts.reads.Load()
		var wg sync.WaitGroup
		stopped := make(chan int, len(claims))
		start := time.Now()
		for _, c := range claims {
			wg.Go(func() {
				stop, err := f.svc.AwaitStop(ctx, c.robot, c.task, c.attempt, 1500*time.Millisecond)
				if err != nil {
					t.Errorf("await of task %d: %v", c.task, err)
				}
				if stop {
					stopped <- c.task
				}
			})
		}
		// Another daemon stops one task: its event never reaches this bus.
		other := dispatch.New(db.Client, dispatch.Options{Bus: events.New()})
		time.Sleep(300 * time.Millisecond)
		if _, err := other.StopTask(ctx, claims[3].task, "ops", ""); err != nil {
			t.Fatal(err)
		}
		wg.Wait()
		elapsed := time.Since(start)
		close(stopped)
		var got []int
		for id := range stopped {
			got = append(got, id)
		}
		if !slices.Equal(got, []int{claims[3].task}) {
			t.Fatalf("stopped calls: %v, want task %d's", got, claims[3].task)
		}
		// 20 first checks, one statement per 200 ms tick, and the stopped
		// call's own second check.
		reads := f.counts.reads.Load() - reads0
		limit := int64(20 + elapsed/(200*time.Millisecond) + 2)
		t.Logf("%d reads for 20 calls over %v", reads, elapsed)
		if reads > limit {
			t.Fatalf("%d reads for 20 awaitStop calls over %v, want at most %d", reads, elapsed, limit)
		}
	})
}
