// Package parking is the bookkeeping of robots waiting for work, the rules
// only: no I/O, no goroutines, no clock of its own (moments are passed
// in). core/robotapi holds a Lot under its lock, runs the claims and
// delivers the wakes it decides.
//
// A robot whose claim found nothing parks in its pool's FIFO, in the order
// robots became free. When work may have arrived in a pool (an event, or
// the backstop found work) the pool's epoch moves and one robot is woken,
// unless one is already in flight (woken and not yet back from its
// claim). A claim that comes back with a backlog B (pending tasks it saw,
// less the one it took) wakes B − inflight more, in FIFO order: a burst of
// a hundred tasks fans out to a hundred robots at once, one task wakes
// one robot, and the next free robot takes the next dish. A woken robot
// whose claim got nothing goes back to its place and is not woken again
// until the epoch moves, so a task no parked robot may take (the time-out
// rule, a draining robot) cannot make the lot spin.
package parking

import (
	"container/list"
	"time"
)

// Lot is the parked robots of every pool. It is not safe for concurrent
// use: the caller serialises its calls.
type Lot struct {
	// MaxInFlight bounds the robots of one pool woken and claiming at
	// once (0: no bound). Claims beyond what the database serves at once
	// only queue for its connections, and while they queue the backlog
	// they were woken for grows and wakes more: with thousands of robots
	// parked, an unbounded fan-out turned a burst into minutes of queued
	// claims. Each claim that comes back wakes the next, so a burst is
	// still served at the database's pace, in FIFO order, and no wake is
	// lost.
	MaxInFlight int

	pools  map[int]*pool
	robots map[int]*entry
	idle   map[int]idleMark
	wakes  uint64
}

type pool struct {
	epoch    uint64
	fifo     list.List // of *entry, parked and not woken, first free first
	inflight int
}

type entry struct {
	robot, pool int
	elem        *list.Element // in the pool's fifo; nil while woken
	// tried: the robot came back empty-handed from a claim it started at
	// triedAt; it is not woken again while the epoch is still triedAt.
	tried   bool
	triedAt uint64
}

type idleMark struct {
	pool  int
	epoch uint64
	at    time.Time
}

// New returns an empty lot.
func New() *Lot {
	return &Lot{pools: make(map[int]*pool), robots: make(map[int]*entry), idle: make(map[int]idleMark)}
}

// pool returns pool id's bookkeeping. Pools are never forgotten (their
// epochs must not restart while idle marks refer to them); they are few.
func (l *Lot) pool(id int) *pool {
	p := l.pools[id]
	if p == nil {
		p = &pool{}
		p.fifo.Init()
		l.pools[id] = p
	}
	return p
}

// Epoch is pool poolID's current epoch. A claim notes it before it reads
// the database and hands it to Park and Done, which thereby learn whether
// work may have arrived since.
func (l *Lot) Epoch(poolID int) uint64 { return l.pool(poolID).epoch }

// LastEmpty reports the epoch of robot robotID's last claim that found
// nothing, when that was at most maxAge before now, whether or not the
// epoch has moved since. A poll of such a robot may park with that epoch
// (Park) instead of claiming: when work arrived meanwhile and no robot is
// in flight Park wakes it at once; when robots are in flight their claims'
// backlogs wake as many parked robots as the work needs, in FIFO order.
// Claiming instead would make every re-poll of a busy pool a database
// statement (10 000 robots re-polling every 20 s: 500 claims a second).
func (l *Lot) LastEmpty(robotID int, now time.Time, maxAge time.Duration) (poolID int, epoch uint64, ok bool) {
	m, found := l.idle[robotID]
	if !found || now.Sub(m.at) > maxAge || now.Before(m.at) {
		return 0, 0, false
	}
	return m.pool, m.epoch, true
}

// Park puts robot robotID, whose claim started at epoch seen found
// nothing, at the end of pool poolID's FIFO. When the epoch moved since
// seen and no robot is in flight, work may have arrived unseen by that
// claim and by anyone: the robot is woken at once (wakeNow) and claims
// again. A robot is in the lot at most once: displaced reports that it
// was already there (an earlier poll of the same robot, which the caller
// ends).
func (l *Lot) Park(robotID, poolID int, seen uint64) (wakeNow, displaced bool) {
	if _, ok := l.robots[robotID]; ok {
		l.remove(robotID)
		displaced = true
	}
	p := l.pool(poolID)
	e := &entry{robot: robotID, pool: poolID}
	l.robots[robotID] = e
	if p.epoch != seen && p.inflight == 0 {
		p.inflight++
		l.wakes++
		return true, displaced
	}
	e.elem = p.fifo.PushBack(e)
	return false, displaced
}

// remove takes robot robotID out of the lot; woken reports whether it was
// in flight.
func (l *Lot) remove(robotID int) (e *entry, woken bool) {
	e = l.robots[robotID]
	if e == nil {
		return nil, false
	}
	delete(l.robots, robotID)
	p := l.pool(e.pool)
	if e.elem != nil {
		p.fifo.Remove(e.elem)
		return e, false
	}
	p.inflight--
	return e, true
}

// Leave takes robot robotID out of the lot when its poll ends without a
// claim (its wait is over, its request gone). A robot that leaves while
// woken hands its wake on: when no other robot is in flight, the next is
// woken, so the work it was woken for is not left waiting.
func (l *Lot) Leave(robotID int) (wake []int) {
	e, woken := l.remove(robotID)
	if e == nil || !woken {
		return nil
	}
	p := l.pool(e.pool)
	if p.inflight == 0 {
		return l.wake(p, 1)
	}
	return nil
}

// Revoke takes robot robotID out of the lot and forgets it; parked
// reports whether a poll of it was waiting here (the caller ends it,
// telling it so).
func (l *Lot) Revoke(robotID int) (parked bool, wake []int) {
	delete(l.idle, robotID)
	_, ok := l.robots[robotID]
	return ok, l.Leave(robotID)
}

// Arrived says that work may have arrived in pool poolID (a task became
// pending: submitted, retried, requeued, resumed): the epoch moves and,
// unless a robot is already in flight, the first parked robot is woken.
// One is enough: its claim's backlog wakes as many more as there are
// tasks.
func (l *Lot) Arrived(poolID int) (wake []int) {
	p := l.pool(poolID)
	p.epoch++
	if p.inflight > 0 {
		return nil
	}
	return l.wake(p, 1)
}

// Backstop says that the backstop found work in pool poolID. With a robot
// in flight it changes nothing: that robot's claim reports the backlog
// (moving the epoch would only make the last claim back wake one robot in
// vain). Otherwise it is an arrival.
func (l *Lot) Backstop(poolID int) (wake []int) {
	if l.pool(poolID).inflight > 0 {
		return nil
	}
	return l.Arrived(poolID)
}

// Done records what a claim of robot robotID in pool poolID found: it
// started at epoch start, saw backlog pending tasks left (after the one it
// took) and got a task or not. A woken robot is no longer in flight; with
// a task it leaves the lot, without one it goes back to its place and is
// not woken again before the epoch moves past start. Then robots are woken
// for the backlog that the robots in flight will not take (backlog −
// inflight), and, when the epoch moved during the claim and nobody is in
// flight, one more for what may have arrived unseen.
func (l *Lot) Done(robotID, poolID int, start uint64, backlog int, got bool, now time.Time) (wake []int) {
	p := l.pool(poolID)
	if got {
		delete(l.idle, robotID)
	} else {
		l.idle[robotID] = idleMark{pool: poolID, epoch: start, at: now}
	}
	if e := l.robots[robotID]; e != nil && e.elem == nil {
		p.inflight--
		if got {
			delete(l.robots, robotID)
		} else {
			e.tried, e.triedAt = true, start
			// Back to the front: it became free before those parked
			// behind it.
			e.elem = p.fifo.PushFront(e)
		}
	}
	n := backlog - p.inflight
	if n <= 0 && p.epoch != start && p.inflight == 0 {
		n = 1
	}
	return l.wake(p, n)
}

// wake takes up to n robots off p's FIFO (and no more than MaxInFlight
// allows), first free first, skipping those that came back empty-handed at
// the current epoch, and puts them in flight.
func (l *Lot) wake(p *pool, n int) []int {
	if l.MaxInFlight > 0 {
		n = min(n, l.MaxInFlight-p.inflight)
	}
	var out []int
	for el := p.fifo.Front(); el != nil && len(out) < n; {
		next := el.Next()
		e := el.Value.(*entry)
		if !e.tried || e.triedAt != p.epoch {
			p.fifo.Remove(el)
			e.elem = nil
			p.inflight++
			out = append(out, e.robot)
		}
		el = next
	}
	l.wakes += uint64(len(out))
	return out
}

// ParkedPools are the pools with robots parked (not in flight), for the
// backstop's query.
func (l *Lot) ParkedPools() []int {
	var out []int
	for id, p := range l.pools {
		if p.fifo.Len() > 0 {
			out = append(out, id)
		}
	}
	return out
}

// Prune forgets idle marks older than maxAge, which Idle would refuse
// anyway; memory stays bounded by the robots seen within maxAge.
func (l *Lot) Prune(now time.Time, maxAge time.Duration) {
	for id, m := range l.idle {
		if now.Sub(m.at) > maxAge || now.Before(m.at) {
			delete(l.idle, id)
		}
	}
}

// ForgetIdle drops every idle mark: the caller stopped watching events
// (nobody was waiting), so epochs no longer tell whether work arrived.
func (l *Lot) ForgetIdle() { clear(l.idle) }

// Stats are the lot's counters.
type Stats struct {
	Parked   int    // robots waiting in a FIFO
	InFlight int    // robots woken and not yet back from their claim
	Wakes    uint64 // robots woken since the lot was made
}

// Stats counts the lot.
func (l *Lot) Stats() Stats {
	s := Stats{Wakes: l.wakes}
	for _, p := range l.pools {
		s.Parked += p.fifo.Len()
		s.InFlight += p.inflight
	}
	return s
}

// Parked reports whether robot robotID is in the FIFO (not in flight).
func (l *Lot) Parked(robotID int) bool {
	e := l.robots[robotID]
	return e != nil && e.elem != nil
}
