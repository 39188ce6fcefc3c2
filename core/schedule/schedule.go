// Package schedule is the run schedule of seed 000 (流程运行排期表):
// departments book recurring time slots for their processes on shared
// pools and robots, and the platform finds the clashes (two bookings on
// one robot at once, or more concurrent bookings in a pool than its max),
// the free capacity left, and the booked utilisation of each robot. It is
// pure: bookings and pools in, intervals out, so the rules are table-tested
// without a database. The same occurrences feed the scaler's pre-warm and
// the monitor's "scheduled run never started" rule through Occurrences.
package schedule

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/rpacloud/rpacloud/core/config"
)

// Booking is a recurring slot a department reserved for a process.
type Booking struct {
	ID         string // stable, unique: "process/name" for HCL bookings
	Process    string
	Department string
	Pool       string
	// Robot pins the booking to one robot (VM) of the pool; "" books any
	// robot of the pool.
	Robot string
	// Robots is how many robots the slot needs at once; default 1.
	Robots   int
	Cron     string        // 5-field cron in Timezone: when each slot starts
	Duration time.Duration // length of each slot
	Timezone string        // IANA name; "" = UTC
	// From and Until bound the booking (zero = unbounded).
	From, Until time.Time
}

// Pool is what clash detection needs of a pool.
type Pool struct {
	Name string
	Max  int
}

// Slot is one occurrence of a booking, in absolute time.
type Slot struct {
	Booking    *Booking
	Start, End time.Time
}

type compiled struct {
	b    *Booking
	cron config.Cron
	loc  *time.Location
}

// ErrInvalid is wrapped by every validation error.
var ErrInvalid = errors.New("invalid booking")

func compile(b *Booking) (compiled, error) {
	bad := func(format string, args ...any) (compiled, error) {
		return compiled{}, fmt.Errorf("%w %q: %s", ErrInvalid, b.ID, fmt.Sprintf(format, args...))
	}
	if b.ID == "" {
		return bad("no id")
	}
	if b.Process == "" || b.Pool == "" {
		return bad("a booking names its process and pool")
	}
	c, err := config.ParseCron(b.Cron)
	if err != nil {
		return bad("cron %q: %v", b.Cron, err)
	}
	if b.Duration <= 0 {
		return bad("duration must be positive")
	}
	if b.Robots < 0 {
		return bad("robots = %d: it must be 1 or more", b.Robots)
	}
	if b.Robot != "" && b.Robots > 1 {
		return bad("a booking pinned to robot %q cannot need %d robots", b.Robot, b.Robots)
	}
	loc := time.UTC
	if b.Timezone != "" {
		if b.Timezone == "Local" {
			return bad(`timezone "Local" depends on the machine; name an IANA zone`)
		}
		if loc, err = time.LoadLocation(b.Timezone); err != nil {
			return bad("timezone %q: %v", b.Timezone, err)
		}
	}
	if !b.From.IsZero() && !b.Until.IsZero() && !b.Until.After(b.From) {
		return bad("until is not after from")
	}
	return compiled{b: b, cron: c, loc: loc}, nil
}

func (b *Booking) robots() int {
	if b.Robots <= 0 {
		return 1
	}
	return b.Robots
}

// Validate checks every booking and that ids are unique, returning all
// problems at once.
func Validate(bookings []Booking) error {
	var errs []error
	seen := map[string]bool{}
	for i := range bookings {
		if _, err := compile(&bookings[i]); err != nil {
			errs = append(errs, err)
		}
		if seen[bookings[i].ID] {
			errs = append(errs, fmt.Errorf("%w %q: duplicate id", ErrInvalid, bookings[i].ID))
		}
		seen[bookings[i].ID] = true
	}
	return errors.Join(errs...)
}

// Occurrences returns every slot of the bookings that overlaps [from, to),
// sorted by start. Slots that began before from are included, so a run
// in progress at from is not missed.
func Occurrences(bookings []Booking, from, to time.Time) ([]Slot, error) {
	var out []Slot
	for i := range bookings {
		c, err := compile(&bookings[i])
		if err != nil {
			return nil, err
		}
		out = append(out, c.slots(from, to)...)
	}
	sortSlots(out)
	return out, nil
}

func (c compiled) slots(from, to time.Time) []Slot {
	var out []Slot
	// cron.Next is strictly after its argument; start one minute earlier
	// than the earliest slot that could still be running at from.
	t := from.Add(-c.b.Duration).Add(-time.Minute).In(c.loc)
	for {
		t = c.cron.Next(t)
		if t.IsZero() || !t.Before(to) {
			return out
		}
		s := Slot{Booking: c.b, Start: t.UTC(), End: t.Add(c.b.Duration).UTC()}
		if !s.End.After(from) {
			continue
		}
		if !c.b.From.IsZero() && s.Start.Before(c.b.From) {
			continue
		}
		if !c.b.Until.IsZero() && !s.Start.Before(c.b.Until) {
			return out
		}
		out = append(out, s)
	}
}

func sortSlots(s []Slot) {
	sort.Slice(s, func(i, j int) bool {
		if !s[i].Start.Equal(s[j].Start) {
			return s[i].Start.Before(s[j].Start)
		}
		return s[i].Booking.ID < s[j].Booking.ID
	})
}

// ClashKind says which rule a clash breaks.
type ClashKind string

// Clash kinds.
const (
	// RobotClash: two slots on the same robot overlap; a robot runs one
	// process at a time.
	RobotClash ClashKind = "robot"
	// CapacityClash: the slots running at once in a pool need more robots
	// than the pool's max.
	CapacityClash ClashKind = "capacity"
	// UnknownPool: the booking names a pool that does not exist.
	UnknownPool ClashKind = "unknown_pool"
)

// Clash is one conflict in absolute time.
type Clash struct {
	Kind       ClashKind
	Pool       string
	Robot      string   // RobotClash only
	Bookings   []string // ids, sorted
	Start, End time.Time
	Needed     int // CapacityClash: robots needed at once
	Max        int // CapacityClash: the pool's max
}

func (c Clash) String() string {
	switch c.Kind {
	case RobotClash:
		return fmt.Sprintf("robot %s of pool %s is booked twice %s–%s by %s", c.Robot, c.Pool, c.Start.Format(time.RFC3339), c.End.Format(time.RFC3339), strings.Join(c.Bookings, " and "))
	case CapacityClash:
		return fmt.Sprintf("pool %s needs %d robots %s–%s but has at most %d (%s)", c.Pool, c.Needed, c.Start.Format(time.RFC3339), c.End.Format(time.RFC3339), c.Max, strings.Join(c.Bookings, ", "))
	}
	return fmt.Sprintf("bookings %s name pool %s, which does not exist", strings.Join(c.Bookings, ", "), c.Pool)
}

// Clashes finds every conflict among the bookings' slots in [from, to).
func Clashes(bookings []Booking, pools []Pool, from, to time.Time) ([]Clash, error) {
	slots, err := Occurrences(bookings, from, to)
	if err != nil {
		return nil, err
	}
	maxOf := map[string]int{}
	for _, p := range pools {
		maxOf[p.Name] = p.Max
	}
	byPool := map[string][]Slot{}
	var out []Clash
	unknown := map[string][]string{}
	for i := range bookings {
		if _, ok := maxOf[bookings[i].Pool]; !ok {
			unknown[bookings[i].Pool] = append(unknown[bookings[i].Pool], bookings[i].ID)
		}
	}
	for _, p := range sortedKeys(unknown) {
		ids := unknown[p]
		sort.Strings(ids)
		out = append(out, Clash{Kind: UnknownPool, Pool: p, Bookings: ids})
	}
	for _, s := range slots {
		if _, ok := maxOf[s.Booking.Pool]; ok {
			byPool[s.Booking.Pool] = append(byPool[s.Booking.Pool], s)
		}
	}
	for _, p := range sortedKeys(byPool) {
		ps := byPool[p]
		out = append(out, robotClashes(ps)...)
		out = append(out, capacityClashes(p, maxOf[p], ps)...)
	}
	clip(out, from, to)
	return out, nil
}

// robotClashes compares each slot pinned to a robot with the later slots
// on that robot that start before it ends. Slots are sorted by start.
func robotClashes(slots []Slot) []Clash {
	var out []Clash
	byRobot := map[string][]Slot{}
	for _, s := range slots {
		if s.Booking.Robot != "" {
			byRobot[s.Booking.Robot] = append(byRobot[s.Booking.Robot], s)
		}
	}
	for _, r := range sortedKeys(byRobot) {
		rs := byRobot[r]
		for i := range rs {
			for j := i + 1; j < len(rs) && rs[j].Start.Before(rs[i].End); j++ {
				ids := []string{rs[i].Booking.ID, rs[j].Booking.ID}
				sort.Strings(ids)
				if ids[0] == ids[1] {
					ids = ids[:1] // a slot longer than its recurrence overlaps itself
				}
				out = append(out, Clash{
					Kind: RobotClash, Pool: rs[i].Booking.Pool, Robot: r, Bookings: ids,
					Start: rs[j].Start, End: minTime(rs[i].End, rs[j].End),
				})
			}
		}
	}
	return out
}

// capacityClashes sweeps the pool's timeline and reports each maximal
// interval in which the robots needed exceed max (with the same set of
// bookings running).
func capacityClashes(pool string, max int, slots []Slot) []Clash {
	var out []Clash
	for _, seg := range timeline(slots) {
		if seg.Needed <= max {
			continue
		}
		ids := seg.ids()
		if n := len(out); n > 0 && out[n-1].End.Equal(seg.Start) && strings.Join(out[n-1].Bookings, ",") == strings.Join(ids, ",") {
			out[n-1].End = seg.End
			continue
		}
		out = append(out, Clash{Kind: CapacityClash, Pool: pool, Bookings: ids, Start: seg.Start, End: seg.End, Needed: seg.Needed, Max: max})
	}
	return out
}

// Segment is an interval of a pool's timeline in which the same slots run.
type Segment struct {
	Start, End time.Time
	Needed     int // robots booked
	Slots      []Slot
}

func (s Segment) ids() []string {
	seen := map[string]bool{}
	var ids []string
	for _, sl := range s.Slots {
		if !seen[sl.Booking.ID] {
			seen[sl.Booking.ID] = true
			ids = append(ids, sl.Booking.ID)
		}
	}
	sort.Strings(ids)
	return ids
}

// timeline cuts time at every slot start and end and returns the segments
// in which at least one slot runs. It sweeps the sorted starts and ends
// once, so a pool's eight weeks of slots cost n log n, not n².
func timeline(slots []Slot) []Segment {
	type edge struct {
		t     time.Time
		start bool
		i     int
	}
	edges := make([]edge, 0, 2*len(slots))
	for i, s := range slots {
		if s.End.After(s.Start) {
			edges = append(edges, edge{s.Start, true, i}, edge{s.End, false, i})
		}
	}
	sort.Slice(edges, func(a, b int) bool {
		if !edges[a].t.Equal(edges[b].t) {
			return edges[a].t.Before(edges[b].t)
		}
		return !edges[a].start && edges[b].start // a slot ending as another starts does not overlap it
	})
	active := map[int]bool{}
	var out []Segment
	for k := 0; k < len(edges); {
		t := edges[k].t
		for ; k < len(edges) && edges[k].t.Equal(t); k++ {
			if edges[k].start {
				active[edges[k].i] = true
			} else {
				delete(active, edges[k].i)
			}
		}
		if k == len(edges) || len(active) == 0 {
			continue
		}
		seg := Segment{Start: t, End: edges[k].t}
		idx := make([]int, 0, len(active))
		for i := range active {
			idx = append(idx, i)
		}
		sort.Ints(idx)
		for _, i := range idx {
			seg.Needed += slots[i].Booking.robots()
			seg.Slots = append(seg.Slots, slots[i])
		}
		out = append(out, seg)
	}
	return out
}

// Free is a pool's capacity over an interval.
type Free struct {
	Pool       string
	Start, End time.Time
	Booked     int
	Max        int
}

// FreeRobots is how many robots are left, never negative.
func (f Free) FreeRobots() int {
	if f.Booked >= f.Max {
		return 0
	}
	return f.Max - f.Booked
}

// Capacity returns the pool's timeline over [from, to) as consecutive
// intervals of constant bookings, gaps included (Booked 0), so a
// department sees where its new slot fits.
func Capacity(bookings []Booking, p Pool, from, to time.Time) ([]Free, error) {
	var mine []Booking
	for _, b := range bookings {
		if b.Pool == p.Name {
			mine = append(mine, b)
		}
	}
	slots, err := Occurrences(mine, from, to)
	if err != nil {
		return nil, err
	}
	var out []Free
	cur := from
	add := func(a, b time.Time, n int) {
		if a.Before(from) {
			a = from
		}
		if b.After(to) {
			b = to
		}
		if !a.Before(b) {
			return
		}
		if k := len(out); k > 0 && out[k-1].Booked == n && out[k-1].End.Equal(a) {
			out[k-1].End = b
			return
		}
		out = append(out, Free{Pool: p.Name, Start: a, End: b, Booked: n, Max: p.Max})
	}
	for _, seg := range timeline(slots) {
		add(cur, seg.Start, 0)
		add(seg.Start, seg.End, seg.Needed)
		if seg.End.After(cur) {
			cur = seg.End
		}
	}
	add(cur, to, 0)
	return out, nil
}

// Admit checks a candidate booking against the existing ones and returns
// the clashes it would cause (those that involve it) in [from, to). No
// clash means it may be added.
func Admit(existing []Booking, candidate Booking, pools []Pool, from, to time.Time) ([]Clash, error) {
	for _, b := range existing {
		if b.ID == candidate.ID {
			return nil, fmt.Errorf("%w %q: duplicate id", ErrInvalid, candidate.ID)
		}
	}
	all := append(append([]Booking(nil), existing...), candidate)
	clashes, err := Clashes(all, pools, from, to)
	if err != nil {
		return nil, err
	}
	var out []Clash
	for _, c := range clashes {
		for _, id := range c.Bookings {
			if id == candidate.ID {
				out = append(out, c)
				break
			}
		}
	}
	return out, nil
}

// Utilisation is the booked share of a robot's or pool's time.
type Utilisation struct {
	Pool  string
	Robot string // "" for the pool as a whole
	// BookedHours counts robot-hours: a slot needing 2 robots for an hour
	// is 2.
	BookedHours float64
	// Capacity is robot-hours available: window × 1 for a robot, window ×
	// max for a pool.
	CapacityHours float64
}

// Share is BookedHours / CapacityHours, 0 when there is no capacity.
func (u Utilisation) Share() float64 {
	if u.CapacityHours <= 0 {
		return 0
	}
	return u.BookedHours / u.CapacityHours
}

// Booked returns the booked utilisation of each pool and of each pinned
// robot over [from, to). Overlapping slots on one robot count once: a
// robot cannot be more than fully booked.
func Booked(bookings []Booking, pools []Pool, from, to time.Time) ([]Utilisation, error) {
	slots, err := Occurrences(bookings, from, to)
	if err != nil {
		return nil, err
	}
	hours := to.Sub(from).Hours()
	var out []Utilisation
	for _, p := range pools {
		var ps []Slot
		robots := map[string][]Slot{}
		for _, s := range slots {
			if s.Booking.Pool != p.Name {
				continue
			}
			ps = append(ps, clipSlot(s, from, to))
			if s.Booking.Robot != "" {
				robots[s.Booking.Robot] = append(robots[s.Booking.Robot], clipSlot(s, from, to))
			}
		}
		var booked float64
		for _, seg := range timeline(ps) {
			booked += float64(min(seg.Needed, p.Max)) * seg.End.Sub(seg.Start).Hours()
		}
		out = append(out, Utilisation{Pool: p.Name, BookedHours: booked, CapacityHours: hours * float64(p.Max)})
		for _, r := range sortedKeys(robots) {
			var h float64
			for _, seg := range timeline(robots[r]) {
				h += seg.End.Sub(seg.Start).Hours()
			}
			out = append(out, Utilisation{Pool: p.Name, Robot: r, BookedHours: h, CapacityHours: hours})
		}
	}
	return out, nil
}

func clipSlot(s Slot, from, to time.Time) Slot {
	if s.Start.Before(from) {
		s.Start = from
	}
	if s.End.After(to) {
		s.End = to
	}
	return s
}

func clip(cs []Clash, from, to time.Time) {
	for i := range cs {
		if cs[i].Kind == UnknownPool {
			continue
		}
		if cs[i].Start.Before(from) {
			cs[i].Start = from
		}
		if cs[i].End.After(to) {
			cs[i].End = to
		}
	}
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Summary groups recurring clashes: the same rule broken by the same
// bookings, with how often and when first and last in the window.
type Summary struct {
	Kind        ClashKind
	Pool, Robot string
	Bookings    []string
	Count       int
	First, Last time.Time
	Needed, Max int
}

// Summarise groups clashes for documents and API answers.
func Summarise(cs []Clash) []Summary {
	idx := map[string]int{}
	var out []Summary
	for _, c := range cs {
		key := string(c.Kind) + "|" + c.Pool + "|" + c.Robot + "|" + strings.Join(c.Bookings, ",")
		i, ok := idx[key]
		if !ok {
			idx[key] = len(out)
			out = append(out, Summary{Kind: c.Kind, Pool: c.Pool, Robot: c.Robot, Bookings: c.Bookings, First: c.Start, Last: c.Start})
			i = len(out) - 1
		}
		s := &out[i]
		s.Count++
		if c.Start.Before(s.First) {
			s.First = c.Start
		}
		if c.Start.After(s.Last) {
			s.Last = c.Start
		}
		s.Needed, s.Max = max(s.Needed, c.Needed), c.Max
	}
	return out
}

// Weekly builds the cron of a weekly slot such as weekdays 09:00–10:30:
// days are sun..sat names or 0..6, start and end "HH:MM" in the booking's
// time zone. It returns the cron and the duration.
func Weekly(days []string, start, end string) (string, time.Duration, error) {
	if len(days) == 0 {
		return "", 0, fmt.Errorf("%w: no days", ErrInvalid)
	}
	s, err := time.Parse("15:04", start)
	if err != nil {
		return "", 0, fmt.Errorf("%w: start %q is not HH:MM", ErrInvalid, start)
	}
	e, err := time.Parse("15:04", end)
	if err != nil {
		return "", 0, fmt.Errorf("%w: end %q is not HH:MM", ErrInvalid, end)
	}
	d := e.Sub(s)
	if d <= 0 {
		d += 24 * time.Hour // 22:00–02:00 runs past midnight
	}
	expr := fmt.Sprintf("%d %d * * %s", s.Minute(), s.Hour(), strings.Join(days, ","))
	if _, err := config.ParseCron(expr); err != nil {
		return "", 0, fmt.Errorf("%w: days %v: %v", ErrInvalid, days, err)
	}
	return expr, d, nil
}
