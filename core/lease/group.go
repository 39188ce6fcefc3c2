package lease

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/rpacloud/rpacloud/core/retry"
)

// Service is one loop that must run on a single daemon of a deployment
// (the time-out sweeper, the fleet and scaler loop, the vendor pollers,
// the monitor's rule evaluation).
type Service struct {
	// Name appears in the group's log lines.
	Name string
	// Run works until ctx ends, which happens when the daemon loses the
	// leadership or stops. term is the lease term it leads in: a fencing
	// token for writes a deposed leader must not make. A service that
	// returns early is started again only at the next gain of leadership.
	Run func(ctx context.Context, term int64)
}

// Campaigner is the election a Group follows; *Elector satisfies it.
type Campaigner interface {
	Campaign(ctx context.Context) (term int64, leader bool, err error)
	Leading() bool
	Resign(ctx context.Context) error
	TTL() time.Duration
}

// GroupOptions configure a Group.
type GroupOptions struct {
	// Elector, when set, decides leadership. Nil means this daemon is alone
	// on its database (an SQLite file): it leads, in term 1, for as long as
	// the group runs.
	Elector Campaigner
	// Renew is how often the group campaigns; default the elector's TTL/3.
	Renew time.Duration
	// Tick waits for the next campaign and returns false once ctx is done;
	// default a real timer. Tests pass one they drive.
	Tick func(ctx context.Context, d time.Duration) bool
	// Logger; default slog.Default().
	Logger *slog.Logger
}

// Group runs one election for a set of services and keeps them running
// exactly while this daemon leads: all start when leadership is gained and
// all stop (their context is cancelled and the group waits for them) when
// it is lost or the term changes. One lease for every leader-only loop
// means one daemon does all of that work, and a failover moves all of it
// at once.
type Group struct {
	o        GroupOptions
	services []Service
}

// NewGroup returns a group of services under o's election.
func NewGroup(o GroupOptions, services ...Service) *Group {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Tick == nil {
		o.Tick = retry.Sleep
	}
	if o.Renew <= 0 && o.Elector != nil {
		o.Renew = o.Elector.TTL() / 3
	}
	return &Group{o: o, services: services}
}

// running is the set of services started for one term.
type running struct {
	term   int64
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// Run campaigns every Renew and starts or stops the services as
// leadership changes, until ctx ends; then it stops the services and
// resigns, so a peer takes over without waiting for the lease to expire.
// Run returns only after every service has returned.
func (g *Group) Run(ctx context.Context) {
	var cur *running
	stop := func() {
		if cur != nil {
			cur.cancel()
			cur.wg.Wait()
			g.o.Logger.Info("leader services stopped", "term", cur.term)
			cur = nil
		}
	}
	defer stop()
	if g.o.Elector == nil {
		cur = g.start(ctx, 1)
		<-ctx.Done()
		return
	}
	el := g.o.Elector
	defer func() {
		// Stop first: a peer must not lead while our services still write.
		stop()
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := el.Resign(rctx); err != nil {
			g.o.Logger.Warn("leader services: resign", "err", err)
		}
	}()
	for {
		// A campaign that hangs must not keep the services running past
		// the leadership this daemon can trust: bound it by one period.
		cctx, cancel := context.WithTimeout(ctx, g.o.Renew)
		term, leader, err := el.Campaign(cctx)
		cancel()
		if err != nil && ctx.Err() == nil {
			g.o.Logger.Warn("leader services: election", "err", err)
		}
		leader = leader && err == nil && el.Leading()
		if cur != nil && (!leader || term != cur.term) {
			stop()
		}
		if leader && cur == nil {
			cur = g.start(ctx, term)
		}
		if !g.o.Tick(ctx, g.o.Renew) {
			return
		}
	}
}

func (g *Group) start(ctx context.Context, term int64) *running {
	sctx, cancel := context.WithCancel(ctx)
	r := &running{term: term, cancel: cancel}
	for _, s := range g.services {
		r.wg.Go(func() { s.Run(sctx, term) })
	}
	g.o.Logger.Info("leader services started", "term", term, "services", len(g.services))
	return r
}
