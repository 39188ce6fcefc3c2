package store_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/rpacloud/rpacloud/core/auth"
	"github.com/rpacloud/rpacloud/core/store"
	"github.com/rpacloud/rpacloud/ent/schema/viewer"
)

// auth.Middleware over a database that stopped answering: a token that
// cannot be checked is not a refused one (robots stop for good on a 401),
// so the middleware answers 503, and 401 only for a token that is really
// unknown, revoked or expired. (Here, not in core/auth: store's tests may
// import auth; auth's may not import store.)
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
