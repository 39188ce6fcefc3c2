package graph_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rpacloud/rpacloud/core/auth"
	"github.com/rpacloud/rpacloud/core/events"
	"github.com/rpacloud/rpacloud/core/store"
	"github.com/rpacloud/rpacloud/core/store/storetest"
	"github.com/rpacloud/rpacloud/ent"
	"github.com/rpacloud/rpacloud/ent/event"
	"github.com/rpacloud/rpacloud/ent/privacy"
	"github.com/rpacloud/rpacloud/ent/schema/viewer"
)

// The token cache's tests live here, not in core/auth, for the reason in
// auth_test.go: they need the store, which auth's tests may not import.

func sys() context.Context { return privacy.DecisionContext(context.Background(), privacy.Allow) }

// countTokenQueries counts the queries of the token table made through
// db's client (the cache's only statement), and can hold them at a gate.
type counter struct {
	n    atomic.Int64
	gate chan struct{} // nil: no wait
}

func countTokenQueries(db *store.DB) *counter {
	c := &counter{}
	db.Token.Intercept(ent.InterceptFunc(func(next ent.Querier) ent.Querier {
		return ent.QuerierFunc(func(ctx context.Context, q ent.Query) (ent.Value, error) {
			c.n.Add(1)
			if c.gate != nil {
				<-c.gate
			}
			return next.Query(ctx, q)
		})
	}))
	return c
}

// fakeClock is a settable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func issue(t testing.TB, ts auth.Tokens, name string, ttl time.Duration) string {
	t.Helper()
	secret, err := ts.Issue(sys(), auth.IssueRequest{Name: name, Role: viewer.Operator, TTL: ttl})
	if err != nil {
		t.Fatal(err)
	}
	return secret
}

func mustAuth(t *testing.T, c *auth.Cache, secret, what string) viewer.Principal {
	t.Helper()
	p, err := c.Authenticate(context.Background(), secret)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return p
}

func mustRefuse(t *testing.T, c *auth.Cache, secret, what string) {
	t.Helper()
	if _, err := c.Authenticate(context.Background(), secret); !errors.Is(err, auth.ErrUnauthenticated) {
		t.Fatalf("%s: got %v, want ErrUnauthenticated", what, err)
	}
}

// TestCacheHitSkipsTheDatabase: 100 requests through the cached
// middleware cost one token query; unknown secrets are never cached, so
// each costs one and a token issued after them works at once.
func TestCacheHitSkipsTheDatabase(t *testing.T) {
	db := storetest.SQLite(t)
	q := countTokenQueries(db)
	c := auth.NewCache(db.Client, auth.Options{})
	secret := issue(t, auth.Tokens{Client: db.Client}, "op", 0)
	h := c.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p, ok := viewer.FromContext(r.Context()); !ok || p.Name != "op" {
			t.Errorf("principal %+v, %v", p, ok)
		}
	}))
	q.n.Store(0)
	for i := range 100 {
		r := httptest.NewRequest("POST", "/graphql", nil)
		r.Header.Set("Authorization", "Bearer "+secret)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != 200 {
			t.Fatalf("request %d: %d %s", i, w.Code, w.Body)
		}
	}
	if n := q.n.Load(); n != 1 {
		t.Fatalf("100 requests made %d token queries, want 1", n)
	}
	t.Logf("100 requests with one token: %d token query", q.n.Load())

	q.n.Store(0)
	for range 3 {
		mustRefuse(t, c, "rpc_unknownsecret", "unknown secret")
	}
	if n := q.n.Load(); n != 3 {
		t.Fatalf("3 unknown-secret checks made %d queries, want 3 (no negative caching)", n)
	}
	if c.Len() != 1 {
		t.Fatalf("cache holds %d entries, want 1", c.Len())
	}
}

// TestConcurrentMissesShareOneQuery: 50 requests of one secret arriving
// while its query runs all wait for that one query.
func TestConcurrentMissesShareOneQuery(t *testing.T) {
	db := storetest.SQLite(t)
	secret := issue(t, auth.Tokens{Client: db.Client}, "op", 0)
	q := countTokenQueries(db)
	q.gate = make(chan struct{})
	c := auth.NewCache(db.Client, auth.Options{})
	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for range 50 {
		wg.Go(func() {
			if _, err := c.Authenticate(context.Background(), secret); err != nil {
				errs <- err
			}
		})
	}
	// Let the first query start and the others pile up behind it; those
	// scheduled after it ends hit the cache, so the count is 1 either way.
	for q.n.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond)
	close(q.gate)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if n := q.n.Load(); n != 1 {
		t.Fatalf("50 concurrent checks made %d queries, want 1", n)
	}
}

// TestRevocationEndsAccessAtOnce: every way a token ends, with the cache
// following the bus, refuses the token's very next check, though its
// entry was fresh; and each writes a token.revoked event with no customer
// and no secret or hash.
func TestRevocationEndsAccessAtOnce(t *testing.T) {
	db := storetest.SQLite(t)
	bus := events.New()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := auth.NewCache(db.Client, auth.Options{TTL: time.Hour})
	c.Follow(ctx, bus)
	ts := auth.Tokens{Client: db.Client, Bus: bus}

	t.Run("revoke", func(t *testing.T) {
		s := issue(t, ts, "a", 0)
		mustAuth(t, c, s, "before")
		if err := ts.Revoke(sys(), "a"); err != nil {
			t.Fatal(err)
		}
		mustRefuse(t, c, s, "after revoke")
	})
	t.Run("reissue", func(t *testing.T) {
		old := issue(t, ts, "b", 0)
		mustAuth(t, c, old, "before")
		fresh := issue(t, ts, "b", 0)
		mustRefuse(t, c, old, "replaced secret")
		mustAuth(t, c, fresh, "new secret")
	})
	t.Run("robot", func(t *testing.T) {
		rid := 7
		s, err := ts.Issue(sys(), auth.IssueRequest{Name: auth.RobotTokenName("r7"), Role: viewer.Robot, RobotID: &rid})
		if err != nil {
			t.Fatal(err)
		}
		mustAuth(t, c, s, "before")
		tx, err := db.Tx(sys())
		if err != nil {
			t.Fatal(err)
		}
		evs, err := auth.RevokeRobotTx(sys(), tx, rid, time.Now())
		if err != nil || len(evs) != 1 {
			t.Fatalf("RevokeRobotTx: %v, %d events", err, len(evs))
		}
		// Until the caller publishes (after its commit), the cache keeps
		// the entry: the event is how it learns.
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
		mustAuth(t, c, s, "committed, not yet published")
		bus.Publish(evs...)
		mustRefuse(t, c, s, "after robot revoke")
	})
	t.Run("unreadable event drops everything", func(t *testing.T) {
		s := issue(t, ts, "d", 0)
		mustAuth(t, c, s, "before")
		if c.Len() == 0 {
			t.Fatal("nothing cached")
		}
		bus.Publish(&ent.Event{Type: string(events.TokenRevoked), Message: "garbled"})
		if c.Len() != 0 {
			t.Fatalf("%d entries left", c.Len())
		}
	})

	evs, err := db.Event.Query().Where(event.Type(string(events.TokenRevoked))).All(sys())
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 3 {
		t.Fatalf("%d token.revoked events, want 3 (revoke, reissue, robot): %+v", len(evs), evs)
	}
	for _, e := range evs {
		if e.CustomerID != nil {
			t.Errorf("event %d filed under customer %d", e.ID, *e.CustomerID)
		}
		if _, ok := auth.RevokedTokenID(e); !ok {
			t.Errorf("event %d names no token: %q", e.ID, e.Message)
		}
	}
}

// TestCacheHonoursTTLAndExpiry: with a fake clock, an entry answers for
// TTL and then goes back to the database (which would have seen a
// revocation whose event was lost), and never past the token's expiry.
func TestCacheHonoursTTLAndExpiry(t *testing.T) {
	db := storetest.SQLite(t)
	q := countTokenQueries(db)
	clock := &fakeClock{t: time.Now()}
	c := auth.NewCache(db.Client, auth.Options{TTL: 30 * time.Second, Now: clock.Now})

	// A revocation the cache never hears of (no bus): in for TTL, out after.
	s := issue(t, auth.Tokens{Client: db.Client}, "quiet", 0)
	mustAuth(t, c, s, "first")
	if err := auth.Revoke(sys(), db.Client, "quiet"); err != nil {
		t.Fatal(err)
	}
	clock.Add(29 * time.Second)
	mustAuth(t, c, s, "within TTL, event lost")
	clock.Add(time.Second)
	mustRefuse(t, c, s, "at TTL")

	// A token expiring in 10 s (the real clock issues it; the cache's
	// clock starts from the same now) is refused from 10 s on.
	clock.t = time.Now()
	s = issue(t, auth.Tokens{Client: db.Client}, "short", 10*time.Second)
	mustAuth(t, c, s, "fresh")
	q.n.Store(0)
	clock.Add(9 * time.Second)
	mustAuth(t, c, s, "before expiry")
	if q.n.Load() != 0 {
		t.Fatalf("a hit made %d queries", q.n.Load())
	}
	clock.Add(2 * time.Second)
	mustRefuse(t, c, s, "after expiry")
}

// TestCacheIsBounded: 200 tokens through a cache of 64 leave 64 entries,
// and every token still authenticates.
func TestCacheIsBounded(t *testing.T) {
	db := storetest.SQLite(t)
	c := auth.NewCache(db.Client, auth.Options{MaxEntries: 64})
	ts := auth.Tokens{Client: db.Client}
	secrets := make([]string, 200)
	for i := range secrets {
		secrets[i] = issue(t, ts, fmt.Sprintf("t%d", i), 0)
	}
	for round := range 2 {
		for i, s := range secrets {
			p := mustAuth(t, c, s, fmt.Sprintf("round %d token %d", round, i))
			if p.Name != fmt.Sprintf("t%d", i) {
				t.Fatalf("token %d answered as %q", i, p.Name)
			}
			if c.Len() > 64 {
				t.Fatalf("cache grew to %d entries", c.Len())
			}
		}
	}
	if c.Len() != 64 {
		t.Fatalf("cache holds %d, want 64", c.Len())
	}
}

// TestNoSecretInEvents: the event of a revocation carries neither the
// secret nor its hash.
func TestNoSecretInEvents(t *testing.T) {
	db := storetest.SQLite(t)
	ts := auth.Tokens{Client: db.Client}
	s := issue(t, ts, "x", 0)
	issue(t, ts, "x", 0) // replaces s
	e, err := db.Event.Query().Where(event.Type(string(events.TokenRevoked))).Only(sys())
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{s, auth.Hash(s)} {
		if strings.Contains(e.Message, bad) {
			t.Fatalf("event message %q holds the secret or its hash", e.Message)
		}
	}
}
