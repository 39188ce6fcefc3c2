// Package events names what rpacloud records and fans stored events out to
// live subscribers in this process. Every event type is a Type constant
// here (types.go), and every event is made with Create. Events are written
// to the database by whoever makes the change, inside its transaction
// (Record when there is none); the bus carries them only after the commit,
// so a subscriber never sees a change that was rolled back. With several
// daemons on one PostgreSQL, PGRelay (pgrelay.go) carries each daemon's
// events to the others' buses with LISTEN/NOTIFY.
package events

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/rpacloud/rpacloud/ent"
)

// Filter selects events for one subscriber; nil fields match everything.
type Filter struct {
	CustomerID *int
	BatchID    *int
	TaskID     *int
	PoolID     *int
	ProcessID  *int
	RobotID    *int
	Vendor     string
	Status     string
	Types      map[Type]bool
	// Prefixes match types by their leading part, e.g. "anomaly.".
	Prefixes []string
}

// Match reports whether e passes f.
func (f Filter) Match(e *ent.Event) bool {
	if f.CustomerID != nil && (e.CustomerID == nil || *e.CustomerID != *f.CustomerID) {
		return false
	}
	if f.BatchID != nil && (e.BatchID == nil || *e.BatchID != *f.BatchID) {
		return false
	}
	if f.TaskID != nil && (e.TaskID == nil || *e.TaskID != *f.TaskID) {
		return false
	}
	if f.PoolID != nil && (e.PoolID == nil || *e.PoolID != *f.PoolID) {
		return false
	}
	if f.ProcessID != nil && (e.ProcessID == nil || *e.ProcessID != *f.ProcessID) {
		return false
	}
	if f.RobotID != nil && (e.RobotID == nil || *e.RobotID != *f.RobotID) {
		return false
	}
	if f.Vendor != "" && e.Vendor != f.Vendor && (f.Vendor != "rpacloud" || e.Vendor != "") {
		return false
	}
	if f.Status != "" && e.Status != f.Status {
		return false
	}
	if len(f.Types) > 0 && !f.Types[Type(e.Type)] {
		return false
	}
	if len(f.Prefixes) > 0 {
		for _, p := range f.Prefixes {
			if strings.HasPrefix(e.Type, p) {
				return true
			}
		}
		return false
	}
	return true
}

// Bus is an in-process publish/subscribe hub. With a Relay it also carries
// events to the buses of other daemons sharing the database, which hand
// them to their subscribers with Deliver.
type Bus struct {
	mu      sync.RWMutex
	subs    map[*sub]struct{}
	dropped atomic.Int64
	relay   atomic.Pointer[relayBox]
}

// Relay forwards events published here to other daemons. It must not block:
// Publish is called by the dispatcher right after its commit.
type Relay interface {
	Relay(evs []*ent.Event)
}

type relayBox struct{ r Relay }

// SetRelay installs r (nil removes it).
func (b *Bus) SetRelay(r Relay) {
	if r == nil {
		b.relay.Store(nil)
		return
	}
	b.relay.Store(&relayBox{r})
}

type sub struct {
	ch     chan *ent.Event
	fn     func(*ent.Event) // a tap (Tap) instead of ch
	filter Filter
}

// BufferSize bounds what a slow subscriber may lag behind before it loses
// events; one stuck websocket must never block the dispatcher.
const BufferSize = 4096

// New returns an empty bus.
func New() *Bus { return &Bus{subs: make(map[*sub]struct{})} }

// Publish hands events to every matching subscriber without blocking, and
// to the relay, if any, for other daemons.
func (b *Bus) Publish(evs ...*ent.Event) {
	if b == nil || len(evs) == 0 {
		return
	}
	b.Deliver(evs...)
	if rb := b.relay.Load(); rb != nil {
		rb.r.Relay(evs)
	}
}

// Deliver hands events to this process's subscribers only: the relay uses it
// for events that other daemons published.
func (b *Bus) Deliver(evs ...*ent.Event) {
	if b == nil {
		return
	}
	b.mu.RLock()
	defer b.mu.RUnlock()
	for _, e := range evs {
		for s := range b.subs {
			if !s.filter.Match(e) {
				continue
			}
			if s.fn != nil {
				s.fn(e)
				continue
			}
			select {
			case s.ch <- e:
			default:
				b.dropped.Add(1)
			}
		}
	}
}

// Subscribe returns a channel of matching events. It is closed when ctx ends,
// which also removes the subscription.
func (b *Bus) Subscribe(ctx context.Context, f Filter) <-chan *ent.Event {
	s := &sub{ch: make(chan *ent.Event, BufferSize), filter: f}
	b.mu.Lock()
	b.subs[s] = struct{}{}
	b.mu.Unlock()
	go func() {
		<-ctx.Done()
		b.mu.Lock()
		delete(b.subs, s)
		close(s.ch)
		b.mu.Unlock()
	}()
	return s.ch
}

// Tap calls fn with every matching event until ctx ends, synchronously
// inside Publish (and the relay's Deliver): when Publish returns, fn has
// run. It is for the few subscribers that must have acted before the
// publisher goes on (the token cache drops a revoked token before the
// revoking request answers, so the token's next request is refused). fn
// must be quick, must not block and must not publish. The tap is in place
// when Tap returns.
func (b *Bus) Tap(ctx context.Context, f Filter, fn func(*ent.Event)) {
	s := &sub{fn: fn, filter: f}
	b.mu.Lock()
	b.subs[s] = struct{}{}
	b.mu.Unlock()
	go func() {
		<-ctx.Done()
		b.mu.Lock()
		delete(b.subs, s)
		b.mu.Unlock()
	}()
}

// Subscribers returns how many subscriptions are open.
func (b *Bus) Subscribers() int {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return len(b.subs)
}

// Dropped returns how many deliveries were dropped because a subscriber's
// buffer was full.
func (b *Bus) Dropped() int64 { return b.dropped.Load() }
