// Package decide is the elastic-scaling rule of seed 003 as a pure
// function: given the pool's settings, what the scaler remembers of earlier
// readings, and one new reading (X, Z, D), it returns what to do and why.
// It does no I/O, so the daemon's loop and the simulator run the very same
// code, and every rule is tested exhaustively without a database.
//
// The rule (MISSION.md, Capability 2):
//   - scale up after two consecutive readings with Z = 0 and D > X, to
//     N = ceil((D − X) / R) robots in all, never past max; then skip the
//     next `cooldown` readings (default R) so the new robots can boot;
//   - scale down after more than two consecutive readings with D < X, by
//     S = X − D, never below min, and only by idle rented robots.
//
// Beyond the seed, each off by default: booting robots counted as capacity,
// a licence cap shared by the pools of one RPA vendor, and a pre-warm floor
// ahead of a scheduled peak.
package decide

import (
	"cmp"
	"fmt"
	"slices"
	"time"
)

// Settings are a pool's scaling settings.
type Settings struct {
	Min, Max      int
	TasksPerRobot int // R; values below 1 are taken as 1
	// Cooldown is how many readings are skipped after renting. Nil means
	// the seed's default, R readings.
	Cooldown *int
	// BootAware counts robots that are still booting as idle capacity, so
	// work that booting robots will absorb does not rent more.
	BootAware bool
	// LicenceCap bounds the robots of the pool's vendor across every pool
	// that uses the vendor; 0 means no cap.
	LicenceCap int
}

func (s Settings) r() int { return max(s.TasksPerRobot, 1) }

// CooldownPeriods is the number of readings skipped after a scale-up.
func (s Settings) CooldownPeriods() int {
	if s.Cooldown != nil {
		return max(*s.Cooldown, 0)
	}
	return s.r()
}

// Reading is what the scaler sees at one period.
type Reading struct {
	X int // robots in the pool: every provisioned robot, booting ones too
	Z int // robots up and idle
	D int // tasks not finished: pending plus running
	// Booting is how many of X have not come up yet.
	Booting int
	// IdleRented is how many idle robots could be released (rented, not
	// permanent, not already draining). A release never exceeds it.
	IdleRented int
	// VendorOthers is how many robots other pools of the same vendor hold;
	// only read with a licence cap.
	VendorOthers int
	// PrewarmFloor is the pool size a scheduled peak asks for now (0 when
	// no peak is near or pre-warm is off).
	PrewarmFloor int
}

// State is what the rule remembers between readings. The zero value is the
// state of a fresh pool.
type State struct {
	UpStreak   int // consecutive readings with Z = 0 and D > X
	DownStreak int // consecutive readings with D < X
	Cooldown   int // readings still to skip after a scale-up
}

// Action is the kind of a decision.
type Action string

// Actions.
const (
	None      Action = "none"
	ScaleUp   Action = "scale_up"
	ScaleDown Action = "scale_down"
	Skip      Action = "cooldown" // the reading fell in a cooldown and was not evaluated
)

// Decision is the outcome of one reading.
type Decision struct {
	Action  Action
	Rent    int // robots to rent (ScaleUp)
	Release int // idle rented robots to release (ScaleDown)
	// Target is the pool size the decision aims at (X when nothing changes).
	Target int
	// Capped names the bound that cut the decision short: "max",
	// "licence", "min" or "idle"; empty when none did.
	Capped string
	Reason string
}

// Triggers: two readings to rent, more than two to release.
const (
	UpReadings   = 2
	DownReadings = 3
)

// Decide applies the rule to one reading.
func Decide(s Settings, st State, r Reading) (Decision, State) {
	R := s.r()
	x := r.X
	keep := Decision{Action: None, Target: x}

	// A scheduled peak lifts the floor before the streak rules: it is a
	// known future, not a guess from two readings.
	if r.PrewarmFloor > x && st.Cooldown == 0 {
		want := min(r.PrewarmFloor, s.Max)
		rent, capped := capRent(s, r, want-x)
		if rent > 0 {
			d := Decision{Action: ScaleUp, Rent: rent, Target: x + rent, Capped: capped,
				Reason: fmt.Sprintf("pre-warm for a scheduled peak: floor %d > X=%d", r.PrewarmFloor, x)}
			return d, State{Cooldown: s.CooldownPeriods()}
		}
	}

	if st.Cooldown > 0 {
		keep.Action = Skip
		keep.Reason = fmt.Sprintf("cooldown after renting: %d more reading(s) skipped", st.Cooldown-1)
		return keep, State{Cooldown: st.Cooldown - 1}
	}

	idle := r.Z
	if s.BootAware {
		idle += r.Booting
	}
	next := st
	if idle == 0 && r.D > x {
		next.UpStreak++
	} else {
		next.UpStreak = 0
	}
	if r.D < x {
		next.DownStreak++
	} else {
		next.DownStreak = 0
	}

	switch {
	case next.UpStreak >= UpReadings:
		n := ceilDiv(r.D-x, R)
		if n-x <= 0 {
			keep.Reason = fmt.Sprintf("Z=0 and D=%d > X=%d for %d readings, but N = ceil((D-X)/R) = %d ≤ X", r.D, x, next.UpStreak, n)
			return keep, next
		}
		rent, capped := capRent(s, r, n-x)
		if rent <= 0 {
			keep.Capped = capped
			keep.Reason = fmt.Sprintf("would rent %d to reach N=%d, but the pool is at its %s", n-x, n, capName(capped))
			return keep, next
		}
		d := Decision{Action: ScaleUp, Rent: rent, Target: x + rent, Capped: capped,
			Reason: fmt.Sprintf("Z=0 and D=%d > X=%d for %d readings: N = ceil((%d-%d)/%d) = %d, rent %d", r.D, x, next.UpStreak, r.D, x, R, n, rent)}
		if capped != "" {
			d.Reason += fmt.Sprintf(" (capped by %s)", capName(capped))
		}
		return d, State{Cooldown: s.CooldownPeriods()}

	case next.DownStreak >= DownReadings:
		want := x - r.D
		floor := max(s.Min, r.PrewarmFloor)
		release, capped := want, ""
		if x-release < floor {
			release, capped = max(x-floor, 0), "min"
		}
		if release > r.IdleRented {
			release, capped = r.IdleRented, "idle"
		}
		if release <= 0 {
			keep.Capped = capped
			keep.Reason = fmt.Sprintf("D=%d < X=%d for %d readings, but no robot may go (%s)", r.D, x, next.DownStreak, capName(capped))
			return keep, next
		}
		d := Decision{Action: ScaleDown, Release: release, Target: x - release, Capped: capped,
			Reason: fmt.Sprintf("D=%d < X=%d for %d readings: S = X-D = %d, release %d", r.D, x, next.DownStreak, want, release)}
		if capped != "" {
			d.Reason += fmt.Sprintf(" (capped by %s)", capName(capped))
		}
		return d, State{}
	}
	keep.Reason = fmt.Sprintf("steady: X=%d Z=%d D=%d", x, r.Z, r.D)
	return keep, next
}

// capRent bounds a rent by max and by the vendor's licences.
func capRent(s Settings, r Reading, want int) (int, string) {
	rent, capped := want, ""
	if r.X+rent > s.Max {
		rent, capped = s.Max-r.X, "max"
	}
	if s.LicenceCap > 0 {
		if room := s.LicenceCap - r.VendorOthers - r.X; rent > room {
			rent, capped = room, "licence"
		}
	}
	return max(rent, 0), capped
}

func capName(c string) string {
	switch c {
	case "max":
		return "max"
	case "licence":
		return "vendor licence cap"
	case "min":
		return "min (permanent robots and pre-warm floor)"
	case "idle":
		return "number of idle rented robots"
	}
	return "limit"
}

func ceilDiv(a, b int) int {
	if a <= 0 {
		return 0
	}
	return (a + b - 1) / b
}

// Robot is what the release choice needs to know of one robot.
type Robot struct {
	ID        int
	Permanent bool
	Idle      bool // up, idle, not draining
	IdleFor   int64
}

// PickRelease chooses up to n robots to release: idle rented robots only,
// the longest idle first (ties by ID, so the choice is deterministic).
// Permanent and busy robots are never chosen.
func PickRelease(robots []Robot, n int) []int {
	var c []Robot
	for _, r := range robots {
		if r.Idle && !r.Permanent {
			c = append(c, r)
		}
	}
	slices.SortFunc(c, func(a, b Robot) int {
		if a.IdleFor != b.IdleFor {
			return cmp.Compare(b.IdleFor, a.IdleFor)
		}
		return cmp.Compare(a.ID, b.ID)
	})
	n = min(n, len(c))
	out := make([]int, 0, max(n, 0))
	for _, r := range c[:max(n, 0)] {
		out = append(out, r.ID)
	}
	return out
}

// Schedule is a recurring slot start (config.Cron satisfies it).
type Schedule interface {
	Next(t time.Time) time.Time
}

// Slot is one scheduled run window of a process of the pool.
type Slot struct {
	Start    Schedule
	Duration time.Duration
	Location *time.Location // nil = UTC
}

// PrewarmFloor returns robots when a slot is under way at now or starts
// within lead of it, and 0 otherwise: the pool then holds that many robots
// ahead of the known peak instead of waiting two readings for a queue.
func PrewarmFloor(slots []Slot, now time.Time, lead time.Duration, robots int) int {
	if robots <= 0 {
		return 0
	}
	for _, s := range slots {
		loc := s.Location
		if loc == nil {
			loc = time.UTC
		}
		// The first start after now-duration is either under way or the
		// next one to come.
		start := s.Start.Next(now.Add(-s.Duration).In(loc))
		if !start.IsZero() && !start.After(now.Add(lead)) {
			return robots
		}
	}
	return 0
}
