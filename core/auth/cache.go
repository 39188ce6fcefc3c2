package auth

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/rpacloud/rpacloud/core/events"
	"github.com/rpacloud/rpacloud/ent"
	"github.com/rpacloud/rpacloud/ent/privacy"
	"github.com/rpacloud/rpacloud/ent/schema/viewer"
	"github.com/rpacloud/rpacloud/ent/token"
)

// Defaults of Options.
const (
	// DefaultCacheTTL bounds how long a revocation whose event never
	// arrived (a relay outage longer than its catch-up) still lets its
	// token in. It is also how often each token is read again: at 30 s a
	// fleet of 10 000 robots cost 333 token queries a second
	// (rpacloud bench fleet), at 2 min 83.
	DefaultCacheTTL = 2 * time.Minute
	// DefaultCacheEntries holds a 10 000-robot fleet and its people with
	// room to spare, in about 6 MB.
	DefaultCacheEntries = 1 << 15
)

// Options tune a Cache; zero values take the defaults.
type Options struct {
	// TTL is the longest an entry answers without the database.
	TTL time.Duration
	// MaxEntries bounds the cache; a full cache evicts a random entry.
	MaxEntries int
	// Now is the clock (tests inject one); default time.Now.
	Now func() time.Time
}

// Cache answers token checks from memory: the daemon's robots send a
// request every few seconds each, and one query per request is what
// serialises a fleet on SQLite's single connection.
//
// Only valid tokens are cached (keyed by the secret's SHA-256, never the
// secret), so a token issued a moment ago works at once and a wrong secret
// always costs a query. An entry lives at most Options.TTL and never past
// the token's expiry. A token.revoked event (Follow) drops the token at
// once, on every daemon sharing the database. Misses for the same secret
// that arrive together share one query.
//
// A full cache evicts a random entry rather than the least recently used:
// robots poll round-robin, and with a working set one larger than the
// cache LRU evicts exactly the entry needed next (every request a miss),
// while random eviction keeps most hits; it also needs no list to update
// under the lock on every hit.
type Cache struct {
	client *ent.Client
	ttl    time.Duration
	max    int
	now    func() time.Time

	mu     sync.RWMutex
	byHash map[[sha256.Size]byte]*entry
	byID   map[int][sha256.Size]byte
	// gen counts drops: a lookup that began before a drop does not store
	// what it read, which may predate the revocation.
	gen uint64

	flight singleflight.Group
}

type entry struct {
	p     viewer.Principal
	until time.Time // now+TTL or the token's expiry, whichever is first
}

// NewCache returns an empty cache over client.
func NewCache(client *ent.Client, o Options) *Cache {
	if o.TTL <= 0 {
		o.TTL = DefaultCacheTTL
	}
	if o.MaxEntries <= 0 {
		o.MaxEntries = DefaultCacheEntries
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Cache{client: client, ttl: o.TTL, max: o.MaxEntries, now: o.Now,
		byHash: make(map[[sha256.Size]byte]*entry), byID: make(map[int][sha256.Size]byte)}
}

// Follow drops each token named by a token.revoked event on bus (whose
// relay brings other daemons' events) until ctx ends. It taps the bus
// (events.Bus.Tap): the drop happens inside Publish, so on this daemon a
// revoked token's next request is refused, with no window; on the others
// as soon as the relay delivers the event. It is in place when Follow
// returns.
func (c *Cache) Follow(ctx context.Context, bus *events.Bus) {
	bus.Tap(ctx, events.Filter{Types: map[events.Type]bool{events.TokenRevoked: true}}, func(e *ent.Event) {
		if id, ok := RevokedTokenID(e); ok {
			c.Drop(id)
			return
		}
		// A token.revoked we cannot read: forgetting everything costs one
		// query per token, cheap next to letting a revoked token in.
		c.DropAll()
	})
}

// Drop forgets the token with this id.
func (c *Cache) Drop(tokenID int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	if k, ok := c.byID[tokenID]; ok {
		delete(c.byID, tokenID)
		delete(c.byHash, k)
	}
}

// DropAll forgets every token.
func (c *Cache) DropAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	clear(c.byHash)
	clear(c.byID)
}

// Len returns how many tokens are cached.
func (c *Cache) Len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.byHash)
}

// Authenticate returns the principal of a secret, from memory when a fresh
// entry has it, else from the database.
func (c *Cache) Authenticate(ctx context.Context, secret string) (viewer.Principal, error) {
	if !strings.HasPrefix(secret, secretPrefix) {
		return viewer.Principal{}, ErrUnauthenticated
	}
	key := sha256.Sum256([]byte(secret))
	now := c.now()
	c.mu.RLock()
	e, ok := c.byHash[key]
	gen := c.gen
	c.mu.RUnlock()
	if ok {
		if now.Before(e.until) {
			return e.p, nil
		}
		c.forget(key, e)
	}
	// One query for all the requests of a secret that miss together. The
	// query outlives a caller who gives up: the others still wait on it.
	// The flight is per generation of drops: a request that arrives after
	// a revocation never shares the answer of a query that started before
	// it.
	v, err, _ := c.flight.Do(fmt.Sprintf("%x/%d", key, gen), func() (any, error) {
		return c.load(context.WithoutCancel(ctx), key, gen)
	})
	if err != nil {
		return viewer.Principal{}, err
	}
	return v.(viewer.Principal), nil
}

// forget removes e if it is still the entry of key.
func (c *Cache) forget(key [sha256.Size]byte, e *entry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.byHash[key] == e {
		delete(c.byHash, key)
		delete(c.byID, e.p.TokenID)
	}
}

// load reads the token of key for requests that arrived at drop
// generation gen.
func (c *Cache) load(ctx context.Context, key [sha256.Size]byte, gen uint64) (viewer.Principal, error) {
	now := c.now()
	t, err := c.client.Token.Query().Where(token.Hash(hex.EncodeToString(key[:]))).
		Only(privacy.DecisionContext(ctx, privacy.Allow))
	if ent.IsNotFound(err) {
		return viewer.Principal{}, ErrUnauthenticated
	}
	if err != nil {
		return viewer.Principal{}, fmt.Errorf("authenticate: %w", err)
	}
	if !valid(t, now) {
		return viewer.Principal{}, ErrUnauthenticated
	}
	p := principal(t)
	until := now.Add(c.ttl)
	if t.ExpiresAt != nil && t.ExpiresAt.Before(until) {
		until = *t.ExpiresAt
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != gen {
		return p, nil // read before a drop: answer, but do not keep it
	}
	if old, ok := c.byID[p.TokenID]; ok {
		// The row now has this hash: the old one is a replaced secret.
		delete(c.byHash, old)
	} else if len(c.byHash) >= c.max {
		c.evict(now)
	}
	c.byHash[key] = &entry{p: p, until: until}
	c.byID[p.TokenID] = key
	return p, nil
}

// evict removes one entry, a stale one if the first few looked at hold
// one. Map iteration starts at a random place, which makes the choice
// random. Called with c.mu held.
func (c *Cache) evict(now time.Time) {
	var victim [sha256.Size]byte
	var e *entry
	n := 0
	for k, v := range c.byHash {
		victim, e = k, v
		if !now.Before(v.until) {
			break
		}
		if n++; n == 8 {
			break
		}
	}
	if e != nil {
		delete(c.byHash, victim)
		delete(c.byID, e.p.TokenID)
	}
}

// Middleware is auth.Middleware answering from the cache.
func (c *Cache) Middleware(next http.Handler) http.Handler {
	return middleware(c.Authenticate, next)
}
