package robotapi

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rpacloud/rpacloud/core/events"
	"github.com/rpacloud/rpacloud/core/robotapi/parking"
	"github.com/rpacloud/rpacloud/ent"
	"github.com/rpacloud/rpacloud/ent/privacy"
)

// DefaultBackstop is how often the lot asks the database whether the pools
// with parked robots have work, in case the event that should have woken
// one was missed (another daemon's event lost, a time-out made pending
// elsewhere): one read-only statement per interval for all those pools.
const DefaultBackstop = 5 * time.Second

// maxPoolCache bounds the robot → pool cache; a robot never changes pool,
// so the cache is only ever dropped whole when full.
const maxPoolCache = 1 << 17

// lotState is the Service's waiting robots: the parking rules
// (core/robotapi/parking), one poll's channel per robot in the lot, the
// open awaitStop calls by task, and the one event subscription and
// backstop ticker that serve them all. The loop runs while any claim or
// awaitStop is open and stops with the last one.
type lotState struct {
	mu      sync.Mutex
	lot     *parking.Lot
	waiters map[int]*waiter // robot → its poll, while in the lot
	pools   map[int]int     // robot → pool
	stops   map[int]map[*stopWaiter]struct{}
	users   int
	gen     uint64
	stop    context.CancelFunc

	dbClaims, skipped atomic.Uint64
}

// waiter is one parked poll: nil on ch wakes it to claim, an error ends it.
type waiter struct{ ch chan error }

// stopWaiter is one open awaitStop.
type stopWaiter struct {
	attempt int // attempt id, once the first check read it
	ch      chan struct{}
}

// errDisplaced ends a poll when a newer poll of the same robot parks; the
// older answers null.
var errDisplaced = errors.New("a newer poll of the robot took its place")

// end tells the poll it is over (under the lot's lock: only the lock's
// holder sends, so emptying the buffer first makes the send never block).
func (w *waiter) end(err error) {
	select {
	case <-w.ch:
	default:
	}
	w.ch <- err
}

// Stats are the lot's counters, for tests and /metrics.
type Stats struct {
	Parked        int    // robots waiting in memory
	InFlight      int    // robots woken and claiming
	Wakes         uint64 // robots woken
	DBClaims      uint64 // claims that read the database
	SkippedClaims uint64 // polls parked without a database statement
	AwaitingStop  int    // open awaitStop calls
}

// Stats counts the lot.
func (s *Service) Stats() Stats {
	l := &s.lot
	l.mu.Lock()
	defer l.mu.Unlock()
	var st Stats
	if l.lot != nil {
		ls := l.lot.Stats()
		st.Parked, st.InFlight, st.Wakes = ls.Parked, ls.InFlight, ls.Wakes
	}
	for _, ws := range l.stops {
		st.AwaitingStop += len(ws)
	}
	st.DBClaims, st.SkippedClaims = l.dbClaims.Load(), l.skipped.Load()
	return st
}

func (s *Service) log() *slog.Logger {
	if s.Log != nil {
		return s.Log
	}
	return slog.Default()
}

// Run keeps the lot's subscription and backstops running until ctx ends,
// even while no robot waits (the daemon calls it). Without it they run
// while a claim or awaitStop is open, and what the lot knows of robots'
// last claims is dropped whenever they stop (no event was watched
// meanwhile), so those robots claim from the database again.
func (s *Service) Run(ctx context.Context) {
	s.hold()
	defer s.release()
	<-ctx.Done()
}

// hold keeps the lot's loop running for one open call; release ends the
// hold. The subscription is made here, before the call's first database
// read, so that no event after that read is missed.
func (s *Service) hold() {
	l := &s.lot
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.lot == nil {
		l.lot, l.waiters, l.pools, l.stops = parking.New(), make(map[int]*waiter), make(map[int]int), make(map[int]map[*stopWaiter]struct{})
		l.lot.MaxInFlight = s.MaxWokenPerPool
		if l.lot.MaxInFlight <= 0 {
			l.lot.MaxInFlight = DefaultMaxWokenPerPool
		}
	}
	l.users++
	if l.users > 1 {
		return
	}
	// Nobody watched events while nobody waited: what the epochs say
	// about the robots' last claims no longer holds.
	l.lot.ForgetIdle()
	ctx, cancel := context.WithCancel(context.Background())
	l.gen++
	l.stop = cancel
	var evs <-chan *ent.Event
	if s.Bus != nil {
		types := map[events.Type]bool{events.TaskStopRequested: true}
		for t := range wakeTypes {
			types[t] = true
		}
		evs = s.Bus.Subscribe(ctx, events.Filter{Types: types})
	}
	go s.run(ctx, l.gen, evs)
}

func (s *Service) release() {
	l := &s.lot
	l.mu.Lock()
	defer l.mu.Unlock()
	l.users--
	if l.users == 0 {
		l.stop()
	}
}

// run is the lot's loop: events and the two backstops.
func (s *Service) run(ctx context.Context, gen uint64, evs <-chan *ent.Event) {
	every := s.Backstop
	if every <= 0 {
		every = DefaultBackstop
	}
	stopEvery := s.StopBackstop
	if stopEvery <= 0 {
		stopEvery = DefaultStopBackstop
	}
	claims, stops := time.NewTicker(every), time.NewTicker(stopEvery)
	defer claims.Stop()
	defer stops.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-evs:
			if !ok {
				evs = nil
				continue
			}
			s.onEvent(gen, ev)
		case <-claims.C:
			s.backstopClaims(ctx, gen)
		case <-stops.C:
			s.backstopStops(ctx, gen)
		}
	}
}

// locked runs f under the lot's lock unless loop generation gen has been
// replaced (a stopped loop still draining).
func (s *Service) locked(gen uint64, f func(l *lotState)) {
	l := &s.lot
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.gen == gen {
		f(l)
	}
}

func (s *Service) onEvent(gen uint64, ev *ent.Event) {
	s.locked(gen, func(l *lotState) {
		switch {
		case events.Is(ev, events.TaskStopRequested):
			if ev.TaskID != nil {
				for w := range l.stops[*ev.TaskID] {
					signal(w.ch)
				}
			}
		case events.Is(ev, events.RobotRevoked):
			if ev.RobotID == nil {
				return
			}
			id := *ev.RobotID
			delete(l.pools, id)
			_, wakes := l.lot.Revoke(id)
			if w := l.waiters[id]; w != nil {
				delete(l.waiters, id)
				w.end(ErrRevoked)
			}
			l.deliver(wakes)
		case ev.PoolID != nil:
			l.deliver(l.lot.Arrived(*ev.PoolID))
		default:
			for _, p := range l.lot.ParkedPools() {
				l.deliver(l.lot.Arrived(p))
			}
		}
	})
}

// deliver wakes the polls of robots the lot put in flight.
func (l *lotState) deliver(robots []int) {
	for _, r := range robots {
		if w := l.waiters[r]; w != nil {
			select {
			case w.ch <- nil:
			default:
			}
		}
	}
}

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// backstopClaims asks, in one statement, which pools with parked robots
// have work, and treats each as an arrival there.
func (s *Service) backstopClaims(ctx context.Context, gen uint64) {
	var pools []int
	s.locked(gen, func(l *lotState) {
		l.lot.Prune(s.Queue.Now(), MaxPollWait)
		pools = l.lot.ParkedPools()
	})
	if len(pools) == 0 {
		return
	}
	has, err := s.Queue.PoolsWithWork(privacy.DecisionContext(ctx, privacy.Allow), pools)
	if err != nil {
		if ctx.Err() == nil {
			s.log().Warn("robotapi: backstop: read which pools have work", "err", err)
		}
		return
	}
	s.locked(gen, func(l *lotState) {
		for p := range has {
			l.deliver(l.lot.Backstop(p))
		}
	})
}

// backstopStops checks all the attempts awaited here in one statement
// per 500 and wakes the calls whose attempt was asked to stop or ended;
// each then reads its own attempt to answer.
func (s *Service) backstopStops(ctx context.Context, gen uint64) {
	var ids []int
	s.locked(gen, func(l *lotState) {
		for _, ws := range l.stops {
			for w := range ws {
				if w.attempt != 0 {
					ids = append(ids, w.attempt)
				}
			}
		}
	})
	if len(ids) == 0 {
		return
	}
	got, err := s.Queue.StoppedAttempts(privacy.DecisionContext(ctx, privacy.Allow), ids)
	if err != nil {
		if ctx.Err() == nil {
			s.log().Warn("robotapi: backstop: read awaited attempts", "err", err)
		}
		return
	}
	if len(got) == 0 {
		return
	}
	stopped := make(map[int]bool, len(got))
	for _, id := range got {
		stopped[id] = true
	}
	s.locked(gen, func(l *lotState) {
		for _, ws := range l.stops {
			for w := range ws {
				if stopped[w.attempt] {
					signal(w.ch)
				}
			}
		}
	})
}

// poolOf returns robot robotID's pool, read once per robot.
func (s *Service) poolOf(ctx context.Context, robotID int) (int, error) {
	l := &s.lot
	l.mu.Lock()
	p, ok := l.pools[robotID]
	l.mu.Unlock()
	if ok {
		return p, nil
	}
	rb, err := s.Client.Robot.Get(privacy.DecisionContext(ctx, privacy.Allow), robotID)
	if err != nil {
		return 0, err
	}
	s.rememberPool(robotID, rb.PoolID)
	return rb.PoolID, nil
}

func (s *Service) rememberPool(robotID, poolID int) {
	if poolID == 0 {
		return
	}
	l := &s.lot
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.pools) >= maxPoolCache {
		clear(l.pools)
	}
	l.pools[robotID] = poolID
}
