package sim

import "github.com/rpacloud/rpacloud/core/dispatch/policy"

// order keeps the candidates of stack B in a binary heap by an ordered
// fairness's policy.Less, so that a poll under oldest_served or fair_share
// costs O(log |B|) rather than a scan of every batch in service: a backlog
// of 30 000 open batches would otherwise make a simulation quadratic. A
// batch's key changes only on its own events (a dispatch, a result, a
// retry), each followed by fix. The heap's top is exactly what
// policy.Pick would choose from the same candidates
// (TestOrderAgreesWithPick).
type order struct {
	f     policy.Fairness
	cands *[]policy.Candidate
	posB  []int32 // batch → index in *cands, shared with the engine
	heap  []int32 // batch indexes
	at    []int32 // batch → index in heap, -1 when absent
}

func newOrder(f policy.Fairness, cands *[]policy.Candidate, posB []int32, batches int) *order {
	o := &order{f: f, cands: cands, posB: posB, at: make([]int32, batches)}
	for i := range o.at {
		o.at[i] = -1
	}
	return o
}

func (o *order) cand(bi int32) policy.Candidate { return (*o.cands)[o.posB[bi]] }

func (o *order) less(i, j int) bool {
	return policy.Less(o.f, o.cand(o.heap[i]), o.cand(o.heap[j]))
}

func (o *order) swap(i, j int) {
	o.heap[i], o.heap[j] = o.heap[j], o.heap[i]
	o.at[o.heap[i]], o.at[o.heap[j]] = int32(i), int32(j)
}

func (o *order) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if !o.less(i, p) {
			return
		}
		o.swap(i, p)
		i = p
	}
}

func (o *order) down(i int) {
	for {
		l, least := 2*i+1, i
		if l < len(o.heap) && o.less(l, least) {
			least = l
		}
		if r := l + 1; r < len(o.heap) && o.less(r, least) {
			least = r
		}
		if least == i {
			return
		}
		o.swap(i, least)
		i = least
	}
}

// fix puts batch bi where its candidate now belongs: added when it is a
// candidate with pending tasks, removed when it is not.
func (o *order) fix(bi int32) {
	in := o.posB[bi] >= 0 && o.cand(bi).Pending > 0
	i := int(o.at[bi])
	switch {
	case in && i < 0:
		o.heap = append(o.heap, bi)
		o.at[bi] = int32(len(o.heap) - 1)
		o.up(len(o.heap) - 1)
	case in:
		o.up(i)
		o.down(int(o.at[bi]))
	case i >= 0:
		last := len(o.heap) - 1
		o.swap(i, last)
		o.heap = o.heap[:last]
		o.at[bi] = -1
		if i < last {
			moved := o.heap[i]
			o.up(i)
			o.down(int(o.at[moved]))
		}
	}
}

// top is the batch Pick would serve from B, if any.
func (o *order) top() (int, bool) {
	if len(o.heap) == 0 {
		return 0, false
	}
	return int(o.heap[0]), true
}
