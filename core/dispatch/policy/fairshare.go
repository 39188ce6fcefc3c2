package policy

import "math/bits"

// FairShare is weighted max-min fairness of robots among the batches in
// service, the rule of Hadoop's Fair Scheduler applied to orders: a free
// robot goes to the batch of B holding the fewest robots for its weight,
// Running / Weight(Pending); ties go to the batch served longest ago
// (LastServed), then the lower ID. Stack A is served first, exactly as
// under the seed's rules.
//
// Its guarantees (TestFairShareBounds and the other FairShare tests check
// each of them):
//
//   - Newcomers first. A new batch gets its first task at the next free
//     robot, unless older newcomers are ahead of it in A: at the (k+1)-th
//     dispatch after its submission when k batches wait in A before it.
//   - Bounded wait. A batch in B with pending tasks and none running is
//     served within n − 1 dispatches to other batches of B (n: the batches
//     of B with pending tasks), newcomers' first tasks aside. Its key is
//     0, the least; another batch ahead of it holds no robot and was
//     served earlier, and once served it is behind it: serving gives it a
//     robot, and when that robot comes back its result makes it the most
//     recently served. A batch with tasks running holds its share already
//     and waits at most until they end (the process's max_duration) and
//     then n − 1 dispatches.
//   - Big orders get more robots. While every batch can use what it is
//     given, batch i holds R·wᵢ/Σw of R robots, to within one robot per
//     batch: a whale of 10 000 tasks (weight 14) alone with n batches of
//     5 tasks (weight 3) holds 14/(14 + 3n) of the robots, where
//     oldest_served gives it at most 1/(n + 1) and weighted 10 000/(10 000
//     + 5n). What a batch cannot use (it has fewer pending tasks than its
//     share) goes to the others.
//   - Work-conserving. Pick returns a batch whenever any candidate has a
//     pending task: no robot idles while a task it may take is pending.
//
// The rule reads only the batch's running and pending counts, which the
// database keeps on the batch row; it keeps no state of its own, so two
// daemons, a restart or a change of a pool's fairness need nothing more.

// MaxWeight bounds a batch's weight: a batch of 2^15 pending tasks or more
// weighs as much as any bigger one.
const MaxWeight = 16

// Weight is a batch's weight under FairShare: 1 + ⌊log2 pending⌋, at most
// MaxWeight; 0 when nothing is pending. A batch of 1 task weighs 1, of 5
// tasks 3, of 100 tasks 7, of 10 000 tasks 14: an order a thousand times
// bigger gets about five times the robots, not a thousand.
func Weight(pending int) int {
	if pending <= 0 {
		return 0
	}
	return min(bits.Len(uint(pending)), MaxWeight)
}

// lessLoaded reports whether a holds fewer robots for its weight than b:
// a.Running/Weight(a) < b.Running/Weight(b), by cross-multiplication so
// that no division rounds.
func lessLoaded(a, b Candidate) (less, equal bool) {
	l := a.Running * Weight(b.Pending)
	r := b.Running * Weight(a.Pending)
	return l < r, l == r
}

// pickFairShare is Pick's choice among B once stack A had no pending
// work.
func pickFairShare(cands []Candidate) (int, bool) {
	best := -1
	for j, c := range cands {
		if c.Stack != StackB || c.Pending <= 0 {
			continue
		}
		if best < 0 {
			best = j
			continue
		}
		if less, equal := lessLoaded(c, cands[best]); less || (equal && olderB(c, cands[best])) {
			best = j
		}
	}
	return best, best >= 0
}
