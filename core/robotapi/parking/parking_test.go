package parking

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)

// sim is a pool with a queue of pending tasks (the database) and robots
// that park, get woken and claim: what robotapi does around the lot.
type sim struct {
	t       *testing.T
	lot     *Lot
	pool    int
	tasks   int             // pending
	woken   []int           // in flight, in wake order
	start   map[int]uint64  // epoch at which each robot in flight claims
	order   []int           // every wake, in order
	perEp   map[string]bool // robot@epoch woken, within the robot's current poll
	refuse  map[int]bool    // robots the time-out rule keeps from every task
	claims  int
	gotTask []int
}

func newSim(t *testing.T) *sim {
	return &sim{t: t, lot: New(), pool: 7, start: map[int]uint64{}, perEp: map[string]bool{}, refuse: map[int]bool{}}
}

func (s *sim) woke(robots []int) {
	if c := s.lot.MaxInFlight; c > 0 && s.lot.Stats().InFlight > c {
		s.t.Fatalf("%d robots in flight, above the bound of %d", s.lot.Stats().InFlight, c)
	}
	ep := s.lot.Epoch(s.pool)
	for _, r := range robots {
		k := fmt.Sprint(r, "@", ep)
		if s.perEp[k] {
			s.t.Fatalf("robot %d woken twice at epoch %d", r, ep)
		}
		s.perEp[k] = true
		s.woken = append(s.woken, r)
		s.start[r] = ep
		s.order = append(s.order, r)
	}
}

// newPoll forgets robot r's wakes: its poll ended, the next is another.
func (s *sim) newPoll(r int) {
	for k := range s.perEp {
		if strings.HasPrefix(k, fmt.Sprint(r, "@")) {
			delete(s.perEp, k)
		}
	}
}

// park: robot r claimed (at the current epoch) and found nothing.
func (s *sim) park(r int) {
	ep := s.lot.Epoch(s.pool)
	s.lot.Done(r, s.pool, ep, 0, false, t0)
	now, displaced := s.lot.Park(r, s.pool, ep)
	if now || displaced {
		s.t.Fatalf("park of %d: wakeNow %v displaced %v", r, now, displaced)
	}
}

// serve runs the claim of the first robot in flight.
func (s *sim) serve() bool {
	if len(s.woken) == 0 {
		return false
	}
	r := s.woken[0]
	s.woken = s.woken[1:]
	s.claims++
	got := s.tasks > 0 && !s.refuse[r]
	backlog := s.tasks
	if got {
		s.tasks--
		backlog--
		s.gotTask = append(s.gotTask, r)
	}
	s.woke(s.lot.Done(r, s.pool, s.start[r], backlog, got, t0))
	return true
}

func (s *sim) settle() {
	for s.serve() {
	}
}

func (s *sim) check() {
	st := s.lot.Stats()
	if st.InFlight != len(s.woken) {
		s.t.Fatalf("lot counts %d in flight, %d are", st.InFlight, len(s.woken))
	}
	if len(s.lot.robots) != st.Parked+st.InFlight {
		s.t.Fatalf("%d robots kept, %d parked + %d in flight", len(s.lot.robots), st.Parked, st.InFlight)
	}
}

// TestWakesExactlyAsManyAsTasks: N tasks arriving (in one batch or one by
// one) with M robots parked wake exactly min(N, M) robots, in the order
// they parked, with or without a bound on the robots in flight (which the
// bound never exceeds).
func TestWakesExactlyAsManyAsTasks(t *testing.T) {
	for _, m := range []int{0, 1, 2, 5, 50} {
		for _, n := range []int{0, 1, 2, 3, 10, 49, 50, 51, 120} {
			for _, oneByOne := range []bool{false, true} {
				for _, bound := range []int{0, 1, 4} {
					t.Run(fmt.Sprintf("M%d_N%d_single%v_bound%d", m, n, oneByOne, bound), func(t *testing.T) {
						s := newSim(t)
						s.lot.MaxInFlight = bound
						for r := range m {
							s.park(100 + r)
						}
						if n > 0 {
							if oneByOne {
								for range n {
									s.tasks++
									s.woke(s.lot.Arrived(s.pool))
								}
							} else {
								s.tasks += n
								s.woke(s.lot.Arrived(s.pool))
							}
						}
						s.settle()
						s.check()
						want := min(n, m)
						if len(s.order) != want || s.claims != want || len(s.gotTask) != want {
							t.Fatalf("woke %d robots, %d claims, %d tasks taken; want %d", len(s.order), s.claims, len(s.gotTask), want)
						}
						for i, r := range s.order {
							if r != 100+i {
								t.Fatalf("wake %d went to robot %d, want %d (FIFO): %v", i, r, 100+i, s.order)
							}
						}
						if st := s.lot.Stats(); st.Parked != m-want || st.Wakes != uint64(want) {
							t.Fatalf("stats %+v", st)
						}
					})
				}
			}
		}
	}
}

// TestNoHotLoop: a task that no parked robot may take wakes each robot at
// most once per epoch, then nothing until the epoch moves.
func TestNoHotLoop(t *testing.T) {
	s := newSim(t)
	for r := range 5 {
		s.park(r)
		s.refuse[r] = true
	}
	s.tasks = 1
	s.woke(s.lot.Arrived(s.pool))
	s.settle()
	if s.claims != 5 {
		t.Fatalf("%d claims, want each of the 5 robots once", s.claims)
	}
	// The backstop finds work: one robot tries again (a new epoch).
	s.woke(s.lot.Arrived(s.pool))
	s.settle()
	if s.claims > 10 {
		t.Fatalf("%d claims after a second epoch", s.claims)
	}
	s.check()
}

// TestEpochMovedDuringClaim: work that arrives while the only robot in
// flight is claiming (its read may predate it) is not lost: that robot,
// or the one parking, claims again.
func TestEpochMovedDuringClaim(t *testing.T) {
	s := newSim(t)
	s.park(1)
	s.park(2)
	s.tasks = 1
	s.woke(s.lot.Arrived(s.pool)) // robot 1 in flight
	// Robot 1's claim read an empty queue before the task committed...
	r := s.woken[0]
	s.woken = s.woken[1:]
	s.tasks = 2 // a second task arrives meanwhile
	if w := s.lot.Arrived(s.pool); len(w) != 0 {
		t.Fatalf("woke %v with a robot in flight", w)
	}
	s.woke(s.lot.Done(r, s.pool, s.start[r], 0, false, t0))
	if len(s.woken) != 1 {
		t.Fatalf("after a claim that may have missed work, %d robots in flight, want 1", len(s.woken))
	}
	s.settle()
	if len(s.gotTask) != 2 {
		t.Fatalf("tasks taken %v, want 2", s.gotTask)
	}
	// A fresh claim that found nothing at an older epoch, with nobody
	// in flight, is woken as it parks.
	ep := s.lot.Epoch(s.pool)
	s.lot.Arrived(s.pool)
	l := New()
	l.Arrived(3)
	if now, _ := l.Park(9, 3, ep); !now {
		t.Fatal("a robot parking after a missed epoch was not woken")
	}
}

func TestIdleMarks(t *testing.T) {
	l := New()
	ep := l.Epoch(3)
	l.Done(1, 3, ep, 0, false, t0)
	if p, e, ok := l.LastEmpty(1, t0.Add(time.Second), time.Minute); !ok || p != 3 || e != ep {
		t.Fatal("robot that found nothing has no mark of it")
	}
	if _, _, ok := l.LastEmpty(1, t0.Add(2*time.Minute), time.Minute); ok {
		t.Fatal("idle mark older than maxAge still holds")
	}
	l.Arrived(3)
	if _, e, ok := l.LastEmpty(1, t0.Add(time.Second), time.Minute); !ok || e != ep || e == l.Epoch(3) {
		t.Fatal("after the epoch moved the mark must keep the epoch its claim saw")
	}
	l.Done(2, 3, l.Epoch(3), 0, false, t0)
	l.Done(2, 3, l.Epoch(3), 0, true, t0)
	if _, _, ok := l.LastEmpty(2, t0, time.Minute); ok {
		t.Fatal("a robot that got a task is idle")
	}
	l.Done(4, 3, l.Epoch(3), 0, false, t0)
	l.Prune(t0.Add(2*time.Minute), time.Minute)
	if len(l.idle) != 0 {
		t.Fatalf("prune kept %v", l.idle)
	}
	l.Done(4, 3, l.Epoch(3), 0, false, t0)
	l.ForgetIdle()
	if _, _, ok := l.LastEmpty(4, t0, time.Minute); ok {
		t.Fatal("ForgetIdle kept a mark")
	}
}

func TestRevokeLeaveDisplace(t *testing.T) {
	l := New()
	l.Park(1, 3, 0)
	l.Park(2, 3, 0)
	if now, displaced := l.Park(1, 3, 0); now || !displaced {
		t.Fatal("a second park of the same robot did not displace the first")
	}
	if st := l.Stats(); st.Parked != 2 {
		t.Fatalf("robot parked twice: %+v", st)
	}
	if parked, _ := l.Revoke(2); !parked || l.Parked(2) {
		t.Fatal("revoked robot still parked")
	}
	if parked, _ := l.Revoke(2); parked {
		t.Fatal("revoking twice reports a parked robot")
	}
	l.Park(5, 3, 0)
	w := l.Arrived(3) // robot 1 in flight
	if !slices.Equal(w, []int{1}) {
		t.Fatalf("woke %v, want [1]", w)
	}
	// Robot 1's poll ends before it claims: its wake goes to robot 5.
	if w := l.Leave(1); !slices.Equal(w, []int{5}) {
		t.Fatalf("leave of a woken robot woke %v, want [5]", w)
	}
	if w := l.Leave(5); len(w) != 0 || len(l.robots) != 0 {
		t.Fatalf("empty lot: woke %v, kept %v", w, l.robots)
	}
	if pp := l.ParkedPools(); len(pp) != 0 {
		t.Fatalf("parked pools of an empty lot: %v", pp)
	}
}

// TestRandomNoLostWake drives the lot with random arrivals, backstop
// ticks, claims, leaves and parks, and checks after each step: each robot
// at most once in the lot and woken at most once per epoch; when tasks
// wait and robots are parked with none in flight, the next backstop tick
// wakes one.
func TestRandomNoLostWake(t *testing.T) {
	for seed := range uint64(300) {
		rng := rand.New(rand.NewPCG(seed, 1))
		s := newSim(t)
		free := []int{}
		for r := range 8 {
			free = append(free, r)
		}
		for step := range 200 {
			switch rng.IntN(6) {
			case 0: // a free robot polls: claims fresh, parks if nothing
				if len(free) == 0 {
					continue
				}
				r := free[0]
				free = free[1:]
				ep := s.lot.Epoch(s.pool)
				if s.tasks > 0 && !s.refuse[r] {
					s.tasks--
					s.woke(s.lot.Done(r, s.pool, ep, s.tasks, true, t0))
					s.newPoll(r)
					free = append(free, r) // runs and comes back later
					continue
				}
				s.woke(s.lot.Done(r, s.pool, ep, s.tasks, false, t0))
				now, _ := s.lot.Park(r, s.pool, ep)
				if now {
					s.woke([]int{r})
				}
			case 1:
				s.tasks += rng.IntN(3) + 1
				s.woke(s.lot.Arrived(s.pool))
			case 2, 3:
				if len(s.woken) > 0 {
					r := s.woken[0]
					before := len(s.gotTask)
					s.serve()
					if len(s.gotTask) > before {
						s.newPoll(r)
						free = append(free, r)
					}
				}
			case 4: // a parked robot's poll ends
				for id, e := range s.lot.robots {
					if e.elem != nil {
						s.woke(s.lot.Leave(id))
						s.newPoll(id)
						free = append(free, id)
						break
					}
				}
			case 5:
				if rng.IntN(4) == 0 {
					s.refuse[rng.IntN(8)] = true
				}
			}
			s.check()
			st := s.lot.Stats()
			if s.tasks > 0 && st.Parked > 0 && st.InFlight == 0 {
				// The backstop tick would find work.
				if w := s.lot.Arrived(s.pool); len(w) != 1 {
					t.Fatalf("seed %d step %d: work waiting, %d parked, none in flight, and the backstop woke %v", seed, step, st.Parked, w)
				} else {
					s.woke(w)
				}
			}
		}
	}
}

// TestRepollParksAsOfItsLastEmptyClaim: a robot whose last claim found
// nothing re-polls after work arrived. With a robot in flight it parks
// (the claims in flight wake it by their backlog); with none it is woken
// at once; a mark older than maxAge is no mark.
func TestRepollParksAsOfItsLastEmptyClaim(t *testing.T) {
	s := newSim(t)
	s.park(1)
	s.park(2)
	ep := s.lot.Epoch(s.pool)
	s.lot.Leave(2) // robot 2's poll ended; its mark stays
	s.tasks = 5
	s.woke(s.lot.Arrived(s.pool)) // robot 1 in flight
	pool, e, ok := s.lot.LastEmpty(2, t0, time.Minute)
	if !ok || pool != s.pool || e != ep {
		t.Fatalf("LastEmpty = %d %d %v, want pool %d epoch %d", pool, e, ok, s.pool, ep)
	}
	if now, _ := s.lot.Park(2, s.pool, e); now {
		t.Fatal("a re-poll claimed although a robot is in flight for the new work")
	}
	s.settle() // robot 1's backlog wakes robot 2
	if len(s.gotTask) != 2 {
		t.Fatalf("tasks went to %v, want robots 1 and 2", s.gotTask)
	}
	// Nobody in flight: a re-poll after an arrival claims at once.
	s.park(3)
	s.lot.Leave(3)
	s.tasks++
	s.lot.Arrived(s.pool) // nobody parked: no wake
	_, e, _ = s.lot.LastEmpty(3, t0, time.Minute)
	if now, _ := s.lot.Park(3, s.pool, e); !now {
		t.Fatal("a re-poll after unseen work, with nobody claiming it, did not claim")
	}
	if _, _, ok := s.lot.LastEmpty(3, t0.Add(2*time.Minute), time.Minute); ok {
		t.Fatal("a mark older than maxAge was used")
	}
}
