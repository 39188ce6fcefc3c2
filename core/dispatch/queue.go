package dispatch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"entgo.io/ent/dialect/sql/sqlgraph"

	"github.com/rpacloud/rpacloud/core/events"
	"github.com/rpacloud/rpacloud/core/metrics"
	"github.com/rpacloud/rpacloud/ent"
	"github.com/rpacloud/rpacloud/ent/privacy"
	"github.com/rpacloud/rpacloud/ent/process"
)

// Errors callers can test for.
var (
	// ErrStaleAttempt: the report or heartbeat names an attempt that is no
	// longer the task's running attempt (it timed out, was already
	// reported, or belongs to another robot).
	ErrStaleAttempt = errors.New("stale attempt")
	// ErrRobotUnavailable: the robot may not take work (draining, released).
	ErrRobotUnavailable = errors.New("robot may not take work")
	// ErrBadInput: the submission itself is wrong.
	ErrBadInput = errors.New("bad input")
	// ErrResultRefused: a robot's result could not be recorded as sent
	// (too big, not JSON, unknown error class). Unlike ErrBadInput it
	// changed something: the attempt failed as an execution error with the
	// reason (see Queue.Report).
	ErrResultRefused = errors.New("result refused")
)

// MaxTimeoutRobots is how many time-outs a task may have in all: the
// sweeper fails it with timeout_exhausted at that many (the seed: "the
// ingredients are probably bad"). Each time-out goes to another robot
// while the pool has one that could take the task, so in a pool of at
// least that many live robots they are on different robots, as the seed
// says; in a smaller pool the robots that timed out retry it (see
// claimable) and the bound still holds.
const MaxTimeoutRobots = 3

// Queue is the task queue on the database.
type Queue struct {
	client *ent.Client
	bus    *events.Bus
	log    *slog.Logger
	now    func() time.Time

	mu  sync.Mutex
	rnd *rand.Rand

	cache settingsCache

	// maxResult bounds a task's stored output and error message.
	maxResult int

	// stopGrace is how long a robot has to stop after a stop request.
	stopGrace time.Duration

	// postgres is set once a claim has seen the database's dialect; claims
	// and reports take the PostgreSQL fast path only then (fastpath.go).
	postgres atomic.Bool
	// dialectKnown: the dialect was asked for (isPostgres).
	dialectKnown atomic.Bool

	// live holds the robots' last-seen moments until they are written
	// (liveness.go).
	live liveness

	// beats and reports write heartbeats and reports that arrive together
	// as one group (group.go).
	beats   *grouper[beat, time.Time]
	reports *grouper[reportReq, *ent.Task]

	// metrics counts what this queue finished and dispatched; nil: none.
	metrics *metrics.Metrics
}

// Options configure a Queue.
type Options struct {
	Bus    *events.Bus
	Logger *slog.Logger
	// Now is the queue's clock: deadlines, time-outs, served moments and
	// event times all come from it. Default time.Now.
	Now func() time.Time
	// Seed seeds the random draws (batch under weighted, task within a
	// batch); 0 picks a random seed.
	Seed uint64
	// MaxResultBytes bounds what one task stores as output or error
	// message; default MaxOutputBytes. A larger output is refused (the
	// attempt fails), a larger message shortened.
	MaxResultBytes int
	// StopGrace is how long a robot has, after an operator asked it to
	// stop a task, before its attempt is treated like a time-out; default
	// DefaultStopGrace.
	StopGrace time.Duration
	// GroupMax bounds how many heartbeats, or reports, are written
	// together in one statement or transaction (group commit, group.go);
	// default DefaultGroupMax. 1 writes each on its own.
	GroupMax int
	// Metrics receives finished tasks and attempts, claim durations and
	// queue waits once their transaction committed; nil records nothing.
	Metrics *metrics.Metrics
}

// New returns a queue on client.
func New(client *ent.Client, o Options) *Queue {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	seed := o.Seed
	if seed == 0 {
		seed = rand.Uint64()
	}
	if o.MaxResultBytes <= 0 {
		o.MaxResultBytes = MaxOutputBytes
	}
	if o.StopGrace <= 0 {
		o.StopGrace = DefaultStopGrace
	}
	if o.GroupMax <= 0 {
		o.GroupMax = DefaultGroupMax
	}
	q := &Queue{client: client, bus: o.Bus, log: o.Logger, now: o.Now, maxResult: o.MaxResultBytes, stopGrace: o.StopGrace,
		metrics: o.Metrics,
		rnd:     rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
	q.newGroupers(o.GroupMax)
	return q
}

// Uint64N is the queue's random source for policy.Pick.
func (q *Queue) Uint64N(n uint64) uint64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.rnd.Uint64N(n)
}

// randKey draws a task's sampling key, uniform in [0, 2^62).
func (q *Queue) randKey() int64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.rnd.Int64N(1 << 62)
}

func (q *Queue) clock() time.Time { return q.now().UTC() }

// system marks ctx as the daemon acting on its own authority: callers have
// already checked what the principal may do.
func system(ctx context.Context) context.Context {
	return privacy.DecisionContext(ctx, privacy.Allow)
}

// withTx runs fn in one transaction and publishes the events it recorded
// once the transaction has committed.
func (q *Queue) withTx(ctx context.Context, fn func(ctx context.Context, tx *ent.Tx, rec *recorder) error) error {
	ctx = system(ctx)
	tx, err := q.client.Tx(ctx)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	rec := &recorder{now: q.clock()}
	if err := fn(ctx, tx, rec); err != nil {
		if rerr := tx.Rollback(); rerr != nil {
			return fmt.Errorf("%w (rollback: %v)", err, rerr)
		}
		return err
	}
	stored, err := rec.flush(ctx, tx)
	if err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	q.bus.Publish(stored...)
	q.observe(ctx, rec.obs)
	return nil
}

// recorder collects the events of one transaction.
type recorder struct {
	now time.Time
	evs []*ent.EventCreate
	obs []observation // for the metrics, after commit (observe.go)
}

func (r *recorder) add(tx *ent.Tx, typ events.Type, msg string, t *ent.Task, robotID *int) {
	c := events.Create(tx.Event, typ, r.now).SetMessage(msg)
	if t != nil {
		c.SetTaskID(t.ID).SetBatchID(t.BatchID).SetCustomerID(t.CustomerID).
			SetPoolID(t.PoolID).SetProcessID(t.ProcessID).SetAttemptNo(t.AttemptNo)
	}
	c.SetNillableRobotID(robotID)
	r.evs = append(r.evs, c)
	r.noteEvent(typ, t)
}

func (r *recorder) flush(ctx context.Context, tx *ent.Tx) ([]*ent.Event, error) {
	if len(r.evs) == 0 {
		return nil, nil
	}
	out, err := tx.Event.CreateBulk(r.evs...).Save(ctx)
	if err != nil {
		return nil, fmt.Errorf("record events: %w", err)
	}
	return out, nil
}

// SubmitRequest is one batch of tasks for one process.
type SubmitRequest struct {
	CustomerID  int
	Process     string
	Label       string
	Inputs      []json.RawMessage // one JSON object per task
	SubmittedBy string
	// TriggerID and ScheduledFor, set together, say which scheduled run
	// of a trigger the batch is; a second batch for the same run is
	// refused with ErrAlreadySubmitted.
	TriggerID    *int
	ScheduledFor *time.Time
	// FiredBy, for a trigger's batch, is the message of the trigger.fired
	// event recorded in the same transaction (which trigger, which run).
	FiredBy string
}

// ErrAlreadySubmitted: a batch for this trigger's scheduled run exists
// (another leader fired it first); nothing was written.
var ErrAlreadySubmitted = errors.New("this scheduled run already has its batch")

func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

// MaxBatchSize bounds one submission so that one request cannot hold the
// writer for long; bigger orders are several batches.
const MaxBatchSize = 10000

// Submit writes a batch and its tasks in one transaction. The batch goes on
// top of its pool's stack A.
func (q *Queue) Submit(ctx context.Context, req SubmitRequest) (*ent.Batch, error) {
	if len(req.Inputs) == 0 {
		return nil, fmt.Errorf("submit to %q: %w: a batch needs at least one task", req.Process, ErrBadInput)
	}
	if len(req.Inputs) > MaxBatchSize {
		return nil, fmt.Errorf("submit to %q: %w: %d tasks in one batch, at most %d", req.Process, ErrBadInput, len(req.Inputs), MaxBatchSize)
	}
	for i, in := range req.Inputs {
		var obj map[string]any
		if err := json.Unmarshal(in, &obj); err != nil || obj == nil {
			return nil, fmt.Errorf("submit to %q: %w: task %d: input must be a JSON object", req.Process, ErrBadInput, i)
		}
		// encoding/json lets invalid UTF-8 through inside strings;
		// PostgreSQL refuses it in a text column, which would surface as
		// a storage error rather than a bad input.
		if !utf8.Valid(in) {
			return nil, fmt.Errorf("submit to %q: %w: task %d: input is not valid UTF-8", req.Process, ErrBadInput, i)
		}
		// Task inputs are stored in the database as they come; a secret in
		// one would sit there in plain text. Credentials reach robots only
		// through the credential store, bound to the process.
		if _, ok := obj["credentials"]; ok {
			return nil, fmt.Errorf("submit to %q: %w: task %d: input has a \"credentials\" field; secrets are never stored with tasks: store them with `rpacloud credential put` and bind them to the process", req.Process, ErrBadInput, i)
		}
	}
	var out *ent.Batch
	err := q.withTx(ctx, func(ctx context.Context, tx *ent.Tx, rec *recorder) error {
		// A process with an owner runs only its owner's work: its
		// credentials are resolved under the owner, so another customer's
		// batch would run with the owner's passwords on input the other
		// customer chose. Processes without an owner are shared and take
		// anyone's work (and may use no credentials, see credentials). A
		// process of another owner answers exactly like a missing one, so
		// the answer tells nobody which names exist.
		p, err := tx.Process.Query().Where(process.Name(req.Process), process.Active(true),
			process.Or(process.OwnerIDIsNil(), process.OwnerID(req.CustomerID))).Only(ctx)
		if ent.IsNotFound(err) {
			return fmt.Errorf("submit: %w: no active process %q for this customer", ErrBadInput, req.Process)
		}
		if err != nil {
			return fmt.Errorf("submit: find process: %w", err)
		}
		n := len(req.Inputs)
		b, err := tx.Batch.Create().
			SetCustomerID(req.CustomerID).SetProcessID(p.ID).SetPoolID(p.PoolID).
			SetLabel(req.Label).SetTotal(n).SetPending(n).SetSubmittedBy(req.SubmittedBy).
			SetNillableTriggerID(req.TriggerID).SetNillableScheduledFor(utcPtr(req.ScheduledFor)).
			SetCreatedAt(rec.now).SetUpdatedAt(rec.now).
			Save(system(ctx))
		// Only the unique index on (trigger, scheduled run) means another
		// leader fired it: a foreign key failure (a trigger row gone) is
		// an error, not a run that counts as fired.
		if req.TriggerID != nil && sqlgraph.IsUniqueConstraintError(err) {
			return fmt.Errorf("submit: trigger %d at %s: %w", *req.TriggerID, req.ScheduledFor.UTC().Format(time.RFC3339), ErrAlreadySubmitted)
		}
		if err != nil {
			return fmt.Errorf("submit: create batch: %w", err)
		}
		// Bulk inserts in chunks keep each statement under the databases'
		// bind-parameter limits.
		const chunk = 500
		for start := 0; start < n; start += chunk {
			end := min(start+chunk, n)
			creates := make([]*ent.TaskCreate, 0, end-start)
			for i := start; i < end; i++ {
				creates = append(creates, tx.Task.Create().
					SetBatchID(b.ID).SetProcessID(p.ID).SetPoolID(p.PoolID).
					SetCustomerID(req.CustomerID).SetSeq(i).SetInput(string(req.Inputs[i])).SetRandKey(q.randKey()).
					SetCreatedAt(rec.now).SetUpdatedAt(rec.now))
			}
			if err := tx.Task.CreateBulk(creates...).Exec(system(ctx)); err != nil {
				return fmt.Errorf("submit: create tasks: %w", err)
			}
		}
		c := events.Create(tx.Event, events.BatchSubmitted, rec.now).
			SetBatchID(b.ID).SetCustomerID(req.CustomerID).SetPoolID(p.PoolID).SetProcessID(p.ID).
			SetMessage(fmt.Sprintf("%d tasks for %s", n, p.Name))
		rec.evs = append(rec.evs, c)
		if req.TriggerID != nil {
			rec.evs = append(rec.evs, events.Create(tx.Event, events.TriggerFired, rec.now).
				SetBatchID(b.ID).SetCustomerID(req.CustomerID).SetPoolID(p.PoolID).SetProcessID(p.ID).
				SetMessage(req.FiredBy))
		}
		out = b
		return nil
	})
	if err != nil {
		return nil, err
	}
	// The batch was read in the committed transaction; unwrapped, its edges
	// (customer, process, tasks) resolve on the client, not on the closed
	// transaction.
	return out.Unwrap(), nil
}

// settingsTTL is how long a pool's fairness and a process's max_duration
// and retries are reused from memory: they change only when the
// configuration is synced, and re-reading them on every claim and report
// costs a statement each. A changed setting applies within this time.
const settingsTTL = 5 * time.Second

type cachedRow[T any] struct {
	v  T
	at time.Time
}

type settingsCache struct {
	mu    sync.Mutex
	procs map[int]cachedRow[*ent.Process]
	pools map[int]cachedRow[*ent.Pool]
}

func (q *Queue) process(ctx context.Context, tx *ent.Tx, id int) (*ent.Process, error) {
	return q.processFrom(ctx, tx.Process, id)
}

func (q *Queue) processFrom(ctx context.Context, pc *ent.ProcessClient, id int) (*ent.Process, error) {
	now := q.clock()
	q.cache.mu.Lock()
	c, ok := q.cache.procs[id]
	q.cache.mu.Unlock()
	if ok && now.Sub(c.at) < settingsTTL && now.Sub(c.at) >= 0 {
		return c.v, nil
	}
	p, err := pc.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	q.cache.mu.Lock()
	if q.cache.procs == nil {
		q.cache.procs = map[int]cachedRow[*ent.Process]{}
	}
	q.cache.procs[id] = cachedRow[*ent.Process]{p, now}
	q.cache.mu.Unlock()
	return p, nil
}

func (q *Queue) poolFrom(ctx context.Context, pc *ent.PoolClient, id int) (*ent.Pool, error) {
	now := q.clock()
	q.cache.mu.Lock()
	c, ok := q.cache.pools[id]
	q.cache.mu.Unlock()
	if ok && now.Sub(c.at) < settingsTTL && now.Sub(c.at) >= 0 {
		return c.v, nil
	}
	p, err := pc.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	q.cache.mu.Lock()
	if q.cache.pools == nil {
		q.cache.pools = map[int]cachedRow[*ent.Pool]{}
	}
	q.cache.pools[id] = cachedRow[*ent.Pool]{p, now}
	q.cache.mu.Unlock()
	return p, nil
}

// ForgetSettings drops the cached pool and process settings so the next
// claim reads them again; call it after changing them (configuration sync,
// simulators).
func (q *Queue) ForgetSettings() {
	q.cache.mu.Lock()
	defer q.cache.mu.Unlock()
	q.cache.procs, q.cache.pools = nil, nil
}
