package dispatchbench

import (
	"math"
	"math/rand/v2"
	"slices"

	"github.com/rpacloud/rpacloud/core/dispatch/policy"
)

// FairnessOptions describe the whale-and-minnows scenario, counted in
// dispatch slots (one slot = one robot freed and given its next task), so
// the figures do not depend on the machine.
type FairnessOptions struct {
	Robots   int    // W robots, all busy while the whale's backlog lasts
	Whale    int    // tasks of the big customer, submitted at slot 0
	Minnows  int    // small customers arriving during the backlog
	MinTasks int    // smallest minnow
	MaxTasks int    // largest minnow
	ArriveBy int    // minnows arrive at random slots in [Robots, ArriveBy]
	Seed     uint64 // arrivals, sizes and the weighted draws
}

// DefaultFairness is the scenario: one customer with 10k tasks, 20
// customers with 5–50 tasks arriving during its backlog.
var DefaultFairness = FairnessOptions{Robots: 8, Whale: 10000, Minnows: 20, MinTasks: 5, MaxTasks: 50, ArriveBy: 5000, Seed: 3}

// PolicyFairness is one policy's figures.
type PolicyFairness struct {
	Policy string `json:"policy"`
	// FirstWait is, per minnow, the slots from its arrival to its first
	// dispatch; 1 means "the next free robot".
	FirstWaitMax  int     `json:"first_wait_max_slots"`
	FirstWaitMean float64 `json:"first_wait_mean_slots"`
	// Delay is the slots from a minnow's arrival to its last dispatch;
	// Ideal is the same under round-robin among active customers.
	DelayMean      float64 `json:"minnow_delay_mean_slots"`
	IdealDelayMean float64 `json:"ideal_delay_mean_slots"`
	// The minnows' delays' median, 95th percentile and maximum.
	DelayP50 int `json:"minnow_delay_p50_slots"`
	DelayP95 int `json:"minnow_delay_p95_slots"`
	DelayMax int `json:"minnow_delay_max_slots"`
	// Jain is Jain's index of ideal/actual delay over the minnows: 1 when
	// every minnow finishes as early as its fair share allows.
	Jain          float64  `json:"jain"`
	WhaleDoneSlot int      `json:"whale_done_slot"`
	Minnows       []Minnow `json:"minnows,omitempty"`
}

// Minnow is one small customer's record.
type Minnow struct {
	Tasks     int `json:"tasks"`
	Arrival   int `json:"arrival_slot"`
	First     int `json:"first_dispatch_slot"`
	Done      int `json:"last_dispatch_slot"`
	IdealDone int `json:"ideal_last_dispatch_slot"`
}

// FairnessReport compares the dispatch policies with plain FIFO.
type FairnessReport struct {
	Scenario FairnessOptions  `json:"scenario"`
	Policies []PolicyFairness `json:"policies"`
}

// scheduler is a policy under simulation.
type scheduler interface {
	submit(id, n int)
	poll() (id int, ok bool)
	result(id int)
}

type bookSched struct {
	k   *policy.Book
	rnd *rand.Rand
}

func (b *bookSched) submit(id, n int)  { _ = b.k.Submit(id, n) }
func (b *bookSched) poll() (int, bool) { return b.k.Poll(b.rnd) }
func (b *bookSched) result(id int)     { _ = b.k.Result(id, true) }

// fifo serves tasks in submission order.
type fifo struct{ slips []int }

func (f *fifo) submit(id, n int) {
	for range n {
		f.slips = append(f.slips, id)
	}
}

func (f *fifo) poll() (int, bool) {
	if len(f.slips) == 0 {
		return 0, false
	}
	id := f.slips[0]
	f.slips = f.slips[1:]
	return id, true
}
func (f *fifo) result(int) {}

// roundRobin is the reference fair share: active customers take turns, a
// newcomer is next.
type roundRobin struct {
	ring    []int
	pending map[int]int
	next    int
}

func (r *roundRobin) submit(id, n int) {
	if r.pending == nil {
		r.pending = map[int]int{}
	}
	r.pending[id] = n
	r.ring = slices.Insert(r.ring, r.next, id)
}

func (r *roundRobin) poll() (int, bool) {
	for range len(r.ring) {
		if r.next >= len(r.ring) {
			r.next = 0
		}
		id := r.ring[r.next]
		if r.pending[id] > 0 {
			r.pending[id]--
			r.next++
			return id, true
		}
		r.ring = slices.Delete(r.ring, r.next, r.next+1)
	}
	return 0, false
}
func (r *roundRobin) result(int) {}

type arrival struct{ slot, id, n int }

// simulate runs the scenario and returns, per customer, first and last
// dispatch slots.
func simulate(o FairnessOptions, s scheduler, arrivals []arrival) (first, last map[int]int) {
	first, last = map[int]int{}, map[int]int{}
	s.submit(0, o.Whale)
	running := make([]int, 0, o.Robots) // batch of each robot's task, in start order
	next := 0
	for slot := 1; ; slot++ {
		for next < len(arrivals) && arrivals[next].slot <= slot {
			s.submit(arrivals[next].id, arrivals[next].n)
			next++
		}
		// Every task takes the same time: the robot that started first
		// finishes first, reports, and asks again.
		if len(running) == o.Robots {
			s.result(running[0])
			running = running[1:]
		}
		id, ok := s.poll()
		if !ok {
			if next == len(arrivals) && len(running) == 0 {
				return first, last
			}
			if len(running) > 0 {
				s.result(running[0])
				running = running[1:]
			}
			continue
		}
		if _, seen := first[id]; !seen {
			first[id] = slot
		}
		last[id] = slot
		running = append(running, id)
	}
}

// Fairness runs the scenario under every policy of policy.Fairnesses and
// FIFO.
func Fairness(o FairnessOptions) *FairnessReport {
	rnd := rand.New(rand.NewPCG(o.Seed, 1))
	arrivals := make([]arrival, o.Minnows)
	for i := range arrivals {
		arrivals[i] = arrival{
			slot: o.Robots + rnd.IntN(o.ArriveBy-o.Robots+1),
			id:   i + 1,
			n:    o.MinTasks + rnd.IntN(o.MaxTasks-o.MinTasks+1),
		}
	}
	slices.SortFunc(arrivals, func(a, b arrival) int { return a.slot - b.slot })
	_, ideal := simulate(o, &roundRobin{}, arrivals)
	rep := &FairnessReport{Scenario: o}
	for _, name := range append(policy.Names(), "fifo") {
		var s scheduler
		switch name {
		case "fifo":
			s = &fifo{}
		default:
			s = &bookSched{k: policy.NewBook(policy.Fairness(name)), rnd: rand.New(rand.NewPCG(o.Seed, 2))}
		}
		first, last := simulate(o, s, arrivals)
		pf := PolicyFairness{Policy: name, WhaleDoneSlot: last[0]}
		var ratios []float64
		var delays []int
		sumWait, sumDelay, sumIdeal := 0, 0, 0
		for _, a := range arrivals {
			wait := first[a.id] - a.slot + 1
			delay := last[a.id] - a.slot + 1
			idealDelay := ideal[a.id] - a.slot + 1
			pf.FirstWaitMax = max(pf.FirstWaitMax, wait)
			sumWait += wait
			sumDelay += delay
			delays = append(delays, delay)
			sumIdeal += idealDelay
			ratios = append(ratios, float64(idealDelay)/float64(delay))
			pf.Minnows = append(pf.Minnows, Minnow{Tasks: a.n, Arrival: a.slot, First: first[a.id], Done: last[a.id], IdealDone: ideal[a.id]})
		}
		n := float64(len(arrivals))
		pf.FirstWaitMean = float64(sumWait) / n
		pf.DelayMean = float64(sumDelay) / n
		pf.IdealDelayMean = float64(sumIdeal) / n
		pf.Jain = policy.Jain(ratios)
		slices.Sort(delays)
		rank := func(q float64) int { return delays[max(int(math.Ceil(q*float64(len(delays))))-1, 0)] }
		pf.DelayP50, pf.DelayP95, pf.DelayMax = rank(0.5), rank(0.95), delays[len(delays)-1]
		rep.Policies = append(rep.Policies, pf)
	}
	return rep
}
