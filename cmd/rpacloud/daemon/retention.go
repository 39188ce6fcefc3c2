package daemon

import (
	"context"
	"time"

	"entgo.io/ent/dialect"

	"github.com/rpacloud/rpacloud/core/retention"
	"github.com/rpacloud/rpacloud/core/retention/expire"
	"github.com/rpacloud/rpacloud/core/store"
)

// retentionLoop prunes expired rows while this daemon leads; the
// retention block is read from the live configuration at each round, so a
// reload applies at the next one.
func (d *Daemon) retentionLoop(ctx context.Context, term int64) {
	if !d.live().Current().Retention.Set {
		// Said once per term, so an operator who upgraded sees why the
		// database keeps growing; a reload that adds the block applies at
		// the next round.
		d.log.Info("retention: no retention block: nothing is pruned; write `retention {}` for the defaults (events 30 days, attempts and finished tasks 90 days)")
	}
	dia := dialect.SQLite
	if d.db.Driver == store.Postgres {
		dia = dialect.Postgres
	}
	retention.New(retention.Options{
		Client: d.db.Client, DB: d.db.SQL(), Dialect: dia, Metrics: d.metrics, Logger: d.log,
		Policy: func() expire.Policy {
			r := d.live().Current().Retention
			return expire.Policy{Events: r.Events, Attempts: r.Attempts, FinishedTasks: r.FinishedTasks, Anomalies: r.Anomalies, Audit: r.Audit}
		},
		Interval: func() time.Duration { return d.live().Current().Retention.Interval },
	}).Run(ctx, term)
}
