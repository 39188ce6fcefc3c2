// Package retention prunes what grows with every run (events, attempts,
// finished tasks and their batches, resolved anomalies, and the audit
// trail when an operator sets its retention) once it has outlived the
// configured retention. The rule of what has expired is the pure
// core/retention/expire; this package asks the database for exactly those
// rows and deletes them.
//
// It runs on the leading daemon only (a lease.Service), in small batches
// with a pause between them: SQLite has one writer, and a claim or a
// report must never wait behind a delete of a year of events. Each batch
// is its own short statement or transaction.
package retention

import (
	"context"
	stdsql "database/sql"
	"fmt"
	"log/slog"
	"time"

	"entgo.io/ent/dialect"
	"entgo.io/ent/dialect/sql"

	"github.com/rpacloud/rpacloud/core/metrics"
	"github.com/rpacloud/rpacloud/core/retention/expire"
	"github.com/rpacloud/rpacloud/core/retry"
	"github.com/rpacloud/rpacloud/ent"
	"github.com/rpacloud/rpacloud/ent/anomaly"
	"github.com/rpacloud/rpacloud/ent/attempt"
	"github.com/rpacloud/rpacloud/ent/auditentry"
	"github.com/rpacloud/rpacloud/ent/batch"
	"github.com/rpacloud/rpacloud/ent/event"
	"github.com/rpacloud/rpacloud/ent/predicate"
	"github.com/rpacloud/rpacloud/ent/privacy"
	"github.com/rpacloud/rpacloud/ent/task"
)

// Defaults of Options.
const (
	DefaultBatchRows = 500
	DefaultPause     = 100 * time.Millisecond
	DefaultInterval  = 10 * time.Minute
)

// Options configure a Pruner.
type Options struct {
	Client *ent.Client
	// DB and Dialect are the database under Client: the audit trail is
	// append-only below every ent caller (its schema's hook), so its
	// expired entries are deleted with a plain statement.
	DB      *stdsql.DB
	Dialect string // dialect.SQLite or dialect.Postgres
	// Policy is read at the start of each round, so a reload applies.
	Policy func() expire.Policy
	// Interval between two rounds, read after each round; default 10m.
	Interval func() time.Duration
	// BatchRows is how many rows one statement deletes at most; default
	// 500.
	BatchRows int
	// Pause between two batches, so that claims and reports queued behind
	// the one SQLite writer go first; default 100ms.
	Pause time.Duration
	// Now is the clock; default time.Now. Tests inject one.
	Now func() time.Time
	// Sleep waits and returns false once ctx ends; default retry.Sleep.
	Sleep   func(ctx context.Context, d time.Duration) bool
	Metrics *metrics.Metrics // nil: not counted
	Logger  *slog.Logger     // default slog.Default()
}

// Pruner deletes expired rows.
type Pruner struct{ o Options }

// New returns a pruner; o.Client, o.DB and o.Policy are required.
func New(o Options) *Pruner {
	if o.BatchRows <= 0 {
		o.BatchRows = DefaultBatchRows
	}
	if o.Pause < 0 {
		o.Pause = 0
	} else if o.Pause == 0 {
		o.Pause = DefaultPause
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Sleep == nil {
		o.Sleep = retry.Sleep
	}
	if o.Interval == nil {
		o.Interval = func() time.Duration { return DefaultInterval }
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return &Pruner{o: o}
}

// Run prunes a round at once and then every interval until ctx ends
// (the daemon stops or loses the lead). A failed round is logged and the
// next one tries again.
func (p *Pruner) Run(ctx context.Context, _ int64) {
	for {
		if _, err := p.Round(ctx); err != nil && ctx.Err() == nil {
			p.o.Logger.Error("retention: pruning round failed", "err", err)
		}
		d := p.o.Interval()
		if d <= 0 {
			d = DefaultInterval
		}
		if !p.o.Sleep(ctx, d) {
			return
		}
	}
}

// Counts are the rows a round deleted, by kind.
type Counts map[expire.Kind]int

// Round deletes every row expired at the round's start, kind by kind in
// dependency order (expire.Kinds), batch by batch, and logs one line.
func (p *Pruner) Round(ctx context.Context) (Counts, error) {
	ctx = privacy.DecisionContext(ctx, privacy.Allow)
	start := time.Now()
	now := p.o.Now()
	pol := p.o.Policy()
	got := Counts{}
	for _, k := range expire.Kinds {
		cut, ok := pol.Cutoff(k, now)
		if !ok {
			continue
		}
		below, err := p.frontier(ctx, k, cut)
		if err != nil {
			return got, fmt.Errorf("retention: %s: %w", k, err)
		}
		if below == 0 {
			continue // nothing was even made before the cutoff
		}
		for {
			n, err := p.batch(ctx, k, cut, below, got)
			got[k] += n
			p.o.Metrics.Pruned(string(k), n)
			if err != nil {
				return got, fmt.Errorf("retention: prune %s before %s: %w", k, cut.UTC().Format(time.RFC3339), err)
			}
			if n < p.o.BatchRows {
				break
			}
			if !p.o.Sleep(ctx, p.o.Pause) {
				return got, ctx.Err()
			}
		}
	}
	args := []any{"took", time.Since(start).Round(time.Millisecond)}
	for _, k := range expire.Kinds {
		args = append(args, string(k), got[k])
	}
	p.o.Logger.Info("retention: pruned", args...)
	return got, nil
}

// noBound is a frontier above every id.
const noBound = int(^uint(0) >> 1)

// frontier returns the first id of kind k made at or after cut (noBound
// when there is none; 0 when even the first row was). Rows are made with
// growing ids and their time of making comes before the time they expire
// by (a task is created before it finishes, an attempt starts before it
// ends, an anomaly is detected before it is resolved), so every expired
// row lies below it. Candidates are looked for below it only: a round
// reads the old rows, never the whole table, though no index covers the
// columns it prunes by. One indexed read (the primary key) that stops at
// the first young row.
func (p *Pruner) frontier(ctx context.Context, k expire.Kind, cut time.Time) (int, error) {
	var (
		id  int
		err error
	)
	switch k {
	case expire.Events:
		id, err = p.o.Client.Event.Query().Where(event.AtGTE(cut)).Order(event.ByID()).FirstID(ctx)
	case expire.Anomalies:
		id, err = p.o.Client.Anomaly.Query().Where(anomaly.DetectedAtGTE(cut)).Order(anomaly.ByID()).FirstID(ctx)
	case expire.Audit:
		id, err = p.o.Client.AuditEntry.Query().Where(auditentry.AtGTE(cut)).Order(auditentry.ByID()).FirstID(ctx)
	case expire.Attempts:
		id, err = p.o.Client.Attempt.Query().Where(attempt.StartedAtGTE(cut)).Order(attempt.ByID()).FirstID(ctx)
	case expire.Tasks:
		id, err = p.o.Client.Task.Query().Where(task.CreatedAtGTE(cut)).Order(task.ByID()).FirstID(ctx)
	case expire.Batches:
		id, err = p.o.Client.Batch.Query().Where(batch.CreatedAtGTE(cut)).Order(batch.ByID()).FirstID(ctx)
	default:
		return 0, fmt.Errorf("unknown kind %q", k)
	}
	if ent.IsNotFound(err) {
		return noBound, nil
	}
	return id, err
}

// batch deletes at most BatchRows expired rows of kind k below the
// frontier, oldest ids first.
func (p *Pruner) batch(ctx context.Context, k expire.Kind, cut time.Time, below int, got Counts) (int, error) {
	n := p.o.BatchRows
	switch k {
	case expire.Events:
		return p.simple(ctx, event.Table, event.FieldID, func() ([]int, error) {
			return p.o.Client.Event.Query().Where(event.IDLT(below), event.AtLT(cut)).Order(event.ByID()).Limit(n).IDs(ctx)
		})
	case expire.Anomalies:
		return p.simple(ctx, anomaly.Table, anomaly.FieldID, func() ([]int, error) {
			return p.o.Client.Anomaly.Query().Where(anomaly.IDLT(below), anomaly.StatusEQ(anomaly.StatusResolved), anomaly.ResolvedAtLT(cut)).
				Order(anomaly.ByID()).Limit(n).IDs(ctx)
		})
	case expire.Audit:
		return p.simple(ctx, auditentry.Table, auditentry.FieldID, func() ([]int, error) {
			return p.o.Client.AuditEntry.Query().Where(auditentry.IDLT(below), auditentry.AtLT(cut)).Order(auditentry.ByID()).Limit(n).IDs(ctx)
		})
	case expire.Attempts:
		return p.attempts(ctx, cut, below)
	case expire.Tasks:
		return p.tasks(ctx, cut, below, got)
	case expire.Batches:
		return p.batches(ctx, cut, below)
	}
	return 0, fmt.Errorf("unknown kind %q", k)
}

// simple deletes the rows list returns: rows that never change once
// expired (events and audit entries are immutable; a resolved anomaly
// stays resolved), so listing and deleting need no transaction. The
// delete is a plain statement: the audit trail's hook refuses every ent
// delete.
func (p *Pruner) simple(ctx context.Context, table, id string, list func() ([]int, error)) (int, error) {
	ids, err := list()
	if err != nil || len(ids) == 0 {
		return 0, err
	}
	q, args := sql.Dialect(p.o.Dialect).Delete(table).Where(sql.InInts(id, ids...)).Query()
	res, err := p.o.DB.ExecContext(ctx, q, args...)
	if err != nil {
		return 0, err
	}
	rows, err := res.RowsAffected()
	return int(rows), err
}

// closedTask: the task is finished and so is its batch (expire.Task).
func closedTask() []predicate.Task {
	return []predicate.Task{
		task.StateIn(task.StateSucceeded, task.StateFailed, task.StateCancelled),
		task.HasBatchWith(batch.StackEQ(batch.StackFinished)),
	}
}

// attempts deletes finished attempts that ended before cut, of closed
// tasks (expire.AttemptExpired's own clause; those of expired tasks go
// with them in tasks). The predicate is checked again by the delete
// itself, so a task made pending in between keeps its attempts.
func (p *Pruner) attempts(ctx context.Context, cut time.Time, below int) (int, error) {
	where := []predicate.Attempt{
		attempt.IDLT(below),
		attempt.StateNEQ(attempt.StateRunning),
		attempt.FinishedAtLT(cut),
		attempt.HasTaskWith(closedTask()...),
	}
	ids, err := p.o.Client.Attempt.Query().Where(where...).Order(attempt.ByID()).Limit(p.o.BatchRows).IDs(ctx)
	if err != nil || len(ids) == 0 {
		return 0, err
	}
	return p.o.Client.Attempt.Delete().Where(append(where, attempt.IDIn(ids...))...).Exec(ctx)
}

// tasks deletes expired tasks with their attempts, in one transaction:
// the tasks are locked first (PostgreSQL; SQLite's transaction holds the
// one writer), so a person's retry waits for the delete or wins before it.
// The attempts deleted with them are added to got.
func (p *Pruner) tasks(ctx context.Context, cut time.Time, below int, got Counts) (n int, err error) {
	tx, err := p.o.Client.Tx(ctx)
	if err != nil {
		return 0, err
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	q := tx.Task.Query().Where(append(closedTask(), task.IDLT(below), task.FinishedAtLT(cut),
		task.Not(task.HasAttemptsWith(attempt.StateEQ(attempt.StateRunning))))...).Order(task.ByID()).Limit(p.o.BatchRows)
	if p.o.Dialect == dialect.Postgres {
		q = q.ForUpdate(sql.WithLockTables(task.Table))
	}
	ids, err := q.IDs(ctx)
	if err != nil || len(ids) == 0 {
		if err == nil {
			err = tx.Commit()
		}
		return 0, err
	}
	na, err := tx.Attempt.Delete().Where(attempt.TaskIDIn(ids...)).Exec(ctx)
	if err != nil {
		return 0, fmt.Errorf("attempts of expired tasks: %w", err)
	}
	if n, err = tx.Task.Delete().Where(task.IDIn(ids...)).Exec(ctx); err != nil {
		return 0, err
	}
	if err = tx.Commit(); err != nil {
		return 0, err
	}
	got[expire.Attempts] += na
	p.o.Metrics.Pruned(string(expire.Attempts), na)
	return n, nil
}

// batches deletes finished batches that finished before cut and have no
// task left. The foreign key from tasks refuses a batch that still has
// one, whatever happened in between.
func (p *Pruner) batches(ctx context.Context, cut time.Time, below int) (int, error) {
	where := []predicate.Batch{batch.IDLT(below), batch.StackEQ(batch.StackFinished), batch.FinishedAtLT(cut), batch.Not(batch.HasTasks())}
	ids, err := p.o.Client.Batch.Query().Where(where...).Order(batch.ByID()).Limit(p.o.BatchRows).IDs(ctx)
	if err != nil || len(ids) == 0 {
		return 0, err
	}
	return p.o.Client.Batch.Delete().Where(append(where, batch.IDIn(ids...))...).Exec(ctx)
}
