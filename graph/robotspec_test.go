package graph_test

import (
	"context"
	"errors"
	"net"
	"net/http/httptest"
	"testing"

	"github.com/rpacloud/rpacloud/core/auth"
	"github.com/rpacloud/rpacloud/core/config"
	"github.com/rpacloud/rpacloud/core/dispatch"
	"github.com/rpacloud/rpacloud/core/events"
	"github.com/rpacloud/rpacloud/core/gqlclient"
	"github.com/rpacloud/rpacloud/core/robotagent"
	"github.com/rpacloud/rpacloud/core/robotapi"
	"github.com/rpacloud/rpacloud/core/store"
	"github.com/rpacloud/rpacloud/core/store/storetest"
	"github.com/rpacloud/rpacloud/ent/pool"
	"github.com/rpacloud/rpacloud/ent/privacy"
	"github.com/rpacloud/rpacloud/ent/schema/viewer"
	"github.com/rpacloud/rpacloud/graph"
)

const specHCL = `
provider "local" {
  plugin = "local"
}
pool "p" {
  provider = "local"
  max      = 2
}
pool "q" {
  provider = "local"
  max      = 2
}
process "crawl" {
  pool    = "p"
  crawler = "http"
  flow    = "f"
}
flow "f" {
  step "navigate" { url = "https://etax.example.gov/" }
}
`

// The agent's spec client reads a spec through GraphQL as the daemon
// serves it (core/robotapi behind a thin resolver): robot tokens of the
// process's pool only.
func TestProcessSpecThroughTheAPI(t *testing.T) {
	cfg, diags, _ := config.LoadSources(map[string][]byte{"a.hcl": []byte(specHCL)})
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	db := storetest.SQLite(t)
	ctx := context.Background()
	if err := store.SyncConfig(ctx, db.Client, cfg); err != nil {
		t.Fatal(err)
	}
	sys := privacy.DecisionContext(ctx, privacy.Allow)
	robotIn := func(name, poolName string) *int {
		p := db.Pool.Query().Where(pool.Name(poolName)).OnlyX(sys)
		id := db.Robot.Create().SetName(name).SetPoolID(p.ID).SaveX(sys).ID
		return &id
	}
	bus := events.New()
	svc := &robotapi.Service{Client: db.Client, Queue: dispatch.New(db.Client, dispatch.Options{Bus: bus}), Bus: bus, Config: cfg}
	res := &graph.Resolver{Client: db.Client, Queue: svc.Queue, Bus: bus, Robots: svc}
	base, cancel := context.WithCancel(context.Background())
	srv := httptest.NewUnstartedServer(auth.Middleware(db.Client, graph.NewHandler(res, graph.HandlerOptions{})))
	srv.Config.BaseContext = func(net.Listener) context.Context { return base }
	srv.Start()
	t.Cleanup(func() { cancel(); srv.Close() })
	client := func(name string, role viewer.Role, robot *int) *robotagent.SpecClient {
		s, err := auth.Issue(ctx, db.Client, auth.IssueRequest{Name: name, Role: role, RobotID: robot})
		if err != nil {
			t.Fatal(err)
		}
		return &robotagent.SpecClient{Client: gqlclient.New(srv.URL, s)}
	}

	spec, err := client("robot/r1", viewer.Robot, robotIn("r1", "p")).Spec(ctx, "crawl")
	if err != nil || spec.Name != "crawl" || spec.Kind != "crawler" || spec.Runner != "http" || spec.Flow == nil || spec.Flow.Steps[0].URL != "https://etax.example.gov/" {
		t.Fatalf("spec %+v: %v", spec, err)
	}
	var gerr gqlclient.Errors
	if _, err := client("robot/r2", viewer.Robot, robotIn("r2", "q")).Spec(ctx, "crawl"); !errors.As(err, &gerr) || !gerr.HasCode("NOT_FOUND") {
		t.Errorf("robot of another pool: %v", err)
	}
	if _, err := client("admin", viewer.Admin, nil).Spec(ctx, "crawl"); !errors.As(err, &gerr) || !gerr.HasCode("FORBIDDEN") {
		t.Errorf("admin token: %v", err)
	}
}
