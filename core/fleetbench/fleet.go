// Package fleetbench is `rpacloud bench fleet`: a load generator of N
// virtual robots speaking the real robot protocol over HTTP (registerRobot,
// claimTask long polls, heartbeats and an awaitStop long poll while a task
// "runs", reportResult), exactly as core/robotagent does, against a daemon
// the bench starts itself (its own binary, `rpacloud server`, on SQLite or
// a fresh PostgreSQL database) or one given by URL. A submitter offers a
// task rate through the GraphQL submitBatch mutation as an administrator.
// It measures what a robot and an operator see (submit→claim, claim,
// heartbeat and report latency), what the daemon costs (CPU and RSS from
// its /metrics, idle and loaded) and the database statements per task
// (the daemon's rpacloud_db_statements_total; on PostgreSQL also
// pg_stat_database and pg_stat_statements when that is loaded).
//
// It is a client: nothing of the queue runs in this process. The one
// exception is how robot identities are made when the bench started the
// daemon: enrolment over HTTP is rate limited (core/enrol: 2 a second per
// address, 5 for the daemon), which makes 10 000 robots take most of an
// hour, so the bench then enrols them with the product's own enrolment
// function (enrol.Service.Enrol, what POST /robot/enrol calls) on the
// daemon's database, with a join token made through the API. Against a
// daemon given by URL it enrols over HTTP and waits for the limit.
package fleetbench

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"os"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rpacloud/rpacloud/core/enrol"
	"github.com/rpacloud/rpacloud/core/gqlclient"
	"github.com/rpacloud/rpacloud/core/robotagent"
	"github.com/rpacloud/rpacloud/core/robotwire"
	"github.com/rpacloud/rpacloud/core/store"
	"github.com/rpacloud/rpacloud/ent/privacy"
)

// Options of a run; zero values take the defaults of `rpacloud bench fleet`.
type Options struct {
	Robots      int
	Rate        float64       // tasks per second offered
	TaskSeconds float64       // how long a robot "runs" each task
	Heartbeat   time.Duration // a running robot's heartbeat interval
	Duration    time.Duration // the load phase (submissions)
	Idle        time.Duration // the idle phase, measured before the load
	PollWait    time.Duration // one claim's long poll (the agent's 20 s)
	// Drain bounds the wait after the load phase for the submitted tasks
	// to be done; 0: twice the task length plus 30 s.
	Drain time.Duration

	// DB is "sqlite" or a postgres:// URL: the bench starts Exe as a
	// daemon on it. Or URL and Token name a running daemon.
	DB  string
	Exe string
	URL string
	// Token is an administrator's token of the daemon at URL.
	Token string

	// DebugListen, with DB: the daemon serves Go's profiler there
	// (rpacloud server --debug-listen), to profile it under the load.
	DebugListen string

	// Log receives the progress lines (stderr); nil: none.
	Log io.Writer
}

// Result is the one JSON object `rpacloud bench fleet` prints.
type Result struct {
	DB             string  `json:"db"`
	Robots         int     `json:"robots"`
	RateOffered    float64 `json:"rate_offered"`
	TaskSeconds    float64 `json:"task_seconds"`
	HeartbeatS     float64 `json:"heartbeat_s"`
	DurationS      float64 `json:"duration_s"`
	TasksSubmitted int64   `json:"tasks_submitted"`
	TasksClaimed   int64   `json:"tasks_claimed"`
	TasksDone      int64   `json:"tasks_done"`
	// TasksPerS: tasks done within the load phase ÷ its length.
	TasksPerS float64 `json:"tasks_per_s"`
	// LoadSeconds is the load phase as it was: longer than DurationS when
	// submissions were slower than the rate (the last batches catch up),
	// and RateSubmitted the rate actually submitted over it.
	LoadSeconds     float64 `json:"load_seconds"`
	RateSubmitted   float64 `json:"rate_submitted"`
	SubmitToClaimMs Latency `json:"submit_to_claim_ms"`
	// ClaimMs: request latency of the claims that returned a task, the
	// long poll's wait for the task included.
	ClaimMs     Latency `json:"claim_ms"`
	HeartbeatMs Latency `json:"heartbeat_ms"`
	ReportMs    Latency `json:"report_ms"`
	SubmitMs    Latency `json:"submit_ms"`
	// Batches: how the offered rate was submitted.
	Batches             string             `json:"batches"`
	Idle                Usage              `json:"idle"`
	Loaded              Usage              `json:"loaded"`
	DBStatementsPerTask map[string]float64 `json:"db_statements_per_task"`
	// Postgres: PostgreSQL's own counters of the bench database per task
	// done (only when the bench started the daemon on PostgreSQL).
	Postgres map[string]float64 `json:"postgres,omitempty"`
	Errors   map[string]int64   `json:"errors"`
	Machine  Machine            `json:"machine"`
	// NotMeasured says what this run could not see.
	NotMeasured []string `json:"not_measured,omitempty"`
}

// Usage is the daemon's cost over a phase. DBWrites and DBStatements are
// the daemon's counter deltas (statements of every kind but commits).
type Usage struct {
	Seconds      float64 `json:"seconds"`
	CPUPct       float64 `json:"cpu_pct"` // of one core
	RSSMB        float64 `json:"rss_mb"`
	DBWrites     float64 `json:"db_writes"`
	DBStatements float64 `json:"db_statements"`
	DBCommits    float64 `json:"db_commits"`
	// BenchCPUPct is the bench's own process (the virtual robots and the
	// submitter) over the same phase, % of one core: on one machine it
	// competes with the daemon for the cores.
	BenchCPUPct float64 `json:"bench_cpu_pct"`
	// PostgresCPUPct is the local PostgreSQL server's processes over the
	// phase, % of one core (absent without a local PostgreSQL): the daemon's
	// CPU figure is its own process only.
	PostgresCPUPct *float64 `json:"postgres_cpu_pct,omitempty"`
}

// Machine is where the bench ran.
type Machine struct {
	Cores     int    `json:"cores"`
	GoVersion string `json:"go_version"`
	OS        string `json:"os"`
}

func (o *Options) defaults() error {
	if o.Robots == 0 {
		o.Robots = 1000
	}
	if o.Rate == 0 {
		o.Rate = 200
	}
	if o.TaskSeconds == 0 {
		o.TaskSeconds = 2
	}
	if o.Heartbeat == 0 {
		o.Heartbeat = time.Second
	}
	if o.Duration == 0 {
		o.Duration = 60 * time.Second
	}
	if o.PollWait == 0 {
		o.PollWait = 20 * time.Second
	}
	if o.Drain == 0 {
		o.Drain = 2*time.Duration(o.TaskSeconds*float64(time.Second)) + 30*time.Second
	}
	switch {
	case o.Robots < 1 || o.Robots > enrol.MaxUses:
		return fmt.Errorf("fleet: --robots %d: want 1 to %d", o.Robots, enrol.MaxUses)
	case o.Rate <= 0 || math.IsInf(o.Rate, 0) || math.IsNaN(o.Rate):
		return fmt.Errorf("fleet: --rate %v: want a positive number of tasks per second", o.Rate)
	case o.TaskSeconds < 0 || o.TaskSeconds > 3600:
		return fmt.Errorf("fleet: --task-seconds %v: want 0 to 3600", o.TaskSeconds)
	case o.Heartbeat < 100*time.Millisecond:
		return fmt.Errorf("fleet: --heartbeat %s: want at least 100ms", o.Heartbeat)
	case o.Duration <= 0 || o.Idle < 0:
		return fmt.Errorf("fleet: --duration %s, --idle %s: want a positive load and a non-negative idle phase", o.Duration, o.Idle)
	case o.PollWait < time.Second || o.PollWait > 30*time.Second:
		return fmt.Errorf("fleet: poll wait %s: want 1s to 30s (the daemon's bound)", o.PollWait)
	case o.URL == "" && o.Exe == "":
		return errors.New("fleet: no rpacloud binary to start a daemon with")
	case o.URL != "" && o.Token == "":
		return errors.New("fleet: --url needs --token, an administrator's token of that daemon")
	}
	return nil
}

// Run measures one fleet: it starts (or reaches) the daemon, enrols the
// robots, lets them wait through the idle phase, offers the rate for the
// duration, waits for the submitted tasks to be done and stops.
func Run(ctx context.Context, o Options) (*Result, error) {
	if err := o.defaults(); err != nil {
		return nil, err
	}
	logf := func(format string, args ...any) {
		if o.Log != nil {
			fmt.Fprintf(o.Log, "fleet: "+format+"\n", args...)
		}
	}
	raiseFileLimit(logf) // rlimit_*.go; a daemon started below inherits it
	res := &Result{Robots: o.Robots, RateOffered: o.Rate, TaskSeconds: o.TaskSeconds, HeartbeatS: o.Heartbeat.Seconds(),
		DurationS: o.Duration.Seconds(), Errors: map[string]int64{},
		Batches: "one submitBatch every 100 ms carrying the tasks due by then (rate/10 each), as a SaaS front end forwards its orders",
		Machine: Machine{Cores: runtime.NumCPU(), GoVersion: runtime.Version(), OS: runtime.GOOS + "/" + runtime.GOARCH}}

	// One transport for every robot: each long poll holds a connection,
	// so the pool must keep two per robot (claim or awaitStop, plus a
	// heartbeat or report) and never queue behind a limit.
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxConnsPerHost = 0
	tr.MaxIdleConns = 0
	tr.MaxIdleConnsPerHost = 2*o.Robots + 64
	hc := &http.Client{Transport: tr, Timeout: o.PollWait + 40*time.Second}
	defer tr.CloseIdleConnections()

	base, token := o.URL, o.Token
	var d *daemon
	if o.URL == "" {
		var err error
		d, err = startDaemon(ctx, o.Exe, o.DB, o.Robots, o.TaskSeconds, o.DebugListen, logf)
		if err != nil {
			return nil, err
		}
		defer d.stop()
		base, token, res.DB = d.url, d.token, d.driver
	} else {
		res.DB = "url"
		res.NotMeasured = append(res.NotMeasured, "PostgreSQL's own counters (pg_stat_database, pg_stat_statements): the bench did not make the database")
	}
	admin := &gqlclient.Client{URL: base + "/graphql", Token: token, HTTP: hc}

	var pg *sql.DB
	withStatements := false
	if d != nil && d.driver == "postgres" {
		var err error
		if pg, err = sql.Open("pgx", d.dsn); err != nil {
			return nil, fmt.Errorf("fleet: %w", err)
		}
		defer pg.Close()
		pg.SetMaxOpenConns(1)
		// pg_stat_statements answers only when the server preloads it
		// (shared_preload_libraries); otherwise the counters alone.
		if _, err := pg.ExecContext(ctx, "CREATE EXTENSION IF NOT EXISTS pg_stat_statements"); err == nil {
			var calls float64
			withStatements = pg.QueryRowContext(ctx, "SELECT coalesce(sum(calls), 0) FROM pg_stat_statements").Scan(&calls) == nil
		}
		if !withStatements {
			res.NotMeasured = append(res.NotMeasured, "pg_stat_statements (not in the server's shared_preload_libraries): statements per task from the daemon's counters and pg_stat_database")
		}
	}

	tokens, err := enrolRobots(ctx, o, d, admin, hc, logf)
	if err != nil {
		return nil, err
	}

	b := &bench{o: o, base: base, hc: hc, res: res, claimed: map[int]int{},
		toClaim: newSampler(reservoirSize), claim: newSampler(reservoirSize), beat: newSampler(reservoirSize),
		report: newSampler(reservoirSize), submit: newSampler(reservoirSize)}
	rctx, stopRobots := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for _, tok := range tokens {
		wg.Go(func() { b.robot(rctx, tok) })
	}
	defer func() {
		stopRobots()
		wg.Wait()
	}()
	// The idle phase starts once every robot has registered and sent its
	// first claim.
	for b.polling.Load() < int64(o.Robots) {
		if err := sleep(ctx, 100*time.Millisecond); err != nil {
			return nil, err
		}
		if b.registerFailed.Load() > 0 {
			return nil, fmt.Errorf("fleet: %d robots could not register (%v)", b.registerFailed.Load(), b.errorsSnapshot())
		}
	}
	logf("%d robots registered and waiting for work", o.Robots)
	if err := sleep(ctx, time.Second); err != nil {
		return nil, err
	}
	m0, err := scrape(ctx, hc, base)
	if err != nil {
		return nil, err
	}
	if o.Idle > 0 {
		logf("idle phase: %s", o.Idle)
		if err := sleep(ctx, o.Idle); err != nil {
			return nil, err
		}
	}
	m1, err := scrape(ctx, hc, base)
	if err != nil {
		return nil, err
	}
	res.Idle = usage(m0, m1)

	var pg0 pgStats
	if pg != nil {
		if pg0, err = readPG(ctx, pg, withStatements); err != nil {
			return nil, err
		}
	}
	logf("load phase: %.0f tasks/s for %s", o.Rate, o.Duration)
	m2, err := scrape(ctx, hc, base)
	if err != nil {
		return nil, err
	}
	loadStart := time.Now()
	b.submitFor(ctx, admin, o.Duration)
	m3, err := scrape(ctx, hc, base)
	if err != nil {
		return nil, err
	}
	doneInWindow := b.done.Load()
	loadSeconds := time.Since(loadStart).Seconds()
	res.Loaded = usage(m2, m3)
	res.TasksPerS = round2(float64(doneInWindow) / loadSeconds)
	res.LoadSeconds, res.RateSubmitted = round2(loadSeconds), round2(float64(b.submitted.Load())/loadSeconds)

	logf("waiting up to %s for the %d submitted tasks to be done", o.Drain, b.submitted.Load())
	drainEnd := time.Now().Add(o.Drain)
	for b.done.Load() < b.submitted.Load() && time.Now().Before(drainEnd) {
		if err := sleep(ctx, 100*time.Millisecond); err != nil {
			return nil, err
		}
	}
	m4, err := scrape(ctx, hc, base)
	if err != nil {
		return nil, err
	}
	stopRobots()
	wg.Wait()

	res.TasksSubmitted, res.TasksClaimed, res.TasksDone = b.submitted.Load(), b.claims.Load(), b.done.Load()
	res.SubmitToClaimMs, res.ClaimMs = b.toClaim.latency(), b.claim.latency()
	res.HeartbeatMs, res.ReportMs, res.SubmitMs = b.beat.latency(), b.report.latency(), b.submit.latency()
	if lost := res.TasksSubmitted - res.TasksDone; lost > 0 {
		b.fail("not_done_after_drain", lost)
	}
	res.DBStatementsPerTask = map[string]float64{}
	if res.TasksDone > 0 {
		for _, k := range []string{"read", "write", "other", "commit", "rollback"} {
			res.DBStatementsPerTask[k] = round2((m4.statements[k] - m2.statements[k]) / float64(res.TasksDone))
		}
	}
	if pg != nil && res.TasksDone > 0 {
		if err := sleep(ctx, 1500*time.Millisecond); err != nil {
			return nil, err
		}
		pg1, err := readPG(ctx, pg, withStatements)
		if err != nil {
			return nil, err
		}
		n := float64(res.TasksDone)
		res.Postgres = map[string]float64{
			"xact_commit": round2((pg1.commits - pg0.commits) / n), "tup_inserted": round2((pg1.inserted - pg0.inserted) / n),
			"tup_updated": round2((pg1.updated - pg0.updated) / n), "tup_deleted": round2((pg1.deleted - pg0.deleted) / n),
		}
		if pg0.calls != nil && pg1.calls != nil {
			res.Postgres["pg_stat_statements_calls"] = round2((*pg1.calls - *pg0.calls) / n)
		}
	}
	res.Errors = b.errorsSnapshot()
	if res.DB != "postgres" {
		// Other PostgreSQL servers on the machine are not this run's.
		res.Idle.PostgresCPUPct, res.Loaded.PostgresCPUPct = nil, nil
	}
	return res, nil
}

func usage(a, b metrics) Usage {
	s := b.at.Sub(a.at).Seconds()
	u := Usage{Seconds: round2(s), RSSMB: round2(b.rssBytes / (1 << 20))}
	if s > 0 {
		u.CPUPct = round2((b.cpuSeconds - a.cpuSeconds) / s * 100)
		u.BenchCPUPct = round2((b.benchCPU - a.benchCPU) / s * 100)
		if a.postgresLocal && b.postgresLocal {
			v := round2((b.postgresCPU - a.postgresCPU) / s * 100)
			u.PostgresCPUPct = &v
		}
	}
	u.DBWrites = b.statements["write"] - a.statements["write"]
	u.DBCommits = b.statements["commit"] - a.statements["commit"]
	for _, k := range []string{"read", "write", "other"} {
		u.DBStatements += b.statements[k] - a.statements[k]
	}
	return u
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// enrolRobots makes the robots' identities: through the product's
// enrolment function on the daemon's database when the bench started it,
// over HTTP (rate limited) otherwise. Both use one join token made
// through the API.
func enrolRobots(ctx context.Context, o Options, d *daemon, admin *gqlclient.Client, hc *http.Client, logf func(string, ...any)) ([]string, error) {
	var out struct {
		CreateJoinToken struct {
			Secret string `json:"secret"`
		} `json:"createJoinToken"`
	}
	if err := admin.Do(ctx, `mutation($n:Int){createJoinToken(pool:"fleet",ttlSeconds:86400,uses:$n){secret}}`,
		map[string]any{"n": o.Robots}, &out); err != nil {
		return nil, fmt.Errorf("fleet: create a join token for pool \"fleet\" (a daemon given by --url needs that pool, a builtin process \"task\" and a customer \"bench\"): %w", err)
	}
	join := out.CreateJoinToken.Secret
	host, _ := os.Hostname()
	prefix := fmt.Sprintf("vr-%d-%d-", os.Getpid(), time.Now().Unix()%100000)
	req := func(i int) robotwire.EnrolRequest {
		return robotwire.EnrolRequest{JoinToken: join, Name: fmt.Sprintf("%s%05d", prefix, i), Hostname: host, OS: runtime.GOOS}
	}
	tokens := make([]string, o.Robots)
	start := time.Now()
	if d != nil {
		db, err := store.Open(ctx, d.driver, d.dsn)
		if err != nil {
			return nil, fmt.Errorf("fleet: open the daemon's database to enrol robots: %w", err)
		}
		defer db.Close()
		// Enrolment's own log lines (one per robot) would drown the
		// bench's; the daemon's audit trail and events still record them.
		svc := &enrol.Service{Client: db.Client, Log: slog.New(slog.DiscardHandler)}
		sys := privacy.DecisionContext(ctx, privacy.Allow)
		for i := range tokens {
			resp, err := svc.Enrol(sys, req(i))
			if err != nil {
				return nil, fmt.Errorf("fleet: enrol robot %d: %w", i, err)
			}
			tokens[i] = resp.Token
		}
		logf("enrolled %d robots through the enrolment function in %s", o.Robots, time.Since(start).Round(time.Millisecond))
		return tokens, nil
	}
	logf("enrolling %d robots over HTTP; the daemon allows about 2 a second from one address", o.Robots)
	for i := range tokens {
		id, err := robotagent.Enrol(ctx, hc, o.URL, req(i), nil)
		if err != nil {
			return nil, fmt.Errorf("fleet: enrol robot %d: %w", i, err)
		}
		tokens[i] = id.Token
	}
	logf("enrolled %d robots over HTTP in %s", o.Robots, time.Since(start).Round(time.Second))
	return tokens, nil
}

// bench is one run's shared state.
type bench struct {
	o    Options
	base string
	hc   *http.Client
	res  *Result

	polling, registerFailed atomic.Int64
	submitted, claims, done atomic.Int64
	toClaim, claim, beat    *sampler
	report, submit          *sampler

	mu      sync.Mutex
	errs    map[string]int64
	claimed map[int]int // task ID → claims; as many as tasks submitted
}

func (b *bench) fail(kind string, n int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.errs == nil {
		b.errs = map[string]int64{}
	}
	b.errs[kind] += n
}

func (b *bench) errorsSnapshot() map[string]int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := map[string]int64{}
	for k, v := range b.errs {
		out[k] = v
	}
	return out
}

// The robot protocol's operations, as core/robotagent sends them.
const (
	registerQ = `mutation($h:String!,$v:String!){registerRobot(hostname:$h,agentVersion:$v){pool robot{name}}}`
	claimQ    = `mutation($w:Int){claimTask(wait:$w){taskID attempt deadline process kind runner maxDurationSeconds input}}`
	beatQ     = `mutation($t:ID!,$a:Int!){heartbeat(taskID:$t,attempt:$a)}`
	reportQ   = `mutation($in:ReportResultInput!){reportResult(input:$in)}`
	awaitQ    = `mutation($t:ID!,$a:Int!,$w:Int){awaitStop(taskID:$t,attempt:$a,wait:$w)}`
	submitQ   = `mutation($in:SubmitBatchInput!){submitBatch(input:$in){id}}`
)

// taskInput is what every task carries: when it was submitted.
type taskInput struct {
	SubmittedUnixNano int64 `json:"submitted_unix_nano"`
}

// robot is one virtual robot: register, then claim with a long poll;
// while a task "runs" (sleeps TaskSeconds) it heartbeats every Heartbeat
// and holds an awaitStop long poll open, then reports success.
func (b *bench) robot(ctx context.Context, token string) {
	c := &gqlclient.Client{URL: b.base + "/graphql", Token: token, HTTP: b.hc}
	host, _ := os.Hostname()
	if err := c.Do(ctx, registerQ, map[string]any{"h": host, "v": "fleetbench"}, nil); err != nil {
		if ctx.Err() == nil {
			b.fail("register", 1)
			b.registerFailed.Add(1)
		}
		return
	}
	first := true
	for ctx.Err() == nil {
		if first {
			// Counted as it leaves: the daemon holds it from then on.
			b.polling.Add(1)
			first = false
		}
		var out struct {
			ClaimTask *robotwire.Claim `json:"claimTask"`
		}
		start := time.Now()
		err := c.Do(ctx, claimQ, map[string]any{"w": int(b.o.PollWait / time.Second)}, &out)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			b.fail("claim", 1)
			_ = sleep(ctx, 500*time.Millisecond) // the agent's first back-off
			continue
		}
		if out.ClaimTask == nil {
			continue
		}
		now := time.Now()
		b.claim.add(now.Sub(start))
		b.claims.Add(1)
		var in taskInput
		if err := json.Unmarshal(out.ClaimTask.Input, &in); err != nil || in.SubmittedUnixNano == 0 {
			b.fail("claim_input", 1)
		} else {
			b.toClaim.add(now.Sub(time.Unix(0, in.SubmittedUnixNano)))
		}
		b.mu.Lock()
		b.claimed[out.ClaimTask.TaskID]++
		twice := b.claimed[out.ClaimTask.TaskID] > 1
		b.mu.Unlock()
		if twice {
			b.fail("claimed_twice", 1)
		}
		b.work(ctx, c, out.ClaimTask)
	}
}

func (b *bench) work(ctx context.Context, c *gqlclient.Client, cl *robotwire.Claim) {
	// The run outlives ctx by nothing: the bench stops robots only after
	// the drain, when no task is running.
	runCtx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		// awaitStop held open as the agent does (30 s, again at once).
		for runCtx.Err() == nil {
			var out struct {
				AwaitStop bool `json:"awaitStop"`
			}
			start := time.Now()
			err := c.Do(runCtx, awaitQ, map[string]any{"t": cl.TaskID, "a": cl.Attempt, "w": 30}, &out)
			switch {
			case runCtx.Err() != nil:
				return
			case err != nil:
				b.fail("await_stop", 1)
				_ = sleep(runCtx, 500*time.Millisecond)
			case out.AwaitStop:
				b.fail("stop_requested", 1)
				return
			default:
				_ = sleep(runCtx, 2*time.Second-time.Since(start))
			}
		}
	})
	wg.Go(func() {
		t := time.NewTicker(b.o.Heartbeat)
		defer t.Stop()
		for {
			select {
			case <-runCtx.Done():
				return
			case <-t.C:
				start := time.Now()
				err := c.Do(runCtx, beatQ, map[string]any{"t": cl.TaskID, "a": cl.Attempt}, nil)
				if runCtx.Err() != nil {
					return
				}
				if err != nil {
					b.fail("heartbeat", 1)
					continue
				}
				b.beat.add(time.Since(start))
			}
		}
	})
	err := sleep(ctx, time.Duration(b.o.TaskSeconds*float64(time.Second)))
	cancel()
	wg.Wait()
	if err != nil {
		return
	}
	start := time.Now()
	in := robotwire.Report{TaskID: cl.TaskID, Attempt: cl.Attempt, Success: true, Output: json.RawMessage(`{}`)}
	if err := c.Do(ctx, reportQ, map[string]any{"in": in}, nil); err != nil {
		if ctx.Err() == nil {
			b.fail("report", 1)
		}
		return
	}
	b.report.add(time.Since(start))
	b.done.Add(1)
}

// submitFor offers the rate for d: every 100 ms one batch of the tasks
// due by then, so a slow submission makes the next batch bigger rather
// than lowering the rate offered.
func (b *bench) submitFor(ctx context.Context, admin *gqlclient.Client, d time.Duration) {
	start := time.Now()
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	end := start.Add(d)
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			if now.After(end) {
				now = end
			}
			due := int64(b.o.Rate*now.Sub(start).Seconds()) - b.submitted.Load()
			for due > 0 {
				n := min(due, 10000) // submitBatch's bound
				stamp := taskInput{SubmittedUnixNano: time.Now().UnixNano()}
				inputs := make([]taskInput, n)
				for i := range inputs {
					inputs[i] = stamp
				}
				s := time.Now()
				err := admin.Do(ctx, submitQ, map[string]any{"in": map[string]any{"process": "task", "customer": "bench", "inputs": inputs}}, nil)
				if ctx.Err() != nil {
					return
				}
				if err != nil {
					b.fail("submit", 1)
					break
				}
				b.submit.add(time.Since(s))
				b.submitted.Add(n)
				due -= n
			}
			if !now.Before(end) {
				return
			}
		}
	}
}

// Summary is the human-readable line for stderr.
func (r *Result) Summary() string {
	errs := "no errors"
	if len(r.Errors) > 0 {
		keys := make([]string, 0, len(r.Errors))
		for k := range r.Errors {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		errs = "errors:"
		for _, k := range keys {
			errs += fmt.Sprintf(" %s %d", k, r.Errors[k])
		}
	}
	return fmt.Sprintf(`%s, %d robots, %.0f tasks/s offered (%.1f submitted), %.1f s tasks, %.0f s: %d submitted, %d done, %.1f tasks/s
  submit→claim p50 %.1f ms p99 %.1f ms max %.1f ms; claim p50 %.1f p99 %.1f; heartbeat p50 %.1f p99 %.1f; report p50 %.1f p99 %.1f ms
  idle: daemon %.1f %% of a core, %.0f MB, %.0f writes and %.0f statements in %.0f s
  loaded: daemon %.1f %% of a core, %.0f MB; statements per task: read %.2f write %.2f commit %.2f
  %s`,
		r.DB, r.Robots, r.RateOffered, r.RateSubmitted, r.TaskSeconds, r.DurationS, r.TasksSubmitted, r.TasksDone, r.TasksPerS,
		r.SubmitToClaimMs.P50, r.SubmitToClaimMs.P99, r.SubmitToClaimMs.Max, r.ClaimMs.P50, r.ClaimMs.P99,
		r.HeartbeatMs.P50, r.HeartbeatMs.P99, r.ReportMs.P50, r.ReportMs.P99,
		r.Idle.CPUPct, r.Idle.RSSMB, r.Idle.DBWrites, r.Idle.DBStatements, r.Idle.Seconds,
		r.Loaded.CPUPct, r.Loaded.RSSMB, r.DBStatementsPerTask["read"], r.DBStatementsPerTask["write"], r.DBStatementsPerTask["commit"], errs)
}
