package policy

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

func TestWeight(t *testing.T) {
	for p, want := range map[int]int{-1: 0, 0: 0, 1: 1, 2: 2, 3: 2, 4: 3, 5: 3, 10: 4, 100: 7, 10_000: 14, 1 << 15: 16, 1 << 30: MaxWeight} {
		if got := Weight(p); got != want {
			t.Errorf("Weight(%d) = %d, want %d", p, got, want)
		}
	}
	for p := 1; p < 1<<17; p++ {
		if Weight(p) < Weight(p-1) {
			t.Fatalf("Weight(%d) = %d < Weight(%d) = %d: a bigger order must never weigh less", p, Weight(p), p-1, Weight(p-1))
		}
	}
}

func TestPickFairShare(t *testing.T) {
	b := func(id, served, pending, running int) Candidate {
		return Candidate{ID: id, Stack: StackB, LastServed: at(served), Pending: pending, Running: running}
	}
	cases := []struct {
		name  string
		cands []Candidate
		want  int
	}{
		{"nothing pending", []Candidate{b(1, 1, 0, 3)}, 0},
		{"A first, whatever B holds", []Candidate{b(1, 1, 10000, 0), {ID: 2, Stack: StackA, Submitted: at(50), Pending: 1}}, 2},
		{"fewest robots for its weight", []Candidate{b(1, 10, 10000, 5), b(2, 20, 5, 2)}, 1},      // 5/14 < 2/3
		{"a bigger weight earns more robots", []Candidate{b(1, 10, 10000, 4), b(2, 20, 1, 1)}, 1}, // 4/14 < 1/1
		{"until its share is full", []Candidate{b(1, 30, 10000, 14), b(2, 20, 1, 1)}, 2},          // 14/14 = 1/1: served longer ago
		{"ties go to the batch served longest ago", []Candidate{b(1, 30, 4, 0), b(2, 10, 4, 0), b(3, 20, 4, 0)}, 2},
		{"then the lower ID", []Candidate{b(5, 10, 1, 0), b(3, 10, 1, 0)}, 3},
		{"no robot beats any robot", []Candidate{b(1, 10, 1<<20, 1), b(2, 99, 1, 0)}, 2},
		{"a batch without pending tasks holds robots but is no candidate", []Candidate{b(1, 10, 0, 0), b(2, 20, 3, 5)}, 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := slices.Clone(tc.cands)
			i, ok := Pick(FairShare, tc.cands, nil)
			got := 0
			if ok {
				got = tc.cands[i].ID
			}
			if got != tc.want {
				t.Fatalf("picked batch %d, want %d", got, tc.want)
			}
			if !slices.Equal(in, tc.cands) {
				t.Fatal("Pick modified its input")
			}
		})
	}
}

// TestFairShareBounds drives Book through random workloads (submissions,
// polls and results, some of them retries, with robots finishing in random
// order) and checks at every poll FairShare's bounds: work conservation,
// newcomers first, and that a batch of B with pending tasks and none
// running is overtaken by each other batch of B at most once, so it waits
// at most n − 1 dispatches to B. (oldest_served has the same bounds; what
// sets FairShare apart, the shares, is TestFairShareShares.)
func TestFairShareBounds(t *testing.T) {
	for seed := range uint64(300) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rnd := rand.New(rand.NewPCG(seed, 17))
			k := NewBook(FairShare)
			robots := 1 + rnd.IntN(12)
			var running []int // batch of each running task
			next := 1
			// overtaken[b] is the set of batches served from B while b
			// waited with pending tasks and none running.
			overtaken := map[int]map[int]bool{}
			waiting := func(id int) bool {
				s, _ := k.StackOf(id)
				p, r, _ := k.Counts(id)
				return s == StackB && p > 0 && r == 0
			}
			for step := 0; step < 3000; step++ {
				switch u := rnd.IntN(10); {
				case u < 2 && next < 60:
					size := 1 + rnd.IntN(40)
					if rnd.IntN(10) == 0 {
						size = 500 + rnd.IntN(3000)
					}
					if err := k.Submit(next, size); err != nil {
						t.Fatal(err)
					}
					next++
				case u < 6 && len(running) > 0:
					j := rnd.IntN(len(running))
					id := running[j]
					running = slices.Delete(running, j, j+1)
					if err := k.Result(id, rnd.IntN(8) != 0); err != nil {
						t.Fatal(err)
					}
				default:
					if len(running) == robots {
						continue
					}
					a, b, _ := k.Stacks()
					var bottomA, pendingB int
					for _, id := range a {
						if p, _, _ := k.Counts(id); p > 0 && bottomA == 0 {
							bottomA = id
						}
					}
					for _, id := range b {
						if p, _, _ := k.Counts(id); p > 0 {
							pendingB++
						}
					}
					id, ok := k.Poll(nil)
					if ok != (bottomA != 0 || pendingB > 0) {
						t.Fatalf("step %d: poll ok=%v with A bottom %d and %d batches of B pending: not work-conserving", step, ok, bottomA, pendingB)
					}
					if !ok {
						continue
					}
					running = append(running, id)
					if bottomA != 0 {
						if id != bottomA {
							t.Fatalf("step %d: served %d while %d was the bottom of A", step, id, bottomA)
						}
						continue
					}
					delete(overtaken, id)
					for w, set := range overtaken {
						if !waiting(w) {
							delete(overtaken, w)
							continue
						}
						if set[id] {
							t.Fatalf("step %d: batch %d overtook waiting batch %d twice", step, id, w)
						}
						set[id] = true
					}
				}
				_, b, _ := k.Stacks()
				for _, id := range b {
					if waiting(id) && overtaken[id] == nil {
						overtaken[id] = map[int]bool{}
					}
				}
			}
		})
	}
}

// TestFairShareShares: a whale with n smaller batches, all with more
// pending tasks than the robots, on R robots that finish in random order.
// A free robot never goes to a batch holding more than its share R·w/Σw
// while another holds less, and over the run every batch holds its share
// on average, to within one robot.
func TestFairShareShares(t *testing.T) {
	for _, tc := range []struct {
		robots int
		sizes  []int
		drain  bool // small batches run out: weights fall, shares move; no average to check
	}{
		{32, []int{20000, 2000, 2000, 2000}, false},
		{8, []int{10000, 5000}, false},
		{40, []int{6000, 600, 600, 600, 600, 600, 600, 600, 600}, false},
		{64, []int{1 << 16, 3000, 1000, 10000}, false},
		{30, []int{10000, 5, 5, 5}, true},
		{8, []int{10000, 5, 7, 30, 2, 1, 50}, true},
	} {
		t.Run(fmt.Sprint(tc.robots, tc.sizes), func(t *testing.T) {
			k := NewBook(FairShare)
			rnd := rand.New(rand.NewPCG(uint64(tc.robots), 1))
			for i, n := range tc.sizes {
				if err := k.Submit(i+1, n); err != nil {
					t.Fatal(err)
				}
			}
			var running []int
			for range tc.robots {
				id, _ := k.Poll(nil)
				running = append(running, id)
			}
			held := make([]float64, len(tc.sizes))
			fair := make([]float64, len(tc.sizes))
			const steps = 4000
			for step := range steps {
				j := rnd.IntN(len(running))
				if err := k.Result(running[j], true); err != nil {
					t.Fatal(err)
				}
				id, ok := k.Poll(nil)
				if !ok {
					t.Fatal("nothing to serve")
				}
				running[j] = id
				// The counts and shares as the poll saw them: before its
				// dispatch (of the robot freed by the result: R − 1 held).
				before := func(i int) (p, r int) {
					p, r, _ = k.Counts(i + 1)
					if i+1 == id {
						p, r = p+1, r-1
					}
					return p, r
				}
				var sum float64
				share := make([]float64, len(tc.sizes))
				for i := range tc.sizes {
					p, _ := before(i)
					sum += float64(Weight(p))
				}
				below := -1
				for i := range tc.sizes {
					p, r := before(i)
					share[i] = float64(tc.robots) * float64(Weight(p)) / sum
					if p > 0 && float64(r) < share[i] {
						below = i + 1
					}
				}
				if p, r := before(id - 1); float64(r) > share[id-1] && below > 0 {
					t.Fatalf("step %d: batch %d (%d pending) got a robot holding %d, above its share %.2f, while batch %d was below its share", step, id, p, r, share[id-1], below)
				}
				for i := range tc.sizes {
					_, r, _ := k.Counts(i + 1)
					held[i] += float64(r) / steps
					fair[i] += share[i] / steps
				}
			}
			for i := range tc.sizes {
				if tc.drain {
					break
				}
				if p, _, _ := k.Counts(i + 1); p < tc.robots {
					t.Fatalf("batch %d ran out of pending tasks: the scenario is too short", i+1)
				}
				if math.Abs(held[i]-fair[i]) > 1 {
					t.Errorf("batch %d held %.2f robots on average, its share was %.2f", i+1, held[i], fair[i])
				}
			}
		})
	}
}
