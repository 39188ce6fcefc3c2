package decide

import (
	"fmt"
	"testing"
	"time"

	"pgregory.net/rapid"
)

func ptr(n int) *int { return &n }

// step is one reading of a table case and the decision expected from it.
type step struct {
	r       Reading
	action  Action
	rent    int
	release int
	capped  string
}

func TestDecideRules(t *testing.T) {
	seed := Settings{Min: 2, Max: 20, TasksPerRobot: 10}
	cases := []struct {
		name  string
		s     Settings
		st    State
		steps []step
	}{
		{
			// The seed's example pool: 2 home cooks, R = 10 dishes per rented
			// cook, 50 dishes waiting and nobody idle.
			name: "seed: two readings with Z=0 and D>X rent N-X, N=ceil((D-X)/R)",
			s:    seed,
			steps: []step{
				{r: Reading{X: 2, Z: 0, D: 50}, action: None},
				// N = ceil((50-2)/10) = 5: rent 3.
				{r: Reading{X: 2, Z: 0, D: 50}, action: ScaleUp, rent: 3},
			},
		},
		{
			name: "one reading with Z=0 and D>X is not enough",
			s:    seed,
			steps: []step{
				{r: Reading{X: 2, Z: 0, D: 50}, action: None},
				{r: Reading{X: 2, Z: 1, D: 50}, action: None}, // an idle robot breaks the streak
				{r: Reading{X: 2, Z: 0, D: 50}, action: None},
				{r: Reading{X: 2, Z: 0, D: 50}, action: ScaleUp, rent: 3},
			},
		},
		{
			name: "D>X but an idle robot: no rent",
			s:    seed,
			steps: []step{
				{r: Reading{X: 2, Z: 1, D: 50}, action: None},
				{r: Reading{X: 2, Z: 1, D: 50}, action: None},
				{r: Reading{X: 2, Z: 1, D: 50}, action: None},
			},
		},
		{
			name: "Z=0 but D=X: no rent",
			s:    seed,
			steps: []step{
				{r: Reading{X: 4, Z: 0, D: 4}, action: None},
				{r: Reading{X: 4, Z: 0, D: 4}, action: None},
			},
		},
		{
			name: "N-X ≤ 0 rents none",
			s:    seed,
			steps: []step{
				// N = ceil((30-5)/10) = 3 ≤ 5.
				{r: Reading{X: 5, Z: 0, D: 30}, action: None},
				{r: Reading{X: 5, Z: 0, D: 30}, action: None},
			},
		},
		{
			name: "never past max",
			s:    Settings{Min: 2, Max: 6, TasksPerRobot: 10},
			steps: []step{
				{r: Reading{X: 2, Z: 0, D: 500}, action: None},
				// N = 50, but max is 6: rent 4.
				{r: Reading{X: 2, Z: 0, D: 500}, action: ScaleUp, rent: 4, capped: "max"},
			},
		},
		{
			name: "at max: nothing to rent",
			s:    Settings{Min: 2, Max: 6, TasksPerRobot: 10},
			steps: []step{
				{r: Reading{X: 6, Z: 0, D: 500}, action: None},
				{r: Reading{X: 6, Z: 0, D: 500}, action: None, capped: "max"},
			},
		},
		{
			name: "after renting, R readings are skipped (default cooldown)",
			s:    Settings{Min: 1, Max: 20, TasksPerRobot: 3},
			steps: []step{
				{r: Reading{X: 1, Z: 0, D: 40}, action: None},
				// N = ceil(39/3) = 13: rent 12.
				{r: Reading{X: 1, Z: 0, D: 40}, action: ScaleUp, rent: 12},
				{r: Reading{X: 13, Z: 0, D: 400}, action: Skip},
				{r: Reading{X: 13, Z: 0, D: 400}, action: Skip},
				{r: Reading{X: 13, Z: 0, D: 400}, action: Skip},
				// The streak starts afresh after the cooldown.
				{r: Reading{X: 13, Z: 0, D: 400}, action: None},
				{r: Reading{X: 13, Z: 0, D: 400}, action: ScaleUp, rent: 7, capped: "max"},
			},
		},
		{
			name: "configured cooldown",
			s:    Settings{Min: 1, Max: 20, TasksPerRobot: 3, Cooldown: ptr(1)},
			steps: []step{
				{r: Reading{X: 1, Z: 0, D: 40}, action: None},
				{r: Reading{X: 1, Z: 0, D: 40}, action: ScaleUp, rent: 12},
				{r: Reading{X: 13, Z: 0, D: 400}, action: Skip},
				{r: Reading{X: 13, Z: 0, D: 400}, action: None},
			},
		},
		{
			name: "cooldown 0 evaluates at once",
			s:    Settings{Min: 1, Max: 20, TasksPerRobot: 3, Cooldown: ptr(0)},
			steps: []step{
				{r: Reading{X: 1, Z: 0, D: 40}, action: None},
				{r: Reading{X: 1, Z: 0, D: 40}, action: ScaleUp, rent: 12},
				{r: Reading{X: 13, Z: 0, D: 400}, action: None},
			},
		},
		{
			name: "seed: more than two readings with D<X release S = X-D",
			s:    seed,
			steps: []step{
				{r: Reading{X: 10, Z: 7, D: 3, IdleRented: 7}, action: None},
				{r: Reading{X: 10, Z: 7, D: 3, IdleRented: 7}, action: None},
				{r: Reading{X: 10, Z: 7, D: 3, IdleRented: 7}, action: ScaleDown, release: 7},
			},
		},
		{
			name: "two readings with D<X are not enough",
			s:    seed,
			steps: []step{
				{r: Reading{X: 10, Z: 7, D: 3, IdleRented: 7}, action: None},
				{r: Reading{X: 10, Z: 7, D: 3, IdleRented: 7}, action: None},
				{r: Reading{X: 10, Z: 0, D: 10, IdleRented: 0}, action: None}, // D = X breaks the streak
				{r: Reading{X: 10, Z: 7, D: 3, IdleRented: 7}, action: None},
			},
		},
		{
			name: "never below min: S ≤ X - min",
			s:    seed,
			steps: []step{
				{r: Reading{X: 5, Z: 5, D: 0, IdleRented: 3}, action: None},
				{r: Reading{X: 5, Z: 5, D: 0, IdleRented: 3}, action: None},
				{r: Reading{X: 5, Z: 5, D: 0, IdleRented: 3}, action: ScaleDown, release: 3, capped: "min"},
			},
		},
		{
			name: "min capping",
			s:    Settings{Min: 4, Max: 20, TasksPerRobot: 10},
			steps: []step{
				{r: Reading{X: 6, Z: 6, D: 0, IdleRented: 6}, action: None},
				{r: Reading{X: 6, Z: 6, D: 0, IdleRented: 6}, action: None},
				{r: Reading{X: 6, Z: 6, D: 0, IdleRented: 6}, action: ScaleDown, release: 2, capped: "min"},
			},
		},
		{
			name: "at min: nothing to release",
			s:    seed,
			steps: []step{
				{r: Reading{X: 2, Z: 2, D: 0}, action: None},
				{r: Reading{X: 2, Z: 2, D: 0}, action: None},
				{r: Reading{X: 2, Z: 2, D: 0}, action: None, capped: "min"},
			},
		},
		{
			name: "only idle rented robots go",
			s:    seed,
			steps: []step{
				{r: Reading{X: 10, Z: 2, D: 5, IdleRented: 2}, action: None},
				{r: Reading{X: 10, Z: 2, D: 5, IdleRented: 2}, action: None},
				{r: Reading{X: 10, Z: 2, D: 5, IdleRented: 2}, action: ScaleDown, release: 2, capped: "idle"},
			},
		},
		{
			name: "boot-aware: booting robots are capacity",
			s:    Settings{Min: 1, Max: 20, TasksPerRobot: 2, Cooldown: ptr(0), BootAware: true},
			steps: []step{
				{r: Reading{X: 6, Z: 0, D: 40, Booting: 5}, action: None},
				{r: Reading{X: 6, Z: 0, D: 40, Booting: 5}, action: None},
				{r: Reading{X: 6, Z: 0, D: 40, Booting: 0}, action: None},
				// N = ceil(34/2) = 17.
				{r: Reading{X: 6, Z: 0, D: 40, Booting: 0}, action: ScaleUp, rent: 11},
			},
		},
		{
			name: "seed default: booting robots are not idle",
			s:    Settings{Min: 1, Max: 20, TasksPerRobot: 2, Cooldown: ptr(0)},
			steps: []step{
				{r: Reading{X: 6, Z: 0, D: 40, Booting: 5}, action: None},
				{r: Reading{X: 6, Z: 0, D: 40, Booting: 5}, action: ScaleUp, rent: 11},
			},
		},
		{
			name: "licence cap shared by the vendor's pools",
			s:    Settings{Min: 1, Max: 20, TasksPerRobot: 1, LicenceCap: 10},
			steps: []step{
				{r: Reading{X: 2, Z: 0, D: 50, VendorOthers: 5}, action: None},
				{r: Reading{X: 2, Z: 0, D: 50, VendorOthers: 5}, action: ScaleUp, rent: 3, capped: "licence"},
			},
		},
		{
			name: "licences all used",
			s:    Settings{Min: 1, Max: 20, TasksPerRobot: 1, LicenceCap: 10},
			steps: []step{
				{r: Reading{X: 2, Z: 0, D: 50, VendorOthers: 8}, action: None},
				{r: Reading{X: 2, Z: 0, D: 50, VendorOthers: 8}, action: None, capped: "licence"},
			},
		},
		{
			name: "pre-warm rents up to the floor at once, then cools down",
			s:    Settings{Min: 1, Max: 8, TasksPerRobot: 2},
			steps: []step{
				{r: Reading{X: 1, Z: 1, D: 0, PrewarmFloor: 5}, action: ScaleUp, rent: 4},
				{r: Reading{X: 5, Z: 5, D: 0, PrewarmFloor: 5}, action: Skip},
				{r: Reading{X: 5, Z: 5, D: 0, PrewarmFloor: 5}, action: Skip},
				// The floor holds the robots while the peak is scheduled.
				{r: Reading{X: 5, Z: 5, D: 0, IdleRented: 4, PrewarmFloor: 5}, action: None},
				{r: Reading{X: 5, Z: 5, D: 0, IdleRented: 4, PrewarmFloor: 5}, action: None},
				{r: Reading{X: 5, Z: 5, D: 0, IdleRented: 4, PrewarmFloor: 5}, action: None, capped: "min"},
				{r: Reading{X: 5, Z: 5, D: 0, IdleRented: 4}, action: ScaleDown, release: 4, capped: "min"},
			},
		},
		{
			name: "pre-warm floor beyond max is capped",
			s:    Settings{Min: 1, Max: 3, TasksPerRobot: 2},
			steps: []step{
				{r: Reading{X: 1, Z: 1, D: 0, PrewarmFloor: 9}, action: ScaleUp, rent: 2},
			},
		},
		{
			name: "R below 1 is taken as 1",
			s:    Settings{Min: 0, Max: 20, TasksPerRobot: 0, Cooldown: ptr(0)},
			steps: []step{
				{r: Reading{X: 1, Z: 0, D: 5}, action: None},
				{r: Reading{X: 1, Z: 0, D: 5}, action: ScaleUp, rent: 3},
			},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st := c.st
			for i, s := range c.steps {
				var d Decision
				d, st = Decide(c.s, st, s.r)
				if d.Action != s.action || d.Rent != s.rent || d.Release != s.release || d.Capped != s.capped {
					t.Fatalf("reading %d %+v: got %s rent=%d release=%d capped=%q (%s); want %s rent=%d release=%d capped=%q",
						i+1, s.r, d.Action, d.Rent, d.Release, d.Capped, d.Reason, s.action, s.rent, s.release, s.capped)
				}
				if d.Reason == "" {
					t.Fatalf("reading %d: a decision without a reason", i+1)
				}
				if want := s.r.X + d.Rent - d.Release; d.Target != want {
					t.Fatalf("reading %d: target %d, want %d", i+1, d.Target, want)
				}
			}
		})
	}
}

func TestPickRelease(t *testing.T) {
	robots := []Robot{
		{ID: 1, Permanent: true, Idle: true, IdleFor: 900},
		{ID: 2, Idle: false},
		{ID: 3, Idle: true, IdleFor: 10},
		{ID: 4, Idle: true, IdleFor: 300},
		{ID: 5, Idle: true, IdleFor: 300},
	}
	for n, want := range map[int][]int{0: {}, 1: {4}, 2: {4, 5}, 3: {4, 5, 3}, 9: {4, 5, 3}} {
		if got := PickRelease(robots, n); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("PickRelease(n=%d) = %v, want %v", n, got, want)
		}
	}
}

// TestPoolStaysInBounds drives the rule and the release choice through
// random pools and readings, applying each decision the way the loop does,
// and checks the invariants the seed promises.
func TestPoolStaysInBounds(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		mn := rapid.IntRange(0, 5).Draw(t, "min")
		s := Settings{
			Min: mn, Max: rapid.IntRange(max(mn, 1), 30).Draw(t, "max"),
			TasksPerRobot: rapid.IntRange(1, 12).Draw(t, "R"),
			BootAware:     rapid.Bool().Draw(t, "bootAware"),
			LicenceCap:    rapid.IntRange(0, 40).Draw(t, "licences"),
		}
		if rapid.Bool().Draw(t, "setCooldown") {
			s.Cooldown = ptr(rapid.IntRange(0, 5).Draw(t, "cooldown"))
		}
		type rb struct {
			id               int
			permanent, ready bool
			busy             bool
		}
		var pool []rb
		nextID := 0
		for range mn {
			nextID++
			pool = append(pool, rb{id: nextID, permanent: true, ready: true})
		}
		var st State
		for range rapid.IntRange(1, 60).Draw(t, "readings") {
			// The world moves: robots come up, take or finish work.
			for i := range pool {
				if !pool[i].ready && rapid.Bool().Draw(t, "boots") {
					pool[i].ready = true
				}
				if pool[i].ready {
					pool[i].busy = rapid.Bool().Draw(t, "busy")
				}
			}
			r := Reading{X: len(pool), D: rapid.IntRange(0, 400).Draw(t, "D"),
				VendorOthers: rapid.IntRange(0, 10).Draw(t, "others"),
				PrewarmFloor: rapid.IntRange(0, 8).Draw(t, "prewarm") * rapid.IntRange(0, 1).Draw(t, "prewarmOn")}
			var views []Robot
			for _, p := range pool {
				switch {
				case !p.ready:
					r.Booting++
				case !p.busy:
					r.Z++
					if !p.permanent {
						r.IdleRented++
					}
				}
				views = append(views, Robot{ID: p.id, Permanent: p.permanent, Idle: p.ready && !p.busy, IdleFor: int64(p.id % 7)})
			}
			var d Decision
			d, st = Decide(s, st, r)
			if d.Rent < 0 || d.Release < 0 || (d.Rent > 0 && d.Release > 0) {
				t.Fatalf("bad decision %+v", d)
			}
			for range d.Rent {
				nextID++
				pool = append(pool, rb{id: nextID})
			}
			ids := PickRelease(views, d.Release)
			if len(ids) != d.Release {
				t.Fatalf("decided to release %d, only %d could go: %+v", d.Release, len(ids), r)
			}
			gone := map[int]bool{}
			for _, id := range ids {
				gone[id] = true
			}
			kept := pool[:0]
			for _, p := range pool {
				if gone[p.id] {
					if p.permanent {
						t.Fatalf("released permanent robot %d", p.id)
					}
					if p.busy || !p.ready {
						t.Fatalf("released robot %d that was busy or booting", p.id)
					}
					continue
				}
				kept = append(kept, p)
			}
			pool = kept
			if len(pool) < s.Min || len(pool) > s.Max {
				t.Fatalf("pool of %d robots left [%d, %d] after %+v on %+v", len(pool), s.Min, s.Max, d, r)
			}
			if d.Rent > 0 && s.LicenceCap > 0 && len(pool)+r.VendorOthers > s.LicenceCap {
				t.Fatalf("rented past the licence cap: %d + %d others > %d", len(pool), r.VendorOthers, s.LicenceCap)
			}
		}
	})
}

// hourly fires at minute 0 of the given hour every day.
type hourly int

func (h hourly) Next(t time.Time) time.Time {
	n := time.Date(t.Year(), t.Month(), t.Day(), int(h), 0, 0, 0, t.Location())
	if !n.After(t) {
		n = n.AddDate(0, 0, 1)
	}
	return n
}

func TestPrewarmFloor(t *testing.T) {
	slots := []Slot{{Start: hourly(9), Duration: 2 * time.Hour}}
	day := time.Date(2026, 11, 3, 0, 0, 0, 0, time.UTC)
	cases := []struct {
		at   time.Duration
		want int
	}{
		{8*time.Hour + 30*time.Minute, 0}, // before the lead
		{8*time.Hour + 46*time.Minute, 6}, // within 15 minutes
		{10 * time.Hour, 6},               // during the slot
		{11*time.Hour + time.Minute, 0},   // after it
	}
	for _, c := range cases {
		if got := PrewarmFloor(slots, day.Add(c.at), 15*time.Minute, 6); got != c.want {
			t.Errorf("at %v: floor %d, want %d", c.at, got, c.want)
		}
	}
	if got := PrewarmFloor(slots, day.Add(10*time.Hour), 15*time.Minute, 0); got != 0 {
		t.Errorf("pre-warm off gave %d", got)
	}
}
