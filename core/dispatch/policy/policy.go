// Package policy is the restaurant serving algorithm of seed 003, with no
// I/O: which batch a polling robot serves next, and the A/B/C stack
// bookkeeping that decides it.
//
// Every batch of a pool is in exactly one stack:
//
//   - A (new): submitted, nothing dispatched yet. New batches go on top.
//   - B (in service): something dispatched, not everything finished.
//   - C (finished): every task succeeded or finally failed.
//
// A poll takes the bottom of A (the oldest new batch) when A has one with a
// pending task; otherwise it chooses from B by the pool's Fairness. The
// seed's two rules, kept exact: OldestServed takes the bottom of B (least
// recently served) that still has a pending task; Weighted (the seed's
// "black box") draws one pending task uniformly among all pending tasks of
// B, so a batch is chosen with probability pending/total. FairShare (the
// default since issue 17; fairshare.go) gives the robot to the batch of B
// holding the fewest robots for its weight, a weight that grows with the
// logarithm of its pending tasks. Dispatching a task and receiving a
// result both move the batch to the top of B; its last result moves it to
// C.
//
// Why a third rule: weighted serves a company dinner in proportion to its
// size, which starves every small order behind it once it has had its
// first dish (rpacloud bench fairness: small customers finish 97 times
// later than their fair share); oldest_served serves the dinner like one
// diner. FairShare keeps newcomers first, gives the dinner more robots
// than a diner (about five times for a thousand times the size), and
// never lets a batch without a robot wait more than one dispatch per other
// batch.
//
// Pick is what the database-backed queue (package dispatch) calls on every
// claim with the candidate batches it read; Book is the same algorithm on
// in-memory stacks, used as the reference model in tests and by
// simulators.
package policy

import (
	"fmt"
	"slices"
	"time"
)

// Fairness chooses among batches in service (stack B).
type Fairness string

// The fairness policies: the seed's two and FairShare.
const (
	// Weighted draws a pending task uniformly over all batches in B: big
	// orders are served proportionally more often. The default until
	// FairShare.
	Weighted Fairness = "weighted"
	// OldestServed serves the batch whose last service is oldest.
	OldestServed Fairness = "oldest_served"
	// FairShare gives a free robot to the batch of B holding the fewest
	// robots for its weight, a weight that grows with the logarithm of
	// its pending tasks: bigger orders hold more robots, a batch with
	// none is served within a bounded number of dispatches. The default;
	// see fairshare.go for its guarantees.
	FairShare Fairness = "fair_share"
)

// FairnessInfo describes one fairness policy for the people choosing it.
type FairnessInfo struct {
	Name        Fairness
	Description string
}

// Fairnesses is the one list of fairness policies, default first: config
// validation, the CLI and the storage enum (checked by a test in
// ent/schema) all read it. Adding a policy is a row here plus its case in
// Pick and Book.
var Fairnesses = []FairnessInfo{
	{FairShare, "give a free robot to the in-service batch holding the fewest robots for its weight (1 + log2 of its pending tasks, at most 16): bigger batches hold more robots, none waits long"},
	{Weighted, "draw a pending task at random across in-service batches, so bigger batches are served proportionally more"},
	{OldestServed, "serve the batch served longest ago"},
}

// Names returns the fairness policies' HCL spellings, default first.
func Names() []string {
	out := make([]string, len(Fairnesses))
	for i, f := range Fairnesses {
		out[i] = string(f.Name)
	}
	return out
}

// ParseFairness accepts the HCL spelling; empty means the default.
func ParseFairness(s string) (Fairness, error) {
	if s == "" {
		return Fairnesses[0].Name, nil
	}
	for _, f := range Fairnesses {
		if string(f.Name) == s {
			return f.Name, nil
		}
	}
	return "", fmt.Errorf("fairness %q: want one of %q", s, Names())
}

// Stack is where a batch sits in the bookkeeping.
type Stack uint8

// The three stacks.
const (
	StackA Stack = iota // new: nothing dispatched yet
	StackB              // in service
	StackC              // finished
)

func (s Stack) String() string {
	switch s {
	case StackA:
		return "A"
	case StackB:
		return "B"
	case StackC:
		return "C"
	}
	return fmt.Sprintf("Stack(%d)", uint8(s))
}

// Candidate is a batch as a poll sees it.
type Candidate struct {
	ID    int
	Stack Stack // StackA or StackB; others are ignored
	// Submitted orders A: the bottom is the earliest (ties: lower ID).
	Submitted time.Time
	// LastServed orders B: the bottom is the earliest (ties: lower ID).
	// It is the moment of the batch's last dispatch or result.
	LastServed time.Time
	// Pending is the number of tasks this robot could be given now.
	Pending int
	// Running is the batch's tasks running now (FairShare reads it; the
	// seed's two rules do not).
	Running int
}

// Rand is the randomness Pick needs; *math/rand/v2.Rand satisfies it.
type Rand interface {
	Uint64N(n uint64) uint64
}

// Pick returns the index in cands of the batch to serve, or ok=false when
// no candidate has a pending task. cands is not modified.
func Pick(f Fairness, cands []Candidate, rnd Rand) (i int, ok bool) {
	// Stack A first: the bottom (oldest) batch with a pending task.
	best := -1
	for j, c := range cands {
		if c.Stack != StackA || c.Pending <= 0 {
			continue
		}
		if best < 0 || olderA(c, cands[best]) {
			best = j
		}
	}
	if best >= 0 {
		return best, true
	}
	if Ordered(f) {
		for j, c := range cands {
			if c.Stack != StackB || c.Pending <= 0 {
				continue
			}
			if best < 0 || Less(f, c, cands[best]) {
				best = j
			}
		}
		return best, best >= 0
	}
	// Weighted: a slip per pending task; draw one.
	var total uint64
	for _, c := range cands {
		if c.Stack == StackB && c.Pending > 0 {
			total += uint64(c.Pending)
		}
	}
	if total == 0 {
		return -1, false
	}
	slip := rnd.Uint64N(total)
	for j, c := range cands {
		if c.Stack != StackB || c.Pending <= 0 {
			continue
		}
		if slip < uint64(c.Pending) {
			return j, true
		}
		slip -= uint64(c.Pending)
	}
	panic("policy: weighted draw ran past the total") // unreachable
}

// Ordered reports whether f chooses among B by an order (Less): the
// least candidate of B with a pending task is served. OldestServed and
// FairShare are; Weighted draws.
func Ordered(f Fairness) bool { return f == OldestServed || f == FairShare }

// Less is the order of an Ordered fairness over candidates of B: Pick
// serves the least. Simulators that keep B in a heap use it, so that they
// choose exactly what Pick would.
func Less(f Fairness, a, b Candidate) bool {
	if f == FairShare {
		if less, equal := lessLoaded(a, b); !equal {
			return less
		}
	}
	return olderB(a, b)
}

func olderA(a, b Candidate) bool {
	if c := a.Submitted.Compare(b.Submitted); c != 0 {
		return c < 0
	}
	return a.ID < b.ID
}

func olderB(a, b Candidate) bool {
	if c := a.LastServed.Compare(b.LastServed); c != 0 {
		return c < 0
	}
	return a.ID < b.ID
}

// Book is the bookkeeping of one pool in memory: the seed's three stacks of
// menus, kept as ordered lists (bottom first) rather than timestamps, so
// tests can state the narrative exactly.
type Book struct {
	Fairness Fairness
	entries  map[int]*entry
	a, b, c  []int // batch IDs, bottom first
}

type entry struct {
	stack                      Stack
	pending, running, finished int
}

// NewBook returns empty stacks for a pool with fairness f.
func NewBook(f Fairness) *Book { return &Book{Fairness: f, entries: map[int]*entry{}} }

// Submit puts a new batch of n tasks on top of A.
func (k *Book) Submit(id, n int) error {
	if _, dup := k.entries[id]; dup {
		return fmt.Errorf("batch %d submitted twice", id)
	}
	if n <= 0 {
		return fmt.Errorf("batch %d: %d tasks, want at least one", id, n)
	}
	k.entries[id] = &entry{stack: StackA, pending: n}
	k.a = append(k.a, id)
	return nil
}

// Candidates renders the stacks as Pick sees them: positions become
// timestamps one second apart, so Pick's order equals the stacks' order.
func (k *Book) Candidates() []Candidate {
	base := time.Unix(0, 0)
	out := make([]Candidate, 0, len(k.a)+len(k.b))
	for i, id := range k.a {
		out = append(out, Candidate{ID: id, Stack: StackA, Submitted: base.Add(time.Duration(i) * time.Second), Pending: k.entries[id].pending, Running: k.entries[id].running})
	}
	for i, id := range k.b {
		out = append(out, Candidate{ID: id, Stack: StackB, LastServed: base.Add(time.Duration(i) * time.Second), Pending: k.entries[id].pending, Running: k.entries[id].running})
	}
	return out
}

// Poll serves one task to a free robot: it returns the batch chosen, moves
// it to the top of B and counts the task as running. ok is false when
// nothing is pending.
func (k *Book) Poll(rnd Rand) (batch int, ok bool) {
	cands := k.Candidates()
	i, ok := Pick(k.Fairness, cands, rnd)
	if !ok {
		return 0, false
	}
	id := cands[i].ID
	e := k.entries[id]
	e.pending--
	e.running++
	k.toTopOfB(id)
	return id, true
}

// Result records that a running task of batch id came back. final is true
// when the task is finished (succeeded or finally failed) and false when it
// goes back to pending (a retry or a time-out). The batch moves to the top
// of B, or to C when its last task finished.
func (k *Book) Result(id int, final bool) error {
	e, ok := k.entries[id]
	if !ok || e.running == 0 {
		return fmt.Errorf("batch %d has no running task", id)
	}
	e.running--
	if final {
		e.finished++
	} else {
		e.pending++
	}
	if e.pending == 0 && e.running == 0 {
		k.b = remove(k.b, id)
		e.stack = StackC
		k.c = append(k.c, id)
		return nil
	}
	k.toTopOfB(id)
	return nil
}

func (k *Book) toTopOfB(id int) {
	e := k.entries[id]
	switch e.stack {
	case StackA:
		k.a = remove(k.a, id)
	case StackB:
		k.b = remove(k.b, id)
	}
	e.stack = StackB
	k.b = append(k.b, id)
}

func remove(s []int, id int) []int {
	return slices.DeleteFunc(s, func(x int) bool { return x == id })
}

// Stacks returns copies of A, B and C, bottom first.
func (k *Book) Stacks() (a, b, c []int) {
	return slices.Clone(k.a), slices.Clone(k.b), slices.Clone(k.c)
}

// StackOf returns where batch id is; ok is false for an unknown batch.
func (k *Book) StackOf(id int) (Stack, bool) {
	e, ok := k.entries[id]
	if !ok {
		return 0, false
	}
	return e.stack, true
}

// Counts returns a batch's pending, running and finished tasks.
func (k *Book) Counts(id int) (pending, running, finished int) {
	e := k.entries[id]
	if e == nil {
		return 0, 0, 0
	}
	return e.pending, e.running, e.finished
}

// Jain is Jain's fairness index of x: (Σx)²/(n·Σx²), 1 when all equal,
// 1/n when one takes everything. Empty or all-zero input gives 1.
func Jain(x []float64) float64 {
	var s, s2 float64
	for _, v := range x {
		s += v
		s2 += v * v
	}
	if s2 == 0 {
		return 1
	}
	return s * s / (float64(len(x)) * s2)
}
