package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/rpacloud/rpacloud/core/audit"
	"github.com/rpacloud/rpacloud/core/auth"
	"github.com/rpacloud/rpacloud/core/store/storetest"
	"github.com/rpacloud/rpacloud/ent/privacy"
	"github.com/rpacloud/rpacloud/ent/schema/viewer"
	"github.com/rpacloud/rpacloud/graph"
)

// TestAuditCommands: export pages through more entries than one page
// holds, newest first, as CSV that parses back to what was recorded
// (commas, quotes, new lines and a formula-looking actor included); list
// filters by actor, outcome and customer, and a department's token lists
// only its own.
func TestAuditCommands(t *testing.T) {
	ctx := context.Background()
	db := storetest.SQLite(t)
	sys := privacy.DecisionContext(ctx, privacy.Allow)
	acme := db.Customer.Create().SetName("acme").SaveX(sys)
	db.Customer.Create().SetName("globex").SaveX(sys)
	srv := httptest.NewServer(auth.Middleware(db.Client, graph.NewHandler(&graph.Resolver{Client: db.Client}, graph.HandlerOptions{})))
	defer srv.Close()
	admin, err := auth.Issue(ctx, db.Client, auth.IssueRequest{Name: "root", Role: viewer.Admin})
	if err != nil {
		t.Fatal(err)
	}
	acmeOp, err := auth.Issue(ctx, db.Client, auth.IssueRequest{Name: "acme-op", Role: viewer.Operator, CustomerID: &acme.ID})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Second)
	// An old entry, outside --since 1h.
	if err := audit.Record(ctx, db.Client, audit.Entry{At: now.Add(-3 * time.Hour), Actor: "old", Action: "createToken", Outcome: audit.OK}); err != nil {
		t.Fatal(err)
	}
	const n = 620 // over one page of 500
	for i := range n {
		e := audit.Entry{At: now.Add(-time.Duration(n-i) * time.Second), Actor: "root", ActorRole: "admin", Action: "submitBatch",
			Target: fmt.Sprintf("batch %d", i), Arguments: `{"input":{"label":"a, \"b\"\nc"}}`, Outcome: audit.OK, RemoteAddr: "127.0.0.1:5"}
		if i%2 == 0 {
			e.ScopeCustomer = &acme.ID
		}
		if i == n-1 {
			e.Actor, e.Outcome, e.Code = "=cmd|calc", audit.Refused, "FORBIDDEN"
		}
		if err := audit.Record(ctx, db.Client, e); err != nil {
			t.Fatal(err)
		}
	}
	run := func(tok string, args ...string) (int, string, string) {
		var out, errb strings.Builder
		code := execute(ctx, append(args, "--server", srv.URL, "--token", tok), strings.NewReader(""), &out, &errb)
		return code, out.String(), errb.String()
	}

	code, out, errs := run(admin, "audit", "export", "--since", "1h")
	if code != 0 {
		t.Fatalf("export: %d %s", code, errs)
	}
	recs, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil {
		t.Fatalf("the export is not CSV: %v", err)
	}
	if strings.Join(recs[0], ",") != strings.Join(audit.CSVHeader, ",") {
		t.Fatalf("header %v", recs[0])
	}
	rows := recs[1:]
	if len(rows) != n {
		t.Fatalf("%d rows, want %d", len(rows), n)
	}
	first := rows[0] // newest
	if first[2] != "'=cmd|calc" || first[8] != "refused" || first[9] != "FORBIDDEN" || first[7] != fmt.Sprintf("batch %d", n-1) {
		t.Errorf("newest row %q", first)
	}
	for i, r := range rows {
		at, err := time.Parse(time.RFC3339, r[1])
		if err != nil || r[12] != `{"input":{"label":"a, \"b\"\nc"}}` || r[10] != "127.0.0.1:5" {
			t.Fatalf("row %d %q: %v", i, r, err)
		}
		if want := now.Add(-time.Duration(i+1) * time.Second); !at.Equal(want) {
			t.Fatalf("row %d at %s, want %s (newest first)", i, at, want)
		}
		if (n-1-i)%2 == 0 && r[5] != fmt.Sprint(acme.ID) || (n-1-i)%2 == 1 && r[5] != "" {
			t.Fatalf("row %d scope %q", i, r[5])
		}
	}
	if code, _, errs := run(admin, "audit", "export"); code == 0 || !strings.Contains(errs, "--since is required") {
		t.Errorf("export without --since: %d %s", code, errs)
	}
	if code, _, errs := run(admin, "audit", "list", "--since", "yesterday"); code == 0 || !strings.Contains(errs, `--since "yesterday"`) {
		t.Errorf("a bad time: %d %s", code, errs)
	}

	var l struct {
		TotalCount int `json:"total_count"`
		Entries    []struct {
			Actor, Outcome string
			ScopeCustomer  *int `json:"scope_customer"`
		} `json:"entries"`
	}
	code, out, errs = run(admin, "audit", "list", "--outcome", "refused", "-o", "json")
	if code != 0 || json.Unmarshal([]byte(out), &l) != nil || l.TotalCount != 1 || l.Entries[0].Actor != "=cmd|calc" {
		t.Errorf("list refused: %d %s %s", code, out, errs)
	}
	code, out, errs = run(admin, "audit", "list", "--actor", "old", "-o", "json")
	if code != 0 || json.Unmarshal([]byte(out), &l) != nil || l.TotalCount != 1 {
		t.Errorf("list by actor: %d %s %s", code, out, errs)
	}
	code, out, errs = run(admin, "audit", "list", "--customer", "acme", "--limit", "5", "-o", "json")
	if code != 0 || json.Unmarshal([]byte(out), &l) != nil || l.TotalCount != n/2 || len(l.Entries) != 5 || *l.Entries[0].ScopeCustomer != acme.ID {
		t.Errorf("list by customer: %d %s %s", code, out, errs)
	}
	// The department's own token: its entries only, whatever it asks.
	code, out, errs = run(acmeOp, "audit", "list", "-o", "json")
	if code != 0 || json.Unmarshal([]byte(out), &l) != nil || l.TotalCount != n/2 {
		t.Errorf("acme lists %d entries (%d %s), want its %d", l.TotalCount, code, errs, n/2)
	}
	if code, _, errs := run(acmeOp, "audit", "list", "--customer", "globex"); code == 0 || !strings.Contains(errs, "no such customer") {
		t.Errorf("acme asking for globex: %d %s", code, errs)
	}
	code, out, _ = run(admin, "audit", "list", "--limit", "3")
	if code != 0 || !strings.Contains(out, "AT") || !strings.Contains(out, "3 of 621 entries") {
		t.Errorf("table: %s", out)
	}
}
