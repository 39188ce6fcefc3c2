package dispatch

import (
	"context"
	"errors"
)

// FastPathActive reports whether q has seen PostgreSQL and now claims and
// reports through the fast path (fastpath.go).
func (q *Queue) FastPathActive() bool { return q.postgres.Load() }

// ClaimFastOnly runs the PostgreSQL fast path's claim alone (no fallback
// to the ent path); nil when it started nothing.
func (q *Queue) ClaimFastOnly(ctx context.Context, robotID int) (*Claim, error) {
	c, err := q.claimFast(ctx, robotID)
	if errors.Is(err, errSlowPath) {
		return nil, nil
	}
	return c.Claim, err
}
