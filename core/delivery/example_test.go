package delivery_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rpacloud/rpacloud/core/auth"
	"github.com/rpacloud/rpacloud/core/config"
	"github.com/rpacloud/rpacloud/core/delivery"
	"github.com/rpacloud/rpacloud/core/dispatch"
	"github.com/rpacloud/rpacloud/core/documents"
	"github.com/rpacloud/rpacloud/core/lifecycle"
	"github.com/rpacloud/rpacloud/core/store"
	"github.com/rpacloud/rpacloud/core/store/storetest"
	"github.com/rpacloud/rpacloud/ent"
	"github.com/rpacloud/rpacloud/ent/customer"
	"github.com/rpacloud/rpacloud/ent/pool"
	"github.com/rpacloud/rpacloud/ent/privacy"
	"github.com/rpacloud/rpacloud/ent/schema/viewer"
	"github.com/rpacloud/rpacloud/ent/vm"

	"github.com/rpacloud/rpacloud/core/robotwire"
)

const exampleDir = "../../examples/tax-filing"

// TestTaxFilingExample carries the tax-filing example's VAT process from
// S1 to acceptance on the real platform (configuration synced into SQLite,
// batches through the real queue on a virtual clock), then generates its
// four documents in both languages. With RPACLOUD_UPDATE_EXAMPLE_DOCS=1 it
// writes them, with PDFs printed by Chromium and PNG pages from pdftoppm,
// into examples/tax-filing/docs.
func TestTaxFilingExample(t *testing.T) {
	update := os.Getenv("RPACLOUD_UPDATE_EXAMPLE_DOCS") == "1"
	ctx := context.Background()
	sys := privacy.DecisionContext(ctx, privacy.Allow)
	cfg, diags, _ := config.Load(exampleDir)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	db := storetest.SQLite(t)
	if err := store.SyncConfig(ctx, db.Client, cfg); err != nil {
		t.Fatal(err)
	}
	loc, _ := time.LoadLocation("Asia/Shanghai")
	// Monday 2 November 2026, 08:00 in Shanghai: the filing peak starts.
	now := time.Date(2026, 11, 2, 8, 0, 0, 0, loc).UTC()
	clock := func() time.Time { return now }
	svc := &delivery.Service{Client: db.Client, Config: cfg, PublicURL: "https://rpacloud.tax.example", Now: clock}
	q := dispatch.New(db.Client, dispatch.Options{Now: clock, Seed: 1})

	person := func(name string, role viewer.Role, cust string) viewer.Principal {
		var id *int
		if cust != "" {
			c := db.Customer.Query().Where(customer.Name(cust)).OnlyX(sys)
			id = &c.ID
		}
		secret, err := auth.Issue(ctx, db.Client, auth.IssueRequest{Name: name, Role: role, CustomerID: id})
		if err != nil {
			t.Fatal(err)
		}
		p, err := auth.Authenticate(ctx, db.Client, secret)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	dev := person("zhang.wei (RPA developer)", viewer.Operator, "")
	biz := person("wang.fang (ACME Finance)", viewer.Viewer, "acme-finance")
	hr := person("li.na (ACME HR)", viewer.Operator, "acme-hr")

	// S1: the provider rents two VMs for tax-rpa and reports RDP endpoints.
	taxRPA := db.Pool.Query().Where(pool.Name("tax-rpa")).OnlyX(sys)
	var robots []*ent.Robot
	for i := 1; i <= 2; i++ {
		v := db.VM.Create().SetPoolID(taxRPA.ID).SetProvider("local").SetIdempotencyKey(fmt.Sprintf("rpacloud-tax-rpa-%d", i)).
			SetInstanceID(fmt.Sprintf("i-0tax%d", i)).SetState(vm.StateRunning).SetPermanent(true).SetAddress(fmt.Sprintf("10.20.3.%d", 10+i)).SaveX(sys)
		robots = append(robots, db.Robot.Create().SetName(fmt.Sprintf("tax-rpa-%d", i)).SetPoolID(taxRPA.ID).SetVMID(v.ID).SetState("idle").SetPermanent(true).SaveX(sys))
		if err := svc.RecordEndpoint(ctx, v.ID, delivery.Endpoint{Protocol: "rdp", Host: fmt.Sprintf("10.20.3.%d", 10+i), Port: 3389, Username: "rpa-robot"}); err != nil {
			t.Fatal(err)
		}
	}
	step := func(p viewer.Principal, req delivery.Request) {
		t.Helper()
		req.Process = "vat-filing"
		if _, err := svc.Transition(ctx, p, req); err != nil {
			t.Fatal(err)
		}
		now = now.Add(20 * time.Minute)
	}
	connect := func(p viewer.Principal, purpose string) {
		t.Helper()
		if _, _, err := svc.Connect(ctx, p, "vat-filing", "tax-rpa-1", purpose); err != nil {
			t.Fatal(err)
		}
		now = now.Add(5 * time.Minute)
	}
	// run submits a batch and lets robot 1 work it: each task takes four
	// minutes (each peak-day task stands for two filings: eight); the
	// tasks listed in bad end as data errors.
	taskTime := 4 * time.Minute
	run := func(label string, n int, bad map[int]bool) int {
		t.Helper()
		var inputs []json.RawMessage
		for i := range n {
			inputs = append(inputs, json.RawMessage(fmt.Sprintf(`{"company":"91310000MA1K%05d","period":"2026-10"}`, i)))
		}
		fin := db.Customer.Query().Where(customer.Name("acme-finance")).OnlyX(sys)
		b, err := q.Submit(sys, dispatch.SubmitRequest{CustomerID: fin.ID, Process: "vat-filing", Label: label, Inputs: inputs, SubmittedBy: dev.Name})
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; ; i++ {
			c, err := q.ClaimTask(sys, robots[0].ID)
			if err != nil {
				t.Fatal(err)
			}
			if c == nil {
				break
			}
			now = now.Add(taskTime)
			res := dispatch.Result{Success: true, Output: json.RawMessage(`{"receipt":"ok"}`)}
			if bad[c.Task.Seq] {
				res = dispatch.Result{Class: robotwire.ErrorData, Message: "the portal refused the declaration"}
			}
			if _, err := q.Report(sys, robots[0].ID, c.Task.ID, c.Attempt.Number, res); err != nil {
				t.Fatal(err)
			}
		}
		return b.ID
	}

	step(dev, delivery.Request{Action: lifecycle.AcquireVM, Note: "two permanent VMs from the local provider"})
	step(dev, delivery.Request{Action: lifecycle.PrepareVM, Checklist: []string{
		"software:UiPath Robot 2024.10", "software:WPS Office 2023", "software:Chrome 131", "software:CFCA e-tax client 5.2",
		`file:C:\rpa\uipath\robot.json`, `file:C:\rpa\etax\companies.json`, "network:applied",
	}})
	connect(dev, "migrate TaxFiling.VAT from the finance desktop")
	step(dev, delivery.Request{Action: lifecycle.Develop, Checklist: []string{"package:deployed"}, Note: "migrated from the finance department's desktop"})
	failed := run("developer test 1", 5, map[int]bool{3: true})
	step(dev, delivery.Request{Action: lifecycle.FailTest, BatchIDs: []int{failed},
		Fault: &lifecycle.Fault{Category: lifecycle.FaultNetwork, Description: "the e-tax portal's CA host was not in the tax-bureau allow list"}})
	connect(dev, "fix the proxy allow list and the certificate step")
	step(dev, delivery.Request{Action: lifecycle.Develop, Checklist: []string{"package:deployed"}})
	step(dev, delivery.Request{Action: lifecycle.PassTest, BatchIDs: []int{run("developer test 2", 5, nil)}})
	connect(biz, "business trial run")
	trial := run("business trial", 20, nil)
	step(dev, delivery.Request{Action: lifecycle.PassTrial, BatchIDs: []int{trial},
		Checklist: []string{"credentials:etax/acme", "credentials:bank/acme-payments", "documents:handed-over"},
		SignOff:   &lifecycle.SignOff{Name: "王芳 Wang Fang", Department: "ACME Finance", Comment: "20/20 declarations accepted by the bureau"}})

	// Production in the filing peak: robot 1 files all of Monday's and
	// Tuesday's declarations, 08:00 to 18:00; robot 2 stays idle.
	taskTime = 8 * time.Minute
	for day := range 2 {
		now = time.Date(2026, 11, 3+day, 8, 0, 0, 0, loc).UTC()
		if day == 0 {
			now = time.Date(2026, 11, 2, 13, 0, 0, 0, loc).UTC()
		}
		end := time.Date(2026, 11, 2+day, 18, 0, 0, 0, loc).UTC()
		n := int(end.Sub(now) / taskTime)
		if day == 1 {
			n = 75
		}
		run(fmt.Sprintf("filing peak day %d", day+1), n, nil)
	}
	// Two departments want the robot with the bank's USB key at once: HR
	// books it against finance's receipts check, accepting the clash, which
	// the schedule then flags.
	if _, _, err := svc.Book(ctx, dev, delivery.BookRequest{Process: "vat-filing", Slot: "receipts-check", Robot: "tax-rpa-1",
		Cron: "0 17 * * 1-5", Duration: 90 * time.Minute, Timezone: "Asia/Shanghai"}); err != nil {
		t.Fatal(err)
	}
	_, clashes, err := svc.Book(ctx, hr, delivery.BookRequest{Process: "payroll-tax", Slot: "bank-upload", Robot: "tax-rpa-1",
		Cron: "0 18 * * 2,4", Duration: time.Hour, Timezone: "Asia/Shanghai", AcceptClash: true})
	if err != nil || len(clashes) == 0 {
		t.Fatalf("HR booking: %v %v", clashes, err)
	}
	now = time.Date(2026, 11, 4, 20, 0, 0, 0, loc).UTC() // Wednesday evening

	st, err := svc.State(ctx, biz, "vat-filing")
	if err != nil || st.Stage != lifecycle.Accepted || len(st.History) != 7 || len(st.Access) != 3 {
		t.Fatalf("%+v %v", st, err)
	}
	from, to := svc.Week(now)
	d, err := svc.Data(ctx, biz, "vat-filing", from, to)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Schedule.Clashes) == 0 || d.Process.Vendor != "uipath" || len(d.VMs) != 2 {
		t.Fatalf("data: %+v", d)
	}
	var use1, use2 documents.RobotUse
	for _, u := range d.Schedule.Utilisation {
		switch u.Robot {
		case "tax-rpa-1":
			use1 = u
		case "tax-rpa-2":
			use2 = u
		}
	}
	if use1.Measured < 0.2 || use2.Measured != 0 || use2.Verdict() != "idle" {
		t.Fatalf("utilisation %+v %+v", use1, use2)
	}

	out := t.TempDir()
	if update {
		out = filepath.Join(exampleDir, "docs")
		if err := os.MkdirAll(out, 0o755); err != nil {
			t.Fatal(err)
		}
		old, _ := filepath.Glob(filepath.Join(out, "vat-filing-*"))
		for _, f := range old {
			_ = os.Remove(f)
		}
	}
	printer := documents.Printer{}
	for _, lang := range []documents.Language{documents.Chinese, documents.English} {
		for _, k := range documents.Kinds {
			formats := []documents.Format{documents.Markdown}
			if k != documents.Manual {
				formats = append(formats, documents.XLSX)
			}
			if update {
				formats = append(formats, documents.PDF)
			}
			for _, f := range formats {
				b, err := documents.Render(ctx, k, f, d, lang, printer)
				if err != nil {
					t.Fatalf("%s %s %s: %v", k, f, lang, err)
				}
				path := filepath.Join(out, documents.FileName("vat-filing", k, f, lang))
				if err := os.WriteFile(path, b, 0o644); err != nil {
					t.Fatal(err)
				}
				if f == documents.PDF {
					prefix := strings.TrimSuffix(path, ".pdf")
					if o, err := exec.Command("pdftoppm", "-png", "-r", "70", path, prefix).CombinedOutput(); err != nil {
						t.Fatalf("pdftoppm: %v %s", err, o)
					}
				}
			}
		}
	}
	md, err := os.ReadFile(filepath.Join(out, documents.FileName("vat-filing", documents.Acceptance, documents.Markdown, documents.Chinese)))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"验收通过", "王芳 Wang Fang", "故障（网络）", "20/20 成功", "wang.fang (ACME Finance)"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("acceptance sheet lacks %q", want)
		}
	}
}
