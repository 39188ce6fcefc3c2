package dispatch_test

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"entgo.io/ent/dialect"
	entsql "entgo.io/ent/dialect/sql"
	"modernc.org/sqlite"

	"github.com/rpacloud/rpacloud/core/dispatch"
	"github.com/rpacloud/rpacloud/core/store"
	"github.com/rpacloud/rpacloud/core/store/storetest"
	"github.com/rpacloud/rpacloud/ent"
	"github.com/rpacloud/rpacloud/ent/attempt"
	"github.com/rpacloud/rpacloud/ent/batch"
	"github.com/rpacloud/rpacloud/ent/robot"
	"github.com/rpacloud/rpacloud/ent/task"

	"github.com/rpacloud/rpacloud/core/robotwire"
)

// The crash child is this test binary started again with these variables:
// it runs robots, a submitter and a sweeper against the database until it
// is killed, and prints every acknowledged submission and success.
const (
	crashEnvDriver  = "RPACLOUD_CRASH_CHILD_DRIVER"
	crashEnvDSN     = "RPACLOUD_CRASH_CHILD_DSN"
	crashEnvProcess = "RPACLOUD_CRASH_CHILD_PROCESS"
	crashEnvSeed    = "RPACLOUD_CRASH_CHILD_SEED"
)

const crashRetries = 2

// openMigrated opens a database the parent already migrated, with the
// store's settings but without re-running the migration: it is the
// slowest part of a start under the race detector, and 50 starts add up.
func openMigrated(driver, dsn string) (*ent.Client, error) {
	if driver == store.Postgres {
		db, err := sql.Open("pgx", dsn)
		if err != nil {
			return nil, err
		}
		return ent.NewClient(ent.Driver(entsql.OpenDB(dialect.Postgres, db))), nil
	}
	sql.Register("crash-sqlite", &sqlite.Driver{})
	db, err := sql.Open("crash-sqlite", store.SQLiteDSN(dsn))
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1) // the store's single writer
	return ent.NewClient(ent.Driver(entsql.OpenDB(dialect.SQLite, db))), nil
}

func crashChild() int {
	ctx := context.Background()
	db, err := openMigrated(os.Getenv(crashEnvDriver), os.Getenv(crashEnvDSN))
	if err != nil {
		fmt.Fprintln(os.Stderr, "crash child:", err)
		return 1
	}
	seed, _ := strconv.ParseUint(os.Getenv(crashEnvSeed), 10, 64)
	q := dispatch.New(db, dispatch.Options{Seed: seed})
	proc := db.Process.Query().OnlyX(sys())
	cust := db.Customer.Query().FirstX(sys())
	robots := db.Robot.Query().Where(robot.PoolID(proc.PoolID)).IDsX(sys())
	var mu sync.Mutex
	out := bufio.NewWriter(os.Stdout)
	say := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(out, format+"\n", args...)
		out.Flush()
	}
	say("READY")
	fail := func(err error) {
		say("ERROR %v", err)
		os.Exit(1)
	}
	for i, id := range robots {
		go func() {
			rnd := rand.New(rand.NewPCG(seed, uint64(i)))
			for {
				c, err := q.ClaimTask(ctx, id)
				if err != nil {
					fail(err)
				}
				if c == nil {
					time.Sleep(2 * time.Millisecond)
					continue
				}
				var res dispatch.Result
				switch p := rnd.IntN(100); {
				case p < 80:
					res.Success = true
				case p < 88:
					res.Class, res.Message = robotwire.ErrorExecution, "portal down"
				case p < 92:
					res.Class, res.Message = robotwire.ErrorData, "no such tax id"
				default:
					continue // the robot hangs: the sweeper will time it out
				}
				if _, err := q.Report(ctx, id, c.Task.ID, c.Attempt.Number, res); err != nil {
					fail(err)
				}
				if res.Success {
					say("S %d %d", c.Task.ID, c.Attempt.Number)
				}
			}
		}()
	}
	go func() {
		for {
			if _, err := q.Sweep(ctx); err != nil {
				fail(err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	rnd := rand.New(rand.NewPCG(seed, 99))
	for {
		in := inputs(1 + rnd.IntN(20))
		b, err := q.Submit(ctx, dispatch.SubmitRequest{CustomerID: cust.ID, Process: proc.Name, Inputs: in})
		if err != nil {
			fail(err)
		}
		say("B %d %d", b.ID, len(in))
		time.Sleep(40 * time.Millisecond)
	}
}

// TestCrash runs the queue in a child process under load and SIGKILLs it
// at random moments, 50 times per database, then checks that every
// acknowledged submission and success survived, that nothing was done
// twice, and that after a final drain every task is finished exactly once.
func TestCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test: skipped in -short mode")
	}
	t.Run("sqlite", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "crash.db")
		crashRun(t, store.SQLite, path)
	})
	t.Run("postgres", func(t *testing.T) {
		dsn := storetest.PostgresDSN(t)
		name := fmt.Sprintf("rpt_crash_%d", os.Getpid())
		admin, err := sql.Open("pgx", dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer admin.Close()
		if _, err := admin.Exec("CREATE DATABASE " + name); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _, _ = admin.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)") })
		crashRun(t, store.Postgres, swapDatabase(dsn, name))
	})
}

func swapDatabase(dsn, name string) string {
	q := ""
	if i := strings.IndexByte(dsn, '?'); i >= 0 {
		dsn, q = dsn[:i], dsn[i:]
	}
	return dsn[:strings.LastIndexByte(dsn, '/')+1] + name + q
}

func crashRun(t *testing.T, driver, dsn string) {
	ctx := context.Background()
	db, err := store.Open(ctx, driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	cust := db.Customer.Create().SetName("acme").SaveX(sys())
	p := db.Pool.Create().SetName("p").SetProvider("local").SetMax(10).SaveX(sys())
	proc := db.Process.Create().SetName("crash").SetPoolID(p.ID).SetRunner("noop").
		SetMaxDurationSeconds(1).SetRetries(crashRetries).SaveX(sys())
	for i := range 4 {
		db.Robot.Create().SetName(fmt.Sprintf("r%d", i)).SetPoolID(p.ID).SetState(robot.StateIdle).SaveX(sys())
	}
	q := dispatch.New(db.Client, dispatch.Options{Seed: 1})
	if _, err := q.Submit(ctx, dispatch.SubmitRequest{CustomerID: cust.ID, Process: proc.Name, Inputs: inputs(200)}); err != nil {
		t.Fatal(err)
	}

	batches := map[int]int{}   // acknowledged submissions: batch → tasks
	successes := map[int]int{} // acknowledged successes: task → attempt
	rnd := rand.New(rand.NewPCG(2026, 11))
	const kills = 50
	var startup time.Duration
	for i := range kills {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), crashEnvDriver+"="+driver, crashEnvDSN+"="+dsn,
			crashEnvProcess+"="+proc.Name, crashEnvSeed+"="+strconv.Itoa(i+1))
		cmd.Stderr = os.Stderr
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		started := time.Now()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		ready := make(chan struct{})
		lines := make(chan string, 1024)
		go func() {
			sc := bufio.NewScanner(stdout)
			first := true
			for sc.Scan() {
				if first && sc.Text() == "READY" {
					close(ready)
					first = false
					continue
				}
				lines <- sc.Text()
			}
			close(lines)
		}()
		select {
		case <-ready:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			t.Fatalf("kill %d: child never became ready", i)
		}
		startup += time.Since(started)
		time.Sleep(time.Duration(rnd.IntN(150)) * time.Millisecond)
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		for l := range lines {
			var a, b int
			switch {
			case strings.HasPrefix(l, "B "):
				fmt.Sscanf(l, "B %d %d", &a, &b)
				batches[a] = b
			case strings.HasPrefix(l, "S "):
				fmt.Sscanf(l, "S %d %d", &a, &b)
				successes[a] = b
			default:
				t.Fatalf("kill %d: child said %q", i, l)
			}
		}
		_ = cmd.Wait()
	}
	t.Logf("%d kills (child start-up %v on average): %d batches and %d successes acknowledged",
		kills, startup/kills, len(batches), len(successes))

	// Nothing acknowledged was lost.
	for id, n := range batches {
		b, err := db.Batch.Get(sys(), id)
		if err != nil || b.Total != n || db.Task.Query().Where(task.BatchID(id)).CountX(sys()) != n {
			t.Fatalf("acknowledged batch %d of %d tasks: %v %v", id, n, b, err)
		}
	}
	for id, n := range successes {
		tk := db.Task.GetX(sys(), id)
		if tk.State != task.StateSucceeded || tk.AttemptNo != n {
			t.Fatalf("acknowledged success of task %d attempt %d: task is %s at attempt %d", id, n, tk.State, tk.AttemptNo)
		}
	}
	checkInvariants(t, db, crashRetries)

	// Restart once more and drain: every attempt the killed daemons left
	// running expires, every task ends, none twice.
	later := time.Now().Add(time.Hour)
	q = dispatch.New(db.Client, dispatch.Options{Now: func() time.Time { return later }, Seed: 7})
	for {
		n, err := q.Sweep(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
	}
	robots := db.Robot.Query().IDsX(sys())
	for idle := 0; idle < len(robots); {
		idle = 0
		for _, r := range robots {
			c, err := q.ClaimTask(ctx, r)
			if err != nil {
				t.Fatal(err)
			}
			if c == nil {
				idle++
				continue
			}
			if _, err := q.Report(ctx, r, c.Task.ID, c.Attempt.Number, dispatch.Result{Success: true, Output: json.RawMessage(`{}`)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if n := db.Task.Query().Where(task.StateIn(task.StatePending, task.StateRunning)).CountX(sys()); n != 0 {
		t.Fatalf("%d tasks unfinished after the drain", n)
	}
	if n := db.Batch.Query().Where(batch.StackNEQ(batch.StackFinished)).CountX(sys()); n != 0 {
		t.Fatalf("%d batches not on stack C after the drain", n)
	}
	checkInvariants(t, db, crashRetries)
}

// checkInvariants checks every task and batch of the database: attempts
// numbered 1..n with at most one live (the latest, iff the task runs); a
// succeeded task has exactly one succeeded attempt, its latest; a data
// error is final; retries and time-outs within their limits; batch
// counters and stacks agree with the tasks.
func checkInvariants(t testing.TB, db *store.DB, retries int) {
	t.Helper()
	ctx := sys()
	byTask := map[int][]*ent.Attempt{}
	for _, a := range db.Attempt.Query().Order(attempt.ByTaskID(), attempt.ByNumber()).AllX(ctx) {
		byTask[a.TaskID] = append(byTask[a.TaskID], a)
	}
	type counts struct{ pending, running, succeeded, failed int }
	perBatch := map[int]*counts{}
	for _, tk := range db.Task.Query().AllX(ctx) {
		as := byTask[tk.ID]
		if len(as) != tk.AttemptNo {
			t.Fatalf("task %d: %d attempts for attempt_no %d", tk.ID, len(as), tk.AttemptNo)
		}
		live, ok, data, exec, timeouts := 0, 0, 0, 0, 0
		for i, a := range as {
			last := i == len(as)-1
			if a.Number != i+1 {
				t.Fatalf("task %d: attempt %d at position %d", tk.ID, a.Number, i)
			}
			switch a.State {
			case attempt.StateRunning:
				live++
				if !last || tk.State != task.StateRunning {
					t.Fatalf("task %d (%s): attempt %d still running", tk.ID, tk.State, a.Number)
				}
			case attempt.StateSucceeded:
				ok++
				if !last || tk.State != task.StateSucceeded {
					t.Fatalf("task %d (%s): attempt %d succeeded but is not the last", tk.ID, tk.State, a.Number)
				}
			case attempt.StateAbandoned:
				// A robot may time out on a task more than once when no
				// other robot could take it; they count in total.
				timeouts++
			case attempt.StateFailed:
				switch {
				case a.ErrorClass == nil:
					t.Fatalf("task %d attempt %d: failed without a class", tk.ID, a.Number)
				case *a.ErrorClass == attempt.ErrorClassData:
					data++
					if !last || tk.State != task.StateFailed || *tk.FailureReason != task.FailureReasonDataError {
						t.Fatalf("task %d: data error on attempt %d was not final", tk.ID, a.Number)
					}
				default:
					exec++
				}
			}
		}
		if live > 1 || (live == 1) != (tk.State == task.StateRunning) {
			t.Fatalf("task %d (%s): %d live attempts", tk.ID, tk.State, live)
		}
		if (ok == 1) != (tk.State == task.StateSucceeded) || ok > 1 {
			t.Fatalf("task %d (%s): %d successful attempts", tk.ID, tk.State, ok)
		}
		if exec != tk.ExecutionsFailed || exec > retries+1 || timeouts != tk.Timeouts || tk.Timeouts > dispatch.MaxTimeoutRobots || data > 1 {
			t.Fatalf("task %d: %d execution failures (field %d, retries %d), %d time-outs (field %d), %d data errors",
				tk.ID, exec, tk.ExecutionsFailed, retries, timeouts, tk.Timeouts, data)
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
	for _, b := range db.Batch.Query().AllX(ctx) {
		c := perBatch[b.ID]
		if c == nil || b.Pending != c.pending || b.Running != c.running || b.Succeeded != c.succeeded || b.Failed != c.failed ||
			b.Total != c.pending+c.running+c.succeeded+c.failed {
			t.Fatalf("batch %d: counters %d/%d/%d/%d of %d, tasks say %+v", b.ID, b.Pending, b.Running, b.Succeeded, b.Failed, b.Total, c)
		}
		if (b.Stack == batch.StackFinished) != (c.pending+c.running == 0) {
			t.Fatalf("batch %d on stack %s with %d pending and %d running", b.ID, b.Stack, c.pending, c.running)
		}
	}
}
