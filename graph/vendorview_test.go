package graph_test

import (
	"context"
	"testing"
	"time"

	"github.com/rpacloud/rpacloud/core/events"
	"github.com/rpacloud/rpacloud/ent/privacy"
)

// TestDashboardVendors: the dashboard counts the vendors' own robots by
// their latest state beside rpacloud's, lists the vendors' running jobs
// with the customer rule (acme's operator sees acme's job only), and
// names the server's time zone.
func TestDashboardVendors(t *testing.T) {
	e := newMonEnv(t)
	ctx := privacy.DecisionContext(context.Background(), privacy.Allow)
	// The vendor's processes in a pool of their own: a pool that runs a
	// vendor's processes counts its robots as that vendor's licences.
	vp := e.db.Pool.Create().SetName("uipath").SetProvider("local").SetMax(1).SaveX(ctx)
	acmeProc := e.db.Process.Create().SetName("invoices").SetPoolID(vp.ID).SetKind("vendor").SetRunner("orch").
		SetPackage("Invoices").SetOwnerID(e.acme.ID).SaveX(ctx)
	globexProc := e.db.Process.Create().SetName("payroll").SetPoolID(vp.ID).SetKind("vendor").SetRunner("orch").
		SetPackage("Payroll").SetOwnerID(e.globex.ID).SaveX(ctx)
	at := time.Now().Add(-time.Minute)
	ev := func(typ events.Type, id, status string, proc *int, cust *int) {
		events.Create(e.db.Event, typ, at).SetVendor("uipath").SetExternalID(id).SetStatus(status).
			SetNillableProcessID(proc).SetNillableCustomerID(cust).SaveX(ctx)
		at = at.Add(time.Second)
	}
	// Robot u1 was busy, then available: counted once, as available.
	ev(events.VendorRobot("busy"), "u1", "busy", nil, nil)
	ev(events.VendorRobot("available"), "u1", "available", nil, nil)
	ev(events.VendorRobot("busy"), "u2", "busy", nil, nil)
	ev(events.VendorRobot("busy"), "u3", "busy", nil, nil)
	ev(events.VendorRobot("removed"), "u3", "removed", nil, nil)
	// Job 7 runs for acme, job 8 for globex, job 9 ran and finished.
	ev(events.VendorJob("running"), "7", "running", &acmeProc.ID, &e.acme.ID)
	ev(events.VendorJob("running"), "8", "running", &globexProc.ID, &e.globex.ID)
	ev(events.VendorJob("running"), "9", "running", &acmeProc.ID, &e.acme.ID)
	ev(events.VendorJob("succeeded"), "9", "succeeded", &acmeProc.ID, &e.acme.ID)

	type dash struct {
		Dashboard struct {
			TimeZone             string
			RobotsByVendorStatus []struct {
				Vendor, Status string
				Count          int
			}
			VendorJobs []struct{ Vendor, ExternalID, Process, Customer string }
		}
	}
	q := `{dashboard{timeZone robotsByVendorStatus{vendor status count} vendorJobs{vendor externalID process customer since}}}`
	var all dash
	if err := e.admin.Do(context.Background(), q, nil, &all); err != nil {
		t.Fatal(err)
	}
	if all.Dashboard.TimeZone != "UTC" {
		t.Errorf("time zone %q, want UTC when the server block sets none", all.Dashboard.TimeZone)
	}
	got := map[string]int{}
	for _, c := range all.Dashboard.RobotsByVendorStatus {
		got[c.Vendor+"/"+c.Status] = c.Count
	}
	want := map[string]int{"rpacloud/idle": 1, "uipath/available": 1, "uipath/busy": 1}
	if len(got) != len(want) {
		t.Errorf("robots by vendor: %v, want %v", got, want)
	}
	for k, n := range want {
		if got[k] != n {
			t.Errorf("robots by vendor: %v, want %v", got, want)
		}
	}
	if j := all.Dashboard.VendorJobs; len(j) != 2 || j[0].ExternalID != "7" || j[0].Process != "invoices" || j[0].Customer != "acme" ||
		j[1].ExternalID != "8" || j[1].Vendor != "uipath" {
		t.Errorf("admin's vendor jobs: %+v", j)
	}
	var acme dash
	if err := e.acmeOp.Do(context.Background(), q, nil, &acme); err != nil {
		t.Fatal(err)
	}
	if j := acme.Dashboard.VendorJobs; len(j) != 1 || j[0].ExternalID != "7" {
		t.Errorf("acme's operator sees vendor jobs %+v, want job 7 only", j)
	}
}
