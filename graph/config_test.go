package graph_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/rpacloud/rpacloud/core/auth"
	"github.com/rpacloud/rpacloud/core/config"
	"github.com/rpacloud/rpacloud/core/gqlclient"
	"github.com/rpacloud/rpacloud/core/store/storetest"
	"github.com/rpacloud/rpacloud/ent/privacy"
	"github.com/rpacloud/rpacloud/ent/schema/viewer"
	"github.com/rpacloud/rpacloud/graph"
)

// fakeApplier plans files against an empty configuration, as the daemon
// would against its running one, and records who asked.
type fakeApplier struct {
	mu    sync.Mutex
	calls []string
}

func (f *fakeApplier) ReloadPlanned(_ context.Context, by string, files map[string][]byte, dryRun bool, _ string) (*config.Outcome, error) {
	f.mu.Lock()
	f.calls = append(f.calls, by)
	f.mu.Unlock()
	cfg, diags, hf := config.LoadSources(files)
	out := &config.Outcome{Diagnostics: diags, Files: hf}
	if diags.HasErrors() {
		return out, errors.New("the configuration is invalid; nothing was applied")
	}
	out.Plan = config.Diff(&config.Config{}, cfg)
	out.Applied = !dryRun
	return out, nil
}

const applyConfigOp = `mutation($f:[ConfigFileInput!]!,$d:Boolean){applyConfig(files:$f,dryRun:$d){
  applied error summary text changes{kind name action attributes{name old new} restart note}
  diagnostics{severity summary detail location}}}`

// TestApplyConfig: only an administrator applies configuration; the
// answer carries the plan, or the refusal with located diagnostics.
func TestApplyConfig(t *testing.T) {
	db := storetest.SQLite(t)
	ctx := privacy.DecisionContext(context.Background(), privacy.Allow)
	acme := db.Customer.Create().SetName("acme").SaveX(ctx)
	fa := &fakeApplier{}
	srv := httptest.NewServer(auth.Middleware(db.Client, graph.NewHandler(&graph.Resolver{Client: db.Client, Config: fa}, graph.HandlerOptions{})))
	t.Cleanup(srv.Close)
	issue := func(name string, role viewer.Role, cust *int) *gqlclient.Client {
		s, err := auth.Issue(context.Background(), db.Client, auth.IssueRequest{Name: name, Role: role, CustomerID: cust})
		if err != nil {
			t.Fatal(err)
		}
		return gqlclient.New(srv.URL, s)
	}
	good := []map[string]any{{"name": "main.hcl", "content": "customer \"acme\" {}\n"}}
	for _, c := range []*gqlclient.Client{issue("op", viewer.Operator, nil), issue("acme-op", viewer.Operator, &acme.ID), issue("wall", viewer.Viewer, nil)} {
		err := c.Do(context.Background(), applyConfigOp, map[string]any{"f": good}, nil)
		if code(err) != graph.CodeForbidden {
			t.Errorf("non-admin: %v", err)
		}
	}
	if len(fa.calls) != 0 {
		t.Fatalf("a non-admin reached the daemon: %v", fa.calls)
	}

	admin := issue("alice", viewer.Admin, nil)
	var out struct {
		ApplyConfig struct {
			Applied bool
			Error   *string
			Text    string
			Changes []struct {
				Kind, Name, Action string
			}
			Diagnostics []struct {
				Severity, Summary, Location string
			}
		} `json:"applyConfig"`
	}
	if err := admin.Do(context.Background(), applyConfigOp, map[string]any{"f": good, "d": true}, &out); err != nil {
		t.Fatal(err)
	}
	a := out.ApplyConfig
	if a.Applied || a.Error != nil || !strings.Contains(a.Text, "+ customer \"acme\"") || len(a.Changes) == 0 {
		t.Errorf("dry run: %+v", a)
	}
	if err := admin.Do(context.Background(), applyConfigOp, map[string]any{"f": good}, &out); err != nil || !out.ApplyConfig.Applied {
		t.Errorf("apply: %+v %v", out.ApplyConfig, err)
	}
	if fa.calls[0] != "token alice" {
		t.Errorf("applied by %q", fa.calls[0])
	}

	bad := []map[string]any{{"name": "main.hcl", "content": "pool \"p\" {\n  max = \"two\"\n}\n"}}
	if err := admin.Do(context.Background(), applyConfigOp, map[string]any{"f": bad}, &out); err != nil {
		t.Fatal(err)
	}
	a = out.ApplyConfig
	if a.Applied || a.Error == nil || len(a.Diagnostics) == 0 || !strings.HasPrefix(a.Diagnostics[0].Location, "main.hcl:") || a.Text != "" {
		t.Errorf("invalid: %+v", a)
	}
	twice := append(good, good...)
	if err := admin.Do(context.Background(), applyConfigOp, map[string]any{"f": twice}, nil); code(err) != graph.CodeBadInput {
		t.Errorf("a file given twice: %v", err)
	}
}
