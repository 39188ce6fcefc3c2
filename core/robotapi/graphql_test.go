package robotapi_test

import (
	"context"
	"errors"
	"net"
	"net/http/httptest"
	"testing"

	"github.com/rpacloud/rpacloud/core/auth"
	"github.com/rpacloud/rpacloud/core/gqlclient"
	"github.com/rpacloud/rpacloud/core/robotagent"
	"github.com/rpacloud/rpacloud/ent/schema/viewer"
	"github.com/rpacloud/rpacloud/graph"
)

// The agent's spec client reads a spec through GraphQL as the daemon
// serves it: robot tokens of the process's pool only.
func TestSpecOverGraphQL(t *testing.T) {
	f := newFixture(t)
	res := &graph.Resolver{Client: f.db, Queue: f.svc.Queue, Bus: f.svc.Bus, Robots: f.svc}
	base, cancel := context.WithCancel(context.Background())
	srv := httptest.NewUnstartedServer(auth.Middleware(f.db, graph.NewHandler(res, graph.HandlerOptions{})))
	srv.Config.BaseContext = func(net.Listener) context.Context { return base }
	srv.Start()
	t.Cleanup(func() { cancel(); srv.Close() })
	token := func(name string, role viewer.Role, robot *int) *gqlclient.Client {
		s, err := auth.Issue(context.Background(), f.db, auth.IssueRequest{Name: name, Role: role, RobotID: robot})
		if err != nil {
			t.Fatal(err)
		}
		return gqlclient.New(srv.URL, s)
	}
	ctx := context.Background()
	own := &robotagent.SpecClient{Client: token("robot/r1", viewer.Robot, &f.robot)}
	spec, err := own.Spec(ctx, "crawl")
	if err != nil || spec.Name != "crawl" || spec.Kind != "crawler" || spec.Runner != "http" || spec.Flow == nil || spec.Flow.Steps[0].URL != "https://etax.example.gov/" {
		t.Fatalf("spec %+v: %v", spec, err)
	}
	var gerr gqlclient.Errors
	if _, err := (&robotagent.SpecClient{Client: token("robot/r2", viewer.Robot, &f.other)}).Spec(ctx, "crawl"); !errors.As(err, &gerr) || !gerr.HasCode("NOT_FOUND") {
		t.Errorf("robot of another pool: %v", err)
	}
	if _, err := (&robotagent.SpecClient{Client: token("admin", viewer.Admin, nil)}).Spec(ctx, "crawl"); !errors.As(err, &gerr) || !gerr.HasCode("FORBIDDEN") {
		t.Errorf("admin token: %v", err)
	}
}
