package audit_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/rpacloud/rpacloud/core/audit"
	"github.com/rpacloud/rpacloud/core/store/storetest"
	"github.com/rpacloud/rpacloud/ent/privacy"
	entschema "github.com/rpacloud/rpacloud/ent/schema"
)

func TestRedactByPath(t *testing.T) {
	args := map[string]any{
		"input": map[string]any{
			"name":   "etax/acme",
			"secret": "s3cr3t",
			"fields": []any{map[string]any{"name": "pin", "value": "1234"}},
			"data":   map[string]any{"k": "v"},
			"file":   "0123456789",
			"n":      nil,
		},
	}
	got := audit.Redact(args, func(p string) audit.Class {
		switch p {
		case "input", "input.fields[]", "input.name", "input.fields[].name":
			return audit.Keep
		case "input.file":
			return audit.Measure
		}
		return audit.Hide
	})
	want := `{"input":{"data":"[redacted]","fields":[{"name":"pin","value":"[redacted]"}],"file":"[redacted: 10 bytes]","n":null,"name":"etax/acme","secret":"[redacted]"}}`
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

// Whatever is sent, the recorded arguments are JSON within the storage
// bound: long texts are cut, long lists shortened, and when even that is
// too large only the argument names stay.
func TestRedactBounded(t *testing.T) {
	keep := func(string) audit.Class { return audit.Keep }
	long := strings.Repeat("é", 1000)
	list := make([]any, 1000)
	for i := range list {
		list[i] = long
	}
	for _, args := range []map[string]any{{"s": long}, {"l": list}, {"a": list, "b": list, "c": map[string]any{"d": list}}} {
		got := audit.Redact(args, keep)
		if len(got) > entschema.AuditArgumentsMax || !json.Valid([]byte(got)) {
			t.Errorf("%d bytes, valid %v: %.200s", len(got), json.Valid([]byte(got)), got)
		}
	}
	if got := audit.Redact(map[string]any{"l": list}, keep); !strings.Contains(got, "… 980 more") {
		t.Errorf("a long list is not shortened with its count: %.300s", got)
	}
}

func TestCSVEscapesFormulas(t *testing.T) {
	var b bytes.Buffer
	w := audit.NewCSV(&b)
	c := 7
	at := time.Date(2026, 12, 6, 8, 0, 0, 0, time.FixedZone("CST", 8*3600))
	if err := w.Write(audit.Entry{ID: 1, At: at, Actor: "@evil", ScopeCustomer: &c, Action: "submitBatch",
		Target: "a,\"b\"\nc", Outcome: audit.OK, Arguments: `{"x":-1}`}); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(&b).ReadAll()
	if err != nil || len(recs) != 2 {
		t.Fatalf("%v %v", recs, err)
	}
	r := recs[1]
	if r[1] != "2026-12-06T00:00:00Z" || r[2] != "'@evil" || r[4] != "" || r[5] != "7" || r[7] != "a,\"b\"\nc" || r[12] != `{"x":-1}` {
		t.Errorf("row %q", r)
	}
	var empty bytes.Buffer
	if err := audit.NewCSV(&empty).Flush(); err != nil || strings.TrimSpace(empty.String()) != strings.Join(audit.CSVHeader, ",") {
		t.Errorf("an empty export is its header: %q %v", empty.String(), err)
	}
}

func TestRecordAndRequest(t *testing.T) {
	db := storetest.SQLite(t)
	r := httptest.NewRequest("POST", "/graphql", nil)
	r.RemoteAddr = "192.0.2.7:4242"
	r.Header.Set("X-Request-Id", "abc-1")
	if got := audit.FromHTTP(r); got.RemoteAddr != "192.0.2.7:4242" || got.RequestID != "abc-1" {
		t.Errorf("request %+v", got)
	}
	r.Header.Set("X-Request-Id", "bad id\n")
	if got := audit.FromHTTP(r); got.RequestID != "" {
		t.Errorf("a request id with spaces and control characters was kept: %q", got.RequestID)
	}
	// Recorded even when the caller's context is gone.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := audit.Record(ctx, db.Client, audit.Entry{Action: "x", Outcome: audit.OK, Actor: strings.Repeat("a", 500)}); err != nil {
		t.Fatal(err)
	}
	if err := audit.Record(context.Background(), db.Client, audit.Entry{Action: "x", Outcome: "maybe"}); err == nil {
		t.Error("an unknown outcome was recorded")
	}
	e := db.AuditEntry.Query().OnlyX(privacy.DecisionContext(context.Background(), privacy.Allow))
	if len(e.Actor) != entschema.AuditActorMax {
		t.Errorf("actor of %d bytes", len(e.Actor))
	}
	// Scope and Target outside an audited action do nothing; inside, the
	// note carries them.
	audit.Scope(context.Background(), nil, "nothing")
	nctx, note := audit.WithNote(context.Background())
	c := 3
	audit.Scope(nctx, &c, "batch 1")
	c = 4 // Scope copied it
	var en audit.Entry
	note.Apply(&en)
	if en.ScopeCustomer == nil || *en.ScopeCustomer != 3 || en.Target != "batch 1" {
		t.Errorf("note %+v", en)
	}
}

// A department principal reads the audit trail through the privacy rule
// scope_customer_id = c OR actor_customer_id = c: both sides must be served
// by an index, or every department's audit list scans the whole,
// never-pruned table. SQLite's plan for the rule's query uses an index for
// each side of the OR (it scanned the table without the
// actor_customer_id index).
func TestDepartmentAuditFilterUsesIndexes(t *testing.T) {
	db := storetest.SQLite(t)
	rows, err := db.SQL().QueryContext(context.Background(),
		`EXPLAIN QUERY PLAN SELECT * FROM audit_entries WHERE scope_customer_id = 1 OR actor_customer_id = 1 ORDER BY at DESC LIMIT 50`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, notused int
		var detail string
		if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	all := strings.Join(plan, "\n")
	if strings.Contains(all, "SCAN audit_entries") || !strings.Contains(all, "actor_customer_id") {
		t.Fatalf("the department filter is not served by indexes:\n%s", all)
	}
}

// The daemon's own entries are built here, by the package's rules, not by
// hand in the daemon: the bootstrap token as createToken records one, a
// configuration's files by name and size (any path, base name kept).
func TestDaemonEntries(t *testing.T) {
	if e := audit.BootstrapToken("admin"); e.Arguments != `{"input":{"name":"admin","role":"ADMIN"}}` || e.Actor != audit.ActorBootstrap || e.Target != "token admin" {
		t.Errorf("bootstrap entry %+v", e)
	}
	got := audit.ConfigFiles(map[string][]byte{"/etc/rpacloud/b.hcl": []byte("pool \"p\" {}"), "a.hcl": []byte("password = \"x\"")})
	if want := `{"files":[{"content":"[redacted: 14 bytes]","name":"a.hcl"},{"content":"[redacted: 11 bytes]","name":"b.hcl"}]}`; got != want {
		t.Errorf("config files\n got %s\nwant %s", got, want)
	}
}
