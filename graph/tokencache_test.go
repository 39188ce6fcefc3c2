package graph_test

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/rpacloud/rpacloud/core/auth"
	"github.com/rpacloud/rpacloud/core/events"
	"github.com/rpacloud/rpacloud/core/gqlclient"
	"github.com/rpacloud/rpacloud/core/store/storetest"
	"github.com/rpacloud/rpacloud/ent/schema/viewer"
	"github.com/rpacloud/rpacloud/graph"
)

// TestRevokeTokenThroughTheCache: behind the daemon's cached middleware
// (TTL one hour), revokeToken and a createToken that replaces a name end
// the old secret at its very next request.
func TestRevokeTokenThroughTheCache(t *testing.T) {
	db := storetest.SQLite(t)
	bus := events.New()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cache := auth.NewCache(db.Client, auth.Options{TTL: time.Hour})
	cache.Follow(ctx, bus)
	res := &graph.Resolver{Client: db.Client, Bus: bus}
	srv := httptest.NewServer(cache.Middleware(graph.NewHandler(res, graph.HandlerOptions{Tokens: cache})))
	defer srv.Close()
	ts := auth.Tokens{Client: db.Client, Bus: bus}
	client := func(name string, role viewer.Role) *gqlclient.Client {
		s, err := ts.Issue(ctx, auth.IssueRequest{Name: name, Role: role})
		if err != nil {
			t.Fatal(err)
		}
		return gqlclient.New(srv.URL, s)
	}
	admin := client("admin", viewer.Admin)
	me := func(c *gqlclient.Client) error { return c.Do(ctx, `{me{name}}`, nil, nil) }

	view := client("wall", viewer.Viewer)
	if err := me(view); err != nil {
		t.Fatal(err)
	}
	if err := admin.Do(ctx, `mutation{revokeToken(name:"wall")}`, nil, nil); err != nil {
		t.Fatal(err)
	}
	if err := me(view); err == nil || !strings.Contains(err.Error(), "unauthorized") {
		t.Fatalf("revoked token, next request: %v", err)
	}

	old := client("ops", viewer.Operator)
	if err := me(old); err != nil {
		t.Fatal(err)
	}
	var made struct{ CreateToken struct{ Secret string } }
	if err := admin.Do(ctx, `mutation{createToken(input:{name:"ops",role:OPERATOR}){secret}}`, nil, &made); err != nil {
		t.Fatal(err)
	}
	if err := me(old); err == nil || !strings.Contains(err.Error(), "unauthorized") {
		t.Fatalf("replaced token, next request: %v", err)
	}
	if err := me(gqlclient.New(srv.URL, made.CreateToken.Secret)); err != nil {
		t.Fatalf("new token: %v", err)
	}
}
