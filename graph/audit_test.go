package graph_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"

	"github.com/vektah/gqlparser/v2/ast"

	"github.com/rpacloud/rpacloud/core/audit"
	"github.com/rpacloud/rpacloud/core/auth"
	"github.com/rpacloud/rpacloud/core/dispatch"
	"github.com/rpacloud/rpacloud/core/events"
	"github.com/rpacloud/rpacloud/core/gqlclient"
	"github.com/rpacloud/rpacloud/core/store/storetest"
	"github.com/rpacloud/rpacloud/ent"
	"github.com/rpacloud/rpacloud/ent/auditentry"
	"github.com/rpacloud/rpacloud/ent/privacy"
	"github.com/rpacloud/rpacloud/ent/schema/viewer"
	"github.com/rpacloud/rpacloud/graph"
)

func gqlSchema() *ast.Schema {
	return graph.NewExecutableSchema(graph.Config{Resolvers: &graph.Resolver{}}).Schema()
}

// auditRows are the stored entries, oldest first (the daemon's view).
func auditRows(t *testing.T, c *ent.Client) []*ent.AuditEntry {
	t.Helper()
	rows, err := c.AuditEntry.Query().Order(ent.Asc(auditentry.FieldID)).All(privacy.DecisionContext(context.Background(), privacy.Allow))
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

// minimalArgs writes the required arguments of f with made-up values.
func minimalArgs(s *ast.Schema, args ast.ArgumentDefinitionList) string {
	var parts []string
	for _, a := range args {
		if !a.Type.NonNull || a.DefaultValue != nil {
			continue
		}
		parts = append(parts, a.Name+":"+minimalValue(s, a.Type, 0))
	}
	if len(parts) == 0 {
		return ""
	}
	return "(" + strings.Join(parts, ",") + ")"
}

func minimalValue(s *ast.Schema, t *ast.Type, depth int) string {
	if t.Elem != nil {
		return "[" + minimalValue(s, t.Elem, depth) + "]"
	}
	def := s.Types[t.NamedType]
	switch {
	case def.Kind == ast.Enum:
		return def.EnumValues[0].Name
	case def.Kind == ast.InputObject:
		var fs []string
		for _, f := range def.Fields {
			if f.Type.NonNull && f.DefaultValue == nil && depth < 4 {
				fs = append(fs, f.Name+":"+minimalValue(s, f.Type, depth+1))
			}
		}
		return "{" + strings.Join(fs, ",") + "}"
	}
	switch def.Name {
	case "Int", "Float", "ID":
		return "1"
	case "Boolean":
		return "false"
	case "Time":
		return `"2026-01-01T00:00:00Z"`
	case "JSON":
		return "{}"
	}
	return `"x"`
}

func selection(s *ast.Schema, t *ast.Type) string {
	def := s.Types[t.Name()]
	if def.Kind != ast.Object && def.Kind != ast.Interface {
		return ""
	}
	for _, f := range def.Fields {
		if d := s.Types[f.Type.Name()]; d.Kind == ast.Scalar || d.Kind == ast.Enum {
			if len(f.Arguments) == 0 {
				return "{" + f.Name + "}"
			}
		}
	}
	return "{__typename}"
}

// TestEveryMutationIsAuditedOnce derives the operations from the schema:
// every mutation outside the robot protocol, sent by a viewer (who may
// change nothing) writes exactly one entry naming the mutation, the
// viewer, its role, its address and a refusal or error; the robot
// protocol's mutations write none. A mutation added later is covered
// without editing the test.
func TestEveryMutationIsAuditedOnce(t *testing.T) {
	e := newEnv(t)
	s := gqlSchema()
	for name := range graph.RobotProtocol {
		if s.Mutation.Fields.ForName(name) == nil {
			t.Errorf("graph.RobotProtocol names %s, which the schema does not have", name)
		}
	}
	audited := 0
	for _, f := range s.Mutation.Fields {
		if strings.HasPrefix(f.Name, "__") {
			continue
		}
		before := len(auditRows(t, e.db.Client))
		op := fmt.Sprintf("mutation { %s%s %s }", f.Name, minimalArgs(s, f.Arguments), selection(s, f.Type))
		err := e.view.Do(context.Background(), op, nil, nil)
		rows := auditRows(t, e.db.Client)[before:]
		if graph.RobotProtocol[f.Name] {
			if len(rows) != 0 {
				t.Errorf("%s is robot protocol but wrote %d audit entries", f.Name, len(rows))
			}
			continue
		}
		audited++
		if err == nil {
			t.Errorf("%s: a viewer's call succeeded: %s", f.Name, op)
		}
		if len(rows) != 1 {
			t.Errorf("%s: %d audit entries, want 1 (op %s, answer %v)", f.Name, len(rows), op, err)
			continue
		}
		r := rows[0]
		if r.Action != f.Name || r.Actor != "wall" || r.ActorRole != "viewer" || !strings.HasPrefix(r.RemoteAddr, "127.0.0.1:") ||
			r.Outcome == auditentry.OutcomeOk || r.ErrorCode != code(err) {
			t.Errorf("%s: entry %+v for answer %v", f.Name, r, err)
		}
		if !json.Valid([]byte(r.Arguments)) {
			t.Errorf("%s: arguments %q are not JSON", f.Name, r.Arguments)
		}
	}
	if audited < 15 {
		t.Errorf("only %d audited mutations in the schema", audited)
	}
	t.Logf("%d audited mutations, %d robot protocol", audited, len(graph.RobotProtocol))
}

// TestAuditOutcomesAndScope: successes and refusals are recorded with the
// request id; an admin's action on a department's things is scoped to the
// department; each department reads only its own entries, an admin all,
// a robot none.
func TestAuditOutcomesAndScope(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	sys := privacy.DecisionContext(ctx, privacy.Allow)
	globex := e.db.Customer.Query().Where().AllX(sys)[1]
	s, err := auth.Issue(ctx, e.db.Client, auth.IssueRequest{Name: "globex-op", Role: viewer.Operator, CustomerID: &globex.ID})
	if err != nil {
		t.Fatal(err)
	}
	globexOp := gqlclient.New(e.srv.URL, s)
	// The acme operator's request carries a request id.
	acme := *e.acmeOp
	acme.HTTP = &http.Client{Transport: headerRT{"X-Request-Id", "req-42"}}
	if err := acme.Do(ctx, submit, nil, nil); err != nil {
		t.Fatal(err)
	}
	if err := e.acmeOp.Do(ctx, submit, map[string]any{"c": "globex"}, nil); code(err) != "FORBIDDEN" {
		t.Fatalf("acme submitting for globex: %v", err)
	}
	if err := e.admin.Do(ctx, submit, map[string]any{"c": "globex"}, nil); err != nil {
		t.Fatal(err)
	}
	rows := auditRows(t, e.db.Client)
	if len(rows) != 3 {
		t.Fatalf("%d entries, want 3: %+v", len(rows), rows)
	}
	ok, refused, admin := rows[0], rows[1], rows[2]
	acmeID := *ok.ActorCustomerID
	if ok.Outcome != auditentry.OutcomeOk || ok.RequestID != "req-42" || ok.ScopeCustomerID == nil || *ok.ScopeCustomerID != acmeID ||
		!strings.HasPrefix(ok.Target, "batch ") || ok.Arguments != `{"input":{"customer":null,"inputs":["[redacted]","[redacted]"],"process":"echo"}}` {
		t.Errorf("acme's submit: %+v", ok)
	}
	if refused.Outcome != auditentry.OutcomeRefused || refused.ErrorCode != "FORBIDDEN" || refused.ScopeCustomerID == nil || *refused.ScopeCustomerID != acmeID {
		t.Errorf("acme's refused submit for globex must stay scoped to acme: %+v", refused)
	}
	if admin.Actor != "admin" || admin.ActorCustomerID != nil || admin.ScopeCustomerID == nil || *admin.ScopeCustomerID != globex.ID {
		t.Errorf("admin's submit for globex must be scoped to globex: %+v", admin)
	}

	const list = `{auditEntries{totalCount edges{node{action actor outcome}}}}`
	type listed struct {
		AuditEntries struct {
			TotalCount int
			Edges      []struct {
				Node struct{ Action, Actor, Outcome string }
			}
		}
	}
	read := func(c *gqlclient.Client) (listed, error) {
		var l listed
		err := c.Do(ctx, list, nil, &l)
		return l, err
	}
	// Reads are not mutations: they add nothing.
	if l, err := read(e.admin); err != nil || l.AuditEntries.TotalCount != 3 || l.AuditEntries.Edges[0].Node.Actor != "admin" {
		t.Errorf("admin reads %+v (%v), want all 3, newest first", l, err)
	}
	if l, err := read(e.acmeOp); err != nil || l.AuditEntries.TotalCount != 2 {
		t.Errorf("acme reads %+v (%v), want its own 2", l, err)
	}
	if l, err := read(globexOp); err != nil || l.AuditEntries.TotalCount != 1 || l.AuditEntries.Edges[0].Node.Actor != "admin" {
		t.Errorf("globex reads %+v (%v), want the admin's action on its things", l, err)
	}
	if l, err := read(e.bot); err == nil && l.AuditEntries.TotalCount != 0 {
		t.Errorf("a robot reads %+v", l)
	}
	var f listed
	if err := e.admin.Do(ctx, `{auditEntries(where:{outcome:refused}){totalCount edges{node{action actor outcome}}}}`, nil, &f); err != nil ||
		f.AuditEntries.TotalCount != 1 || f.AuditEntries.Edges[0].Node.Actor != "acme-op" {
		t.Errorf("filtered by outcome: %+v (%v)", f, err)
	}
	if n := len(auditRows(t, e.db.Client)); n != 3 {
		t.Fatalf("reads wrote entries: %d", n)
	}
	// Two root fields of one operation are two entries, each with its
	// own outcome.
	if err := e.admin.Do(ctx, `mutation{a:createToken(input:{name:"t1",role:VIEWER}){name} b:revokeToken(name:"none")}`, nil, nil); err == nil {
		t.Fatal("revoking an unknown token succeeded")
	}
	rows = auditRows(t, e.db.Client)
	if len(rows) != 5 || rows[3].Action != "createToken" || rows[3].Outcome != auditentry.OutcomeOk || rows[3].Target != "token t1" ||
		rows[4].Action != "revokeToken" || rows[4].Outcome != auditentry.OutcomeError || rows[4].ErrorCode != "BAD_USER_INPUT" || rows[4].Target != "name=none" {
		t.Errorf("two fields: %v", rows[3:])
	}
	// Append-only below the API too.
	if err := e.db.AuditEntry.UpdateOneID(ok.ID).Exec(sys); err == nil {
		t.Error("an audit entry was updated")
	}
	if _, err := e.db.AuditEntry.Delete().Exec(sys); err == nil {
		t.Error("audit entries were deleted")
	}
}

type headerRT struct{ k, v string }

func (h headerRT) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set(h.k, h.v)
	return http.DefaultTransport.RoundTrip(r)
}

// TestAuditRedaction: a credential's values, a new token's secret and a
// configuration file's content reach no entry and no log line; names and
// sizes do.
func TestAuditRedaction(t *testing.T) {
	db := storetest.SQLite(t)
	ctx := context.Background()
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	bus := events.New()
	res := &graph.Resolver{Client: db.Client, Queue: dispatch.New(db.Client, dispatch.Options{Bus: bus}), Bus: bus, Config: &fakeApplier{}}
	srv := httptest.NewServer(auth.Middleware(db.Client, graph.NewHandler(res, graph.HandlerOptions{Logger: log})))
	t.Cleanup(srv.Close)
	s, err := auth.Issue(ctx, db.Client, auth.IssueRequest{Name: "root", Role: viewer.Admin})
	if err != nil {
		t.Fatal(err)
	}
	admin := gqlclient.New(srv.URL, s)
	const sentinel = "SENTINEL-7f3a9c"
	// No Vault behind this server: the credential is refused, after its
	// arguments were read — which is what the entry must not keep.
	_ = admin.Do(ctx, `mutation($in:CredentialInput!){putCredential(input:$in){name}}`, map[string]any{"in": map[string]any{
		"name": "etax/acme", "username": sentinel, "password": sentinel, "totpSeed": sentinel,
		"fields": []map[string]string{{"name": "pin", "value": sentinel}}}}, nil)
	var tok struct{ CreateToken struct{ Secret string } }
	if err := admin.Do(ctx, `mutation{createToken(input:{name:"ci",role:VIEWER}){secret}}`, nil, &tok); err != nil || tok.CreateToken.Secret == "" {
		t.Fatalf("createToken: %v", err)
	}
	file := "customer \"acme\" {}\n# " + sentinel + "\n"
	if err := admin.Do(ctx, `mutation($f:[ConfigFileInput!]!){applyConfig(files:$f){applied}}`,
		map[string]any{"f": []map[string]any{{"name": "main.hcl", "content": file}}}, nil); err != nil {
		t.Fatal(err)
	}
	rows := auditRows(t, db.Client)
	if len(rows) != 3 {
		t.Fatalf("%d entries, want 3", len(rows))
	}
	all, _ := json.Marshal(rows)
	for _, secret := range []string{sentinel, tok.CreateToken.Secret} {
		if bytes.Contains(all, []byte(secret)) {
			t.Errorf("a secret is in the audit trail: %s", all)
		}
		if strings.Contains(logs.String(), secret) {
			t.Errorf("a secret is in the log: %s", logs.String())
		}
	}
	want := map[string]string{
		"putCredential": `{"input":{"fields":[{"name":"pin","value":"[redacted]"}],"name":"etax/acme","password":"[redacted]","totpSeed":"[redacted]","username":"[redacted]"}}`,
		"createToken":   `{"input":{"name":"ci","role":"VIEWER"}}`,
		"applyConfig":   fmt.Sprintf(`{"dryRun":false,"files":[{"content":"[redacted: %d bytes]","name":"main.hcl"}]}`, len(file)),
	}
	// A reload by SIGHUP records its files by the same rule (audit.ConfigFiles).
	if got := `{"dryRun":false,` + strings.TrimPrefix(audit.ConfigFiles(map[string][]byte{"/etc/rpacloud/main.hcl": []byte(file)}), "{"); got != want["applyConfig"] {
		t.Errorf("audit.ConfigFiles\n got %s\nwant %s", got, want["applyConfig"])
	}
	if rows[2].Target != "configuration main.hcl" {
		t.Errorf("applyConfig target %q", rows[2].Target)
	}
	for _, r := range rows {
		if r.Arguments != want[r.Action] {
			t.Errorf("%s arguments\n got %s\nwant %s", r.Action, r.Arguments, want[r.Action])
		}
	}
}

// TestArgumentsClassified walks every argument and input field path of
// every audited mutation in the schema: each is kept or redacted by the
// classification (graph.ArgClass), texts are kept only when listed, no
// listed path is missing from the schema, and no path whose name looks
// secret is kept. A new argument is covered without editing the test: it
// is redacted until someone lists it.
func TestArgumentsClassified(t *testing.T) {
	s := gqlSchema()
	secretish := []string{"password", "secret", "seed", "token", "content", "value", "key"}
	seen := map[string]bool{}
	kept, hidden := 0, 0
	var walk func(f *ast.FieldDefinition, path string, t *ast.Type, depth int)
	walk = func(f *ast.FieldDefinition, path string, typ *ast.Type, depth int) {
		if typ.Elem != nil {
			walk(f, path+"[]", typ.Elem, depth)
			return
		}
		def := s.Types[typ.NamedType]
		if def.Kind == ast.InputObject && depth < 6 {
			for _, fd := range def.Fields {
				walk(f, path+"."+fd.Name, fd.Type, depth+1)
			}
			return
		}
		key := f.Name + "." + path
		seen[key] = true
		c := graph.ArgClass(s, f, path)
		switch {
		case c == audit.Hide:
			hidden++
		default:
			kept++
			if def.Name == "JSON" {
				t.Errorf("%s: a JSON value is kept", key)
			}
			last := strings.ToLower(path[strings.LastIndex(path, ".")+1:])
			for _, w := range secretish {
				if strings.Contains(last, w) && c == audit.Keep && !graph.RobotProtocol[f.Name] {
					t.Errorf("%s looks secret and is kept", key)
				}
			}
		}
	}
	for _, f := range s.Mutation.Fields {
		if graph.RobotProtocol[f.Name] || strings.HasPrefix(f.Name, "__") {
			continue
		}
		for _, a := range f.Arguments {
			walk(f, a.Name, a.Type, 0)
		}
	}
	var stale []string
	for _, k := range graph.SafeTextPaths() {
		if !seen[k] {
			stale = append(stale, k)
		}
	}
	sort.Strings(stale)
	if len(stale) > 0 {
		t.Errorf("safe text paths the schema does not have: %v", stale)
	}
	t.Logf("%d argument paths: %d recorded, %d redacted", len(seen), kept, hidden)
}

// TestRobotProtocolListIsComplete: the mutations that refuse an
// administrator for its role are exactly the robot protocol's, so a
// robot-only mutation added later (and forgotten in graph.RobotProtocol)
// fails here instead of writing an audit entry at every robot's call.
func TestRobotProtocolListIsComplete(t *testing.T) {
	e := newEnv(t)
	s := gqlSchema()
	for _, f := range s.Mutation.Fields {
		if strings.HasPrefix(f.Name, "__") {
			continue
		}
		op := fmt.Sprintf("mutation { %s%s %s }", f.Name, minimalArgs(s, f.Arguments), selection(s, f.Type))
		err := e.admin.Do(context.Background(), op, nil, nil)
		robotOnly := code(err) == graph.CodeForbidden
		switch {
		case robotOnly && !graph.RobotProtocol[f.Name]:
			t.Errorf("%s refuses administrators (%v): a robot-only mutation belongs in graph.RobotProtocol", f.Name, err)
		case !robotOnly && graph.RobotProtocol[f.Name]:
			t.Errorf("%s is in graph.RobotProtocol but an administrator may call it (%v): it would escape the audit trail", f.Name, err)
		}
	}
}

// A mutation sent over the websocket is recorded like one over POST, with
// the connection's address and the token that authenticated it.
func TestAuditWebsocketMutation(t *testing.T) {
	e := newEnv(t)
	conn := dialInit(t, e, e.acmeOp.Token)
	_ = conn.WriteJSON(map[string]any{"id": "1", "type": "subscribe", "payload": map[string]any{"query": submit}})
	for {
		var msg map[string]any
		if err := conn.ReadJSON(&msg); err != nil {
			t.Fatal(err)
		}
		if msg["type"] == "ping" {
			_ = conn.WriteJSON(map[string]string{"type": "pong"})
			continue
		}
		if msg["type"] == "complete" {
			break
		}
		if msg["type"] != "next" {
			t.Fatalf("websocket: %v", msg)
		}
	}
	rows := auditRows(t, e.db.Client)
	if len(rows) != 1 || rows[0].Action != "submitBatch" || rows[0].Actor != "acme-op" || rows[0].Outcome != auditentry.OutcomeOk ||
		!strings.HasPrefix(rows[0].RemoteAddr, "127.0.0.1:") {
		t.Fatalf("websocket mutation: %v", rows)
	}
}
