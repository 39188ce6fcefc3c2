// Package dispatchbench measures the dispatcher through its real claim and
// report path (`rpacloud bench dispatch`): a burn-down of N pre-inserted
// no-op tasks by W concurrent in-process robots, and claim throughput
// against growing backlogs. Figures, not assertions: nothing here fails
// because something is slow.
package dispatchbench

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/rpacloud/rpacloud/core/dispatch"
	"github.com/rpacloud/rpacloud/core/dispatch/policy"
	"github.com/rpacloud/rpacloud/core/store"
	"github.com/rpacloud/rpacloud/ent"
	"github.com/rpacloud/rpacloud/ent/pool"
	"github.com/rpacloud/rpacloud/ent/privacy"
	"github.com/rpacloud/rpacloud/ent/robot"
)

// Options describe one run.
type Options struct {
	// DB is "sqlite" (a fresh file in a temporary directory) or a
	// postgres:// URL (a fresh database is created on that server and
	// dropped afterwards).
	DB        string
	Tasks     int // tasks to burn down
	Robots    int // concurrent in-process robots
	Customers int // customers (one batch each, split at MaxBatchSize)
	Fairness  string
}

// Result is one burn-down's figures.
type Result struct {
	DB          string  `json:"db"`
	Tasks       int     `json:"tasks"`
	Robots      int     `json:"robots"`
	Customers   int     `json:"customers"`
	Fairness    string  `json:"fairness"`
	Backlog     int     `json:"backlog"` // pending tasks when the burn-down started
	Seconds     float64 `json:"seconds"`
	TasksPerS   float64 `json:"tasks_per_s"`
	ClaimP50ms  float64 `json:"claim_p50_ms"`
	ClaimP99ms  float64 `json:"claim_p99_ms"`
	ReportP50ms float64 `json:"report_p50_ms"`
	ReportP99ms float64 `json:"report_p99_ms"`
	EmptyPolls  int     `json:"empty_polls"`
	GoMaxProcs  int     `json:"gomaxprocs"`
	// Plan is the database's plan for the claim's task draw at this
	// backlog (backlog mode).
	Plan string `json:"plan,omitempty"`
}

type env struct {
	db      *store.DB
	q       *dispatch.Queue
	robots  []int
	proc    *ent.Process
	cleanup func()
	name    string
	// firstBatch is a backlog batch, for EXPLAIN.
	firstBatch int
	// backlog is each customer's backlog batch and its task count: every
	// backlog size is filled into the same batches, so the claims of every
	// size choose among the same number of open orders (the claim's cost
	// grows with open orders, which is not what the sizes measure).
	backlog map[int]*backlogBatch
}

type backlogBatch struct{ id, total int }

func sys(ctx context.Context) context.Context { return privacy.DecisionContext(ctx, privacy.Allow) }

// open prepares a fresh database with one pool, one no-op process and the
// robots.
func open(ctx context.Context, o Options) (*env, error) {
	e := &env{}
	var err error
	switch {
	case o.DB == "sqlite":
		dir, derr := os.MkdirTemp("", "rpacloud-bench-")
		if derr != nil {
			return nil, derr
		}
		e.db, err = store.Open(ctx, store.SQLite, filepath.Join(dir, "bench.db"))
		e.cleanup = func() { os.RemoveAll(dir) }
		e.name = "sqlite"
	case strings.HasPrefix(o.DB, "postgres://") || strings.HasPrefix(o.DB, "postgresql://"):
		name := fmt.Sprintf("rpacloud_bench_%d_%d", os.Getpid(), time.Now().UnixNano()%1e6)
		admin, aerr := sql.Open("pgx", o.DB)
		if aerr != nil {
			return nil, fmt.Errorf("bench: %w", aerr)
		}
		defer admin.Close()
		if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
			return nil, fmt.Errorf("bench: create database %s (the DSN's user needs CREATEDB): %w", name, err)
		}
		e.db, err = store.Open(ctx, store.Postgres, swapDatabase(o.DB, name))
		base := o.DB
		e.cleanup = func() {
			a, err := sql.Open("pgx", base)
			if err == nil {
				_, _ = a.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)")
				a.Close()
			}
		}
		e.name = "postgres"
	default:
		return nil, fmt.Errorf("bench: --db %q: want sqlite or a postgres:// URL", o.DB)
	}
	if err != nil {
		if e.cleanup != nil {
			e.cleanup()
		}
		return nil, err
	}
	ctx = sys(ctx)
	fair, err := policy.ParseFairness(o.Fairness)
	if err != nil {
		e.close()
		return nil, err
	}
	// The stored enum spells the policy's names (a test in core/store
	// keeps them equal).
	p, err := e.db.Pool.Create().SetName("bench").SetProvider("local").SetMax(o.Robots).
		SetFairness(pool.Fairness(fair)).Save(ctx)
	if err != nil {
		e.close()
		return nil, fmt.Errorf("bench: pool: %w", err)
	}
	e.proc, err = e.db.Process.Create().SetName("noop").SetPoolID(p.ID).SetRunner("noop").
		SetMaxDurationSeconds(3600).Save(ctx)
	if err != nil {
		e.close()
		return nil, fmt.Errorf("bench: process: %w", err)
	}
	for i := range o.Robots {
		r, err := e.db.Robot.Create().SetName(fmt.Sprintf("bench-%d", i)).SetPoolID(p.ID).SetState(robot.StateIdle).Save(ctx)
		if err != nil {
			e.close()
			return nil, fmt.Errorf("bench: robot: %w", err)
		}
		e.robots = append(e.robots, r.ID)
	}
	e.q = dispatch.New(e.db.Client, dispatch.Options{Seed: 1})
	return e, nil
}

func (e *env) close() {
	e.db.Close()
	e.cleanup()
}

func swapDatabase(dsn, name string) string {
	q := ""
	if i := strings.IndexByte(dsn, '?'); i >= 0 {
		dsn, q = dsn[:i], dsn[i:]
	}
	return dsn[:strings.LastIndexByte(dsn, '/')+1] + name + q
}

func check(o *Options) error {
	if o.Tasks <= 0 || o.Robots <= 0 || o.Customers <= 0 {
		return errors.New("bench: --tasks, --robots and --customers must be positive")
	}
	if o.Customers > o.Tasks {
		return fmt.Errorf("bench: %d customers for %d tasks: every customer needs a task", o.Customers, o.Tasks)
	}
	return nil
}

// submit pre-inserts n tasks across customers through Queue.Submit.
func (e *env) submit(ctx context.Context, n, customers int) error {
	inputs := make([]json.RawMessage, dispatch.MaxBatchSize)
	for i := range inputs {
		inputs[i] = json.RawMessage(`{}`)
	}
	for c := range customers {
		cust, err := e.db.Customer.Create().SetName(fmt.Sprintf("customer-%d", c)).Save(sys(ctx))
		if err != nil {
			return fmt.Errorf("bench: customer: %w", err)
		}
		share := n / customers
		if c < n%customers {
			share++
		}
		for share > 0 {
			k := min(share, dispatch.MaxBatchSize)
			if _, err := e.q.Submit(ctx, dispatch.SubmitRequest{CustomerID: cust.ID, Process: e.proc.Name, Inputs: inputs[:k]}); err != nil {
				return err
			}
			share -= k
		}
	}
	return nil
}

// burn runs the robots until `want` tasks are done (or nothing is left
// when want is 0) and measures.
func (e *env) burn(ctx context.Context, want int) (done int, secs float64, claims, reports []time.Duration, empty int, err error) {
	var (
		mu       sync.Mutex
		wg       sync.WaitGroup
		firstErr error
		count    int
		started  int // claims begun towards want
	)
	start := time.Now()
	for _, id := range e.robots {
		wg.Go(func() {
			var cl, rp []time.Duration
			empties := 0
			defer func() {
				mu.Lock()
				claims = append(claims, cl...)
				reports = append(reports, rp...)
				empty += empties
				mu.Unlock()
			}()
			for {
				mu.Lock()
				stop := firstErr != nil || (want > 0 && started >= want)
				started++
				mu.Unlock()
				if stop {
					return
				}
				t0 := time.Now()
				c, err := e.q.ClaimTask(ctx, id)
				cl = append(cl, time.Since(t0))
				if err != nil {
					mu.Lock()
					firstErr = err
					mu.Unlock()
					return
				}
				if c == nil {
					empties++
					mu.Lock()
					started--
					mu.Unlock()
					if want > 0 {
						continue
					}
					return
				}
				t1 := time.Now()
				if _, err := e.q.Report(ctx, id, c.Task.ID, c.Attempt.Number, dispatch.Result{Success: true}); err != nil {
					mu.Lock()
					firstErr = err
					mu.Unlock()
					return
				}
				rp = append(rp, time.Since(t1))
				mu.Lock()
				count++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return count, time.Since(start).Seconds(), claims, reports, empty, firstErr
}

func pct(d []time.Duration, p float64) float64 {
	if len(d) == 0 {
		return 0
	}
	slices.Sort(d)
	i := min(int(p*float64(len(d))), len(d)-1)
	return float64(d[i].Microseconds()) / 1000
}

// BurnDown pre-inserts o.Tasks tasks across o.Customers customers and burns
// them down with o.Robots concurrent robots.
func BurnDown(ctx context.Context, o Options) (*Result, error) {
	if err := check(&o); err != nil {
		return nil, err
	}
	e, err := open(ctx, o)
	if err != nil {
		return nil, err
	}
	defer e.close()
	if err := e.submit(ctx, o.Tasks, o.Customers); err != nil {
		return nil, err
	}
	done, secs, claims, reports, empty, err := e.burn(ctx, 0)
	if err != nil {
		return nil, fmt.Errorf("bench: burn-down: %w", err)
	}
	if done != o.Tasks {
		return nil, fmt.Errorf("bench: burned down %d tasks of %d", done, o.Tasks)
	}
	return &Result{
		DB: e.name, Tasks: o.Tasks, Robots: o.Robots, Customers: o.Customers, Fairness: fairnessName(o.Fairness),
		Backlog: o.Tasks, Seconds: secs, TasksPerS: float64(done) / secs,
		ClaimP50ms: pct(claims, 0.5), ClaimP99ms: pct(claims, 0.99),
		ReportP50ms: pct(reports, 0.5), ReportP99ms: pct(reports, 0.99),
		EmptyPolls: empty, GoMaxProcs: runtime.GOMAXPROCS(0),
	}, nil
}

// Backlog measures claim+report throughput for o.Tasks tasks with each of
// the given backlogs pending across o.Customers customers. The backlog is
// written with one INSERT … SELECT per batch (the rows Submit would write,
// without its per-row round trips), then grown for the next size in the
// same batches: one open order per customer at every size.
func Backlog(ctx context.Context, o Options, sizes []int) ([]*Result, error) {
	if err := check(&o); err != nil {
		return nil, err
	}
	e, err := open(ctx, o)
	if err != nil {
		return nil, err
	}
	defer e.close()
	var custs []int
	for c := range o.Customers {
		cu, err := e.db.Customer.Create().SetName(fmt.Sprintf("customer-%d", c)).Save(sys(ctx))
		if err != nil {
			return nil, fmt.Errorf("bench: customer: %w", err)
		}
		custs = append(custs, cu.ID)
	}
	have := 0
	var out []*Result
	for _, size := range sizes {
		if size > have {
			if err := e.fill(ctx, custs, size-have); err != nil {
				return nil, err
			}
			have = size
		}
		done, secs, claims, reports, empty, err := e.burn(ctx, o.Tasks)
		if err != nil {
			return nil, fmt.Errorf("bench: backlog %d: %w", size, err)
		}
		have -= done
		plan, err := Explain(ctx, e.db, e.firstBatch, e.robots[0])
		if err != nil {
			return nil, err
		}
		out = append(out, &Result{Plan: plan,
			DB: e.name, Tasks: done, Robots: o.Robots, Customers: o.Customers, Fairness: fairnessName(o.Fairness),
			Backlog: size, Seconds: secs, TasksPerS: float64(done) / secs,
			ClaimP50ms: pct(claims, 0.5), ClaimP99ms: pct(claims, 0.99),
			ReportP50ms: pct(reports, 0.5), ReportP99ms: pct(reports, 0.99),
			EmptyPolls: empty, GoMaxProcs: runtime.GOMAXPROCS(0),
		})
	}
	return out, nil
}

// fill adds n pending tasks, spread over the customers, each customer's to
// its one backlog batch.
func (e *env) fill(ctx context.Context, custs []int, n int) error {
	now := time.Now().UTC()
	pg := e.name == "postgres"
	if e.backlog == nil {
		e.backlog = map[int]*backlogBatch{}
	}
	for i, c := range custs {
		k := n / len(custs)
		if i < n%len(custs) {
			k++
		}
		if k == 0 {
			continue
		}
		tx, err := e.db.Tx(sys(ctx))
		if err != nil {
			return err
		}
		bb := e.backlog[c]
		if bb == nil {
			b, err := tx.Batch.Create().SetCustomerID(c).SetProcessID(e.proc.ID).SetPoolID(e.proc.PoolID).
				SetTotal(k).SetPending(k).SetCreatedAt(now).SetUpdatedAt(now).Save(sys(ctx))
			if err != nil {
				_ = tx.Rollback()
				return fmt.Errorf("bench: batch: %w", err)
			}
			bb = &backlogBatch{id: b.ID}
			e.backlog[c] = bb
		} else if err := tx.Batch.UpdateOneID(bb.id).AddTotal(k).AddPending(k).Exec(sys(ctx)); err != nil {
			_ = tx.Rollback()
			return fmt.Errorf("bench: grow batch: %w", err)
		}
		if e.firstBatch == 0 {
			e.firstBatch = bb.id
		}
		var stmt string
		if pg {
			stmt = `INSERT INTO tasks (created_at, updated_at, process_id, pool_id, customer_id, seq, state, input, output,
				attempt_no, executions_failed, timeouts, error_message, rand_key, batch_id)
				SELECT $1, $1, $2, $3, $4, $7 + g, 'pending', '{}', '', 0, 0, 0, '', (random() * 4611686018427387903)::bigint, $5
				FROM generate_series(0, $6 - 1) AS g`
		} else {
			stmt = `INSERT INTO tasks (created_at, updated_at, process_id, pool_id, customer_id, seq, state, input, output,
				attempt_no, executions_failed, timeouts, error_message, rand_key, batch_id)
				WITH RECURSIVE s(g) AS (SELECT 0 UNION ALL SELECT g + 1 FROM s WHERE g + 1 < ?6)
				SELECT ?1, ?1, ?2, ?3, ?4, ?7 + g, 'pending', '{}', '', 0, 0, 0, '', abs(random()) % 4611686018427387904, ?5 FROM s`
		}
		if _, err := tx.ExecContext(ctx, stmt, now, e.proc.ID, e.proc.PoolID, c, bb.id, k, bb.total); err != nil {
			_ = tx.Rollback()
			return fmt.Errorf("bench: insert backlog: %w", err)
		}
		if err := tx.Commit(); err != nil {
			return err
		}
		bb.total += k
	}
	if e.name == "postgres" {
		if _, err := e.db.ExecContext(ctx, "ANALYZE tasks"); err != nil {
			return fmt.Errorf("bench: analyze: %w", err)
		}
	}
	return nil
}

// Explain returns the database's plan for the claim's random draw with
// the current contents, for the README: on PostgreSQL the whole claim
// statement, on SQLite the draw (its claim is several statements).
func Explain(ctx context.Context, db *store.DB, batchID, robotID int) (string, error) {
	var stmt string
	args := []any{batchID, int64(1) << 61, robotID}
	if db.Driver == store.Postgres {
		// The statement a claim runs (EXPLAIN plans it without running it).
		now := time.Now().UTC()
		stmt = "EXPLAIN " + dispatch.PostgresClaimStatement()
		args = []any{batchID, robotID, int64(1) << 61, now, now, now, "explain", now.Add(-dispatch.IdleLiveness)}
	} else {
		stmt = `EXPLAIN QUERY PLAN SELECT * FROM tasks WHERE batch_id = ? AND state = 'pending' AND rand_key >= ?
			AND id NOT IN (SELECT task_id FROM attempts WHERE robot_id = ? AND state = 'abandoned')
			ORDER BY rand_key LIMIT 1`
	}
	rows, err := db.QueryContext(ctx, stmt, args...)
	if err != nil {
		return "", fmt.Errorf("explain: %w", err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var b strings.Builder
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return "", err
		}
		fmt.Fprintln(&b, vals[len(vals)-1])
	}
	return b.String(), rows.Err()
}

func fairnessName(f string) string {
	name, err := policy.ParseFairness(f)
	if err != nil {
		return f
	}
	return string(name)
}
