package policy

import "math/bits"

// FairShare is weighted max-min fairness of robots among the batches in
// service, the rule of Hadoop's Fair Scheduler applied to orders: a free
// robot goes to the batch of B holding the fewest robots for its weight,
// Running / Weight(Pending); ties go to the batch served longest ago
// (LastServed), then the lower ID. Stack A is served first, exactly as
// under the seed's rules.
//
// What it guarantees, for Pick as one claim sees the pool (the tests named
// check each; the limits on the database path follow):
//
//   - Newcomers first. A new batch gets its first task at the next poll
//     that finds no older new batch in A (TestPick, TestFairShareBounds).
//   - Bounded wait. While a batch W of B has pending tasks and none
//     running, every other batch of B is served before it at most once:
//     W's key is 0, the least, so a batch ahead of it also holds no robot
//     and was served before W; serving it stamps it served now, behind W,
//     and gives it a robot. So W waits at most n − 1 dispatches to B, n the
//     batches in stack B, pending or not (TestFairShareBounds). A batch
//     with tasks running waits until it is the furthest below its share,
//     at the latest until its running attempts end and then n − 1
//     dispatches. New batches' first tasks come before all of this: under a
//     steady stream of new batches a wait is bounded in dispatches to B,
//     not in time, as under the seed's rules.
//   - Big orders get more robots. A free robot never goes to a batch
//     holding more than its share R·wᵢ/Σw while another batch with pending
//     tasks holds less, with the weights of the moment (TestFairShareShares;
//     R: the robots busy in the pool plus this one). A batch's weight falls
//     as its pending tasks are served, so what a batch holds moves with it;
//     while every batch has more pending tasks than its share, each holds
//     its share on average, to within one robot. A whale of 10 000 tasks
//     (weight 14) beside batches of 5 (weight 3, then 2, then 1 as they
//     drain) holds about 14/(14 + 3n) of the robots while those are
//     fresh and more as they drain; oldest_served gives it no more than any
//     one of them, weighted 10 000/(10 000 + 5n).
//   - Work-conserving. Pick returns a batch whenever any candidate has a
//     pending task.
//
// On the database path (package dispatch) Pick sees the rows one claim
// read, and these hold with three limits, which the seed's rules share:
// concurrent claims read the same rows, so c claims in flight may all
// choose the same batch (each other batch may then come before W up to c
// times, and a batch may pass its share by up to c − 1 robots until its
// next results); a robot is not given a task that timed out on it while
// another live robot could take it, so a batch whose only pending tasks
// are such waits for another robot; and a claim tries at most 16 batches
// before answering "nothing" (dispatch.maxDraws). A time-out returns a
// task to pending without stamping its batch served (only dispatches and
// results do, as in the seed), which is why n counts every batch of B.
//
// The rule reads only the batch's running and pending counts, which the
// database keeps on the batch row; it keeps no state of its own, so a
// restart or a change of a pool's fairness needs nothing more. Weight is
// per batch: a customer who splits an order into many small batches gets
// more than one who submits it whole (each batch also gets its first task
// first); fairness between customers is not this rule's job.

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
