package delivery

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"
	"go.uber.org/goleak"

	"github.com/rpacloud/rpacloud/core/auth"
	"github.com/rpacloud/rpacloud/core/config"
	"github.com/rpacloud/rpacloud/core/documents"
	"github.com/rpacloud/rpacloud/core/lifecycle"
	"github.com/rpacloud/rpacloud/core/store"
	"github.com/rpacloud/rpacloud/core/store/storetest"
	"github.com/rpacloud/rpacloud/ent"
	"github.com/rpacloud/rpacloud/ent/batch"
	"github.com/rpacloud/rpacloud/ent/customer"
	"github.com/rpacloud/rpacloud/ent/schema/viewer"
	"github.com/rpacloud/rpacloud/ent/vm"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const cfgHCL = `
customer "acme" { display_name = "ACME" }
customer "acme-finance" {
  display_name = "ACME Finance"
  kind = "department"
  parent = "acme"
}
customer "other" {}
provider "local" { plugin = "local" }
network "tax-bureau" {
  proxy = "http://egress.tax.internal:3128"
  allow = ["etax.example.gov"]
  deny  = ["*"]
}
pool "tax-rpa" {
  provider = "local"
  min = 1
  max = 2
  network = "tax-bureau"
  software = ["UiPath Robot 24.10", "WPS Office"]
  config_files = ["C:\\rpa\\tax.json"]
  remote_access = "rdp"
}
vendor "uipath-prod" {
  type = "uipath"
  url = "https://orchestrator.tax.internal"
}
process "vat-filing" {
  pool = "tax-rpa"
  vendor = "uipath-prod"
  package = "TaxFiling.VAT"
  owner = "acme-finance"
  credentials = ["etax/acme"]
  schedule "morning" {
    cron = "0 9 * * 1-5"
    duration = "90m"
    timezone = "Asia/Shanghai"
  }
}
documents {
  language = "zh"
  organisation = "ACME"
  timezone = "Asia/Shanghai"
}
`

type fixture struct {
	svc                       *Service
	db                        *store.DB
	admin, dev, biz, outsider viewer.Principal
	proc                      *ent.Process
	pool                      *ent.Pool
	now                       time.Time
}

func principal(t *testing.T, db *store.DB, name string, role viewer.Role, cust *int) viewer.Principal {
	t.Helper()
	secret, err := auth.Issue(context.Background(), db.Client, auth.IssueRequest{Name: name, Role: role, CustomerID: cust})
	if err != nil {
		t.Fatal(err)
	}
	p, err := auth.Authenticate(context.Background(), db.Client, secret)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func setup(t *testing.T, db *store.DB) *fixture {
	t.Helper()
	cfg, diags, _ := config.LoadSources(map[string][]byte{"test.hcl": []byte(cfgHCL)})
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	ctx := sys(context.Background())
	c := db.Client
	acme := c.Customer.Create().SetName("acme").SetDisplayName("ACME").SaveX(ctx)
	fin := c.Customer.Create().SetName("acme-finance").SetDisplayName("ACME Finance").SetKind(customer.KindDepartment).SetParentID(acme.ID).SaveX(ctx)
	other := c.Customer.Create().SetName("other").SaveX(ctx)
	pl := c.Pool.Create().SetName("tax-rpa").SetProvider("local").SetMin(1).SetMax(2).SetNetwork("tax-bureau").SaveX(ctx)
	proc := c.Process.Create().SetName("vat-filing").SetPoolID(pl.ID).SetOwnerID(fin.ID).SetKind("vendor").SetRunner("uipath-prod").SetPackage("TaxFiling.VAT").SaveX(ctx)
	proc.Edges.Pool = pl
	now := time.Date(2026, 11, 4, 3, 0, 0, 0, time.UTC) // Wednesday 11:00 in Shanghai
	f := &fixture{db: db, proc: proc, pool: pl, now: now}
	f.svc = &Service{Client: c, Config: cfg, PublicURL: "http://rpacloud.test", Now: func() time.Time { return f.now }}
	f.admin = principal(t, db, "admin", viewer.Admin, nil)
	f.dev = principal(t, db, "dev.zhang", viewer.Operator, &acme.ID)
	f.biz = principal(t, db, "wang.fang", viewer.Viewer, &fin.ID)
	f.outsider = principal(t, db, "mallory", viewer.Operator, &other.ID)
	return f
}

func (f *fixture) batch(t *testing.T, total, ok, failed int) int {
	t.Helper()
	ctx := sys(context.Background())
	fin := f.now
	b := f.db.Batch.Create().SetCustomerID(*f.proc.OwnerID).SetProcessID(f.proc.ID).SetPoolID(f.pool.ID).
		SetTotal(total).SetPending(total - ok - failed).SetSucceeded(ok).SetFailed(failed)
	if ok+failed == total {
		b.SetStack(batch.StackFinished).SetFinishedAt(fin)
	}
	return b.SaveX(ctx).ID
}

func refused(t *testing.T, err error, want string) {
	t.Helper()
	var re *lifecycle.RefusedError
	if !errors.As(err, &re) || !strings.Contains(err.Error(), want) {
		t.Fatalf("want a refusal containing %q, got %v", want, err)
	}
}

func TestLifecycleThroughTheDatabase(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := setup(t, db)
		ctx := context.Background()
		svc := f.svc
		st, err := svc.State(ctx, f.biz, "vat-filing")
		if err != nil || st.Stage != lifecycle.S1Acquire || len(st.Allowed) != 1 {
			t.Fatalf("%+v %v", st, err)
		}
		wantItems := []string{`file:C:\rpa\tax.json`, "network:applied", "software:UiPath Robot 24.10", "software:WPS Office"}
		if got := lifecycle.RequiredItems(lifecycle.PrepareVM, st.Require); strings.Join(got, "|") != strings.Join(wantItems, "|") {
			t.Fatalf("required %v", got)
		}
		_, err = svc.Transition(ctx, f.dev, Request{Process: "vat-filing", Action: lifecycle.AcquireVM})
		refused(t, err, `pool "tax-rpa" has no running VM yet`)
		if _, err := svc.Transition(ctx, f.biz, Request{Process: "vat-filing", Action: lifecycle.AcquireVM}); !errors.Is(err, ErrForbidden) {
			t.Fatalf("viewer: %v", err)
		}
		// Another customer's process answers like a missing one.
		if _, err := svc.Transition(ctx, f.outsider, Request{Process: "vat-filing", Action: lifecycle.AcquireVM}); !errors.Is(err, ErrNotFound) {
			t.Fatalf("other customer: %v", err)
		}
		if _, err := svc.Transition(ctx, f.dev, Request{Process: "nope", Action: lifecycle.AcquireVM}); !errors.Is(err, ErrNotFound) {
			t.Fatalf("unknown process: %v", err)
		}

		// S1: the provider rents a VM; its robot comes up; the endpoint is reported.
		sctx := sys(ctx)
		v := db.VM.Create().SetPoolID(f.pool.ID).SetProvider("local").SetIdempotencyKey("rpacloud-k1").SetInstanceID("i-1").SetState(vm.StateRunning).SaveX(sctx)
		db.Robot.Create().SetName("tax-rpa-1").SetPoolID(f.pool.ID).SetVMID(v.ID).SetState("idle").SaveX(sctx)
		if err := svc.RecordEndpoint(ctx, v.ID, Endpoint{Protocol: "telnet", Host: "x", Port: 23}); !errors.Is(err, ErrBadInput) {
			t.Fatalf("telnet accepted: %v", err)
		}
		if _, err := svc.Transition(ctx, f.dev, Request{Process: "vat-filing", Action: lifecycle.AcquireVM}); err != nil {
			t.Fatal(err)
		}
		// S2: no endpoint yet, checklist incomplete.
		_, err = svc.Transition(ctx, f.dev, Request{Process: "vat-filing", Action: lifecycle.PrepareVM, Checklist: wantItems[:2]})
		refused(t, err, `"software:UiPath Robot 24.10" is not done`)
		refused(t, err, "no remote-access endpoint")
		for i := 0; i < 2; i++ { // replacing an endpoint is an upsert
			if err := svc.RecordEndpoint(ctx, v.ID, Endpoint{Protocol: "rdp", Host: "10.20.3.11", Port: 3389 + i, Username: "rpa"}); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := svc.Transition(ctx, f.dev, Request{Process: "vat-filing", Action: lifecycle.PrepareVM, Checklist: wantItems}); err != nil {
			t.Fatal(err)
		}
		// S3: develop needs a recorded connection for S3.
		_, err = svc.Transition(ctx, f.dev, Request{Process: "vat-filing", Action: lifecycle.Develop, Checklist: []string{"package:deployed"}})
		refused(t, err, "nobody connected to the VM for S3")
		if _, _, err := svc.Connect(ctx, f.dev, "vat-filing", "tax-rpa-9", "dev"); !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "tax-rpa-1") {
			t.Fatalf("unknown VM: %v", err)
		}
		ep, stage, url, err := svc.ConnectURL(ctx, f.dev, "vat-filing", "tax-rpa-1", "develop the VAT flow")
		if err != nil || ep.Port != 3390 || stage != lifecycle.S3Develop || !strings.HasPrefix(url, "http://rpacloud.test/download/") {
			t.Fatalf("%+v %s %s %v", ep, stage, url, err)
		}
		if _, err := svc.Transition(ctx, f.dev, Request{Process: "vat-filing", Action: lifecycle.Develop, Checklist: []string{"package:deployed"}}); err != nil {
			t.Fatal(err)
		}
		// S4: a failing test goes back with the fault; a clean one moves on.
		failing := f.batch(t, 3, 2, 1)
		_, err = svc.Transition(ctx, f.dev, Request{Process: "vat-filing", Action: lifecycle.PassTest, BatchIDs: []int{failing}})
		refused(t, err, "no finished, fully successful test run")
		if _, err := svc.Transition(ctx, f.dev, Request{Process: "vat-filing", Action: lifecycle.FailTest, BatchIDs: []int{failing},
			Fault: &lifecycle.Fault{Category: lifecycle.FaultNetwork, Description: "proxy refused etax.example.gov"}}); err != nil {
			t.Fatal(err)
		}
		if _, _, err := svc.Connect(ctx, f.dev, "vat-filing", "tax-rpa-1", "fix the proxy rule"); err != nil {
			t.Fatal(err)
		}
		if _, err := svc.Transition(ctx, f.dev, Request{Process: "vat-filing", Action: lifecycle.Develop, Checklist: []string{"package:deployed"}}); err != nil {
			t.Fatal(err)
		}
		unfinished := f.batch(t, 3, 1, 0)
		_, err = svc.Transition(ctx, f.dev, Request{Process: "vat-filing", Action: lifecycle.PassTest, BatchIDs: []int{unfinished}})
		refused(t, err, "has not finished (1 of 3 tasks done)")
		if _, err := svc.Transition(ctx, f.dev, Request{Process: "vat-filing", Action: lifecycle.PassTest, BatchIDs: []int{99999}}); !errors.Is(err, ErrBadInput) {
			t.Fatal(err)
		}
		if _, err := svc.Transition(ctx, f.dev, Request{Process: "vat-filing", Action: lifecycle.PassTest, BatchIDs: []int{f.batch(t, 5, 5, 0)}}); err != nil {
			t.Fatal(err)
		}
		// S5: the business user connects and runs the trial.
		trial := f.batch(t, 20, 20, 0)
		full := []string{"credentials:etax/acme", "documents:handed-over"}
		signed := &lifecycle.SignOff{Name: "Wang Fang", Department: "ACME Finance"}
		_, err = svc.Transition(ctx, f.dev, Request{Process: "vat-filing", Action: lifecycle.PassTrial, BatchIDs: []int{trial}, Checklist: full, SignOff: signed})
		refused(t, err, "no business user connected to the VM for S5")
		if _, _, err := svc.Connect(ctx, f.biz, "vat-filing", "tax-rpa-1", "trial run"); err != nil {
			t.Fatal(err)
		}
		st, err = svc.Transition(ctx, f.dev, Request{Process: "vat-filing", Action: lifecycle.PassTrial, BatchIDs: []int{trial}, Checklist: full, SignOff: signed})
		if err != nil || st.Stage != lifecycle.Accepted {
			t.Fatalf("%v %v", st, err)
		}
		if len(st.History) != 7 || st.History[6].Evidence.Runs[0].Total != 20 || st.History[6].Evidence.Actor != "dev.zhang" {
			t.Fatalf("history %+v", st.History)
		}
		if len(st.Access) != 3 || st.Access[2].User != "wang.fang" || st.Access[2].Stage != lifecycle.S5Trial {
			t.Fatalf("access %+v", st.Access)
		}
		// The unique (process, seq) fences a concurrent second writer.
		err = db.LifecycleTransition.Create().SetProcessID(f.proc.ID).SetSeq(7).SetFromStage("S5_TRIAL").SetToStage("ACCEPTED").
			SetAction("PASS_TRIAL").SetActor("x").Exec(sctx)
		if !ent.IsConstraintError(err) {
			t.Fatalf("duplicate step stored: %v", err)
		}

		// Documents from the same data.
		from, to := svc.Week(f.now)
		if !from.Equal(time.Date(2026, 11, 1, 16, 0, 0, 0, time.UTC)) || to.Sub(from) != 7*24*time.Hour {
			t.Fatalf("week %s %s", from, to)
		}
		b, err := svc.Render(ctx, f.biz, "vat-filing", documents.Acceptance, documents.XLSX, documents.Chinese)
		if err != nil {
			t.Fatal(err)
		}
		x, err := excelize.OpenReader(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		defer x.Close()
		for cell, want := range map[string]string{"A1": "流程验收表", "B12": "验收通过", "C16": "已获取虚拟机", "E16": "dev.zhang", "C22": "试运行通过，验收"} {
			if got, _ := x.GetCellValue("验收表", cell); got != want {
				t.Errorf("验收表!%s = %q, want %q", cell, got, want)
			}
		}
		if got, _ := x.GetCellValue("验收表", "G22"); !strings.Contains(got, "20/20 成功；Wang Fang（ACME Finance）签字验收") {
			t.Errorf("验收表!G22 = %q", got)
		}

		// Download links: a browser follows them without a header.
		h := svc.DownloadHandler(nil)
		get := func(url string) (*http.Response, []byte) {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, strings.TrimPrefix(url, "http://rpacloud.test"), nil))
			res := rec.Result()
			body, _ := io.ReadAll(res.Body)
			return res, body
		}
		res, body := get(url)
		if res.StatusCode != 200 || res.Header.Get("Content-Type") != "application/x-rdp" || !strings.Contains(string(body), "full address:s:10.20.3.11:3390\r\n") {
			t.Fatalf("rdp: %d %s %q", res.StatusCode, res.Header, body)
		}
		durl, err := svc.DocumentURL(ctx, f.biz, DocumentParams{Process: "vat-filing", Kind: documents.Manual, Format: documents.Markdown, Language: documents.English})
		if err != nil {
			t.Fatal(err)
		}
		res, body = get(durl)
		if res.StatusCode != 200 || !strings.Contains(string(body), "# User manual") || !strings.Contains(res.Header.Get("Content-Disposition"), "vat-filing-manual.en.md") {
			t.Fatalf("manual: %d %q", res.StatusCode, body)
		}
		if _, err := svc.DocumentURL(ctx, f.biz, DocumentParams{Process: "vat-filing", Kind: documents.Manual, Format: documents.XLSX}); !errors.Is(err, ErrBadInput) {
			t.Fatal(err)
		}
		if res, _ := get("http://rpacloud.test/download/nonsense"); res.StatusCode != 404 {
			t.Fatalf("unknown ticket: %d", res.StatusCode)
		}
		f.now = f.now.Add(TicketTTL + time.Second)
		if res, _ := get(durl); res.StatusCode != 404 {
			t.Fatalf("expired ticket: %d", res.StatusCode)
		}
		durl, _ = svc.DocumentURL(ctx, f.biz, DocumentParams{Process: "vat-filing", Kind: documents.Record, Format: documents.Markdown})
		if err := auth.Revoke(ctx, db.Client, "wang.fang"); err != nil {
			t.Fatal(err)
		}
		if res, _ := get(durl); res.StatusCode != 403 {
			t.Fatalf("revoked token: %d", res.StatusCode)
		}
	})
}

func TestBookings(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := setup(t, db)
		ctx := context.Background()
		svc := f.svc
		bs, err := svc.Bookings(ctx, "")
		if err != nil || len(bs) != 1 || bs[0].ID != "vat-filing/morning" || bs[0].Department != "acme-finance" {
			t.Fatalf("%+v %v", bs, err)
		}
		// Pool max 2: the HCL slot (09:00-10:30 Shanghai) plus 2 robots at
		// 10:00 is one too many.
		req := BookRequest{Process: "vat-filing", Slot: "extra", Robots: 2, Cron: "0 10 * * 1-5", Duration: time.Hour, Timezone: "Asia/Shanghai"}
		_, clashes, err := svc.Book(ctx, f.dev, req)
		var ce *ClashError
		if !errors.As(err, &ce) || len(clashes) == 0 || clashes[0].Needed != 3 || !strings.Contains(err.Error(), "accept the clash explicitly") {
			t.Fatalf("%v %v", clashes, err)
		}
		if _, _, err := svc.Book(ctx, f.outsider, req); !errors.Is(err, ErrNotFound) {
			t.Fatal(err)
		}
		bad := req
		bad.Slot, bad.Cron = "bad", "0 25 * * *"
		if _, _, err := svc.Book(ctx, f.dev, bad); !errors.Is(err, ErrBadInput) || !strings.Contains(err.Error(), "cron") {
			t.Fatal(err)
		}
		// At 10:30 it fits.
		ok := req
		ok.Slot, ok.Cron = "late", "30 10 * * 1-5"
		if _, cs, err := svc.Book(ctx, f.dev, ok); err != nil || len(cs) != 0 {
			t.Fatal(cs, err)
		}
		if _, _, err := svc.Book(ctx, f.dev, ok); !errors.Is(err, ErrBadInput) {
			t.Fatalf("duplicate: %v", err)
		}
		req.AcceptClash = true
		if _, cs, err := svc.Book(ctx, f.admin, req); err != nil || len(cs) == 0 {
			t.Fatal(cs, err)
		}
		cs, err := svc.Clashes(ctx, f.biz, "tax-rpa", f.now, f.now.Add(7*24*time.Hour))
		// Each weekday: 10:00-10:30 (morning + extra = 3 robots) and
		// 10:30-11:00 (extra + late = 3): 5 weekdays in the window.
		if err != nil || len(cs) != 10 {
			t.Fatalf("%d clashes: %v", len(cs), err)
		}
		free, err := svc.Capacity(ctx, f.biz, "tax-rpa", time.Date(2026, 11, 5, 0, 0, 0, 0, time.UTC), time.Date(2026, 11, 5, 4, 0, 0, 0, time.UTC))
		if err != nil || len(free) == 0 || free[0].FreeRobots() != 2 {
			t.Fatalf("%+v %v", free, err)
		}
		if err := svc.Cancel(ctx, f.outsider, "vat-filing/extra"); !errors.Is(err, ErrNotFound) {
			t.Fatal(err)
		}
		if err := svc.Cancel(ctx, f.dev, "vat-filing/extra"); err != nil {
			t.Fatal(err)
		}
		if err := svc.Cancel(ctx, f.dev, "vat-filing/morning"); !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "HCL") {
			t.Fatal(err)
		}
		if cs, _ := svc.Clashes(ctx, f.biz, "", f.now, f.now.Add(7*24*time.Hour)); len(cs) != 0 {
			t.Fatalf("clashes after cancel: %v", cs)
		}
	})
}
