package graph_test

// The generated authorisation test.
//
// It builds two databases that differ only in customer B's data: in the
// "planted" world B has a process, batches, tasks, attempts, events,
// anomalies, credential bindings, bookings, lifecycle history and remote
// sessions, every text field of which carries the marker LEAKB; in the
// "absent" world the same rows were planted and deleted again, so every id
// sequence is where it is in the planted world. Then it derives operations
// from the GraphQL schema — every query field with every object field under
// it to a bounded depth, every `where` edge-predicate path to a bounded
// depth with guesses on every text field, node/nodes with B's ids, and every
// mutation with B's names and ids as arguments — and sends each one, for
// each role (admin, operator and viewer of customer A, a robot, no token),
// to both worlds. For every role but admin the two answers must be equal
// byte for byte (timestamps masked) and the planted answer must not hold
// the marker: nothing of B is returned, counted, or distinguishable, and an
// unknown name answers like a forbidden one. Admin is the control: its
// answers must differ on many paths, which shows the fixture and the
// operations reach B's rows. New fields, edges, predicates, queries and
// mutations are picked up from the schema without editing this file.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"entgo.io/ent"
	"entgo.io/ent/schema/field"
	"github.com/gorilla/websocket"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/rpacloud/rpacloud/core/auth"
	"github.com/rpacloud/rpacloud/core/config"
	"github.com/rpacloud/rpacloud/core/credentials"
	"github.com/rpacloud/rpacloud/core/delivery"
	"github.com/rpacloud/rpacloud/core/dispatch"
	"github.com/rpacloud/rpacloud/core/events"
	"github.com/rpacloud/rpacloud/core/monitor"
	"github.com/rpacloud/rpacloud/core/store"
	"github.com/rpacloud/rpacloud/core/store/storetest"
	"github.com/rpacloud/rpacloud/core/trigger"
	gent "github.com/rpacloud/rpacloud/ent"
	"github.com/rpacloud/rpacloud/ent/anomaly"
	"github.com/rpacloud/rpacloud/ent/attempt"
	"github.com/rpacloud/rpacloud/ent/auditentry"
	"github.com/rpacloud/rpacloud/ent/privacy"
	entschema "github.com/rpacloud/rpacloud/ent/schema"
	"github.com/rpacloud/rpacloud/ent/schema/viewer"
	"github.com/rpacloud/rpacloud/ent/task"
	"github.com/rpacloud/rpacloud/ent/vm"
	"github.com/rpacloud/rpacloud/graph"
)

const marker = "LEAKB"

// fixed is the time of every planted row, so the two worlds store the same.
var fixed = time.Date(2026, 11, 2, 8, 0, 0, 0, time.UTC)

const tenancyHCL = `
provider "local" { plugin = "local" }
customer "acme" {}
customer "LEAKB-co" {}
pool "shared" {
  provider = "local"
  max = 2
  remote_access = "rdp"
}
process "shared-echo" {
  pool = "shared"
  builtin = "echo"
}
process "a-flow" {
  pool = "shared"
  builtin = "echo"
  owner = "acme"
}
process "LEAKB-flow" {
  pool = "shared"
  builtin = "echo"
  owner = "LEAKB-co"
}
trigger "a-trig" {
  process = "a-flow"
  cron = "0 9 * * *"
}
trigger "LEAKB-trig" {
  process = "LEAKB-flow"
  cron = "0 3 * * *"
}
`

// schemaFields returns the ent schema's fields of type typ, mixins included.
var schemaTypes = map[string]ent.Interface{
	"Customer": entschema.Customer{}, "Process": entschema.Process{}, "Batch": entschema.Batch{},
	"Task": entschema.Task{}, "Attempt": entschema.Attempt{}, "Event": entschema.Event{},
	"Anomaly": entschema.Anomaly{}, "CredentialBinding": entschema.CredentialBinding{},
	"Booking": entschema.Booking{}, "LifecycleTransition": entschema.LifecycleTransition{},
	"AccessSession": entschema.AccessSession{},
	"AuditEntry":    entschema.AuditEntry{},
	"Trigger":       entschema.Trigger{},
}

func schemaFields(typ string) []*field.Descriptor {
	s := schemaTypes[typ]
	var out []*field.Descriptor
	for _, m := range s.Mixin() {
		for _, f := range m.Fields() {
			out = append(out, f.Descriptor())
		}
	}
	for _, f := range s.Fields() {
		out = append(out, f.Descriptor())
	}
	return out
}

// mark sets every text field of a B row that the fixture left unset to a
// marked value, and every time field to the fixed time: a field added to
// the schema later is marked too.
func mark(t testing.TB, typ string, m ent.Mutation) {
	t.Helper()
	for _, d := range schemaFields(typ) {
		if _, set := m.Field(d.Name); set {
			continue
		}
		switch d.Info.Type {
		case field.TypeString:
			if d.Sensitive || len(d.Enums) > 0 {
				continue
			}
			v := fmt.Sprintf("%s-%s-%s", marker, typ, d.Name)
			if err := m.SetField(d.Name, v); err != nil {
				t.Fatalf("mark %s.%s: %v", typ, d.Name, err)
			}
		case field.TypeTime:
			if !d.Optional {
				_ = m.SetField(d.Name, fixed)
			}
		}
	}
}

// world is one database with the fixture and a daemon's API on it.
type world struct {
	db      *store.DB
	url     string
	secrets map[string]string // role name -> bearer token
	bIDs    []int             // ids of B's rows
	bNames  []string          // names of B's things usable as arguments
	aCust   int
	bus     *events.Bus
	pool    int
	// B's rows that live events name.
	bCust, bTask, bBatch, bProc, bAnomaly, robot int
}

func newWorld(t *testing.T, db *store.DB, planted bool) *world {
	t.Helper()
	ctx := privacy.DecisionContext(context.Background(), privacy.Allow)
	w := &world{db: db, secrets: map[string]string{}}
	// Shared infrastructure and customer A, in the same order in both worlds.
	acme := db.Customer.Create().SetName("acme").SetCreatedAt(fixed).SetUpdatedAt(fixed).SaveX(ctx)
	w.aCust = acme.ID
	pl := db.Pool.Create().SetName("shared").SetProvider("local").SetMax(2).SetCreatedAt(fixed).SetUpdatedAt(fixed).SaveX(ctx)
	v1 := db.VM.Create().SetPoolID(pl.ID).SetProvider("local").SetIdempotencyKey("k1").SetState(vm.StateRunning).
		SetCreatedAt(fixed).SetUpdatedAt(fixed).SaveX(ctx)
	r1 := db.Robot.Create().SetName("r1").SetPoolID(pl.ID).SetVMID(v1.ID).SetCreatedAt(fixed).SetUpdatedAt(fixed).SaveX(ctx)
	db.RemoteEndpoint.Create().SetVMID(v1.ID).SetProtocol("rdp").SetHost("127.0.0.1").SetPort(3389).
		SetCreatedAt(fixed).SetUpdatedAt(fixed).SaveX(ctx)
	shared := db.Process.Create().SetName("shared-echo").SetPoolID(pl.ID).SetRunner("echo").SetCreatedAt(fixed).SetUpdatedAt(fixed).SaveX(ctx)
	aProc := db.Process.Create().SetName("a-flow").SetPoolID(pl.ID).SetRunner("echo").SetOwnerID(acme.ID).
		SetCreatedAt(fixed).SetUpdatedAt(fixed).SaveX(ctx)
	ab := db.Batch.Create().SetCustomerID(acme.ID).SetProcessID(aProc.ID).SetPoolID(pl.ID).SetTotal(1).SetPending(0).SetRunning(1).
		SetLabel("a-label").SetCreatedAt(fixed).SetUpdatedAt(fixed).SaveX(ctx)
	at := db.Task.Create().SetBatchID(ab.ID).SetProcessID(aProc.ID).SetPoolID(pl.ID).SetCustomerID(acme.ID).SetSeq(0).
		SetInput(`{"a":1}`).SetState(task.StateRunning).SetAttemptNo(1).SetCreatedAt(fixed).SetUpdatedAt(fixed).SaveX(ctx)
	db.Attempt.Create().SetTaskID(at.ID).SetRobotID(r1.ID).SetCustomerID(acme.ID).SetNumber(1).SetStartedAt(fixed).
		SetDeadline(fixed.Add(time.Hour)).SaveX(ctx)
	db.Event.Create().SetType("task.started").SetAt(fixed).SetCustomerID(acme.ID).SetTaskID(at.ID).SetPoolID(pl.ID).SaveX(ctx)
	db.Event.Create().SetType("robot.up").SetAt(fixed).SetPoolID(pl.ID).SetRobotID(r1.ID).SaveX(ctx)
	db.Booking.Create().SetKey("a-flow/morning").SetProcessID(aProc.ID).SetPool("shared").SetDepartment("acme").
		SetCron("0 9 * * *").SetDurationSeconds(3600).SetCreatedAt(fixed).SetUpdatedAt(fixed).SaveX(ctx)
	db.LifecycleTransition.Create().SetProcessID(aProc.ID).SetSeq(1).SetFromStage("S1").SetToStage("S2").SetAction("advance").
		SetActor("a-op").SetAt(fixed).SetNote("a note").SaveX(ctx)
	db.AuditEntry.Create().SetAt(fixed).SetActor("a-op").SetActorRole("operator").SetActorCustomerID(acme.ID).
		SetScopeCustomerID(acme.ID).SetAction("submitBatch").SetTarget("batch 1").SetOutcome(auditentry.OutcomeOk).SaveX(ctx)
	db.Trigger.Create().SetName("a-trig").SetCustomerID(acme.ID).SetProcessID(aProc.ID).SetCron("0 9 * * *").
		SetCreatedAt(fixed).SetUpdatedAt(fixed).SaveX(ctx)

	// Customer B: planted in both worlds, deleted again in the absent one
	// so that every id sequence stands at the same place.
	type row struct {
		typ string
		id  int
	}
	var rows []row
	save := func(typ string, m interface {
		ent.Mutation
	}, exec func() (int, error)) int {
		mark(t, typ, m)
		id, err := exec()
		if err != nil {
			t.Fatalf("plant %s: %v", typ, err)
		}
		rows = append(rows, row{typ, id})
		w.bIDs = append(w.bIDs, id)
		return id
	}
	cc := db.Customer.Create().SetName("LEAKB-co")
	bc := save("Customer", cc.Mutation(), func() (int, error) { c, err := cc.Save(ctx); return id(c, err) })
	pc := db.Process.Create().SetName("LEAKB-flow").SetPoolID(pl.ID).SetRunner("echo").SetOwnerID(bc)
	bp := save("Process", pc.Mutation(), func() (int, error) { c, err := pc.Save(ctx); return id(c, err) })
	bbc := db.Batch.Create().SetCustomerID(bc).SetProcessID(bp).SetPoolID(pl.ID).SetTotal(3).SetPending(1).SetRunning(1).SetFailed(1)
	bb := save("Batch", bbc.Mutation(), func() (int, error) { c, err := bbc.Save(ctx); return id(c, err) })
	// A batch of B on the shared process, so shared rows lead to B too.
	sbc := db.Batch.Create().SetCustomerID(bc).SetProcessID(shared.ID).SetPoolID(pl.ID).SetTotal(1).SetPending(1)
	sb := save("Batch", sbc.Mutation(), func() (int, error) { c, err := sbc.Save(ctx); return id(c, err) })
	var tasks []int
	for i, st := range []string{"pending", "running", "failed"} {
		tc := db.Task.Create().SetBatchID(bb).SetProcessID(bp).SetPoolID(pl.ID).SetCustomerID(bc).SetSeq(i).SetState(task.State(st)).
			SetAttemptNo(1).SetInput(`{"secret":"LEAKB-input"}`).SetOutput(`{"r":"LEAKB-output"}`)
		tasks = append(tasks, save("Task", tc.Mutation(), func() (int, error) { c, err := tc.Save(ctx); return id(c, err) }))
	}
	stc := db.Task.Create().SetBatchID(sb).SetProcessID(shared.ID).SetPoolID(pl.ID).SetCustomerID(bc).SetSeq(0).SetInput(`{"x":"LEAKB-in"}`)
	save("Task", stc.Mutation(), func() (int, error) { c, err := stc.Save(ctx); return id(c, err) })
	for i, tid := range tasks[1:] {
		ac := db.Attempt.Create().SetTaskID(tid).SetRobotID(r1.ID).SetCustomerID(bc).SetNumber(1).
			SetState(attempt.State([]string{"running", "failed"}[i])).SetDeadline(fixed.Add(time.Hour))
		save("Attempt", ac.Mutation(), func() (int, error) { c, err := ac.Save(ctx); return id(c, err) })
	}
	ec := db.Event.Create().SetType("task.failed").SetCustomerID(bc).SetTaskID(tasks[2]).SetBatchID(bb).SetPoolID(pl.ID).
		SetProcessID(bp).SetRobotID(r1.ID)
	save("Event", ec.Mutation(), func() (int, error) { c, err := ec.Save(ctx); return id(c, err) })
	anc := db.Anomaly.Create().SetRule(anomaly.RuleRunFaulted).SetSeverity(anomaly.SeverityCritical).SetCustomerID(bc).SetPoolID(pl.ID).SetProcessID(bp).
		SetRobotID(r1.ID).SetTaskID(tasks[2])
	w.bAnomaly = save("Anomaly", anc.Mutation(), func() (int, error) { c, err := anc.Save(ctx); return id(c, err) })
	cbc := db.CredentialBinding.Create().SetCustomerID(bc).SetProcessID(bp).SetName("LEAKB-cred")
	save("CredentialBinding", cbc.Mutation(), func() (int, error) { c, err := cbc.Save(ctx); return id(c, err) })
	bkc := db.Booking.Create().SetKey("LEAKB-flow/night").SetProcessID(bp).SetPool("shared").SetDepartment("LEAKB-co").
		SetCron("0 22 * * *").SetDurationSeconds(3600).SetTimezone("UTC")
	save("Booking", bkc.Mutation(), func() (int, error) { c, err := bkc.Save(ctx); return id(c, err) })
	// B booked the shared process too: its department is B's to know.
	bks := db.Booking.Create().SetKey("shared-echo/LEAKB").SetProcessID(shared.ID).SetPool("shared").SetDepartment("LEAKB-co").
		SetCron("0 23 * * *").SetDurationSeconds(600).SetTimezone("UTC")
	save("Booking", bks.Mutation(), func() (int, error) { c, err := bks.Save(ctx); return id(c, err) })
	ltc := db.LifecycleTransition.Create().SetProcessID(bp).SetSeq(1).SetFromStage("S1").SetToStage("S2").SetAction("advance").
		SetEvidence(`{"note":"LEAKB-evidence"}`)
	save("LifecycleTransition", ltc.Mutation(), func() (int, error) { c, err := ltc.Save(ctx); return id(c, err) })
	asc := db.AccessSession.Create().SetProcessID(bp).SetVMID(v1.ID).SetProtocol("rdp").SetHost("127.0.0.1").SetPort(3389).SetVM("r1")
	save("AccessSession", asc.Mutation(), func() (int, error) { c, err := asc.Save(ctx); return id(c, err) })
	// The audit trail: an administrator's action on B's things, and one of
	// B's own tokens' actions on nothing of a customer.
	aec := db.AuditEntry.Create().SetScopeCustomerID(bc).SetOutcome(auditentry.OutcomeOk)
	save("AuditEntry", aec.Mutation(), func() (int, error) { c, err := aec.Save(ctx); return id(c, err) })
	abc := db.AuditEntry.Create().SetActorCustomerID(bc).SetOutcome(auditentry.OutcomeRefused)
	save("AuditEntry", abc.Mutation(), func() (int, error) { c, err := abc.Save(ctx); return id(c, err) })
	trc := db.Trigger.Create().SetName("LEAKB-trig").SetCustomerID(bc).SetProcessID(bp).SetCron("0 3 * * *").
		SetPausedAt(fixed).SetLastScheduledFor(fixed)
	save("Trigger", trc.Mutation(), func() (int, error) { c, err := trc.Save(ctx); return id(c, err) })
	w.bNames = []string{"LEAKB-co", "LEAKB-flow", "LEAKB-cred", "LEAKB-flow/night", "shared-echo/LEAKB", "LEAKB-trig"}

	if !planted {
		for i := len(rows) - 1; i >= 0; i-- {
			deleteRow(t, ctx, db, rows[i].typ, rows[i].id)
		}
	}

	// The daemon's API over this database.
	cfg, diags, _ := config.LoadSources(map[string][]byte{"t.hcl": []byte(tenancyHCL)})
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	bus := events.New()
	w.bus, w.pool, w.robot = bus, pl.ID, r1.ID
	w.bCust, w.bProc, w.bBatch, w.bTask = bc, bp, bb, tasks[2]
	res := &graph.Resolver{
		Client: db.Client, Queue: dispatch.New(db.Client, dispatch.Options{Bus: bus, Seed: 1}), Bus: bus,
		Monitor:            monitor.New(db.Client, monitor.Options{Bus: bus, Config: cfg, Logger: slog.New(slog.DiscardHandler)}),
		CredentialBindings: credentials.NewBindings(db.Client, cfg),
	}
	res.Triggers = trigger.New(trigger.Options{Client: db.Client, Queue: res.Queue, Bus: bus, Config: cfg,
		Now: func() time.Time { return fixed }})
	mux := http.NewServeMux()
	srv := httptest.NewUnstartedServer(mux)
	base, cancel := context.WithCancel(context.Background())
	srv.Config.BaseContext = func(_ net.Listener) context.Context { return base }
	srv.Start()
	t.Cleanup(func() { cancel(); srv.Close() })
	res.Delivery = &delivery.Service{Client: db.Client, Config: cfg, PublicURL: "http://rpacloud.invalid", Now: func() time.Time { return fixed }}
	mux.Handle("/graphql", auth.Middleware(db.Client, graph.NewHandler(res, graph.HandlerOptions{Logger: slog.New(slog.DiscardHandler)})))
	w.url = srv.URL + "/graphql"
	issue := func(name string, role viewer.Role, cust, robot *int) {
		s, err := auth.Issue(context.Background(), db.Client, auth.IssueRequest{Name: name, Role: role, CustomerID: cust, RobotID: robot})
		if err != nil {
			t.Fatal(err)
		}
		w.secrets[name] = s
	}
	issue("admin", viewer.Admin, nil, nil)
	issue("operatorA", viewer.Operator, &acme.ID, nil)
	issue("viewerA", viewer.Viewer, &acme.ID, nil)
	issue("robot", viewer.Robot, nil, &r1.ID)
	return w
}

func id[T interface{ comparable }](v T, err error) (int, error) {
	if err != nil {
		return 0, err
	}
	b, _ := json.Marshal(v)
	var x struct{ ID int }
	_ = json.Unmarshal(b, &x)
	return x.ID, nil
}

func deleteRow(t *testing.T, ctx context.Context, db *store.DB, typ string, id int) {
	t.Helper()
	var err error
	switch typ {
	case "Customer":
		err = db.Customer.DeleteOneID(id).Exec(ctx)
	case "Process":
		err = db.Process.DeleteOneID(id).Exec(ctx)
	case "Batch":
		err = db.Batch.DeleteOneID(id).Exec(ctx)
	case "Task":
		err = db.Task.DeleteOneID(id).Exec(ctx)
	case "Attempt":
		err = db.Attempt.DeleteOneID(id).Exec(ctx)
	case "Event":
		err = db.Event.DeleteOneID(id).Exec(ctx)
	case "Anomaly":
		err = db.Anomaly.DeleteOneID(id).Exec(ctx)
	case "CredentialBinding":
		err = db.CredentialBinding.DeleteOneID(id).Exec(ctx)
	case "Booking":
		err = db.Booking.DeleteOneID(id).Exec(ctx)
	case "LifecycleTransition":
		err = db.LifecycleTransition.DeleteOneID(id).Exec(ctx)
	case "AccessSession":
		err = db.AccessSession.DeleteOneID(id).Exec(ctx)
	case "AuditEntry":
		// The trail refuses deletes below the API (its hook): the absent
		// world removes B's entries beside ent.
		_, err = db.SQL().ExecContext(ctx, fmt.Sprintf("DELETE FROM audit_entries WHERE id = %d", id))
	case "Trigger":
		err = db.Trigger.DeleteOneID(id).Exec(ctx)
	default:
		t.Fatalf("deleteRow: no case for %s", typ)
	}
	if err != nil {
		t.Fatalf("delete %s %d: %v", typ, id, err)
	}
}

var timestamp = regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)`)

// send posts one operation as role and returns the answer with timestamps
// masked (the worlds run the same operation moments apart).
func (w *world) send(t *testing.T, role, query string) string {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"query": query})
	req, _ := http.NewRequest(http.MethodPost, w.url, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if s := w.secrets[role]; s != "" {
		req.Header.Set("Authorization", "Bearer "+s)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s: %v", role, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return fmt.Sprintf("%d %s", resp.StatusCode, timestamp.ReplaceAll(b, []byte("<time>")))
}

// --- operations derived from the schema ---------------------------------

type opGen struct {
	s       *ast.Schema
	strings []string // candidate text arguments: B's names
	ids     []int    // candidate ID arguments: B's ids
}

const (
	selDepth   = 3 // object levels below a root field
	whereDepth = 3 // edge hops in a where predicate path
)

func named(t *ast.Type) string { return t.Name() }

// leafSel selects every scalar field of object type name that needs no
// argument, and __typename.
func (g *opGen) leafSel(name string) string {
	d := g.s.Types[name]
	var parts []string
	for _, f := range d.Fields {
		if strings.HasPrefix(f.Name, "__") || requiredArgs(f) {
			continue
		}
		if k := g.s.Types[named(f.Type)].Kind; k == ast.Scalar || k == ast.Enum {
			parts = append(parts, f.Name)
		}
	}
	return "__typename " + strings.Join(parts, " ")
}

func requiredArgs(f *ast.FieldDefinition) bool {
	for _, a := range f.Arguments {
		if a.Type.NonNull && a.DefaultValue == nil {
			return true
		}
	}
	return false
}

// selections returns selection sets for object/interface type name: one
// with its scalars, and one per object field path below it to selDepth
// levels (a Relay connection counts as one level: totalCount and nodes).
func (g *opGen) selections(name string, depth int) []string {
	d := g.s.Types[name]
	if d.Kind == ast.Interface || d.Kind == ast.Union {
		var frags []string
		for _, impl := range g.s.GetPossibleTypes(d) {
			frags = append(frags, fmt.Sprintf("... on %s { %s }", impl.Name, g.leafSel(impl.Name)))
		}
		return []string{"__typename " + strings.Join(frags, " ")}
	}
	if node, ok := g.connectionNode(name); ok {
		var out []string
		for _, sub := range g.selections(node, depth) {
			out = append(out, fmt.Sprintf("totalCount edges { node { %s } }", sub))
		}
		return out
	}
	leaf := g.leafSel(name)
	out := []string{leaf}
	if depth >= selDepth {
		return out
	}
	for _, f := range d.Fields {
		if strings.HasPrefix(f.Name, "__") {
			continue
		}
		td := g.s.Types[named(f.Type)]
		if td.Kind != ast.Object && td.Kind != ast.Interface {
			continue
		}
		args, ok := g.args(f, 0)
		if !ok {
			continue
		}
		for _, sub := range g.selections(td.Name, depth+1) {
			out = append(out, fmt.Sprintf("%s %s%s { %s }", leaf, f.Name, args, sub))
		}
	}
	return out
}

// connectionNode returns the node type of a Relay connection type.
func (g *opGen) connectionNode(name string) (string, bool) {
	d := g.s.Types[name]
	if !strings.HasSuffix(name, "Connection") || d.Fields.ForName("edges") == nil {
		return "", false
	}
	edge := g.s.Types[named(d.Fields.ForName("edges").Type)]
	if edge.Fields.ForName("node") == nil {
		return "", false
	}
	return named(edge.Fields.ForName("node").Type), true
}

// args fills the required arguments of f with the choice-th candidate;
// optional ones are left out. ok is false when there is no such choice:
// choices beyond 0 exist only for arguments that take B's names or ids.
func (g *opGen) args(f *ast.FieldDefinition, choice int) (string, bool) {
	var parts []string
	varies := false
	for _, a := range f.Arguments {
		if !a.Type.NonNull || a.DefaultValue != nil {
			continue
		}
		varies = varies || g.takesCandidates(a.Type, 0)
		v, ok := g.value(a.Type, choice, 0)
		if !ok {
			return "", false
		}
		parts = append(parts, a.Name+":"+v)
	}
	if !varies && choice > 0 {
		return "", false
	}
	if len(parts) == 0 {
		return "", true
	}
	return "(" + strings.Join(parts, ",") + ")", true
}

// takesCandidates reports whether a required part of t is text or an ID.
func (g *opGen) takesCandidates(t *ast.Type, depth int) bool {
	if t.Elem != nil {
		return g.takesCandidates(t.Elem, depth)
	}
	if t.NamedType == "ID" || t.NamedType == "String" {
		return true
	}
	d := g.s.Types[t.NamedType]
	if d == nil || d.Kind != ast.InputObject || depth > 3 {
		return false
	}
	for _, f := range d.Fields {
		if f.Type.NonNull && f.DefaultValue == nil && g.takesCandidates(f.Type, depth+1) {
			return true
		}
	}
	return false
}

// value is a literal of type t: text and IDs take the choice-th of B's
// names and ids, so required arguments name B's things.
func (g *opGen) value(t *ast.Type, choice, depth int) (string, bool) {
	if t.Elem != nil {
		v, ok := g.value(t.Elem, choice, depth)
		return "[" + v + "]", ok
	}
	d := g.s.Types[t.NamedType]
	switch {
	case t.NamedType == "ID":
		if choice >= len(g.ids) {
			return "", false
		}
		return fmt.Sprint(g.ids[choice]), true
	case t.NamedType == "String":
		if choice >= len(g.strings) {
			return "", false
		}
		return fmt.Sprintf("%q", g.strings[choice]), true
	case t.NamedType == "Int":
		return "1", true
	case t.NamedType == "Boolean":
		return "true", true
	case t.NamedType == "Time":
		return fmt.Sprintf("%q", fixed.Format(time.RFC3339)), true
	case t.NamedType == "JSON":
		// A task input: an object, so submissions reach the process check.
		return "{}", true
	case d != nil && d.Kind == ast.Enum:
		return d.EnumValues[0].Name, true
	case d != nil && d.Kind == ast.InputObject:
		if depth > 3 {
			return "", false
		}
		var parts []string
		for _, f := range d.Fields {
			if !f.Type.NonNull || f.DefaultValue != nil {
				continue
			}
			v, ok := g.value(f.Type, choice, depth+1)
			if !ok {
				return "", false
			}
			parts = append(parts, f.Name+":"+v)
		}
		return "{" + strings.Join(parts, ",") + "}", true
	}
	return `""`, true
}

// queries derives the read operations: every query field by every
// selection path, with every choice of required arguments.
func (g *opGen) queries() []string {
	var out []string
	for _, f := range g.s.Query.Fields {
		if strings.HasPrefix(f.Name, "__") {
			continue
		}
		td := g.s.Types[named(f.Type)]
		for choice := 0; ; choice++ {
			args, ok := g.args(f, choice)
			if !ok {
				break
			}
			if td.Kind == ast.Scalar || td.Kind == ast.Enum {
				out = append(out, fmt.Sprintf("{ %s%s }", f.Name, args))
				continue
			}
			for _, sel := range g.selections(td.Name, 0) {
				out = append(out, fmt.Sprintf("{ %s%s { %s } }", f.Name, args, sel))
			}
		}
	}
	// node and nodes with each of B's ids.
	for _, id := range g.ids {
		sel := g.selections("Node", 0)[0]
		out = append(out, fmt.Sprintf("{ node(id:%d) { %s } }", id, sel))
		out = append(out, fmt.Sprintf("{ nodes(ids:[%d]) { %s } }", id, sel))
	}
	return out
}

// wherePaths derives, for every query or edge field with a `where`
// argument, predicate paths through has…With edges to whereDepth hops,
// each ending in a guess: existence, an id equal to one of B's, or a text
// field containing the marker.
func (g *opGen) wherePaths() []string {
	var out []string
	for _, f := range g.s.Query.Fields {
		var where *ast.ArgumentDefinition
		for _, a := range f.Arguments {
			if a.Name == "where" {
				where = a
			}
		}
		if where == nil {
			continue
		}
		for _, pred := range g.predicates(named(where.Type), 0) {
			out = append(out, fmt.Sprintf("{ %s(where:%s) { totalCount edges { node { id } } } }", f.Name, pred))
		}
	}
	return out
}

func (g *opGen) predicates(input string, depth int) []string {
	d := g.s.Types[input]
	var out []string
	if depth > 0 {
		out = append(out, "{}")
		for _, f := range d.Fields {
			switch {
			case strings.HasSuffix(f.Name, "Contains") && !strings.HasSuffix(f.Name, "ContainsFold"):
				out = append(out, fmt.Sprintf("{%s:%q}", f.Name, marker))
			case f.Name == "customerID" || f.Name == "ownerID" || f.Name == "id":
				for _, id := range g.ids[:1] {
					out = append(out, fmt.Sprintf("{%s:%d}", f.Name, id))
				}
			}
		}
	}
	if depth >= whereDepth {
		return out
	}
	for _, f := range d.Fields {
		if strings.HasPrefix(f.Name, "has") && f.Type.Elem == nil && f.Type.NamedType == "Boolean" {
			out = append(out, fmt.Sprintf("{%s:true}", f.Name), fmt.Sprintf("{%s:false}", f.Name))
		}
		if !strings.HasPrefix(f.Name, "has") || !strings.HasSuffix(f.Name, "With") || f.Type.Elem == nil {
			continue
		}
		for _, sub := range g.predicates(f.Type.Elem.NamedType, depth+1) {
			out = append(out, fmt.Sprintf("{%s:[%s]}", f.Name, sub))
		}
	}
	return out
}

// robotProtocol are the mutations a robot uses to take and report work:
// a robot serves every customer of its pool, so B's task reaching it is
// the design, not a leak. awaitStop answers only about the robot's own
// running attempt, like heartbeat.
var robotProtocol = map[string]bool{"registerRobot": true, "claimTask": true, "heartbeat": true, "reportResult": true,
	"awaitStop": true}

// mutations derives every mutation with every choice of B's names and ids.
func (g *opGen) mutations() []string {
	var out []string
	for _, f := range g.s.Mutation.Fields {
		td := g.s.Types[named(f.Type)]
		for choice := 0; ; choice++ {
			args, ok := g.args(f, choice)
			if !ok {
				break
			}
			sel := ""
			if td.Kind == ast.Object || td.Kind == ast.Interface {
				sel = "{ " + g.leafSel(td.Name) + " }"
			}
			out = append(out, fmt.Sprintf("mutation { %s%s %s }", f.Name, args, sel))
		}
	}
	return out
}

func TestTenancyGenerated(t *testing.T) {
	for _, dialect := range []struct {
		name string
		open func(testing.TB) *store.DB
	}{{"sqlite", storetest.SQLite}, {"postgres", storetest.Postgres}} {
		t.Run(dialect.name, func(t *testing.T) { tenancyWorlds(t, dialect.open(t), dialect.open(t)) })
	}
}

func tenancyWorlds(t *testing.T, db1, db2 *store.DB) {
	{
		planted := newWorld(t, db1, true)
		absent := newWorld(t, db2, false)
		s := graph.NewExecutableSchema(graph.Config{Resolvers: &graph.Resolver{}}).Schema()
		g := &opGen{s: s, strings: planted.bNames, ids: planted.bIDs}

		ops := map[string][]string{"query": g.queries(), "where": g.wherePaths()}
		roles := []string{"admin", "operatorA", "viewerA", "robot", "anonymous"}
		tried, adminDiffers := 0, 0
		leaks := map[string]int{}
		leakFields := map[string]bool{}
		check := func(kind, role, op string) {
			a, b := planted.send(t, role, op), absent.send(t, role, op)
			tried++
			if role == "admin" {
				if a != b {
					adminDiffers++
				}
				return
			}
			// Equal answers cannot carry B's data (the absent world has
			// none); the marker may still appear, echoed from the caller's
			// own arguments.
			if a != b {
				leaks[kind]++
				key := rootField(op) + " (" + role + ")"
				if !leakFields[key] {
					t.Errorf("%s leaks B to %s:\n  op:      %s\n  planted: %.600s\n  absent:  %.600s", kind, role, op, a, b)
				}
				leakFields[key] = true
			}
		}
		for _, kind := range []string{"query", "where"} {
			for _, op := range ops[kind] {
				for _, role := range roles {
					check(kind, role, op)
				}
			}
		}
		// Subscriptions: every subscription field as every role, in both
		// worlds at once; the planted world's bus carries B's live events
		// before a control event of A and of the fleet, the absent world's
		// the control events only. What each role receives must be the same.
		subs := g.subscriptions()
		var live []liveOp
		for _, role := range roles {
			for _, op := range subs {
				live = append(live, liveOp{role, op})
			}
		}
		pl, ab := planted.liveAll(t, live, true), absent.liveAll(t, live, false)
		for i, o := range live {
			tried++
			if o.role == "admin" {
				if pl[i] != ab[i] {
					adminDiffers++
				}
				continue
			}
			if pl[i] != ab[i] {
				leaks["subscription"]++
				t.Errorf("subscription leaks B to %s:\n  op:      %s\n  planted: %.800s\n  absent:  %.800s", o.role, o.op, pl[i], ab[i])
			}
		}
		// Mutations change the worlds: each is sent to both in the same
		// order, and B's rows must stay as they were.
		before := snapshotB(t, planted)
		muts := g.mutations()
		for _, op := range muts {
			for _, role := range roles[1:] {
				if role == "robot" && robotProtocol[mutationName(op)] {
					continue
				}
				check("mutation", role, op)
			}
		}
		if after := snapshotB(t, planted); after != before {
			t.Errorf("mutations by A, a robot or nobody changed B's rows:\nbefore %s\nafter  %s", before, after)
		}
		t.Logf("authorisation: %d queries, %d where paths, %d subscriptions, %d mutations; %d operation×role pairs tried on two worlds, leaks %v; admin control differed on %d",
			len(ops["query"]), len(ops["where"]), len(subs), len(muts), tried, leaks, adminDiffers)
		if len(leakFields) > 0 {
			var fs []string
			for f := range leakFields {
				fs = append(fs, f)
			}
			sort.Strings(fs)
			t.Errorf("fields that leak: %s", strings.Join(fs, ", "))
		}
		if adminDiffers < 50 {
			t.Errorf("the admin control saw B on only %d operations: the fixture or the generator does not reach B's rows", adminDiffers)
		}
	}
}

// rootField names the root field of an operation.
func rootField(op string) string {
	s := strings.TrimPrefix(strings.TrimPrefix(op, "mutation "), "{ ")
	if i := strings.IndexAny(s, "( {"); i > 0 {
		return s[:i]
	}
	return s
}

func mutationName(op string) string {
	s := strings.TrimPrefix(op, "mutation { ")
	if i := strings.IndexAny(s, "( "); i > 0 {
		return s[:i]
	}
	return s
}

// snapshotB is B's rows as the daemon sees them (system context).
func snapshotB(t *testing.T, w *world) string {
	t.Helper()
	ctx := privacy.DecisionContext(context.Background(), privacy.Allow)
	var parts []string
	for _, id := range w.bIDs {
		n, err := w.db.Noder(ctx, id)
		if err != nil {
			parts = append(parts, fmt.Sprintf("%d:%v", id, err))
			continue
		}
		b, _ := json.Marshal(n)
		parts = append(parts, string(b))
	}
	sort.Strings(parts)
	return strings.Join(parts, "\n")
}

// subscriptions derives one operation per subscription field, selecting
// its scalars (and one level of objects), without optional arguments.
func (g *opGen) subscriptions() []string {
	var out []string
	for _, f := range g.s.Subscription.Fields {
		args, ok := g.args(f, 0)
		if !ok {
			continue
		}
		td := g.s.Types[named(f.Type)]
		sel := ""
		if td.Kind == ast.Object || td.Kind == ast.Interface {
			// The paths merge into one selection set: GraphQL merges
			// repeated fields.
			sel = "{ " + strings.Join(g.selections(td.Name, selDepth-1), " ") + " }"
		}
		out = append(out, fmt.Sprintf("subscription { %s%s %s }", f.Name, args, sel))
	}
	return out
}

const controlA, controlFleet = "CONTROL-A", "CONTROL-FLEET"

type liveOp struct{ role, op string }

// liveAll subscribes every (role, operation) at once, publishes the live
// events once (B's first, when planted), and returns per subscription the
// distinct messages received until both control events were seen, the
// stream ended, or 3 s passed (snapshot streams need not show events);
// timestamps masked, sorted.
func (w *world) liveAll(t *testing.T, ops []liveOp, planted bool) []string {
	t.Helper()
	u := "ws" + strings.TrimPrefix(w.url, "http")
	d := websocket.Dialer{Subprotocols: []string{"graphql-transport-ws"}, HandshakeTimeout: 10 * time.Second}
	out := make([]string, len(ops))
	conns := make([]*websocket.Conn, len(ops))
	for i, o := range ops {
		conn, resp, err := d.Dial(u, nil)
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		resp.Body.Close()
		defer conn.Close()
		_ = conn.SetReadDeadline(time.Now().Add(20 * time.Second))
		_ = conn.WriteJSON(map[string]any{"type": "connection_init", "payload": map[string]any{"Authorization": "Bearer " + w.secrets[o.role]}})
		var ack map[string]any
		if err := conn.ReadJSON(&ack); err != nil || ack["type"] != "connection_ack" {
			out[i] = fmt.Sprintf("init: %v %v", ack["type"], err != nil)
			continue
		}
		_ = conn.WriteJSON(map[string]any{"id": "1", "type": "subscribe", "payload": map[string]any{"query": o.op}})
		// The server answers a ping after it has read the subscribe.
		_ = conn.WriteJSON(map[string]any{"type": "ping"})
		conns[i] = conn
	}
	type result struct {
		i    int
		msgs []string
	}
	pongs := make(chan struct{}, len(ops))
	publish := make(chan struct{})
	results := make(chan result, len(ops))
	running := 0
	for i, conn := range conns {
		if conn == nil {
			continue
		}
		running++
		go func() {
			seen := map[string]bool{}
			controls, ponged := 0, false
			stop := time.AfterFunc(10*time.Second, func() { conn.Close() })
			defer stop.Stop()
			var cut *time.Timer
			defer func() {
				if cut != nil {
					cut.Stop()
				}
			}()
			for controls < 2 {
				_, b, err := conn.ReadMessage()
				if err != nil {
					break
				}
				var m struct{ Type string }
				_ = json.Unmarshal(b, &m)
				if m.Type == "pong" || m.Type == "ping" {
					if !ponged {
						ponged = true
						pongs <- struct{}{}
						<-publish
						cut = time.AfterFunc(3*time.Second, func() { conn.Close() })
					}
					continue
				}
				txt := string(timestamp.ReplaceAll(b, []byte("<time>")))
				seen[txt] = true
				controls += strings.Count(txt, controlA) + strings.Count(txt, controlFleet)
				if m.Type == "complete" || m.Type == "error" {
					break
				}
			}
			if !ponged {
				pongs <- struct{}{}
			}
			msgs := make([]string, 0, len(seen))
			for m := range seen {
				msgs = append(msgs, m)
			}
			sort.Strings(msgs)
			results <- result{i, msgs}
		}()
	}
	for range running {
		<-pongs
	}
	// Resolvers register on the bus in their own goroutines: wait until the
	// number of subscribers has stopped growing (a slow machine, -race),
	// so both worlds publish to the same set of subscriptions.
	last, still := -1, 0
	for wait := time.Now().Add(10 * time.Second); time.Now().Before(wait) && still < 3; {
		if n := w.bus.Subscribers(); n == last {
			still++
		} else {
			last, still = n, 0
		}
		time.Sleep(100 * time.Millisecond)
	}
	w.publish(planted)
	close(publish)
	for range running {
		r := <-results
		out[r.i] = strings.Join(r.msgs, "\n")
	}
	return out
}

// publish puts the live events on the world's bus: B's (planted world
// only), then A's and the fleet's controls. They are not stored: the bus
// is what subscriptions read.
func (w *world) publish(planted bool) {
	at := fixed.Add(time.Minute)
	if planted {
		w.bus.Publish(
			&gent.Event{ID: 1<<40 + 1, At: at, Type: "task.failed", CustomerID: &w.bCust, PoolID: &w.pool, ProcessID: &w.bProc,
				BatchID: &w.bBatch, TaskID: &w.bTask, RobotID: &w.robot, Message: marker + "-live"},
			&gent.Event{ID: 1<<40 + 2, At: at, Type: "anomaly.opened", CustomerID: &w.bCust, PoolID: &w.pool, AnomalyID: &w.bAnomaly,
				Message: marker + "-anomaly"},
		)
	}
	w.bus.Publish(
		&gent.Event{ID: 1<<40 + 3, At: at, Type: "task.succeeded", CustomerID: &w.aCust, PoolID: &w.pool, Message: controlA},
		&gent.Event{ID: 1<<40 + 4, At: at, Type: "robot.up", PoolID: &w.pool, RobotID: &w.robot, Message: controlFleet},
	)
}
