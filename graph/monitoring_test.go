package graph_test

import (
	"context"
	"log/slog"
	"net"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/rpacloud/rpacloud/core/auth"
	"github.com/rpacloud/rpacloud/core/events"
	"github.com/rpacloud/rpacloud/core/gqlclient"
	"github.com/rpacloud/rpacloud/core/monitor"
	"github.com/rpacloud/rpacloud/core/store"
	"github.com/rpacloud/rpacloud/core/store/storetest"
	"github.com/rpacloud/rpacloud/ent"
	"github.com/rpacloud/rpacloud/ent/privacy"
	"github.com/rpacloud/rpacloud/ent/schema/viewer"
	"github.com/rpacloud/rpacloud/graph"
)

type monEnv struct {
	srv                      *httptest.Server
	db                       *store.DB
	mon                      *monitor.Monitor
	admin, acmeOp, view, bot *gqlclient.Client
	acmeTok                  string
	acme, globex             *ent.Customer
	pool                     *ent.Pool
	proc                     *ent.Process
}

func newMonEnv(t *testing.T) *monEnv {
	t.Helper()
	db := storetest.SQLite(t)
	ctx := privacy.DecisionContext(context.Background(), privacy.Allow)
	e := &monEnv{db: db}
	e.acme = db.Customer.Create().SetName("acme").SaveX(ctx)
	e.globex = db.Customer.Create().SetName("globex").SaveX(ctx)
	e.pool = db.Pool.Create().SetName("p").SetProvider("local").SetMax(2).SaveX(ctx)
	e.proc = db.Process.Create().SetName("echo").SetPoolID(e.pool.ID).SetRunner("echo").SaveX(ctx)
	rb := db.Robot.Create().SetName("r1").SetPoolID(e.pool.ID).SetState("idle").SetLastSeenAt(time.Now()).SaveX(ctx)
	bus := events.New()
	e.mon = monitor.New(db.Client, monitor.Options{Bus: bus, Logger: slog.New(slog.DiscardHandler)})
	res := &graph.Resolver{Client: db.Client, Bus: bus, Monitor: e.mon}
	base, cancel := context.WithCancel(context.Background())
	e.srv = httptest.NewUnstartedServer(auth.Middleware(db.Client, graph.NewHandler(res, graph.HandlerOptions{})))
	e.srv.Config.BaseContext = func(_ net.Listener) context.Context { return base }
	e.srv.Start()
	t.Cleanup(func() { cancel(); e.srv.Close() })
	issue := func(name string, role viewer.Role, cust, robot *int) (*gqlclient.Client, string) {
		s, err := auth.Issue(context.Background(), db.Client, auth.IssueRequest{Name: name, Role: role, CustomerID: cust, RobotID: robot})
		if err != nil {
			t.Fatal(err)
		}
		return gqlclient.New(e.srv.URL, s), s
	}
	e.admin, _ = issue("admin", viewer.Admin, nil, nil)
	e.acmeOp, e.acmeTok = issue("acme-op", viewer.Operator, &e.acme.ID, nil)
	e.view, _ = issue("wall", viewer.Viewer, nil, nil)
	e.bot, _ = issue("robot/r1", viewer.Robot, nil, &rb.ID)
	return e
}

// fail records a finally failed task of customer c, as the dispatcher
// leaves one.
func (e *monEnv) fail(t *testing.T, c *ent.Customer) {
	t.Helper()
	ctx := privacy.DecisionContext(context.Background(), privacy.Allow)
	b := e.db.Batch.Create().SetCustomerID(c.ID).SetProcessID(e.proc.ID).SetPoolID(e.pool.ID).SetTotal(1).SetPending(0).SaveX(ctx)
	e.db.Task.Create().SetBatchID(b.ID).SetProcessID(e.proc.ID).SetPoolID(e.pool.ID).SetCustomerID(c.ID).SetSeq(0).
		SetState("failed").SetFailureReason("retries_exhausted").SetErrorMessage("portal down for " + c.Name).
		SetFinishedAt(time.Now().UTC()).SaveX(ctx)
	if err := e.mon.Detect(context.Background()); err != nil {
		t.Fatal(err)
	}
}

type anomalyList struct {
	Anomalies struct {
		TotalCount int
		Edges      []struct {
			Node struct {
				ID, Title, Status string
				Facts             []struct{ Name, Value string }
			}
		}
	}
}

const listAnomalies = `{anomalies(where:{status:open}){totalCount edges{node{id title status facts{name value}}}}}`

func TestMonitoringAPIScopes(t *testing.T) {
	e := newMonEnv(t)
	ctx := context.Background()
	e.fail(t, e.acme)
	e.fail(t, e.globex)

	var all, mine anomalyList
	if err := e.admin.Do(ctx, listAnomalies, nil, &all); err != nil || all.Anomalies.TotalCount != 2 {
		t.Fatalf("admin: %+v %v", all, err)
	}
	if err := e.acmeOp.Do(ctx, listAnomalies, nil, &mine); err != nil || mine.Anomalies.TotalCount != 1 {
		t.Fatalf("acme operator: %+v %v", mine, err)
	}
	node := mine.Anomalies.Edges[0].Node
	if !strings.Contains(node.Title, "echo") || len(node.Facts) == 0 {
		t.Fatalf("acme's anomaly: %+v", node)
	}
	var other string
	for _, ed := range all.Anomalies.Edges {
		if ed.Node.ID != node.ID {
			other = ed.Node.ID
		}
	}

	ack := `mutation($id:ID!){acknowledgeAnomaly(id:$id, note:"on it"){status acknowledgedBy}}`
	if err := e.acmeOp.Do(ctx, ack, map[string]any{"id": other}, nil); code(err) != graph.CodeNotFound {
		t.Fatalf("acme acknowledging globex's anomaly: %v", err)
	}
	if err := e.view.Do(ctx, ack, map[string]any{"id": node.ID}, nil); code(err) != graph.CodeForbidden {
		t.Fatalf("viewer acknowledging: %v", err)
	}
	var acked struct {
		AcknowledgeAnomaly struct{ Status, AcknowledgedBy string }
	}
	if err := e.acmeOp.Do(ctx, ack, map[string]any{"id": node.ID}, &acked); err != nil || acked.AcknowledgeAnomaly.Status != "acknowledged" || acked.AcknowledgeAnomaly.AcknowledgedBy != "acme-op" {
		t.Fatalf("acknowledge: %+v %v", acked, err)
	}
	res := `mutation($id:ID!,$r:String!){resolveAnomaly(id:$id, resolution:$r){status resolution resolvedBy}}`
	if err := e.admin.Do(ctx, res, map[string]any{"id": node.ID, "r": " "}, nil); code(err) != graph.CodeBadInput {
		t.Fatalf("empty resolution: %v", err)
	}
	var resolved struct {
		ResolveAnomaly struct{ Status, Resolution, ResolvedBy string }
	}
	if err := e.admin.Do(ctx, res, map[string]any{"id": node.ID, "r": "customer re-sent the file"}, &resolved); err != nil || resolved.ResolveAnomaly.Status != "resolved" {
		t.Fatalf("resolve: %+v %v", resolved, err)
	}

	var dash struct {
		Dashboard struct {
			OpenAnomalies        []struct{ ID string }
			RecentlyResolved     []struct{ ID string }
			Pools                []struct{ Robots int }
			RobotsByVendorStatus []struct {
				Vendor, Status string
				Count          int
			}
		}
	}
	q := `{dashboard{openAnomalies{id} recentlyResolved{id} pools{robots} robotsByVendorStatus{vendor status count}}}`
	if err := e.acmeOp.Do(ctx, q, nil, &dash); err != nil {
		t.Fatal(err)
	}
	if len(dash.Dashboard.OpenAnomalies) != 0 || len(dash.Dashboard.RecentlyResolved) != 1 || len(dash.Dashboard.Pools) != 1 ||
		len(dash.Dashboard.RobotsByVendorStatus) != 1 || dash.Dashboard.RobotsByVendorStatus[0].Vendor != "rpacloud" {
		t.Fatalf("acme's dashboard: %+v", dash)
	}
	if err := e.bot.Do(ctx, q, nil, nil); code(err) != graph.CodeForbidden {
		t.Fatalf("robot reading the dashboard: %v", err)
	}

	var sat struct {
		Saturation struct {
			Robots     []struct{ Key string }
			IdleRobots []string
			Series     []struct{ Points []struct{ Value float64 } }
		}
	}
	if err := e.view.Do(ctx, `{saturation(window:HOUR, buckets:6){robots{key} idleRobots series{points{value}}}}`, nil, &sat); err != nil {
		t.Fatal(err)
	}
	if len(sat.Saturation.Robots) != 1 || len(sat.Saturation.IdleRobots) != 1 || len(sat.Saturation.Series) != 1 || len(sat.Saturation.Series[0].Points) != 6 {
		t.Fatalf("saturation: %+v", sat)
	}
	if err := e.view.Do(ctx, `{saturation(window:HOUR, buckets:9999){from}}`, nil, nil); code(err) != graph.CodeBadInput {
		t.Fatalf("too many buckets: %v", err)
	}
	if err := e.mon.Sample(ctx); err != nil {
		t.Fatal(err)
	}
	var ps struct {
		PoolSeries []struct{ Points []struct{ Robots int } }
	}
	if err := e.view.Do(ctx, `{poolSeries{points{robots}}}`, nil, &ps); err != nil || len(ps.PoolSeries) != 1 || len(ps.PoolSeries[0].Points) != 1 {
		t.Fatalf("poolSeries: %+v %v", ps, err)
	}
}

// TestAnomalySubscriptionScope: a department's operator hears its own
// anomalies only, as its queries see them.
func TestAnomalySubscriptionScope(t *testing.T) {
	e := newMonEnv(t)
	u := "ws" + strings.TrimPrefix(e.srv.URL, "http")
	c, _, err := websocket.DefaultDialer.Dial(u, map[string][]string{"Sec-WebSocket-Protocol": {"graphql-transport-ws"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	must(c.WriteJSON(map[string]any{"type": "connection_init", "payload": map[string]string{"Authorization": "Bearer " + e.acmeTok}}))
	var msg struct {
		Type    string
		Payload struct {
			Data struct {
				Anomalies struct {
					Kind    string
					Anomaly struct{ Title, Message string }
				}
			}
		}
	}
	must(c.ReadJSON(&msg))
	must(c.WriteJSON(map[string]any{"id": "1", "type": "subscribe", "payload": map[string]string{"query": "subscription{anomalies{kind anomaly{title message}}}"}}))
	time.Sleep(200 * time.Millisecond)
	e.fail(t, e.globex)
	e.fail(t, e.acme)
	must(c.SetReadDeadline(time.Now().Add(10 * time.Second)))
	for {
		must(c.ReadJSON(&msg))
		if msg.Type == "next" {
			break
		}
	}
	a := msg.Payload.Data.Anomalies
	// globex's anomaly opened first: had it been delivered, it would be
	// this first notice.
	if a.Kind != "opened" || !strings.Contains(a.Anomaly.Message, "portal down for acme") {
		t.Fatalf("first notice: %+v", a)
	}
}

// TestLiveSubscriptions: dashboard, poolSizes and robotStates answer at
// once with the present state, then again when it changes.
func TestLiveSubscriptions(t *testing.T) {
	e := newMonEnv(t)
	u := "ws" + strings.TrimPrefix(e.srv.URL, "http")
	c, _, err := websocket.DefaultDialer.Dial(u, map[string][]string{"Sec-WebSocket-Protocol": {"graphql-transport-ws"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(c.WriteJSON(map[string]any{"type": "connection_init", "payload": map[string]string{"Authorization": "Bearer " + e.acmeTok}}))
	var ack struct{ Type string }
	must(c.ReadJSON(&ack))
	for id, q := range map[string]string{
		"dash":   "subscription{dashboard{openAnomalies{title} pools{robots}}}",
		"pools":  "subscription{poolSizes{robots idle}}",
		"robots": "subscription{robotStates{name state}}",
	} {
		must(c.WriteJSON(map[string]any{"id": id, "type": "subscribe", "payload": map[string]string{"query": q}}))
	}
	type msg struct {
		ID      string
		Type    string
		Payload struct {
			Data struct {
				Dashboard struct {
					OpenAnomalies []struct{ Title string }
				}
				PoolSizes   []struct{ Robots, Idle int }
				RobotStates []struct{ Name, State string }
			}
			Errors []struct{ Message string }
		}
	}
	first := map[string]msg{}
	must(c.SetReadDeadline(time.Now().Add(15 * time.Second)))
	for len(first) < 3 {
		var m msg
		must(c.ReadJSON(&m))
		if m.Type != "next" {
			t.Fatalf("message %+v", m)
		}
		if _, ok := first[m.ID]; !ok {
			first[m.ID] = m
		}
	}
	if p := first["pools"].Payload.Data.PoolSizes; len(p) != 1 || p[0].Robots != 1 || p[0].Idle != 1 {
		t.Fatalf("poolSizes: %+v", p)
	}
	if r := first["robots"].Payload.Data.RobotStates; len(r) != 1 || r[0].State != "idle" {
		t.Fatalf("robotStates: %+v", r)
	}
	if a := first["dash"].Payload.Data.Dashboard.OpenAnomalies; len(a) != 0 {
		t.Fatalf("dashboard: %+v", a)
	}
	// An anomaly of acme's opens: the dashboard follows within a second.
	e.fail(t, e.acme)
	for {
		var m msg
		must(c.ReadJSON(&m))
		if m.ID == "dash" && len(m.Payload.Data.Dashboard.OpenAnomalies) == 1 {
			break
		}
	}
}
