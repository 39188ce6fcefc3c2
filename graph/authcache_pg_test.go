package graph_test

import (
	"context"
	"testing"
	"time"

	"github.com/rpacloud/rpacloud/core/auth"
	"github.com/rpacloud/rpacloud/core/events"
	"github.com/rpacloud/rpacloud/core/store"
	"github.com/rpacloud/rpacloud/core/store/storetest"
)

// twoDaemons makes a fresh PostgreSQL database and opens it twice, as two
// daemons would, each with its bus relayed to the other and a token cache
// following its bus.
func twoDaemons(t *testing.T) (dbA, dbB *store.DB, busA *events.Bus, cacheA, cacheB *auth.Cache) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dsn, dbA, dbB := storetest.SharedPostgres(t)
	busA, busB := events.New(), events.New()
	ra, err := events.StartPGRelay(ctx, dsn, busA, dbA.Client, nil)
	if err != nil {
		t.Fatal(err)
	}
	rb, err := events.StartPGRelay(ctx, dsn, busB, dbB.Client, nil)
	if err != nil {
		t.Fatal(err)
	}
	follow, stop := context.WithCancel(context.Background())
	// A TTL far beyond the test: only the event can end an entry.
	cacheA = auth.NewCache(dbA.Client, auth.Options{TTL: time.Hour})
	cacheB = auth.NewCache(dbB.Client, auth.Options{TTL: time.Hour})
	cacheA.Follow(follow, busA)
	cacheB.Follow(follow, busB)
	t.Cleanup(func() {
		stop()
		ra.Close()
		rb.Close()
	})
	return dbA, dbB, busA, cacheA, cacheB
}

// TestRevocationReachesTheOtherDaemon: a token cached on daemon B (TTL one
// hour) is refused by B as soon as daemon A's revocation event arrives
// through LISTEN/NOTIFY, without B querying the database for it again
// before that; a re-issue on A does the same for the replaced secret.
func TestRevocationReachesTheOtherDaemon(t *testing.T) {
	dbA, dbB, busA, cacheA, cacheB := twoDaemons(t)
	tsA := auth.Tokens{Client: dbA.Client, Bus: busA}
	qB := countTokenQueries(dbB)

	for _, how := range []string{"revoke", "reissue"} {
		name := "op-" + how
		s := issue(t, tsA, name, 0)
		mustAuth(t, cacheA, s, how+": A before")
		mustAuth(t, cacheB, s, how+": B before")
		mustAuth(t, cacheB, s, how+": B before, from memory")
		before := cacheB.Len()
		start := time.Now()
		switch how {
		case "revoke":
			if err := tsA.Revoke(sys(), name); err != nil {
				t.Fatal(err)
			}
		case "reissue":
			issue(t, tsA, name, 0)
		}
		mustRefuse(t, cacheA, s, how+": A at once")
		// B refuses once the relay delivered the event; Len counts B's
		// entries so the test sees the drop without querying.
		for cacheB.Len() == before {
			if time.Since(start) > 10*time.Second {
				t.Fatalf("%s: B still caches the token after 10 s", how)
			}
			time.Sleep(time.Millisecond)
		}
		t.Logf("%s on A reached B's cache in %s", how, time.Since(start).Round(time.Millisecond))
		mustRefuse(t, cacheB, s, how+": B after the event")
	}
	// Per token: two first lookups and the two refusals after the drops.
	if n := qB.n.Load(); n != 4 {
		t.Fatalf("B made %d token queries, want 4", n)
	}
}
