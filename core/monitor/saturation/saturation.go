// Package saturation measures how busy robots, pools and vendor licences
// are over a time window, finds idle robots, and recommends how many
// robots (licences) the measured load needs. It is pure: the caller
// supplies robots and busy intervals (attempts, vendor jobs).
package saturation

import (
	"math"
	"sort"
	"time"
)

// Windows the API offers.
var Windows = map[string]time.Duration{"HOUR": time.Hour, "DAY": 24 * time.Hour, "WEEK": 7 * 24 * time.Hour}

// Robot is a robot (one licence for vendor robots) and the time it existed.
type Robot struct {
	ID         int
	Name, Pool string
	Vendor     string // "rpacloud", "uipath", "aa": the licence it uses
	From       time.Time
	Until      *time.Time // released; nil while it exists
}

// Busy is a time a robot spent running work. A zero End means still running.
type Busy struct {
	RobotID    int
	Start, End time.Time
}

// Options tune the judgement.
type Options struct {
	// Target is the utilisation a robot should run at: the recommendation
	// sizes the fleet so the measured load fills robots to this. Default 0.8.
	Target float64
	// IdleBelow marks a robot idle under this utilisation. Default 0.05.
	IdleBelow float64
}

func (o Options) withDefaults() Options {
	if o.Target <= 0 || o.Target > 1 {
		o.Target = 0.8
	}
	if o.IdleBelow <= 0 {
		o.IdleBelow = 0.05
	}
	return o
}

// Use is the busy time of one robot or group over the window.
type Use struct {
	Key  string // robot name, pool name or vendor
	Pool string // for robots
	// Robots is how many robots contributed (1 for a robot).
	Robots    int
	Busy      time.Duration
	Available time.Duration
	// Utilisation is Busy / Available, 0 when nothing was available.
	Utilisation float64
	Idle        bool
	// Peak is the most robots busy at the same moment.
	Peak int
	// Recommended is how many robots (licences) the measured load needs;
	// see Recommend.
	Recommended int
}

// Report is the saturation over one window.
type Report struct {
	From, To time.Time
	Robots   []Use
	Pools    []Use
	Vendors  []Use
}

// Compute measures busy time in [now-window, now).
func Compute(now time.Time, window time.Duration, robots []Robot, busy []Busy, o Options) Report {
	o = o.withDefaults()
	from := now.Add(-window)
	rep := Report{From: from, To: now}
	byID := make(map[int]Robot, len(robots))
	for _, r := range robots {
		byID[r.ID] = r
	}
	perRobot := map[int][]span{}
	for _, b := range busy {
		if _, ok := byID[b.RobotID]; !ok {
			continue
		}
		s, ok := clip(b.Start, b.End, from, now)
		if ok {
			perRobot[b.RobotID] = append(perRobot[b.RobotID], s)
		}
	}
	pools, vendors := map[string]*group{}, map[string]*group{}
	for _, r := range robots {
		life, ok := clip(r.From, until(r.Until), from, now)
		if !ok {
			continue // did not exist in the window
		}
		spans := merge(perRobot[r.ID])
		var b time.Duration
		for _, s := range spans {
			b += s.end.Sub(s.start)
		}
		avail := life.end.Sub(life.start)
		u := Use{Key: r.Name, Pool: r.Pool, Robots: 1, Busy: b, Available: avail, Utilisation: ratio(b, avail)}
		u.Idle = u.Utilisation < o.IdleBelow
		if b > 0 {
			u.Peak = 1
		}
		u.Recommended = Recommend(b, window, o.Target, u.Peak)
		rep.Robots = append(rep.Robots, u)
		add(pools, r.Pool, u, spans)
		v := r.Vendor
		if v == "" {
			v = "rpacloud"
		}
		add(vendors, v, u, spans)
	}
	rep.Pools = finish(pools, window, o)
	rep.Vendors = finish(vendors, window, o)
	sort.Slice(rep.Robots, func(i, j int) bool {
		if rep.Robots[i].Utilisation != rep.Robots[j].Utilisation {
			return rep.Robots[i].Utilisation > rep.Robots[j].Utilisation
		}
		return rep.Robots[i].Key < rep.Robots[j].Key
	})
	return rep
}

// Recommend is the number of robots that carries busy time over window at
// the target utilisation. With no load it is 0; a group that ever had
// `peak` robots busy at once gets at least ceil(peak * target) so the
// recommendation does not turn a burst into a queue for long. The result is
// rounded up: a fraction of a licence cannot be bought.
func Recommend(busy, window time.Duration, target float64, peak int) int {
	if busy <= 0 || window <= 0 {
		return 0
	}
	n := int(math.Ceil(float64(busy) / (float64(window) * target)))
	if p := int(math.Ceil(float64(peak) * target)); p > n {
		n = p
	}
	return max(n, 1)
}

type span struct{ start, end time.Time }

type group struct {
	use   Use
	spans []span
}

func add(m map[string]*group, key string, u Use, spans []span) {
	g := m[key]
	if g == nil {
		g = &group{use: Use{Key: key}}
		m[key] = g
	}
	g.use.Robots++
	g.use.Busy += u.Busy
	g.use.Available += u.Available
	g.spans = append(g.spans, spans...)
}

func finish(m map[string]*group, window time.Duration, o Options) []Use {
	out := make([]Use, 0, len(m))
	for _, g := range m {
		u := g.use
		u.Utilisation = ratio(u.Busy, u.Available)
		u.Idle = u.Utilisation < o.IdleBelow
		u.Peak = peak(g.spans)
		u.Recommended = Recommend(u.Busy, window, o.Target, u.Peak)
		out = append(out, u)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

func ratio(a, b time.Duration) float64 {
	if b <= 0 {
		return 0
	}
	return math.Min(1, float64(a)/float64(b))
}

func until(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return *t
}

// clip cuts [start, end) to [from, to); a zero end means open-ended.
func clip(start, end, from, to time.Time) (span, bool) {
	if end.IsZero() || end.After(to) {
		end = to
	}
	if start.Before(from) {
		start = from
	}
	if !end.After(start) {
		return span{}, false
	}
	return span{start, end}, true
}

// merge joins overlapping spans of one robot so that a robot is never
// counted busier than the time that passed (overlaps happen when an
// abandoned attempt and its successor are both recorded on it).
func merge(s []span) []span {
	if len(s) < 2 {
		return s
	}
	s = append([]span(nil), s...)
	sort.Slice(s, func(i, j int) bool { return s[i].start.Before(s[j].start) })
	out := []span{s[0]}
	for _, x := range s[1:] {
		last := &out[len(out)-1]
		if !x.start.After(last.end) {
			if x.end.After(last.end) {
				last.end = x.end
			}
			continue
		}
		out = append(out, x)
	}
	return out
}

// peak is the largest number of spans open at one instant.
func peak(s []span) int {
	type edge struct {
		at time.Time
		d  int
	}
	es := make([]edge, 0, 2*len(s))
	for _, x := range s {
		es = append(es, edge{x.start, 1}, edge{x.end, -1})
	}
	// Ends sort before starts at the same instant: back-to-back work on
	// one robot is not two robots.
	sort.Slice(es, func(i, j int) bool {
		if !es[i].at.Equal(es[j].at) {
			return es[i].at.Before(es[j].at)
		}
		return es[i].d < es[j].d
	})
	n, best := 0, 0
	for _, e := range es {
		n += e.d
		best = max(best, n)
	}
	return best
}

// Point is one bucket of a utilisation series.
type Point struct {
	At          time.Time
	Utilisation float64
}

// Series splits the window into buckets and returns each pool's
// utilisation per bucket, oldest first.
func Series(now time.Time, window time.Duration, buckets int, robots []Robot, busy []Busy) map[string][]Point {
	if buckets <= 0 {
		buckets = 1
	}
	step := window / time.Duration(buckets)
	out := map[string][]Point{}
	for i := range buckets {
		end := now.Add(-window + time.Duration(i+1)*step)
		rep := Compute(end, step, robots, busy, Options{})
		seen := map[string]bool{}
		for _, p := range rep.Pools {
			out[p.Key] = append(out[p.Key], Point{At: end.Add(-step), Utilisation: p.Utilisation})
			seen[p.Key] = true
		}
		for k := range out {
			if !seen[k] && len(out[k]) < i+1 {
				out[k] = append(out[k], Point{At: end.Add(-step)})
			}
		}
	}
	// Pools that appeared late get zeros in front so every series has one
	// point per bucket.
	for k, pts := range out {
		if len(pts) < buckets {
			pad := make([]Point, 0, buckets)
			for i := range buckets - len(pts) {
				pad = append(pad, Point{At: now.Add(-window + time.Duration(i)*step)})
			}
			out[k] = append(pad, pts...)
		}
	}
	return out
}
