package daemon

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/rpacloud/rpacloud/core/config"
	"github.com/rpacloud/rpacloud/core/store"
	"github.com/rpacloud/rpacloud/core/store/storetest"
)

// Two daemons on one PostgreSQL: only one leads, and so runs the leader
// services (the fleet and scaler among them). An SQLite file has one
// daemon, which always leads: it campaigns for nothing.
func TestScalerRunsOnOneLeader(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		mk := func(i int) *Daemon {
			return &Daemon{db: db, log: slog.New(slog.NewTextHandler(io.Discard, nil)),
				opts:    Options{Config: &config.Config{}, FleetInterval: time.Second},
				started: time.Unix(int64(i), 0)}
		}
		a, b := mk(1), mk(2)
		if _, err := a.leaderServices(); err != nil {
			t.Fatal(err)
		}
		if db.Driver != store.Postgres {
			return
		}
		ea, err := a.newElector()
		if err != nil {
			t.Fatal(err)
		}
		eb, _ := b.newElector()
		ctx := context.Background()
		ta, la, _ := ea.Campaign(ctx)
		_, lb, _ := eb.Campaign(ctx)
		if !la || lb || ta < 1 {
			t.Fatalf("leaders: a=%v (term %d) b=%v, want a alone", la, ta, lb)
		}
		// The leader keeps leading; the other keeps waiting.
		if _, la, _ = ea.Campaign(ctx); !la {
			t.Fatal("a lost the lease while renewing it")
		}
		if _, lb, _ = eb.Campaign(ctx); lb {
			t.Fatal("b took the lease while a renewed it")
		}
	})
}
