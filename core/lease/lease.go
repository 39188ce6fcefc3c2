// Package lease elects one daemon among several sharing a database to run
// what must run once per deployment. Group (group.go) is the one election
// the daemon holds: it starts the leader-only services (the time-out
// sweeper, the fleet and scaler loop, the monitor's rules, the vendor
// pollers) when this daemon gains the lease and stops them when it loses
// it. A lease is a row (name, holder, term, expires_at):
//
//   - a daemon acquires a free or expired lease by a compare-and-set on its
//     term, which grows by one with every change of holder;
//   - the holder renews before expiry by a compare-and-set on (holder,
//     term), so a daemon that lost the lease while paused can never renew
//     it again;
//   - a holder trusts its leadership only until its own renewal time plus
//     the TTL minus a safety margin (clock skew, slow commits), so two
//     daemons never both believe they lead when their clocks agree within
//     the margin.
//
// A Group (group.go) puts every such loop of a daemon under one election:
// all start when the daemon gains the lease and all stop when it loses it.
//
// The Elector's times come from an injectable clock and it never sleeps;
// the Group waits between campaigns through an injectable tick.
package lease

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/rpacloud/rpacloud/ent"
	"github.com/rpacloud/rpacloud/ent/lease"
	"github.com/rpacloud/rpacloud/ent/privacy"
)

// Elector campaigns for one named lease on behalf of one holder. It is
// meant for one goroutine (the loop it guards); it is not safe for
// concurrent use.
type Elector struct {
	client *ent.Client
	name   string
	holder string
	ttl    time.Duration
	margin time.Duration
	now    func() time.Time

	term       int64     // held term, 0 when not leader
	trustUntil time.Time // local end of trusted leadership
}

// Options configure an Elector.
type Options struct {
	// TTL is how long a lease lasts without renewal; default 15s. Renew at
	// least every TTL/3.
	TTL time.Duration
	// Margin is subtracted from the TTL when the holder decides whether it
	// may still act; default TTL/5.
	Margin time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// New returns an elector for lease name, campaigning as holder (unique per
// daemon, e.g. hostname:pid:random).
func New(client *ent.Client, name, holder string, o Options) (*Elector, error) {
	if name == "" || holder == "" {
		return nil, errors.New("lease: name and holder must not be empty")
	}
	if o.TTL <= 0 {
		o.TTL = 15 * time.Second
	}
	if o.Margin <= 0 {
		o.Margin = o.TTL / 5
	}
	if o.Margin >= o.TTL {
		return nil, fmt.Errorf("lease %s: margin %v must be below the TTL %v", name, o.Margin, o.TTL)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Elector{client: client, name: name, holder: holder, ttl: o.TTL, margin: o.Margin, now: o.Now}, nil
}

// TTL returns the lease's time to live.
func (e *Elector) TTL() time.Duration { return e.ttl }

// Holder returns who this elector campaigns as.
func (e *Elector) Holder() string { return e.holder }

func sys(ctx context.Context) context.Context { return privacy.DecisionContext(ctx, privacy.Allow) }

// Campaign acquires or renews the lease. It returns the term held and
// whether this holder leads now. An error leaves the elector not leading.
// Call it periodically (at most every TTL/3) from one goroutine.
func (e *Elector) Campaign(ctx context.Context) (term int64, leader bool, err error) {
	ctx = sys(ctx)
	now := e.now().UTC()
	defer func() {
		if err != nil || !leader {
			e.term, e.trustUntil = 0, time.Time{}
		}
	}()
	cur, err := e.client.Lease.Query().Where(lease.Name(e.name)).Only(ctx)
	switch {
	case ent.IsNotFound(err):
		_, err := e.client.Lease.Create().SetName(e.name).SetHolder(e.holder).SetTerm(1).
			SetExpiresAt(now.Add(e.ttl)).Save(ctx)
		if ent.IsConstraintError(err) {
			return 0, false, nil // another daemon created it first
		}
		if err != nil {
			return 0, false, fmt.Errorf("lease %s: create: %w", e.name, err)
		}
		e.term, e.trustUntil = 1, now.Add(e.ttl-e.margin)
		return 1, true, nil
	case err != nil:
		return 0, false, fmt.Errorf("lease %s: read: %w", e.name, err)
	}
	next := cur.Term
	upd := e.client.Lease.Update().Where(lease.Name(e.name), lease.Term(cur.Term), lease.Holder(cur.Holder))
	if cur.Holder != e.holder || cur.Term != e.term || e.term == 0 {
		if cur.ExpiresAt.After(now) {
			return 0, false, nil // held by someone else (or by us in a term we lost track of)
		}
		// Take over an expired lease, unless its holder renewed it
		// between our read and this write.
		next = cur.Term + 1
		upd.Where(lease.ExpiresAtLTE(now))
	}
	n, err := upd.SetHolder(e.holder).SetTerm(next).SetExpiresAt(now.Add(e.ttl)).Save(ctx)
	if err != nil {
		return 0, false, fmt.Errorf("lease %s: renew: %w", e.name, err)
	}
	if n != 1 {
		return 0, false, nil // someone else moved the lease meanwhile
	}
	e.term, e.trustUntil = next, now.Add(e.ttl-e.margin)
	return next, true, nil
}

// Leading reports whether this holder may act as leader now, by its own
// clock, without asking the database.
func (e *Elector) Leading() bool {
	return e.term != 0 && e.now().Before(e.trustUntil)
}

// Resign gives the lease up at once so another daemon can take it without
// waiting for the TTL. Resigning a lease not held is a no-op.
func (e *Elector) Resign(ctx context.Context) error {
	if e.term == 0 {
		return nil
	}
	term := e.term
	e.term, e.trustUntil = 0, time.Time{}
	_, err := e.client.Lease.Update().
		Where(lease.Name(e.name), lease.Holder(e.holder), lease.Term(term)).
		SetExpiresAt(e.now().UTC()).Save(sys(ctx))
	if err != nil {
		return fmt.Errorf("lease %s: resign: %w", e.name, err)
	}
	return nil
}
