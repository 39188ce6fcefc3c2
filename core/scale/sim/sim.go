// Package sim is the capacity-planning simulator behind `rpacloud
// simulate`: it replays a trace of batch submissions against one pool on a
// virtual clock, with simulated robots that boot, run tasks, fail, hang and
// are released, and reports robot-hours, cost and how long customers
// waited.
//
// It runs the daemon's own algorithms, not copies of them: dispatch is
// core/dispatch/policy (Book, the same Pick the database queue calls on
// every claim) and scaling is core/scale/decide (the same Decide and
// PickRelease the scaler loop calls). What it leaves out is the database
// and the network: the queue is an in-memory model of the database queue's
// bookkeeping, which is what makes a month of a million tasks simulate in
// seconds rather than days.
//
// Two baselines run on the same trace for comparison: a static pool sized
// to the policy's robot-hours, and target tracking (ceil(backlog / R),
// bounded, with a scale-down stabilisation window).
package sim

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/rpacloud/rpacloud/core/dispatch/policy"
	"github.com/rpacloud/rpacloud/core/scale/decide"
	"github.com/rpacloud/rpacloud/core/scale/poolconf"
)

// Pool is the simulated pool's settings: the scaler's own type, built by
// poolconf from the configuration, so a simulation reads a pool exactly as
// the daemon does. Settings.Min and Settings.Max bound the pool.
type Pool = poolconf.Pool

// Options configure one run.
type Options struct {
	Pool          Pool
	BootDelay     time.Duration // how long a rented robot takes to come up
	RobotHourCost float64
	Seed          uint64
	// Start is the wall-clock time of the trace's second 0; schedules
	// (pre-warm) are evaluated against it.
	Start time.Time
	// Horizon is the window robot-hours are counted over, at least; zero
	// means the trace's own end (last submission plus one task), rounded
	// up to a whole day.
	Horizon time.Duration
	// Window is target tracking's scale-down stabilisation window; zero
	// means 5 minutes (Kubernetes HPA's default).
	Window time.Duration
	// checkOrder: see engine.checkOrder (this package's tests only).
	checkOrder bool
}

// Strategy is how a run sizes the pool.
type Strategy string

// Strategies.
const (
	Policy         Strategy = "policy"          // seed 003's rule (core/scale/decide)
	Static         Strategy = "static"          // a fixed pool
	TargetTracking Strategy = "target_tracking" // ceil(backlog / R) with a stabilisation window
)

// Result is the outcome of one strategy on a trace.
type Result struct {
	Strategy         Strategy           `json:"strategy"`
	Fairness         policy.Fairness    `json:"fairness"`
	Robots           int                `json:"robots,omitempty"` // static pool size
	RobotHours       float64            `json:"robot_hours"`
	Cost             float64            `json:"cost"`
	RatioToBound     float64            `json:"robot_hours_over_lower_bound"`
	PeakRobots       int                `json:"peak_robots"`
	ScaleUps         int                `json:"scale_ups"`
	ScaleDowns       int                `json:"scale_downs"`
	DirectionChanges int                `json:"direction_changes"`
	RobotsRented     int                `json:"robots_rented"`
	CompletionP50    float64            `json:"batch_completion_p50_s"`
	CompletionP95    float64            `json:"batch_completion_p95_s"`
	CompletionMax    float64            `json:"batch_completion_max_s"`
	MaxWait          float64            `json:"max_wait_s"`
	CustomerMaxWait  map[string]float64 `json:"customer_max_wait_s"`
	// CustomerCompletion is, per customer, the mean completion of its
	// batches (submission to last task finished), in seconds.
	CustomerCompletion map[string]float64 `json:"customer_completion_mean_s"`
	// LargestBatch is the completion of the batch with the most tasks
	// (the earliest submitted among equals), in seconds.
	LargestBatch   float64 `json:"largest_batch_completion_s"`
	JainSlowdown   float64 `json:"jain_index_slowdown"`
	TasksSucceeded int     `json:"tasks_succeeded"`
	TasksFailed    int     `json:"tasks_failed"`
	Timeouts       int     `json:"attempt_timeouts"`
	EndS           float64 `json:"end_s"` // when the last task finished
}

// Report is what `rpacloud simulate --json` prints.
type Report struct {
	Pool         string  `json:"pool"`
	Batches      int     `json:"batches"`
	Tasks        int     `json:"tasks"`
	Customers    int     `json:"customers"`
	WorkHours    float64 `json:"work_robot_hours"`
	HorizonHours float64 `json:"horizon_hours"`
	BootDelayS   float64 `json:"boot_delay_s"`
	// LowerBound is the least robot-hours any policy could pay: the min
	// robots over the horizon, plus the work they cannot do, plus one boot
	// per robot that must be rented for it.
	LowerBound float64 `json:"offline_lower_bound_robot_hours"`
	Result
	Baselines struct {
		Static         Result `json:"static"`
		TargetTracking Result `json:"target_tracking"`
	} `json:"baselines"`
	// Fairness is the pool's scaling rule under each dispatch policy
	// (policy.Fairnesses, in that order), the pool's own among them: the
	// same trace, seed and robots, only the choice of batch differs.
	Fairness []Result `json:"fairness"`
}

// Simulate runs the policy and both baselines on t.
func Simulate(t Trace, o Options) (*Report, error) {
	if err := o.check(); err != nil {
		return nil, err
	}
	if len(t) == 0 {
		return nil, fmt.Errorf("simulate: empty trace")
	}
	horizon := o.horizon(t)
	rep := &Report{Pool: o.Pool.Name, Batches: len(t), Tasks: t.Tasks(), WorkHours: t.Work() / 3600,
		HorizonHours: horizon.Hours(), BootDelayS: o.BootDelay.Seconds()}
	cust := map[string]bool{}
	for _, b := range t {
		cust[b.Customer] = true
	}
	rep.Customers = len(cust)
	rep.LowerBound = LowerBound(t.Work()/3600, horizon.Hours(), o.Pool.Settings.Min, o.BootDelay.Hours())

	rep.Result = run(t, o, Policy, 0, horizon)
	for _, f := range policy.Fairnesses {
		if f.Name == o.Pool.Fairness {
			rep.Fairness = append(rep.Fairness, rep.Result)
			continue
		}
		of := o
		of.Pool.Fairness = f.Name
		rep.Fairness = append(rep.Fairness, run(t, of, Policy, 0, horizon))
	}
	// The static pool pays what the policy paid, spread evenly.
	static := max(int(math.Round(rep.RobotHours/max(horizon.Hours(), rep.EndS/3600))), o.Pool.Settings.Min, 1)
	rep.Baselines.Static = run(t, o, Static, static, horizon)
	rep.Baselines.TargetTracking = run(t, o, TargetTracking, 0, horizon)
	results := []*Result{&rep.Result, &rep.Baselines.Static, &rep.Baselines.TargetTracking}
	for i := range rep.Fairness {
		results = append(results, &rep.Fairness[i])
	}
	for _, r := range results {
		if rep.LowerBound > 0 {
			r.RatioToBound = round3(r.RobotHours / rep.LowerBound)
		}
	}
	rep.LowerBound = round3(rep.LowerBound)
	rep.WorkHours = round3(rep.WorkHours)
	return rep, nil
}

func (o *Options) check() error {
	p := &o.Pool
	switch {
	case p.Settings.Max < 1:
		return fmt.Errorf("simulate: pool %q: max = %d, want at least 1", p.Name, p.Settings.Max)
	case p.Settings.Min < 0 || p.Settings.Min > p.Settings.Max:
		return fmt.Errorf("simulate: pool %q: min = %d, want 0..max (%d)", p.Name, p.Settings.Min, p.Settings.Max)
	case p.Period <= 0:
		return fmt.Errorf("simulate: pool %q: period must be positive", p.Name)
	case o.BootDelay < 0:
		return fmt.Errorf("simulate: boot delay %s is negative", o.BootDelay)
	case o.RobotHourCost < 0:
		return fmt.Errorf("simulate: robot-hour cost %v is negative", o.RobotHourCost)
	}
	if p.MaxDuration <= 0 {
		p.MaxDuration = 10 * time.Minute
	}
	if p.Fairness == "" {
		p.Fairness = policy.Fairnesses[0].Name
	}
	if o.Window <= 0 {
		o.Window = 5 * time.Minute
	}
	if o.Start.IsZero() {
		o.Start = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	}
	return nil
}

func (o *Options) horizon(t Trace) time.Duration {
	var end float64
	for _, b := range t {
		end = max(end, b.SubmitAt+b.TaskDuration)
	}
	h := time.Duration(math.Ceil(end/86400)) * 24 * time.Hour
	return max(h, o.Horizon)
}

// LowerBound is the offline lower bound on robot-hours (all in hours): min
// robots for the whole horizon; the work they cannot do on top, which
// needs rented robots; and each of those pays its boot delay once. A
// rented robot can work at most horizon − boot hours, so at least
// ceil(excess / (horizon − boot)) are rented.
func LowerBound(work, horizon float64, minRobots int, boot float64) float64 {
	base := float64(minRobots) * horizon
	excess := work - base
	if excess <= 0 {
		return base
	}
	rentals := 1.0
	if horizon > boot {
		rentals = math.Ceil(excess / (horizon - boot))
	}
	return base + excess + rentals*boot
}

func round3(v float64) float64 { return math.Round(v*1000) / 1000 }

// ---------------------------------------------------------------------
// The engine: a discrete-event simulation in integer milliseconds, so a
// run is exactly reproducible for a seed.

type evKind uint8

const (
	evSubmit evKind = iota
	evDone          // an attempt ends (success, error or time-out)
	evBoot          // a rented robot came up
	evTick          // the scaler reads the pool
)

type outcome uint8

const (
	okTask outcome = iota
	execError
	dataError
	hang
)

type event struct {
	at   int64
	seq  uint64
	kind evKind
	out  outcome
	a, b int32 // submit: batch; done: robot, task slot; boot: robot
}

type eventHeap []event

func (h eventHeap) less(i, j int) bool {
	if h[i].at != h[j].at {
		return h[i].at < h[j].at
	}
	return h[i].seq < h[j].seq
}

func (h *eventHeap) push(e event) {
	*h = append(*h, e)
	s := *h
	i := len(s) - 1
	for i > 0 {
		p := (i - 1) / 2
		if !s.less(i, p) {
			break
		}
		s[i], s[p] = s[p], s[i]
		i = p
	}
}

func (h *eventHeap) pop() event {
	s := *h
	top := s[0]
	n := len(s) - 1
	s[0] = s[n]
	s = s[:n]
	i := 0
	for {
		l, r, m := 2*i+1, 2*i+2, i
		if l < n && s.less(l, m) {
			m = l
		}
		if r < n && s.less(r, m) {
			m = r
		}
		if m == i {
			break
		}
		s[i], s[m] = s[m], s[i]
		i = m
	}
	*h = s
	return top
}

type simRobot struct {
	permanent bool
	ready     bool
	busy      bool
	gone      bool
	rentedAt  int64
	idleSince int64
}

type simBatch struct {
	customer  int32
	submitAt  int64
	left      int32   // tasks not finished
	pending   []int32 // task slots waiting for a robot
	firstWait int64   // longest wait of a task from submission to its first start
	took      float64 // completion, s, once finished
	running   int     // tasks running now (policy.FairShare reads it)
}

type simTask struct {
	batch    int32
	started  bool
	failures uint8
	timeouts uint8
}

type engine struct {
	o        *Options
	strategy Strategy
	trace    Trace
	rnd      *rand.Rand
	// The queue model: stack A as a FIFO of batch indexes (bottom first)
	// and the batches of stack B that have pending tasks as the candidates
	// policy.Pick chooses from, exactly what the database queue passes it.
	stackA []int32
	headA  int
	cands  []policy.Candidate
	posB   []int32 // batch → index in cands, -1 when absent
	// ord keeps cands in policy.Less's order under an ordered fairness
	// (nil under weighted, drawn from chunkSum instead).
	ord *order
	// checkOrder makes every poll also run policy.Pick over all of cands
	// and panic when it disagrees with ord: set by this package's tests
	// only.
	checkOrder bool
	// chunkSum[k] is the pending tasks of cands[k*chunk : (k+1)*chunk].
	chunkSum []int64
	inA      []bool
	events   eventHeap
	seq      uint64
	now      int64

	robots  []simRobot
	idle    []int32 // ready robots without work, most recently idle last
	live    int     // robots not gone (X)
	booting int

	batches []simBatch
	tasks   []simTask
	pending int // tasks waiting
	running int

	state   decide.State
	history []int // target tracking: recent desired sizes, one per period

	res          Result
	lastDir      int
	robotMs      int64 // accrued robot-milliseconds of released robots
	customers    []string
	completion   []float64
	slowdown     []float64 // per customer: sum of batch slowdowns
	completionOf []float64 // per customer: sum of batch completions, s
	batchesOf    []int
}

func ms(d time.Duration) int64 { return d.Milliseconds() }

func run(t Trace, o Options, s Strategy, static int, horizon time.Duration) Result {
	e := &engine{o: &o, strategy: s, trace: t,
		rnd: rand.New(rand.NewPCG(o.Seed, o.Seed^0x5851f42d4c957f2d))}
	e.res.Strategy, e.res.Fairness = s, o.Pool.Fairness
	e.checkOrder = o.checkOrder
	custIdx := map[string]int32{}
	e.batches = make([]simBatch, len(t))
	e.posB = make([]int32, len(t))
	if policy.Ordered(o.Pool.Fairness) {
		e.ord = newOrder(o.Pool.Fairness, &e.cands, e.posB, len(t))
	}
	e.inA = make([]bool, len(t))
	e.tasks = make([]simTask, 0, t.Tasks())
	for i, b := range t {
		ci, ok := custIdx[b.Customer]
		if !ok {
			ci = int32(len(e.customers))
			custIdx[b.Customer] = ci
			e.customers = append(e.customers, b.Customer)
		}
		e.batches[i] = simBatch{customer: ci, submitAt: int64(math.Round(b.SubmitAt * 1000)), left: int32(b.Tasks)}
		e.push(event{at: e.batches[i].submitAt, kind: evSubmit, a: int32(i)})
	}
	e.slowdown = make([]float64, len(e.customers))
	e.completionOf = make([]float64, len(e.customers))
	e.batchesOf = make([]int, len(e.customers))
	e.res.CustomerMaxWait = make(map[string]float64, len(e.customers))

	start := o.Pool.Settings.Min
	if s == Static {
		start = static
		e.res.Robots = static
	}
	for range start {
		id := e.addRobot(true)
		e.robots[id].ready = true
		e.idle = append(e.idle, id)
	}
	e.res.PeakRobots = e.live
	if s != Static {
		e.push(event{at: ms(o.Pool.Period), kind: evTick})
	}
	unfinished := len(t)
	for len(e.events) > 0 && unfinished > 0 {
		ev := e.events.pop()
		e.now = ev.at
		switch ev.kind {
		case evSubmit:
			e.submit(int(ev.a))
		case evDone:
			if e.finishAttempt(ev) {
				unfinished--
			}
		case evBoot:
			r := &e.robots[ev.a]
			if !r.gone {
				r.ready, r.idleSince = true, e.now
				e.booting--
				e.idle = append(e.idle, ev.a)
			}
		case evTick:
			e.tick()
			e.push(event{at: e.now + ms(o.Pool.Period), kind: evTick})
		}
		e.dispatch()
	}
	e.res.EndS = float64(e.now) / 1000
	end := max(e.now, ms(horizon))
	for i := range e.robots {
		if !e.robots[i].gone {
			e.robotMs += end - e.robots[i].rentedAt
		}
	}
	e.res.RobotHours = round3(float64(e.robotMs) / 3.6e6)
	e.res.Cost = math.Round(e.res.RobotHours*o.RobotHourCost*100) / 100
	slices.Sort(e.completion)
	e.res.CompletionP50 = quantile(e.completion, 0.50)
	e.res.CompletionP95 = quantile(e.completion, 0.95)
	e.res.CompletionMax = quantile(e.completion, 1)
	var sd []float64
	for i, n := range e.batchesOf {
		if n > 0 {
			sd = append(sd, e.slowdown[i]/float64(n))
		}
	}
	e.res.JainSlowdown = round3(policy.Jain(sd))
	e.res.CustomerCompletion = make(map[string]float64, len(e.customers))
	for i, n := range e.batchesOf {
		if n > 0 {
			e.res.CustomerCompletion[e.customers[i]] = math.Round(e.completionOf[i]/float64(n)*10) / 10
		}
	}
	largest := 0
	for i := range t {
		if t[i].Tasks > t[largest].Tasks || (t[i].Tasks == t[largest].Tasks && t[i].SubmitAt < t[largest].SubmitAt) {
			largest = i
		}
	}
	e.res.LargestBatch = math.Round(e.batches[largest].took*10) / 10
	return e.res
}

func quantile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return math.Round(sorted[max(i, 0)]*10) / 10
}

func (e *engine) push(ev event) {
	e.seq++
	ev.seq = e.seq
	e.events.push(ev)
}

func (e *engine) addRobot(permanent bool) int32 {
	id := int32(len(e.robots))
	e.robots = append(e.robots, simRobot{permanent: permanent, rentedAt: e.now, idleSince: e.now})
	e.live++
	return id
}

func (e *engine) submit(i int) {
	b := &e.batches[i]
	n := e.trace[i].Tasks
	b.pending = make([]int32, n)
	for k := range n {
		b.pending[k] = int32(len(e.tasks))
		e.tasks = append(e.tasks, simTask{batch: int32(i)})
	}
	e.pending += n
	e.posB[i] = -1
	e.inA[i] = true
	e.stackA = append(e.stackA, int32(i))
}

var epoch = time.Unix(0, 0).UTC()

func (e *engine) clock() time.Time { return epoch.Add(time.Duration(e.now) * time.Millisecond) }

// poll is one claim's choice of batch, by policy.Pick. Every batch in A
// has pending tasks and A is ordered by submission, so its bottom is the
// only A candidate Pick could choose; passing it alone keeps a poll O(1)
// while A is not empty, with the same answer.
func (e *engine) poll() (int, bool) {
	if e.headA < len(e.stackA) {
		bi := e.stackA[e.headA]
		one := []policy.Candidate{{ID: int(bi), Stack: policy.StackA, Pending: len(e.batches[bi].pending)}}
		if _, ok := policy.Pick(e.o.Pool.Fairness, one, e.rnd); !ok {
			panic("policy: a batch in A without pending tasks")
		}
		e.headA++
		if e.headA > 1024 && e.headA*2 > len(e.stackA) {
			e.stackA = append(e.stackA[:0], e.stackA[e.headA:]...)
			e.headA = 0
		}
		e.inA[bi] = false
		return int(bi), true
	}
	if e.ord != nil {
		bi, ok := e.ord.top()
		if e.checkOrder {
			i, pok := policy.Pick(e.o.Pool.Fairness, e.cands, e.rnd)
			if pok != ok || (ok && e.cands[i].ID != bi) {
				panic(fmt.Sprintf("sim: the heap serves batch %d (%v), policy.Pick batch %d (%v)", bi, ok, e.cands[max(i, 0)].ID, pok))
			}
		}
		return bi, ok
	}
	if e.o.Pool.Fairness == policy.Weighted && len(e.cands) > 2*chunk {
		return e.pickChunked()
	}
	i, ok := policy.Pick(e.o.Pool.Fairness, e.cands, e.rnd)
	if !ok {
		return 0, false
	}
	return e.cands[i].ID, true
}

// chunk is the size of the groups a long stack B is drawn in.
const chunk = 256

// pickChunked is the weighted draw over a long stack B in two steps: a
// group of candidates with probability (its pending tasks ÷ all pending),
// then policy.Pick within the group. A batch is chosen with probability
// pending ÷ total, as with one draw, but a poll costs O(|B| / chunk +
// chunk) instead of O(|B|) when a backlog holds thousands of batches.
func (e *engine) pickChunked() (int, bool) {
	var total uint64
	for _, s := range e.chunkSum {
		total += uint64(s)
	}
	if total == 0 {
		return 0, false
	}
	slip := e.rnd.Uint64N(total)
	for k, s := range e.chunkSum {
		if slip >= uint64(s) {
			slip -= uint64(s)
			continue
		}
		lo := k * chunk
		group := e.cands[lo:min(lo+chunk, len(e.cands))]
		i, ok := policy.Pick(policy.Weighted, group, e.rnd)
		if !ok {
			break
		}
		return group[i].ID, true
	}
	panic("sim: chunk sums out of step with the candidates")
}

// setPending changes a candidate's pending count and its group's sum.
func (e *engine) setPending(pos int32, n int) {
	k := int(pos) / chunk
	for len(e.chunkSum) <= k {
		e.chunkSum = append(e.chunkSum, 0)
	}
	e.chunkSum[k] += int64(n - e.cands[pos].Pending)
	e.cands[pos].Pending = n
}

// served marks batch bi as served now (a dispatch or a result moves it to
// the top of B) and keeps it among the candidates while it has pending
// tasks.
func (e *engine) served(bi int) {
	n := len(e.batches[bi].pending)
	pos := e.posB[bi]
	switch {
	case pos >= 0 && n > 0:
		e.setPending(pos, n)
		e.cands[pos].LastServed = e.clock()
		e.cands[pos].Running = e.batches[bi].running
	case pos >= 0:
		last := int32(len(e.cands) - 1)
		e.setPending(pos, 0)
		moved := e.cands[last]
		e.setPending(last, 0)
		e.cands[pos] = moved
		e.cands[pos].Pending = 0
		e.setPending(pos, moved.Pending)
		e.posB[moved.ID] = pos
		e.cands = e.cands[:last]
		e.posB[bi] = -1
	case n > 0 && !e.inA[bi]:
		pos := int32(len(e.cands))
		e.posB[bi] = pos
		e.cands = append(e.cands, policy.Candidate{ID: bi, Stack: policy.StackB, LastServed: e.clock(), Running: e.batches[bi].running})
		e.setPending(pos, n)
	}
	if e.ord != nil {
		e.ord.fix(int32(bi))
	}
}

// dispatch gives work to idle robots, as their long polls would get it:
// the most recently idle robot first, so robots idle for long stay idle
// and are the ones a scale-down releases.
func (e *engine) dispatch() {
	for e.pending > 0 && len(e.idle) > 0 {
		bi, ok := e.poll()
		if !ok {
			return
		}
		rid := e.idle[len(e.idle)-1]
		e.idle = e.idle[:len(e.idle)-1]
		b := &e.batches[bi]
		// The last pending task: a fixed order, not the queue's random
		// draw, so that under every policy a batch's tasks start in the
		// same order and meet the same drawn outcomes. A task back from
		// a retry or a time-out is thus the batch's next, where the
		// queue would give it a fresh random place among the pending.
		k := len(b.pending) - 1
		slot := b.pending[k]
		b.pending[k] = b.pending[len(b.pending)-1]
		b.pending = b.pending[:len(b.pending)-1]
		e.pending--
		e.running++
		b.running++
		e.served(bi)
		tk := &e.tasks[slot]
		if !tk.started {
			tk.started = true
			b.firstWait = max(b.firstWait, e.now-b.submitAt)
		}
		e.robots[rid].busy = true
		tb := &e.trace[bi]
		out, dur := okTask, tb.TaskDuration
		u := e.outcome(slot, int(tk.failures)+int(tk.timeouts))
		switch {
		case u < tb.HangRate:
			out, dur = hang, e.o.Pool.MaxDuration.Seconds()
		case u < tb.HangRate+tb.DataErrorRate:
			out = dataError
		case u < tb.HangRate+tb.DataErrorRate+tb.FailRate:
			out = execError
		}
		e.push(event{at: e.now + max(int64(math.Round(dur*1000)), 1), kind: evDone, out: out, a: rid, b: slot})
	}
}

// outcome is the uniform draw that decides how attempt n of task slot
// ends. It depends on the seed, the task and the attempt only, not on the
// order of dispatch: the dispatch policies compared on one trace meet the
// same failures, data errors and hangs on the same tasks (common random
// numbers), so their figures differ by the policy, not by luck.
//
// The seed is mixed on its own first, so that seeds do not alias one
// another (seed 2's second attempt is not seed 3's first).
func (e *engine) outcome(slot int32, n int) float64 {
	x := mix64(mix64(e.o.Seed) ^ uint64(uint32(slot))<<32 ^ uint64(uint32(n)))
	return float64(x>>11) / (1 << 53)
}

// mix64 is SplitMix64's step and finaliser.
func mix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}

// finishAttempt applies an attempt's end; it reports whether its batch
// finished.
func (e *engine) finishAttempt(ev event) bool {
	r := &e.robots[ev.a]
	r.busy, r.idleSince = false, e.now
	if !r.gone {
		e.idle = append(e.idle, ev.a)
	}
	e.running--
	tk := &e.tasks[ev.b]
	final := true
	switch ev.out {
	case okTask:
		e.res.TasksSucceeded++
	case dataError:
		e.res.TasksFailed++
	case execError:
		tk.failures++
		if int(tk.failures) <= e.o.Pool.Retries {
			final = false
		} else {
			e.res.TasksFailed++
		}
	case hang:
		e.res.Timeouts++
		tk.timeouts++
		if tk.timeouts < 3 {
			final = false
		} else {
			e.res.TasksFailed++
		}
	}
	b := &e.batches[tk.batch]
	b.running--
	if !final {
		b.pending = append(b.pending, ev.b)
		e.pending++
	}
	e.served(int(tk.batch))
	if !final {
		return false
	}
	b.left--
	if b.left > 0 {
		return false
	}
	tb := &e.trace[tk.batch]
	took := float64(e.now-b.submitAt) / 1000
	e.completion = append(e.completion, took)
	b.took = took
	e.completionOf[b.customer] += took
	// Slowdown against the batch alone on a full pool: its tasks in
	// waves of max robots.
	ideal := math.Ceil(float64(tb.Tasks)/float64(e.o.Pool.Settings.Max)) * tb.TaskDuration
	e.slowdown[b.customer] += took / ideal
	e.batchesOf[b.customer]++
	wait := float64(b.firstWait) / 1000
	name := e.customers[b.customer]
	e.res.CustomerMaxWait[name] = max(e.res.CustomerMaxWait[name], wait)
	e.res.MaxWait = max(e.res.MaxWait, wait)
	b.pending = nil
	return true
}

// tick is one period of the scaler.
func (e *engine) tick() {
	switch e.strategy {
	case Policy:
		e.tickPolicy()
	case TargetTracking:
		e.tickTargetTracking()
	}
}

func (e *engine) reading() (decide.Reading, []decide.Robot) {
	r := decide.Reading{X: e.live, Z: len(e.idle), D: e.pending + e.running, Booting: e.booting}
	views := make([]decide.Robot, 0, len(e.idle))
	for _, id := range e.idle {
		rb := &e.robots[id]
		if !rb.permanent {
			r.IdleRented++
		}
		views = append(views, decide.Robot{ID: int(id), Permanent: rb.permanent, Idle: true, IdleFor: e.now - rb.idleSince})
	}
	return r, views
}

func (e *engine) tickPolicy() {
	r, views := e.reading()
	p := &e.o.Pool
	if p.PrewarmRobots > 0 {
		now := e.o.Start.Add(time.Duration(e.now) * time.Millisecond)
		r.PrewarmFloor = decide.PrewarmFloor(p.Slots, now, p.PrewarmLead, p.PrewarmRobots)
	}
	var d decide.Decision
	d, e.state = decide.Decide(p.Settings, e.state, r)
	e.apply(d.Rent, decide.PickRelease(views, d.Release))
}

func (e *engine) tickTargetTracking() {
	r, views := e.reading()
	p := &e.o.Pool
	R := max(p.Settings.TasksPerRobot, 1)
	desired := min(max((r.D+R-1)/R, p.Settings.Min), p.Settings.Max)
	keep := max(int(e.o.Window/p.Period), 1)
	e.history = append(e.history, desired)
	if len(e.history) > keep {
		e.history = e.history[len(e.history)-keep:]
	}
	switch {
	case desired > r.X:
		e.apply(desired-r.X, nil)
	case desired < r.X:
		// Scale down only to the highest recommendation in the window.
		floor := slices.Max(e.history)
		if floor < r.X {
			e.apply(0, decide.PickRelease(views, r.X-floor))
		}
	}
}

func (e *engine) apply(rent int, release []int) {
	dir := 0
	if rent > 0 {
		dir = 1
		e.res.ScaleUps++
		e.res.RobotsRented += rent
		for range rent {
			id := e.addRobot(false)
			e.booting++
			e.push(event{at: e.now + ms(e.o.BootDelay), kind: evBoot, a: id})
		}
		e.res.PeakRobots = max(e.res.PeakRobots, e.live)
	}
	if len(release) > 0 {
		dir = -1
		e.res.ScaleDowns++
		gone := map[int32]bool{}
		for _, id := range release {
			rb := &e.robots[id]
			rb.gone = true
			e.live--
			e.robotMs += e.now - rb.rentedAt
			gone[int32(id)] = true
		}
		e.idle = slices.DeleteFunc(e.idle, func(id int32) bool { return gone[id] })
	}
	if dir != 0 {
		if e.lastDir != 0 && dir != e.lastDir {
			e.res.DirectionChanges++
		}
		e.lastDir = dir
	}
}
