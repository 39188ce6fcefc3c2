package dispatch

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"entgo.io/ent/dialect"
	"entgo.io/ent/dialect/sql"

	"github.com/rpacloud/rpacloud/core/retry"
	"github.com/rpacloud/rpacloud/ent/robot"
)

// Liveness: a robot's last-seen moment (robots.last_seen_at) is what the
// heartbeat-lost rule, the claim's time-out rule (IdleLiveness) and the
// dashboard read. Writing it at every poll and heartbeat made a waiting
// robot cost a database write per request: with thousands of robots the
// queue spent most of its statements saying "still here". The queue
// therefore keeps the moments it has seen in memory (Seen) and writes them
// in batches (FlushLiveness, run every DefaultLivenessFlush by
// RunLivenessFlusher on every daemon, and once more at shutdown). A state
// change (busy, idle again after suspect) is still written at once, with
// its moment, by the statement that makes it.
//
// The database is thereby at most one flush interval behind: far below
// what reads it (heartbeat_timeout 60 s, IdleLiveness 2 min). A daemon
// that crashes loses at most one interval of moments, which makes its
// robots look that much older, never younger. The write never moves a
// moment backwards, so daemons flushing the same robot in any order agree.

// DefaultLivenessFlush is how often each daemon writes the moments it has
// seen.
const DefaultLivenessFlush = 10 * time.Second

// livenessChunk bounds one flush statement's robots (and its parameters:
// five per robot, 2 500 a statement, well under SQLite's 32 766 and
// PostgreSQL's 65 535).
const livenessChunk = 500

type liveness struct {
	mu   sync.Mutex
	seen map[int]time.Time
}

// Seen records that robot robotID checked in at at; the moment reaches the
// database at the next flush. Only the latest moment per robot is kept, so
// memory is bounded by the number of robots.
func (q *Queue) Seen(robotID int, at time.Time) {
	q.live.mu.Lock()
	defer q.live.mu.Unlock()
	if q.live.seen == nil {
		q.live.seen = make(map[int]time.Time)
	}
	if prev, ok := q.live.seen[robotID]; !ok || at.After(prev) {
		q.live.seen[robotID] = at
	}
}

// LastSeen is the latest moment this daemon has seen robot robotID and not
// yet written; ok is false when it has none pending.
func (q *Queue) LastSeen(robotID int) (at time.Time, ok bool) {
	q.live.mu.Lock()
	defer q.live.mu.Unlock()
	at, ok = q.live.seen[robotID]
	return at, ok
}

// FlushLiveness writes the moments seen since the last flush, in chunks of
// livenessChunk robots, one statement each, and returns how many robots it
// wrote. A moment that could not be written is kept for the next flush.
func (q *Queue) FlushLiveness(ctx context.Context) (int, error) {
	q.live.mu.Lock()
	pending := q.live.seen
	q.live.seen = nil
	q.live.mu.Unlock()
	if len(pending) == 0 {
		return 0, nil
	}
	ids := make([]int, 0, len(pending))
	for id := range pending {
		ids = append(ids, id)
	}
	written := 0
	for start := 0; start < len(ids); start += livenessChunk {
		chunk := ids[start:min(start+livenessChunk, len(ids))]
		if err := q.writeLiveness(ctx, chunk, pending); err != nil {
			// Put back what was not written (a newer moment seen
			// meanwhile wins).
			for _, id := range ids[start:] {
				q.Seen(id, pending[id])
			}
			return written, err
		}
		written += len(chunk)
	}
	return written, nil
}

// writeLiveness is one statement for a chunk:
//
//	UPDATE robots SET last_seen_at = CASE id WHEN ? THEN ? … END
//	WHERE id IN (…) AND (last_seen_at IS NULL OR last_seen_at < CASE …)
//
// portable to both databases; the second CASE keeps a moment from moving
// backwards.
func (q *Queue) writeLiveness(ctx context.Context, ids []int, at map[int]time.Time) error {
	var cases strings.Builder
	args := make([]any, 0, 3*len(ids))
	cases.WriteString("CASE id")
	for _, id := range ids {
		cases.WriteString(" WHEN ? THEN ?")
		args = append(args, id, at[id].UTC())
	}
	cases.WriteString(" END")
	in := strings.Repeat("?,", len(ids))
	for _, id := range ids {
		args = append(args, id)
	}
	stmt := "UPDATE robots SET last_seen_at = " + cases.String() +
		" WHERE id IN (" + in[:len(in)-1] + ") AND (last_seen_at IS NULL OR last_seen_at < " + cases.String() + ")"
	args = append(args, args[:2*len(ids)]...)
	pg, err := q.isPostgres(ctx)
	if err != nil {
		return fmt.Errorf("liveness: %w", err)
	}
	if pg {
		// A parameter in THEN has no type of its own on PostgreSQL.
		stmt = numberPlaceholders(strings.ReplaceAll(stmt, " THEN ?", " THEN ?::timestamptz"))
	}
	if _, err := q.client.ExecContext(system(ctx), stmt, args...); err != nil {
		return fmt.Errorf("liveness: write last-seen moments of %d robots: %w", len(ids), err)
	}
	return nil
}

// isPostgres tells the database's dialect, asking it once (a claim may
// already have told: q.postgres).
func (q *Queue) isPostgres(ctx context.Context) (bool, error) {
	if q.dialectKnown.Load() || q.postgres.Load() {
		return q.postgres.Load(), nil
	}
	_, err := q.client.Robot.Query().Where(robot.ID(0)).
		Modify(func(s *sql.Selector) { q.postgres.Store(s.Dialect() == dialect.Postgres) }).IDs(system(ctx))
	if err != nil {
		return false, fmt.Errorf("read the database's dialect: %w", err)
	}
	q.dialectKnown.Store(true)
	return q.postgres.Load(), nil
}

// numberPlaceholders turns ? into $1, $2, … for PostgreSQL (the statement
// has no string literals).
func numberPlaceholders(stmt string) string {
	var b strings.Builder
	n := 0
	for _, r := range stmt {
		if r == '?' {
			n++
			fmt.Fprintf(&b, "$%d", n)
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// RunLivenessFlusher flushes every interval (<= 0: DefaultLivenessFlush)
// until ctx ends, then once more with a short deadline of its own, so a
// daemon stopping cleanly leaves the database current.
func (q *Queue) RunLivenessFlusher(ctx context.Context, interval time.Duration, log *slog.Logger) {
	if interval <= 0 {
		interval = DefaultLivenessFlush
	}
	if log == nil {
		log = q.log
	}
	for retry.Sleep(ctx, interval) {
		if _, err := q.FlushLiveness(ctx); err != nil && ctx.Err() == nil {
			log.Warn("liveness flush failed; keeping the moments for the next one", "err", err)
		}
	}
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if _, err := q.FlushLiveness(fctx); err != nil {
		log.Warn("final liveness flush failed", "err", err)
	}
}

// Now is the queue's clock: the moment Seen should be given by a caller
// that checks a robot in without a claim (robotapi's parked polls).
func (q *Queue) Now() time.Time { return q.clock() }
