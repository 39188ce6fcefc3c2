package graph_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/rpacloud/rpacloud/core/auth"
	"github.com/rpacloud/rpacloud/core/store"
	"github.com/rpacloud/rpacloud/core/store/storetest"
	"github.com/rpacloud/rpacloud/ent/schema/viewer"
)

// Tests of core/auth over a real database. They live here, not in
// core/auth or core/store: auth imports core/events, whose tests import
// the store, so neither auth's tests may import the store nor the store's
// auth (core/arrows forbids the cycle); the API may import all three.

func TestTokens(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		secret, err := auth.Issue(ctx, db.Client, auth.IssueRequest{Name: "ops", Role: viewer.Operator})
		if err != nil {
			t.Fatal(err)
		}
		p, err := auth.Authenticate(ctx, db.Client, secret)
		if err != nil || p.Role != viewer.Operator || p.Name != "ops" {
			t.Fatalf("authenticate: %+v %v", p, err)
		}
		// The database holds only the hash.
		tok := db.Token.Query().OnlyX(sys())
		if tok.Hash == secret || tok.Hash != auth.Hash(secret) {
			t.Fatal("the secret itself was stored")
		}
		// Re-issuing replaces the secret; the old one stops working.
		again, err := auth.Issue(ctx, db.Client, auth.IssueRequest{Name: "ops", Role: viewer.Operator})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := auth.Authenticate(ctx, db.Client, secret); err == nil {
			t.Fatal("a replaced secret still works")
		}
		if err := auth.Revoke(ctx, db.Client, "ops"); err != nil {
			t.Fatal(err)
		}
		if _, err := auth.Authenticate(ctx, db.Client, again); err == nil {
			t.Fatal("a revoked token still works")
		}
		if _, err := auth.Authenticate(ctx, db.Client, "rpc_nonsense"); err == nil {
			t.Fatal("an unknown token was accepted")
		}
	})
}

// auth.Middleware over a database that stopped answering: a token that
// cannot be checked is not a refused one (robots stop for good on a 401),
// so the middleware answers 503, and 401 only for a token that is really
// unknown, revoked or expired.
func TestMiddlewareTellsRefusalFromOutage(t *testing.T) {
	ctx := context.Background()
	db, err := store.Open(ctx, store.SQLite, filepath.Join(t.TempDir(), "a.db"))
	if err != nil {
		t.Fatal(err)
	}
	secret, err := auth.Issue(ctx, db.Client, auth.IssueRequest{Name: "op", Role: viewer.Operator})
	if err != nil {
		t.Fatal(err)
	}
	h := auth.Middleware(db.Client, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	status := func(tok string) int {
		req := httptest.NewRequest(http.MethodPost, "/graphql", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Code
	}
	if got := status(secret); got != http.StatusOK {
		t.Fatalf("valid token: %d", got)
	}
	if got := status(secret + "x"); got != http.StatusUnauthorized {
		t.Fatalf("unknown token: %d, want 401", got)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if got := status(secret); got != http.StatusServiceUnavailable {
		t.Fatalf("valid token, database gone: %d, want 503", got)
	}
}
