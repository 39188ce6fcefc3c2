package lease_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/rpacloud/rpacloud/core/lease"
	"github.com/rpacloud/rpacloud/core/store"
	"github.com/rpacloud/rpacloud/core/store/storetest"
	"github.com/rpacloud/rpacloud/plugins/sdk/sdktest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func campaign(t *testing.T, e *lease.Elector) (int64, bool) {
	t.Helper()
	term, ok, err := e.Campaign(context.Background())
	if err != nil {
		t.Fatalf("%s: campaign: %v", e.Holder(), err)
	}
	return term, ok
}

func TestElection(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		clk := sdktest.NewClock(time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC))
		o := lease.Options{TTL: 15 * time.Second, Now: clk.Now}
		a, err := lease.New(db.Client, "sweeper", "a", o)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := lease.New(db.Client, "sweeper", "b", o)

		if term, ok := campaign(t, a); !ok || term != 1 || !a.Leading() {
			t.Fatalf("a: term %d leader %v", term, ok)
		}
		if _, ok := campaign(t, b); ok || b.Leading() {
			t.Fatal("b leads while a holds a live lease")
		}
		// a renews within the TTL and keeps its term.
		clk.Add(10 * time.Second)
		if term, ok := campaign(t, a); !ok || term != 1 {
			t.Fatalf("a renew: term %d leader %v", term, ok)
		}
		// a stops renewing (paused, partitioned): it stops trusting itself
		// before the lease expires, and b takes over only after expiry.
		clk.Add(13 * time.Second)
		if a.Leading() {
			t.Fatal("a still trusts its leadership inside the safety margin")
		}
		if _, ok := campaign(t, b); ok {
			t.Fatal("b took a lease that had not expired")
		}
		clk.Add(3 * time.Second)
		if term, ok := campaign(t, b); !ok || term != 2 {
			t.Fatalf("b take-over: term %d leader %v", term, ok)
		}
		// a comes back: its old term is fenced.
		if _, ok := campaign(t, a); ok || a.Leading() {
			t.Fatal("a renewed a lease it had lost")
		}
		// b resigns: a takes over at once, in a new term.
		if err := b.Resign(context.Background()); err != nil {
			t.Fatal(err)
		}
		if b.Leading() {
			t.Fatal("b leads after resigning")
		}
		if term, ok := campaign(t, a); !ok || term != 3 {
			t.Fatalf("a after resignation: term %d leader %v", term, ok)
		}
	})
}

// Many daemons campaigning at once: exactly one leads per round.
func TestConcurrentCampaign(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		clk := sdktest.NewClock(time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC))
		const n = 8
		es := make([]*lease.Elector, n)
		for i := range es {
			es[i], _ = lease.New(db.Client, "scaler", fmt.Sprintf("d%d", i), lease.Options{TTL: 15 * time.Second, Now: clk.Now})
		}
		for round := range 5 {
			var wg sync.WaitGroup
			leaders := make(chan string, n)
			for _, e := range es {
				wg.Go(func() {
					_, ok, err := e.Campaign(context.Background())
					if err != nil {
						t.Error(err)
					}
					if ok {
						leaders <- e.Holder()
					}
				})
			}
			wg.Wait()
			close(leaders)
			var got []string
			for h := range leaders {
				got = append(got, h)
			}
			if len(got) != 1 {
				t.Fatalf("round %d: leaders %v, want exactly one", round, got)
			}
			clk.Add(20 * time.Second) // the lease expires between rounds
		}
	})
}

func TestBadOptions(t *testing.T) {
	db := storetest.SQLite(t)
	if _, err := lease.New(db.Client, "", "a", lease.Options{}); err == nil {
		t.Error("empty name accepted")
	}
	if _, err := lease.New(db.Client, "x", "a", lease.Options{TTL: time.Second, Margin: 2 * time.Second}); err == nil {
		t.Error("margin above TTL accepted")
	}
}
