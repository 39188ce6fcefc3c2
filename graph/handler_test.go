package graph_test

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/goleak"

	"github.com/rpacloud/rpacloud/core/auth"
	"github.com/rpacloud/rpacloud/core/dispatch"
	"github.com/rpacloud/rpacloud/core/events"
	"github.com/rpacloud/rpacloud/core/gqlclient"
	"github.com/rpacloud/rpacloud/core/store"
	"github.com/rpacloud/rpacloud/core/store/storetest"
	"github.com/rpacloud/rpacloud/ent/customer"
	"github.com/rpacloud/rpacloud/ent/privacy"
	"github.com/rpacloud/rpacloud/ent/schema/viewer"
	"github.com/rpacloud/rpacloud/graph"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// Without .ci/services.sh the credential end-to-end test starts a
		// Vault dev server shared by the whole test binary; its process
		// and output readers live as long as the binary, and the Vault
		// client's keep-alive connections close lazily.
		goleak.IgnoreAnyFunction("github.com/rpacloud/rpacloud/core/credentials/devvault.(*Server).launch.func1"),
		goleak.IgnoreAnyFunction("github.com/rpacloud/rpacloud/core/credentials/devvault.(*Server).launch.func2"),
		goleak.IgnoreAnyFunction("os/exec.(*Cmd).Start.func2"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
	)
}

type env struct {
	srv                      *httptest.Server
	db                       *store.DB
	admin, acmeOp, view, bot *gqlclient.Client
}

func newEnv(t *testing.T) *env {
	t.Helper()
	return newEnvWith(t, graph.HandlerOptions{})
}

func newEnvWith(t *testing.T, o graph.HandlerOptions) *env {
	t.Helper()
	db := storetest.SQLite(t)
	ctx := privacy.DecisionContext(context.Background(), privacy.Allow)
	acme := db.Customer.Create().SetName("acme").SaveX(ctx)
	db.Customer.Create().SetName("globex").SaveX(ctx)
	pl := db.Pool.Create().SetName("p").SetProvider("local").SaveX(ctx)
	db.Process.Create().SetName("echo").SetPoolID(pl.ID).SetRunner("echo").SaveX(ctx)
	rb := db.Robot.Create().SetName("r1").SetPoolID(pl.ID).SaveX(ctx)
	bus := events.New()
	res := &graph.Resolver{Client: db.Client, Queue: dispatch.New(db.Client, dispatch.Options{Bus: bus}), Bus: bus}
	base, cancel := context.WithCancel(context.Background())
	srv := httptest.NewUnstartedServer(graph.CORS(o.CORSOrigins, auth.Middleware(db.Client, graph.NewHandler(res, o))))
	srv.Config.BaseContext = func(_ net.Listener) context.Context { return base }
	srv.Start()
	t.Cleanup(func() { cancel(); srv.Close() })
	issue := func(name string, role viewer.Role, cust, robot *int) *gqlclient.Client {
		s, err := auth.Issue(context.Background(), db.Client, auth.IssueRequest{Name: name, Role: role, CustomerID: cust, RobotID: robot})
		if err != nil {
			t.Fatal(err)
		}
		return gqlclient.New(srv.URL, s)
	}
	return &env{
		srv: srv, db: db,
		admin:  issue("admin", viewer.Admin, nil, nil),
		acmeOp: issue("acme-op", viewer.Operator, &acme.ID, nil),
		view:   issue("wall", viewer.Viewer, nil, nil),
		bot:    issue("robot/r1", viewer.Robot, nil, &rb.ID),
	}
}

func code(err error) string {
	if e, ok := err.(gqlclient.Errors); ok && len(e) > 0 {
		return e[0].Code()
	}
	return ""
}

const submit = `mutation($c:String){submitBatch(input:{process:"echo",customer:$c,inputs:[{a:1},{a:2}]}){id total}}`

func TestAuthentication(t *testing.T) {
	e := newEnv(t)
	resp, err := http.Post(e.srv.URL, "application/json", strings.NewReader(`{"query":"{me{name}}"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("no token: HTTP %d", resp.StatusCode)
	}
	bad := gqlclient.New(e.srv.URL, "rpc_forged")
	if err := bad.Do(context.Background(), `{me{name}}`, nil, nil); err == nil || !strings.Contains(err.Error(), "unauthorized") {
		t.Fatalf("forged token: %v", err)
	}
	var me struct {
		Me struct{ Name, Role string }
	}
	if err := e.acmeOp.Do(context.Background(), `{me{name role}}`, nil, &me); err != nil || me.Me.Role != "operator" {
		t.Fatalf("me: %+v %v", me, err)
	}
}

func TestRoles(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	if err := e.view.Do(ctx, submit, map[string]any{"c": "acme"}, nil); code(err) != "FORBIDDEN" {
		t.Fatalf("viewer submit: %v", err)
	}
	if err := e.acmeOp.Do(ctx, submit, map[string]any{"c": "globex"}, nil); code(err) != "FORBIDDEN" {
		t.Fatalf("operator submitting for another customer: %v", err)
	}
	if err := e.acmeOp.Do(ctx, submit, nil, nil); err != nil {
		t.Fatalf("operator submit for its own customer: %v", err)
	}
	if err := e.admin.Do(ctx, submit, map[string]any{"c": "globex"}, nil); err != nil {
		t.Fatalf("admin submit: %v", err)
	}
	var tasks struct {
		Tasks struct{ TotalCount int } `json:"tasks"`
	}
	if err := e.acmeOp.Do(ctx, `{tasks{totalCount}}`, nil, &tasks); err != nil || tasks.Tasks.TotalCount != 2 {
		t.Fatalf("operator sees %d tasks (%v), want its 2", tasks.Tasks.TotalCount, err)
	}
	if err := e.admin.Do(ctx, `{tasks{totalCount}}`, nil, &tasks); err != nil || tasks.Tasks.TotalCount != 4 {
		t.Fatalf("admin sees %d tasks (%v), want 4", tasks.Tasks.TotalCount, err)
	}
	if err := e.bot.Do(ctx, `{tasks{totalCount}}`, nil, nil); err == nil {
		t.Fatal("a robot token read customer tasks")
	}
	if err := e.acmeOp.Do(ctx, `mutation{claimTask{taskID}}`, nil, nil); code(err) != "FORBIDDEN" {
		t.Fatalf("operator using the robot protocol: %v", err)
	}
	if err := e.acmeOp.Do(ctx, `mutation{createToken(input:{name:"x",role:ADMIN}){secret}}`, nil, nil); code(err) != "FORBIDDEN" {
		t.Fatalf("operator making an admin token: %v", err)
	}
}

func TestRobotProtocol(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	if err := e.admin.Do(ctx, submit, map[string]any{"c": "acme"}, nil); err != nil {
		t.Fatal(err)
	}
	var c struct {
		ClaimTask *struct {
			TaskID  string          `json:"taskID"`
			Attempt int             `json:"attempt"`
			Input   json.RawMessage `json:"input"`
		} `json:"claimTask"`
	}
	if err := e.bot.Do(ctx, `mutation{claimTask{taskID attempt input}}`, nil, &c); err != nil || c.ClaimTask == nil {
		t.Fatalf("claim: %+v %v", c, err)
	}
	if err := e.bot.Do(ctx, `mutation($t:ID!){heartbeat(taskID:$t,attempt:1)}`, map[string]any{"t": c.ClaimTask.TaskID}, nil); err != nil {
		t.Fatalf("heartbeat: %v", err)
	}
	rep := `mutation($t:ID!,$a:Int!){reportResult(input:{taskID:$t,attempt:$a,success:true,output:{ok:1}})}`
	if err := e.bot.Do(ctx, rep, map[string]any{"t": c.ClaimTask.TaskID, "a": 2}, nil); code(err) != "STALE_ATTEMPT" {
		t.Fatalf("report for a wrong attempt: %v", err)
	}
	if err := e.bot.Do(ctx, rep, map[string]any{"t": c.ClaimTask.TaskID, "a": 1}, nil); err != nil {
		t.Fatalf("report: %v", err)
	}
	if err := e.bot.Do(ctx, rep, map[string]any{"t": c.ClaimTask.TaskID, "a": 1}, nil); code(err) != "STALE_ATTEMPT" {
		t.Fatalf("duplicate report: %v", err)
	}
	// A result the daemon cannot record (here a failure without a class)
	// is refused with RESULT_REFUSED and fails the attempt at once, so the
	// same report is stale afterwards.
	if err := e.bot.Do(ctx, `mutation{claimTask{taskID attempt input}}`, nil, &c); err != nil || c.ClaimTask == nil {
		t.Fatalf("claim the second task: %+v %v", c, err)
	}
	fail := `mutation($t:ID!,$a:Int!){reportResult(input:{taskID:$t,attempt:$a,success:false})}`
	second := map[string]any{"t": c.ClaimTask.TaskID, "a": c.ClaimTask.Attempt}
	if err := e.bot.Do(ctx, fail, second, nil); code(err) != "RESULT_REFUSED" {
		t.Fatalf("failure without a class: %v", err)
	}
	if err := e.bot.Do(ctx, fail, second, nil); code(err) != "STALE_ATTEMPT" {
		t.Fatalf("refused result sent again: %v", err)
	}
	// The refused attempt is retried: finish it.
	if err := e.bot.Do(ctx, `mutation{claimTask{taskID attempt input}}`, nil, &c); err != nil || c.ClaimTask == nil || c.ClaimTask.Attempt != 2 {
		t.Fatalf("retry of the refused attempt: %+v %v", c.ClaimTask, err)
	}
	if err := e.bot.Do(ctx, rep, map[string]any{"t": c.ClaimTask.TaskID, "a": 2}, nil); err != nil {
		t.Fatalf("report the retry: %v", err)
	}
	// A long poll on an empty queue answers null after the wait.
	start := time.Now()
	if err := e.bot.Do(ctx, `mutation{claimTask(wait:1){taskID}}`, nil, &c); err != nil || c.ClaimTask != nil {
		t.Fatalf("claim on an empty queue: %+v %v", c.ClaimTask, err)
	}
	if time.Since(start) < 900*time.Millisecond {
		t.Fatal("claimTask(wait:1) did not wait")
	}
}

func TestLimits(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	if err := e.admin.Do(ctx, `{tasks(first:100000){totalCount}}`, nil, nil); err == nil {
		t.Fatal("a page larger than the maximum was accepted")
	}
	deep := `{pools{edges{node{robots{edges{node{pool{robots{edges{node{pool{robots{edges{node{name}}}}}}}}}}}}}}}`
	if err := e.admin.Do(ctx, deep, nil, nil); err == nil || !strings.Contains(err.Error(), "nested") {
		t.Fatalf("deep query: %v", err)
	}
	if err := e.admin.Do(ctx, `{nope}`, nil, nil); err == nil || !strings.Contains(err.Error(), "nope") {
		t.Fatalf("unknown field: %v", err)
	}
}

func TestSubscription(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	url := "ws" + strings.TrimPrefix(e.srv.URL, "http")
	d := websocket.Dialer{Subprotocols: []string{"graphql-transport-ws"}}

	// Without a valid token in connection_init the socket is refused.
	conn, resp, err := d.Dial(url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	_ = conn.WriteJSON(map[string]any{"type": "connection_init", "payload": map[string]any{"Authorization": "Bearer rpc_forged"}})
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	var msg map[string]any
	err = conn.ReadJSON(&msg)
	if err == nil && msg["type"] == "connection_ack" {
		t.Fatal("forged token acknowledged")
	}
	// 4401 as graphql-transport-ws says, which clients do not retry.
	if !websocket.IsCloseError(err, graph.CloseUnauthorized) {
		t.Fatalf("forged token: %v, want close %d", err, graph.CloseUnauthorized)
	}
	conn.Close()

	conn, resp, err = d.Dial(url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	defer conn.Close()
	_ = conn.WriteJSON(map[string]any{"type": "connection_init", "payload": map[string]any{"Authorization": "Bearer " + e.acmeOp.Token}})
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if err := conn.ReadJSON(&msg); err != nil || msg["type"] != "connection_ack" {
		t.Fatalf("init: %v %v", msg, err)
	}
	_ = conn.WriteJSON(map[string]any{"id": "1", "type": "subscribe", "payload": map[string]any{"query": "subscription{taskEvents{type customerID}}"}})
	time.Sleep(100 * time.Millisecond) // let the subscription register
	// globex's batch must not reach acme's operator; acme's must.
	if err := e.admin.Do(ctx, submit, map[string]any{"c": "globex"}, nil); err != nil {
		t.Fatal(err)
	}
	if err := e.admin.Do(ctx, submit, map[string]any{"c": "acme"}, nil); err != nil {
		t.Fatal(err)
	}
	var next struct {
		Type    string `json:"type"`
		Payload struct {
			Data struct {
				TaskEvents struct {
					Type       string `json:"type"`
					CustomerID string `json:"customerID"`
				} `json:"taskEvents"`
			} `json:"data"`
		} `json:"payload"`
	}
	for {
		if err := conn.ReadJSON(&next); err != nil {
			t.Fatalf("read: %v", err)
		}
		if next.Type == "ping" {
			_ = conn.WriteJSON(map[string]string{"type": "pong"})
			continue
		}
		break
	}
	acme := e.db.Customer.Query().Where(customer.Name("acme")).OnlyIDX(privacy.DecisionContext(ctx, privacy.Allow))
	if next.Type != "next" || next.Payload.Data.TaskEvents.Type != "batch.submitted" || next.Payload.Data.TaskEvents.CustomerID != strconv.Itoa(acme) {
		t.Fatalf("first event: %+v (want acme's batch.submitted)", next)
	}
}

// submitBatch answers with its edges (customer, process, tasks) resolved
// after the commit: a client that selects them must get the batch, not
// "transaction has already been committed" and a null it would retry.
func TestSubmitAnswersWithEdges(t *testing.T) {
	e := newEnv(t)
	var out struct {
		SubmitBatch struct {
			ID       string
			Customer struct{ Name string }
			Process  struct{ Name string }
			Tasks    struct{ TotalCount int }
		}
	}
	err := e.acmeOp.Do(context.Background(), `mutation{submitBatch(input:{process:"echo",inputs:[{a:1},{a:2}]}){id customer{name} process{name} tasks{totalCount}}}`, nil, &out)
	if err != nil || out.SubmitBatch.Customer.Name != "acme" || out.SubmitBatch.Process.Name != "echo" || out.SubmitBatch.Tasks.TotalCount != 2 {
		t.Fatalf("submit with edges: %+v %v", out, err)
	}
}

// An admin token bound to a customer would be a binding the platform does
// not keep: it is refused.
func TestAdminTokenCannotBeBound(t *testing.T) {
	e := newEnv(t)
	if err := e.admin.Do(context.Background(), `mutation{createToken(input:{name:"boss",role:ADMIN,customer:"acme"}){secret}}`, nil, nil); err == nil {
		t.Fatal("an admin token bound to a customer was issued")
	}
}
