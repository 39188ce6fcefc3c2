package daemon

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/rpacloud/rpacloud/core/config"
	"github.com/rpacloud/rpacloud/core/scale"
	"github.com/rpacloud/rpacloud/core/store"
	"github.com/rpacloud/rpacloud/core/store/storetest"
)

// Two daemons on one PostgreSQL: only one runs the fleet and the scaler.
// An SQLite file has one daemon, which always leads.
func TestScalerRunsOnOneLeader(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		mk := func(i int) *scaling {
			d := &Daemon{db: db, log: slog.New(slog.NewTextHandler(io.Discard, nil)),
				opts:    Options{Config: &config.Config{}, FleetInterval: time.Second},
				started: time.Unix(int64(i), 0)}
			d.fleet = &scale.Fleet{Client: db.Client}
			return d.newScaling()
		}
		a, b := mk(1), mk(2)
		ctx := context.Background()
		la, lb := a.leader(ctx), b.leader(ctx)
		if db.Driver == store.Postgres {
			if la == lb {
				t.Fatalf("leaders: a=%v b=%v, want exactly one", la, lb)
			}
			if a.term < 1 {
				t.Fatalf("leader term %d", a.term)
			}
			// The leader keeps leading; the other keeps waiting.
			if !a.leader(ctx) || b.leader(ctx) {
				t.Fatal("leadership moved while the leader renewed it")
			}
			return
		}
		if !la || !lb {
			t.Fatalf("SQLite: a=%v b=%v, want both to act", la, lb)
		}
	})
}
