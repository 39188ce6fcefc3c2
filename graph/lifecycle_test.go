package graph_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/rpacloud/rpacloud/core/auth"
	"github.com/rpacloud/rpacloud/core/config"
	"github.com/rpacloud/rpacloud/core/delivery"
	"github.com/rpacloud/rpacloud/core/dispatch"
	"github.com/rpacloud/rpacloud/core/events"
	"github.com/rpacloud/rpacloud/core/gqlclient"
	"github.com/rpacloud/rpacloud/core/store/storetest"
	"github.com/rpacloud/rpacloud/ent/privacy"
	"github.com/rpacloud/rpacloud/ent/schema/viewer"
	"github.com/rpacloud/rpacloud/ent/vm"
	"github.com/rpacloud/rpacloud/graph"
)

const deliveryHCL = `
provider "local" { plugin = "local" }
customer "fin" {}
pool "p" {
  provider = "local"
  max = 1
  software = ["WPS Office"]
  remote_access = "rdp"
}
process "vat" {
  pool = "p"
  builtin = "echo"
  owner = "fin"
  schedule "morning" {
    cron = "0 9 * * 1-5"
    duration = "90m"
    timezone = "Asia/Shanghai"
  }
}
`

func TestDeliveryAPI(t *testing.T) {
	db := storetest.SQLite(t)
	ctx := privacy.DecisionContext(context.Background(), privacy.Allow)
	cfg, diags, _ := config.LoadSources(map[string][]byte{"d.hcl": []byte(deliveryHCL)})
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	fin := db.Customer.Create().SetName("fin").SaveX(ctx)
	pl := db.Pool.Create().SetName("p").SetProvider("local").SetMax(1).SaveX(ctx)
	db.Process.Create().SetName("vat").SetPoolID(pl.ID).SetRunner("echo").SetOwnerID(fin.ID).SaveX(ctx)
	v := db.VM.Create().SetPoolID(pl.ID).SetProvider("local").SetIdempotencyKey("k1").SetState(vm.StateRunning).SaveX(ctx)
	db.Robot.Create().SetName("p-1").SetPoolID(pl.ID).SetVMID(v.ID).SaveX(ctx)

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
	issue := func(name string, role viewer.Role, cust *int) *gqlclient.Client {
		s, err := auth.Issue(context.Background(), db.Client, auth.IssueRequest{Name: name, Role: role, CustomerID: cust})
		if err != nil {
			t.Fatal(err)
		}
		return gqlclient.New(srv.URL, s)
	}
	op, viewerC := issue("dev", viewer.Operator, nil), issue("biz", viewer.Viewer, &fin.ID)
	bg := context.Background()

	var st struct {
		ProcessLifecycle struct {
			Stage     string
			Allowed   []string
			Checklist []struct{ Action, Item string }
		}
	}
	if err := viewerC.Do(bg, `{processLifecycle(process:"vat"){stage allowed checklist{action item}}}`, nil, &st); err != nil {
		t.Fatal(err)
	}
	if st.ProcessLifecycle.Stage != "S1_ACQUIRE" || st.ProcessLifecycle.Allowed[0] != "ACQUIRE_VM" || st.ProcessLifecycle.Checklist[0].Item != "software:WPS Office" {
		t.Fatalf("%+v", st)
	}
	const advance = `mutation($a: LifecycleAction!, $c: [String!]) { transitionProcess(input: {process: "vat", action: $a, checklist: $c}) { stage } }`
	err := op.Do(bg, advance, map[string]any{"a": "PASS_TRIAL"}, nil)
	if code(err) != graph.CodeRefused || !strings.Contains(err.Error(), "PASS_TRIAL is not allowed at S1_ACQUIRE; allowed: ACQUIRE_VM") {
		t.Fatalf("%v", err)
	}
	if err := viewerC.Do(bg, advance, map[string]any{"a": "ACQUIRE_VM"}, nil); code(err) != graph.CodeForbidden {
		t.Fatalf("viewer advanced: %v", err)
	}
	if err := op.Do(bg, advance, map[string]any{"a": "ACQUIRE_VM"}, nil); err != nil {
		t.Fatal(err)
	}
	err = op.Do(bg, advance, map[string]any{"a": "PREPARE_VM", "c": []string{}}, nil)
	if code(err) != graph.CodeRefused || !strings.Contains(err.Error(), `"software:WPS Office" is not done`) || !strings.Contains(err.Error(), "no remote-access endpoint") {
		t.Fatalf("%v", err)
	}
	if err := delivery.RecordEndpoint(bg, db.Client, v.ID, delivery.Endpoint{Protocol: "rdp", Host: "10.0.0.5", Port: 3389}); err != nil {
		t.Fatal(err)
	}
	var ends struct {
		RemoteEndpoints []struct {
			VM, Protocol, Host string
			Port               int
		}
	}
	if err := viewerC.Do(bg, `{remoteEndpoints(process:"vat"){vm protocol host port}}`, nil, &ends); err != nil || len(ends.RemoteEndpoints) != 1 || ends.RemoteEndpoints[0].Port != 3389 {
		t.Fatalf("%+v %v", ends, err)
	}
	var conn struct {
		ConnectRemote struct {
			Stage  string
			RdpURL string
		}
	}
	if err := viewerC.Do(bg, `mutation{connectRemote(process:"vat", vm:"p-1", purpose:"look"){stage rdpURL}}`, nil, &conn); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(conn.ConnectRemote.RdpURL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "full address:s:10.0.0.5:3389") || conn.ConnectRemote.Stage != "S2_PREPARE" {
		t.Fatalf("%d %q %+v", resp.StatusCode, body, conn)
	}

	// The run schedule: pool max 1, so a second weekday slot at 09:30
	// Shanghai clashes with the HCL one.
	const book = `mutation($accept: Boolean) { bookSlot(input: {process: "vat", slot: "extra", cron: "30 9 * * 1-5", durationMinutes: 30, timezone: "Asia/Shanghai", acceptClash: $accept}) { booking { id department } clashes { kind needed max } } }`
	if err := op.Do(bg, book, nil, nil); code(err) != graph.CodeRefused || !strings.Contains(err.Error(), "clashes") {
		t.Fatalf("%v", err)
	}
	var booked struct {
		BookSlot struct {
			Booking struct{ ID, Department string }
			Clashes []struct {
				Kind        string
				Needed, Max int
			}
		}
	}
	if err := op.Do(bg, book, map[string]any{"accept": true}, &booked); err != nil || booked.BookSlot.Booking.Department != "fin" || booked.BookSlot.Clashes[0].Kind != "CAPACITY" {
		t.Fatalf("%+v %v", booked, err)
	}
	var sched struct {
		ScheduleBookings []struct{ ID string }
		ScheduleClashes  []struct{ Kind string }
		PoolCapacity     []struct{ Booked, Free int }
	}
	q := `{scheduleBookings(pool:"p"){id} scheduleClashes(pool:"p"){kind} poolCapacity(pool:"p", from:"2026-11-02T00:00:00Z", to:"2026-11-03T00:00:00Z"){booked free}}`
	if err := viewerC.Do(bg, q, nil, &sched); err != nil || len(sched.ScheduleBookings) != 2 || len(sched.ScheduleClashes) < 5 || len(sched.PoolCapacity) != 5 || sched.PoolCapacity[2].Booked != 2 || sched.PoolCapacity[2].Free != 0 {
		t.Fatalf("%+v %v", sched, err)
	}
	if err := viewerC.Do(bg, `{scheduleClashes(from:"2026-11-02T00:00:00Z", to:"2027-11-02T00:00:00Z"){kind}}`, nil, nil); code(err) != graph.CodeBadInput {
		t.Fatalf("a year of clashes: %v", err)
	}
	if err := viewerC.Do(bg, `mutation{cancelBooking(id:"vat/extra")}`, nil, nil); code(err) != graph.CodeForbidden {
		t.Fatalf("viewer cancelled: %v", err)
	}

	var doc struct{ DocumentURL string }
	if err := viewerC.Do(bg, `{documentURL(process:"vat", kind:SCHEDULE, format:XLSX, language:"zh")}`, nil, &doc); err != nil {
		t.Fatal(err)
	}
	resp, err = http.Get(doc.DocumentURL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(string(body), "PK") || !strings.Contains(resp.Header.Get("Content-Disposition"), "vat-schedule.zh.xlsx") {
		t.Fatalf("%d %s", resp.StatusCode, resp.Header)
	}
	if err := viewerC.Do(bg, `{documentURL(process:"vat", kind:MANUAL, format:XLSX)}`, nil, nil); code(err) != graph.CodeBadInput {
		t.Fatalf("manual as xlsx: %v", err)
	}
	if err := viewerC.Do(bg, `{documentURL(process:"vat", kind:MANUAL, format:MD, language:"fr")}`, nil, nil); code(err) != graph.CodeBadInput {
		t.Fatalf("french: %v", err)
	}
	if err := viewerC.Do(bg, `{processLifecycle(process:"nope"){stage}}`, nil, nil); code(err) != graph.CodeNotFound {
		t.Fatalf("unknown process: %v", err)
	}
}
