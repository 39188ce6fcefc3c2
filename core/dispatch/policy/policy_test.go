package policy

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// fixed is a Rand that returns the given draws in turn (modulo n).
type fixed struct{ draws []uint64 }

func (f *fixed) Uint64N(n uint64) uint64 {
	if len(f.draws) == 0 {
		return 0
	}
	d := f.draws[0]
	f.draws = f.draws[1:]
	return d % n
}

func at(s int) time.Time { return time.Unix(int64(s), 0) }

func TestPick(t *testing.T) {
	a := func(id, submitted, pending int) Candidate {
		return Candidate{ID: id, Stack: StackA, Submitted: at(submitted), Pending: pending}
	}
	b := func(id, served, pending int) Candidate {
		return Candidate{ID: id, Stack: StackB, LastServed: at(served), Pending: pending}
	}
	cases := []struct {
		name  string
		f     Fairness
		cands []Candidate
		draws []uint64
		want  int // batch ID; 0 = nothing
	}{
		{"nothing at all", Weighted, nil, nil, 0},
		{"nothing pending: everything running", OldestServed, []Candidate{b(1, 1, 0), b(2, 2, 0)}, nil, 0},
		{"finished batches are never candidates", Weighted, []Candidate{{ID: 9, Stack: StackC, Pending: 5}}, nil, 0},
		// "If A has menus, take the bottom one of A."
		{"bottom of A is the oldest new batch", Weighted, []Candidate{a(2, 20, 5), a(1, 10, 5), a(3, 30, 5)}, nil, 1},
		{"A before B, whatever B holds (oldest_served)", OldestServed, []Candidate{b(1, 1, 10000), a(2, 50, 1)}, nil, 2},
		{"A before B, whatever B holds (weighted)", Weighted, []Candidate{b(1, 1, 10000), a(2, 50, 1)}, []uint64{0}, 2},
		{"A ties break by lower ID", Weighted, []Candidate{a(7, 10, 1), a(4, 10, 1)}, nil, 4},
		{"an A batch this robot cannot serve is skipped", OldestServed, []Candidate{a(1, 10, 0), a(2, 20, 3)}, nil, 2},
		{"A empty of eligible work falls to B", OldestServed, []Candidate{a(1, 10, 0), b(2, 5, 3)}, nil, 2},
		// "Otherwise take the bottom of B" — the least recently served.
		{"oldest_served: bottom of B", OldestServed, []Candidate{b(1, 30, 4), b(2, 10, 4), b(3, 20, 4)}, nil, 2},
		{"oldest_served: bottom of B that still has a pending task", OldestServed, []Candidate{b(1, 30, 4), b(2, 10, 0), b(3, 20, 4)}, nil, 3},
		{"oldest_served: ties break by lower ID", OldestServed, []Candidate{b(5, 10, 1), b(3, 10, 1)}, nil, 3},
		{"oldest_served ignores size", OldestServed, []Candidate{b(1, 10, 1), b(2, 20, 9999)}, nil, 1},
		// The black box: slips 0 for batch 1, 1..3 for batch 2.
		{"weighted: slip 0 is batch 1", Weighted, []Candidate{b(1, 10, 1), b(2, 20, 3)}, []uint64{0}, 1},
		{"weighted: slip 1 is batch 2", Weighted, []Candidate{b(1, 10, 1), b(2, 20, 3)}, []uint64{1}, 2},
		{"weighted: slip 3 is batch 2", Weighted, []Candidate{b(1, 10, 1), b(2, 20, 3)}, []uint64{3}, 2},
		{"weighted: batches without pending hold no slips", Weighted, []Candidate{b(1, 10, 0), b(2, 20, 2), b(3, 5, 0)}, []uint64{1}, 2},
		{"weighted ignores service order", Weighted, []Candidate{b(1, 99, 1), b(2, 1, 1)}, []uint64{0}, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := slices.Clone(tc.cands)
			i, ok := Pick(tc.f, tc.cands, &fixed{draws: tc.draws})
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

func TestParseFairness(t *testing.T) {
	for in, want := range map[string]Fairness{"": FairShare, "fair_share": FairShare, "weighted": Weighted, "oldest_served": OldestServed} {
		if got, err := ParseFairness(in); err != nil || got != want {
			t.Errorf("ParseFairness(%q) = %q, %v", in, got, err)
		}
	}
	if _, err := ParseFairness("fifo"); err == nil {
		t.Error("ParseFairness accepted fifo")
	}
}

// stacks is a compact picture of a Book for the narrative tests.
type stacks struct{ a, b, c []int }

func picture(k *Book) stacks {
	a, b, c := k.Stacks()
	return stacks{a, b, c}
}

func (s stacks) equal(o stacks) bool {
	return slices.Equal(s.a, o.a) && slices.Equal(s.b, o.b) && slices.Equal(s.c, o.c)
}

// The seed's narrative, step by step, on both fairness policies where the
// policy does not matter and on oldest_served where the text describes it.
func TestSeedNarrative(t *testing.T) {
	type step struct {
		do    string // submit, poll, result, final
		batch int    // for submit/result/final; for poll the expected batch (0 = none)
		n     int    // tasks, for submit
		want  stacks // after the step
	}
	cases := []struct {
		name  string
		f     Fairness
		steps []step
	}{
		{"new menus go on top of A; the waiter takes the bottom of A", OldestServed, []step{
			{do: "submit", batch: 1, n: 2, want: stacks{a: []int{1}}},
			{do: "submit", batch: 2, n: 2, want: stacks{a: []int{1, 2}}},
			{do: "submit", batch: 3, n: 2, want: stacks{a: []int{1, 2, 3}}},
			// Bottom of A (1) is served and goes on top of B.
			{do: "poll", batch: 1, want: stacks{a: []int{2, 3}, b: []int{1}}},
			{do: "poll", batch: 2, want: stacks{a: []int{3}, b: []int{1, 2}}},
			{do: "poll", batch: 3, want: stacks{b: []int{1, 2, 3}}},
			// A is empty: the bottom of B, the customer served longest ago.
			{do: "poll", batch: 1, want: stacks{b: []int{2, 3, 1}}},
		}},
		{"a result moves the menu to the top of B, or to C when the last dish is served", OldestServed, []step{
			{do: "submit", batch: 1, n: 2, want: stacks{a: []int{1}}},
			{do: "submit", batch: 2, n: 1, want: stacks{a: []int{1, 2}}},
			{do: "poll", batch: 1, want: stacks{a: []int{2}, b: []int{1}}},
			{do: "poll", batch: 2, want: stacks{b: []int{1, 2}}},
			// Dishes need different times: 1's comes back after 2 was sent.
			{do: "final", batch: 1, want: stacks{b: []int{2, 1}}},
			{do: "final", batch: 2, want: stacks{b: []int{1}, c: []int{2}}},
			{do: "poll", batch: 1, want: stacks{b: []int{1}, c: []int{2}}},
			{do: "poll", batch: 0, want: stacks{b: []int{1}, c: []int{2}}},
			{do: "final", batch: 1, want: stacks{c: []int{2, 1}}},
		}},
		{"a dish to be redone returns to the menu, and the menu to the top of B", OldestServed, []step{
			{do: "submit", batch: 1, n: 1, want: stacks{a: []int{1}}},
			{do: "submit", batch: 2, n: 2, want: stacks{a: []int{1, 2}}},
			{do: "poll", batch: 1, want: stacks{a: []int{2}, b: []int{1}}},
			{do: "poll", batch: 2, want: stacks{b: []int{1, 2}}},
			{do: "result", batch: 1, want: stacks{b: []int{2, 1}}},
			// 2 was served longer ago than 1's result came back.
			{do: "poll", batch: 2, want: stacks{b: []int{1, 2}}},
			// Its last dish succeeds: menu 2 waits on its running dish.
			{do: "final", batch: 2, want: stacks{b: []int{1, 2}}},
			{do: "poll", batch: 1, want: stacks{b: []int{2, 1}}},
			{do: "final", batch: 1, want: stacks{b: []int{2}, c: []int{1}}},
			{do: "final", batch: 2, want: stacks{c: []int{1, 2}}},
		}},
		{"a newcomer is served at the next free cook whatever the backlog (oldest_served)", OldestServed, []step{
			{do: "submit", batch: 1, n: 10000, want: stacks{a: []int{1}}},
			{do: "poll", batch: 1, want: stacks{b: []int{1}}},
			{do: "poll", batch: 1, want: stacks{b: []int{1}}},
			{do: "submit", batch: 2, n: 3, want: stacks{a: []int{2}, b: []int{1}}},
			{do: "poll", batch: 2, want: stacks{b: []int{1, 2}}},
		}},
		{"a newcomer is served at the next free cook whatever the backlog (weighted)", Weighted, []step{
			{do: "submit", batch: 1, n: 10000, want: stacks{a: []int{1}}},
			{do: "poll", batch: 1, want: stacks{b: []int{1}}},
			{do: "submit", batch: 2, n: 3, want: stacks{a: []int{2}, b: []int{1}}},
			{do: "submit", batch: 3, n: 3, want: stacks{a: []int{2, 3}, b: []int{1}}},
			{do: "poll", batch: 2, want: stacks{a: []int{3}, b: []int{1, 2}}},
			{do: "poll", batch: 3, want: stacks{b: []int{1, 2, 3}}},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			k := NewBook(tc.f)
			rnd := rand.New(rand.NewPCG(1, 2))
			for i, s := range tc.steps {
				switch s.do {
				case "submit":
					if err := k.Submit(s.batch, s.n); err != nil {
						t.Fatal(err)
					}
				case "poll":
					got, ok := k.Poll(rnd)
					if !ok {
						got = 0
					}
					if got != s.batch {
						t.Fatalf("step %d: poll served batch %d, want %d", i, got, s.batch)
					}
				case "result", "final":
					if err := k.Result(s.batch, s.do == "final"); err != nil {
						t.Fatalf("step %d: %v", i, err)
					}
				}
				if got := picture(k); !got.equal(s.want) {
					t.Fatalf("step %d (%s %d): stacks %+v, want %+v", i, s.do, s.batch, got, s.want)
				}
			}
		})
	}
}

// Oldest-served fairness with simultaneous menus: customers are served in
// turn, one dish each, "the customer who waited longest first".
func TestOldestServedRoundRobin(t *testing.T) {
	k := NewBook(OldestServed)
	for id := 1; id <= 3; id++ {
		if err := k.Submit(id, 3); err != nil {
			t.Fatal(err)
		}
	}
	var got []int
	for {
		id, ok := k.Poll(nil)
		if !ok {
			break
		}
		got = append(got, id)
		if err := k.Result(id, true); err != nil {
			t.Fatal(err)
		}
	}
	want := []int{1, 2, 3, 1, 2, 3, 1, 2, 3}
	if !slices.Equal(got, want) {
		t.Fatalf("service order %v, want %v", got, want)
	}
	if _, _, c := k.Stacks(); !slices.Equal(c, []int{1, 2, 3}) {
		t.Fatalf("C = %v", c)
	}
}

func TestBookRefusesNonsense(t *testing.T) {
	k := NewBook(Weighted)
	if err := k.Submit(1, 0); err == nil {
		t.Error("empty batch accepted")
	}
	if err := k.Submit(1, 1); err != nil {
		t.Fatal(err)
	}
	if err := k.Submit(1, 1); err == nil {
		t.Error("duplicate batch accepted")
	}
	if err := k.Result(1, true); err == nil {
		t.Error("result for a batch with nothing running accepted")
	}
	if err := k.Result(2, true); err == nil {
		t.Error("result for an unknown batch accepted")
	}
	if s, ok := k.StackOf(1); !ok || s != StackA {
		t.Errorf("StackOf(1) = %v %v", s, ok)
	}
}

// The black box: over many seeded draws each batch's share of dispatches is
// its share of pending slips, within a tolerance far wider than the
// sampling error (σ ≈ 0.0015 for 100 000 draws) yet far narrower than any
// plausible bug.
func TestWeightedShares(t *testing.T) {
	const draws = 100_000
	pending := []int{1000, 300, 100, 1}
	cands := make([]Candidate, len(pending))
	total := 0
	for i, p := range pending {
		cands[i] = Candidate{ID: i + 1, Stack: StackB, LastServed: at(i), Pending: p}
		total += p
	}
	rnd := rand.New(rand.NewPCG(2026, 3))
	got := make([]int, len(pending))
	for range draws {
		i, ok := Pick(Weighted, cands, rnd)
		if !ok {
			t.Fatal("nothing picked")
		}
		got[i]++
	}
	var chi2 float64
	for i, p := range pending {
		want := float64(p) / float64(total)
		share := float64(got[i]) / draws
		if math.Abs(share-want) > 0.01 {
			t.Errorf("batch %d: share %.4f, want %.4f ± 0.01", i+1, share, want)
		}
		exp := want * draws
		chi2 += (float64(got[i]) - exp) * (float64(got[i]) - exp) / exp
	}
	// 3 degrees of freedom: P(χ² > 16.27) = 0.001.
	if chi2 > 16.27 {
		t.Errorf("χ² = %.2f over %v: draws are not proportional to pending counts", chi2, got)
	}
}

// Draining a whale (1000 tasks) and ten minnows (10 tasks each) that all
// got their first dish from A. oldest_served alternates customers, so the
// minnows finish early; weighted treats every slip alike, so a minnow's
// dishes land at uniformly random slots of the drain (mean slot ≈ 550,
// σ of the mean over 90 tasks ≈ 33) — the seed's intent for big orders,
// and the reason the README's fairness report shows both policies.
func TestDrainWhaleAndMinnows(t *testing.T) {
	for _, f := range []Fairness{OldestServed, Weighted} {
		k := NewBook(f)
		rnd := rand.New(rand.NewPCG(7, 7))
		if err := k.Submit(1, 1000); err != nil {
			t.Fatal(err)
		}
		for id := 2; id <= 11; id++ {
			if err := k.Submit(id, 10); err != nil {
				t.Fatal(err)
			}
		}
		finishedAt := map[int]int{}
		minnowSlots, minnowTasks := 0, 0
		for slot := 1; ; slot++ {
			id, ok := k.Poll(rnd)
			if !ok {
				break
			}
			if id != 1 && slot > 11 { // after the first dishes from A
				minnowSlots += slot
				minnowTasks++
			}
			if err := k.Result(id, true); err != nil {
				t.Fatal(err)
			}
			if s, _ := k.StackOf(id); s == StackC {
				finishedAt[id] = slot
			}
		}
		if len(finishedAt) != 11 || finishedAt[1] != 1100 || minnowTasks != 90 {
			t.Fatalf("%s: finished %v, %d minnow tasks", f, finishedAt, minnowTasks)
		}
		mean := float64(minnowSlots) / float64(minnowTasks)
		switch f {
		case OldestServed:
			for id := 2; id <= 11; id++ {
				if finishedAt[id] > 11*10 {
					t.Errorf("oldest_served: minnow %d finished at slot %d, want ≤ 110", id, finishedAt[id])
				}
			}
		case Weighted:
			if math.Abs(mean-550) > 110 {
				t.Errorf("weighted: minnow tasks' mean slot %.1f, want 550 ± 110", mean)
			}
		}
	}
}

func TestJain(t *testing.T) {
	cases := []struct {
		x    []float64
		want float64
	}{
		{nil, 1},
		{[]float64{1, 1, 1, 1}, 1},
		{[]float64{1, 0, 0, 0}, 0.25},
		{[]float64{2, 1}, 0.9},
	}
	for _, c := range cases {
		if got := Jain(c.x); math.Abs(got-c.want) > 1e-9 {
			t.Errorf("Jain(%v) = %v, want %v", c.x, got, c.want)
		}
	}
}

func TestStackString(t *testing.T) {
	if StackA.String() != "A" || StackB.String() != "B" || StackC.String() != "C" || Stack(9).String() != "Stack(9)" {
		t.Error("stack names")
	}
}
