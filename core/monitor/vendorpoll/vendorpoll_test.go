package vendorpoll_test

import (
	"context"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/rpacloud/rpacloud/core/events"
	"github.com/rpacloud/rpacloud/core/monitor/vendorpoll"
	"github.com/rpacloud/rpacloud/core/store"
	"github.com/rpacloud/rpacloud/core/store/storetest"
	"github.com/rpacloud/rpacloud/ent/event"
	"github.com/rpacloud/rpacloud/ent/privacy"
	"github.com/rpacloud/rpacloud/plugins/sdk"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestDiffJobs(t *testing.T) {
	prev := map[string]sdk.JobState{}
	jobs := []sdk.Job{{ID: "2", State: sdk.JobRunning}, {ID: "1", State: sdk.JobSucceeded}} // newest first
	got := vendorpoll.DiffJobs(prev, jobs)
	if len(got) != 2 || got[0].ID != "1" || got[1].ID != "2" {
		t.Fatalf("first poll: %+v", got)
	}
	if got := vendorpoll.DiffJobs(prev, jobs); len(got) != 0 {
		t.Fatalf("unchanged: %+v", got)
	}
	jobs[0].State = sdk.JobFaulted
	got = vendorpoll.DiffJobs(prev, jobs[:1])
	if len(got) != 1 || got[0].State != "faulted" {
		t.Fatalf("changed: %+v", got)
	}
	// Absent from a later, time-bounded list: no change reported.
	if got := vendorpoll.DiffJobs(prev, nil); len(got) != 0 {
		t.Fatalf("absent: %+v", got)
	}
}

func TestDiffRobots(t *testing.T) {
	prev := map[string]sdk.RobotState{}
	vendorpoll.DiffRobots(prev, []sdk.VendorRobot{{ID: "a", State: sdk.RobotAvailable}, {ID: "b", State: sdk.RobotBusy}})
	got := vendorpoll.DiffRobots(prev, []sdk.VendorRobot{{ID: "a", State: sdk.RobotDisconnected}})
	if len(got) != 2 || got[0].State != "disconnected" || got[1].ID != "b" || got[1].State != "removed" {
		t.Fatalf("%+v", got)
	}
}

type fakeSource struct {
	jobs   []sdk.Job
	robots []sdk.VendorRobot
	since  []time.Time
}

func (f *fakeSource) ListJobs(_ context.Context, fl sdk.JobFilter) ([]sdk.Job, error) {
	f.since = append(f.since, fl.Since)
	return f.jobs, nil
}
func (f *fakeSource) ListRobots(context.Context) ([]sdk.VendorRobot, error) { return f.robots, nil }

// TestPollRecordsEvents: a UiPath job started by the vendor's own schedule
// becomes events linked to the process that declares its package.
func TestPollRecordsEvents(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := privacy.DecisionContext(context.Background(), privacy.Allow)
		cust := db.Customer.Create().SetName("finance").SaveX(ctx)
		pl := db.Pool.Create().SetName("uipath").SetProvider("local").SaveX(ctx)
		pr := db.Process.Create().SetName("month-end").SetPoolID(pl.ID).SetKind("vendor").SetRunner("orchestrator").
			SetPackage("MonthEnd").SetOwnerID(cust.ID).SaveX(ctx)
		now := time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC)
		src := &fakeSource{
			jobs:   []sdk.Job{{ID: "j1", Package: "MonthEnd", Robot: "UIR-01", State: sdk.JobRunning, VendorState: "Running"}},
			robots: []sdk.VendorRobot{{ID: "r1", Name: "UIR-01", Machine: "VM-7", State: sdk.RobotBusy, VendorState: "Busy"}},
		}
		bus := events.New()
		sub, cancel := context.WithCancel(context.Background())
		defer cancel()
		ch := bus.Subscribe(sub, events.Filter{Vendor: "uipath"})
		p := &vendorpoll.Poller{Client: db.Client, Bus: bus, Name: "orchestrator", Type: "uipath", Source: src, Interval: 30 * time.Second, Now: func() time.Time { return now }}
		if err := p.Poll(ctx); err != nil {
			t.Fatal(err)
		}
		src.jobs[0].State, src.jobs[0].Info = sdk.JobFaulted, "Selector not found: Login button"
		now = now.Add(30 * time.Second)
		if err := p.Poll(ctx); err != nil {
			t.Fatal(err)
		}
		evs := db.Event.Query().Where(event.Vendor("uipath")).Order(event.ByID()).AllX(ctx)
		if len(evs) != 3 || evs[0].Type != "vendorjob.running" || evs[1].Type != "vendorrobot.busy" || evs[2].Type != "vendorjob.faulted" {
			t.Fatalf("events: %+v", evs)
		}
		f := evs[2]
		if *f.ProcessID != pr.ID || *f.CustomerID != cust.ID || *f.PoolID != pl.ID || f.ExternalID != "j1" || f.Status != "faulted" {
			t.Fatalf("faulted event: %+v", f)
		}
		for range 3 {
			<-ch
		}
		// The second poll overlaps the first by one interval.
		if !src.since[1].Equal(now.Add(-30 * time.Second).Add(-30 * time.Second)) {
			t.Fatalf("since: %v", src.since)
		}
	})
}
