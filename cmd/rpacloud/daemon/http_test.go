package daemon

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/rpacloud/rpacloud/core/auth"
	"github.com/rpacloud/rpacloud/core/config"
	"github.com/rpacloud/rpacloud/core/events"
	"github.com/rpacloud/rpacloud/core/scale"
	"github.com/rpacloud/rpacloud/core/store/storetest"
	"github.com/rpacloud/rpacloud/ent/privacy"
	"github.com/rpacloud/rpacloud/ent/schema/viewer"
	"github.com/rpacloud/rpacloud/plugins/sdk/sdktest"
)

// Every route is behind the body limit of the server block: a 100 MB
// body, declared or streamed, gets 413 and is not read past the limit.
func TestRoutesLimitBodies(t *testing.T) {
	cfg := &config.Config{Server: config.Server{Limits: config.Limits{RequestBodyBytes: 1 << 20}}}
	db := storetest.SQLite(t)
	d := &Daemon{opts: Options{Config: cfg}, log: slog.New(slog.DiscardHandler), db: db, started: time.Now(),
		providers: &scale.Providers{}, mon: &monitoring{}, tokens: auth.NewCache(db.Client, auth.Options{})}
	h := d.routes()
	secret, err := auth.Issue(context.Background(), db.Client, auth.IssueRequest{Name: "admin", Role: viewer.Admin})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		method, path string
		declared     bool
	}{
		{"POST", "/graphql", false},
		{"POST", "/graphql", true},
		{"GET", "/healthz", true},
		{"GET", "/metrics", true},
		{"GET", "/", true},
	} {
		body := sdktest.NewZeros(100 << 20)
		req := httptest.NewRequest(c.method, c.path, body)
		req.ContentLength = -1
		if c.declared {
			req.ContentLength = 100 << 20
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+secret)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusRequestEntityTooLarge || !strings.Contains(rec.Body.String(), "limit of 1048576 bytes") {
			t.Errorf("%s %s (declared %v): %d %.200s", c.method, c.path, c.declared, rec.Code, rec.Body)
		}
		if got := body.Taken(); got > 2<<20 {
			t.Errorf("%s %s: %d bytes read", c.method, c.path, got)
		}
	}

	// A handler that reads a streamed body stops at the limit.
	body := sdktest.NewZeros(100 << 20)
	req := httptest.NewRequest("POST", "/anything", body)
	req.ContentLength = -1
	var readErr error
	limitBodies(1<<20, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, readErr = io.ReadAll(r.Body)
	})).ServeHTTP(httptest.NewRecorder(), req)
	if readErr == nil || body.Taken() > 2<<20 {
		t.Errorf("streamed body: err %v after %d bytes", readErr, body.Taken())
	}
}

// /metrics counts this daemon's database statements by kind.
func TestMetricsCountStatements(t *testing.T) {
	cfg := &config.Config{}
	db := storetest.SQLite(t)
	d := &Daemon{opts: Options{Config: cfg}, log: slog.New(slog.DiscardHandler), db: db, started: time.Now(),
		providers: &scale.Providers{}, mon: &monitoring{}, bus: events.New()}
	db.Pool.Create().SetName("p").SetProvider("local").SaveX(privacy.DecisionContext(context.Background(), privacy.Allow))
	rec := httptest.NewRecorder()
	d.routes().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	for _, kind := range []string{"read", "write", "other", "commit", "rollback"} {
		if !strings.Contains(rec.Body.String(), `rpacloud_db_statements_total{kind="`+kind+`"}`) {
			t.Errorf("no statement counter of kind %s in /metrics", kind)
		}
	}
	if strings.Contains(rec.Body.String(), `rpacloud_db_statements_total{kind="write"} 0`) {
		t.Errorf("the pool's INSERT was not counted")
	}
}
