package graph_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/rpacloud/rpacloud/core/auth"
	"github.com/rpacloud/rpacloud/core/store"
	"github.com/rpacloud/rpacloud/core/store/storetest"
)

// benchMiddleware serves b.N requests with one valid token through mw,
// in parallel as a fleet's robots would.
func benchMiddleware(b *testing.B, db *store.DB, mw func(http.Handler) http.Handler) {
	secret := issue(b, auth.Tokens{Client: db.Client}, "bench", 0)
	h := mw(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			r := httptest.NewRequest("POST", "/graphql", nil)
			r.Header.Set("Authorization", "Bearer "+secret)
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != http.StatusOK {
				b.Fatalf("status %d", w.Code)
			}
		}
	})
}

// BenchmarkMiddlewareMiss is a check per request against the database
// (auth.Middleware, as before the cache; a cache miss costs the same).
func BenchmarkMiddlewareMiss(b *testing.B) {
	for _, d := range []struct {
		name string
		open func(testing.TB) *store.DB
	}{{"sqlite", storetest.SQLite}, {"postgres", storetest.Postgres}} {
		b.Run(d.name, func(b *testing.B) {
			db := d.open(b)
			benchMiddleware(b, db, func(next http.Handler) http.Handler { return auth.Middleware(db.Client, next) })
		})
	}
}

// BenchmarkMiddlewareHit is the cached middleware the daemon uses, every
// request but the first a hit.
func BenchmarkMiddlewareHit(b *testing.B) {
	for _, d := range []struct {
		name string
		open func(testing.TB) *store.DB
	}{{"sqlite", storetest.SQLite}, {"postgres", storetest.Postgres}} {
		b.Run(d.name, func(b *testing.B) {
			db := d.open(b)
			benchMiddleware(b, db, auth.NewCache(db.Client, auth.Options{}).Middleware)
		})
	}
}

// BenchmarkAuthenticate is the check alone, without the HTTP plumbing
// (httptest's request and recorder dominate the middleware figures).
func BenchmarkAuthenticate(b *testing.B) {
	db := storetest.SQLite(b)
	secret := issue(b, auth.Tokens{Client: db.Client}, "bench", 0)
	b.Run("db", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := auth.Authenticate(sys(), db.Client, secret); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("cached", func(b *testing.B) {
		c := auth.NewCache(db.Client, auth.Options{})
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := c.Authenticate(b.Context(), secret); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
}
