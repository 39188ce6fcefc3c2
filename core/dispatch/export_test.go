package dispatch

import (
	"context"
	"errors"
	"time"

	"github.com/rpacloud/rpacloud/ent"
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

// HeartbeatOneByOne is Heartbeat through the ent path alone, the reference
// the group commit is compared with.
func (q *Queue) HeartbeatOneByOne(ctx context.Context, robotID, taskID, attemptNo int) (time.Time, error) {
	return q.heartbeat(ctx, robotID, taskID, attemptNo)
}

// ReportOneByOne is Report of an acceptable result (no refusal) through the
// ent path alone.
func (q *Queue) ReportOneByOne(ctx context.Context, robotID, taskID, attemptNo int, res Result) (*ent.Task, error) {
	return q.report(ctx, robotID, taskID, attemptNo, res)
}
