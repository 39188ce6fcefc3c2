package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/xuri/excelize/v2"

	"github.com/rpacloud/rpacloud/core/auth"
	"github.com/rpacloud/rpacloud/core/config"
	"github.com/rpacloud/rpacloud/core/delivery"
	"github.com/rpacloud/rpacloud/core/dispatch"
	"github.com/rpacloud/rpacloud/core/events"
	"github.com/rpacloud/rpacloud/core/store/storetest"
	"github.com/rpacloud/rpacloud/ent/privacy"
	"github.com/rpacloud/rpacloud/ent/schema/viewer"
	"github.com/rpacloud/rpacloud/graph"
)

// TestProcessAndDocsCommands runs `rpacloud process` and `rpacloud docs
// render` against the real API and download route.
func TestProcessAndDocsCommands(t *testing.T) {
	db := storetest.SQLite(t)
	ctx := privacy.DecisionContext(context.Background(), privacy.Allow)
	cfg, diags, _ := config.LoadSources(map[string][]byte{"d.hcl": []byte(`
provider "local" { plugin = "local" }
customer "fin" { display_name = "Finance" }
pool "p" {
  provider = "local"
  max = 2
  software = ["WPS Office"]
}
process "vat" {
  pool = "p"
  builtin = "echo"
  owner = "fin"
  schedule "morning" {
    cron = "0 9 * * 1-5"
    duration = "90m"
  }
}
`)})
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	fin := db.Customer.Create().SetName("fin").SetDisplayName("Finance").SaveX(ctx)
	pl := db.Pool.Create().SetName("p").SetProvider("local").SetMax(2).SaveX(ctx)
	db.Process.Create().SetName("vat").SetPoolID(pl.ID).SetRunner("echo").SetOwnerID(fin.ID).SaveX(ctx)

	bus := events.New()
	res := &graph.Resolver{Client: db.Client, Queue: dispatch.New(db.Client, dispatch.Options{Bus: bus}), Bus: bus}
	mux := http.NewServeMux()
	srv := httptest.NewUnstartedServer(mux)
	base, cancel := context.WithCancel(context.Background())
	srv.Config.BaseContext = func(_ net.Listener) context.Context { return base }
	srv.Start()
	t.Cleanup(func() { cancel(); srv.Close() })
	res.Delivery = &delivery.Service{Client: db.Client, Config: cfg, PublicURL: srv.URL}
	mux.Handle("/graphql", auth.Middleware(db.Client, graph.NewHandler(res, graph.HandlerOptions{})))
	mux.Handle("GET "+delivery.DownloadPath+"{ticket}", res.Delivery.DownloadHandler(nil))
	tok, err := auth.Issue(context.Background(), db.Client, auth.IssueRequest{Name: "dev", Role: viewer.Admin})
	if err != nil {
		t.Fatal(err)
	}
	cli := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := run(context.Background(), append(args, "--server", srv.URL, "--token", tok), &out, &errb)
		return code, out.String(), errb.String()
	}

	code, out, errs := cli("process", "status", "vat")
	if code != 0 || !strings.Contains(out, "vat: S1_ACQUIRE (next: ACQUIRE_VM)") || !strings.Contains(out, "PREPARE_VM  software:WPS Office") {
		t.Fatalf("status: %d %s %s", code, out, errs)
	}
	code, _, errs = cli("process", "advance", "vat", "ACQUIRE_VM")
	if code != 1 || !strings.Contains(errs, `pool "p" has no running VM yet`) {
		t.Fatalf("advance: %d %s", code, errs)
	}
	code, out, errs = cli("process", "book", "vat", "--slot", "late", "--cron", "0 11 * * 1-5", "--duration", "1h", "--timezone", "Asia/Shanghai")
	if code != 0 || !strings.Contains(out, "booked vat/late") {
		t.Fatalf("book: %d %s %s", code, out, errs)
	}
	code, out, errs = cli("process", "schedule", "--pool", "p")
	if code != 0 || !strings.Contains(out, "vat/late") || !strings.Contains(out, "0 clashes in the next 7 days") {
		t.Fatalf("schedule: %d %s %s", code, out, errs)
	}
	// The same answers as JSON, with the documented field names.
	code, out, errs = cli("process", "status", "vat", "-o", "json")
	var st struct {
		Process   string   `json:"process"`
		Stage     string   `json:"stage"`
		Allowed   []string `json:"allowed"`
		Checklist []struct {
			Action string `json:"action"`
			Item   string `json:"item"`
		} `json:"checklist"`
		History []any `json:"history"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &st) != nil || st.Process != "vat" || st.Stage != "S1_ACQUIRE" ||
		len(st.Allowed) != 1 || len(st.Checklist) == 0 || st.History == nil {
		t.Fatalf("status -o json: %d %s %s", code, out, errs)
	}
	code, out, errs = cli("process", "schedule", "--pool", "p", "-o", "json")
	type booking struct {
		ID              string `json:"id"`
		DurationMinutes int    `json:"duration_minutes"`
		Timezone        string `json:"timezone"`
	}
	var sch struct {
		Days     int       `json:"days"`
		Bookings []booking `json:"bookings"`
		Clashes  []any     `json:"clashes"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &sch) != nil || sch.Days != 7 || sch.Clashes == nil ||
		!slices.Contains(sch.Bookings, booking{"vat/late", 60, "Asia/Shanghai"}) {
		t.Fatalf("schedule -o json: %d %s %s", code, out, errs)
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "schedule.xlsx")
	code, out, errs = cli("docs", "render", "--process", "vat", "--kind", "schedule", "--format", "xlsx", "--lang", "en", "-o", file)
	if code != 0 || !strings.Contains(out, "wrote "+file) {
		t.Fatalf("docs: %d %s %s", code, out, errs)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	x, err := excelize.OpenReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	if v, _ := x.GetCellValue("By department", "A7"); v != "Finance" {
		t.Fatalf("By department!A7 = %q", v)
	}
	if code, _, errs = cli("docs", "render", "--process", "vat", "--kind", "invoice", "--format", "xlsx", "-o", file); code != 2 || !strings.Contains(errs, `unknown document kind "invoice"`) {
		t.Fatalf("bad kind: %d %s", code, errs)
	}
	if code, _, errs = cli("docs", "render", "--process", "vat", "--kind", "manual", "--format", "xlsx", "-o", file); code != 1 || !strings.Contains(errs, "not a sheet") {
		t.Fatalf("manual xlsx: %d %s", code, errs)
	}
}
