package monitor_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/rpacloud/rpacloud/core/config"
	"github.com/rpacloud/rpacloud/core/dispatch"
	"github.com/rpacloud/rpacloud/core/events"
	"github.com/rpacloud/rpacloud/core/monitor"
	"github.com/rpacloud/rpacloud/core/monitor/rules"
	"github.com/rpacloud/rpacloud/core/robotwire"
	"github.com/rpacloud/rpacloud/core/store"
	"github.com/rpacloud/rpacloud/core/store/storetest"
	"github.com/rpacloud/rpacloud/ent"
	"github.com/rpacloud/rpacloud/ent/anomaly"
	"github.com/rpacloud/rpacloud/ent/privacy"
	"github.com/rpacloud/rpacloud/plugins/sdk/sdktest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func sys() context.Context { return privacy.DecisionContext(context.Background(), privacy.Allow) }

type fixture struct {
	db    *store.DB
	clock *sdktest.Clock
	bus   *events.Bus
	q     *dispatch.Queue
	mon   *monitor.Monitor
	cust  *ent.Customer
	pool  *ent.Pool
	robot *ent.Robot
}

func newFixture(t *testing.T, db *store.DB, o monitor.Options) *fixture {
	t.Helper()
	ctx := sys()
	f := &fixture{db: db, clock: sdktest.NewClock(time.Date(2026, 11, 22, 2, 0, 0, 0, time.UTC)), bus: events.New()}
	f.q = dispatch.New(db.Client, dispatch.Options{Bus: f.bus, Now: f.clock.Now, Seed: 7})
	f.cust = db.Customer.Create().SetName("tax").SetKind("department").SaveX(ctx)
	f.pool = db.Pool.Create().SetName("night").SetProvider("local").SetMax(2).SaveX(ctx)
	db.Process.Create().SetName("vat").SetPoolID(f.pool.ID).SetRunner("echo").SetOwnerID(f.cust.ID).
		SetMaxDurationSeconds(600).SetRetries(0).SetCreatedAt(f.clock.Now()).SaveX(ctx)
	f.robot = db.Robot.Create().SetName("r1").SetPoolID(f.pool.ID).SetState("idle").SetLastSeenAt(f.clock.Now()).SaveX(ctx)
	o.Bus, o.Now = f.bus, f.clock.Now
	f.mon = monitor.New(db.Client, o)
	return f
}

// TestHeartbeatLost follows one robot that dies mid-run: the anomaly opens
// with the facts of the interrupted run, is not opened twice, and resolves
// once the robot checks in again.
func TestHeartbeatLost(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := sys()
		f := newFixture(t, db, monitor.Options{Thresholds: rules.Thresholds{HeartbeatTimeout: 30 * time.Second}})
		subCtx, cancel := context.WithCancel(context.Background())
		defer cancel()
		ch := f.bus.Subscribe(subCtx, events.Filter{Prefixes: []string{"anomaly."}})

		if _, err := f.q.Submit(ctx, dispatch.SubmitRequest{CustomerID: f.cust.ID, Process: "vat", Inputs: []json.RawMessage{json.RawMessage(`{}`)}}); err != nil {
			t.Fatal(err)
		}
		claim, err := f.q.ClaimTask(ctx, f.robot.ID)
		if err != nil || claim == nil {
			t.Fatalf("claim: %v %v", claim, err)
		}
		if err := f.mon.Detect(ctx); err != nil {
			t.Fatal(err)
		}
		if n := db.Anomaly.Query().CountX(ctx); n != 0 {
			t.Fatalf("%d anomalies for a healthy robot", n)
		}

		f.clock.Add(45 * time.Second)
		for range 2 {
			if err := f.mon.Detect(ctx); err != nil {
				t.Fatal(err)
			}
		}
		as := db.Anomaly.Query().AllX(ctx)
		if len(as) != 1 {
			t.Fatalf("anomalies: %+v", as)
		}
		a := as[0]
		if a.Rule != anomaly.RuleHeartbeatLost || a.Severity != anomaly.SeverityCritical || a.Status != anomaly.StatusOpen {
			t.Fatalf("anomaly: %+v", a)
		}
		if a.Facts["process"] != "vat" || a.Facts["department"] != "tax" || a.Facts["robot"] != "r1" || *a.TaskID != claim.Task.ID || *a.CustomerID != f.cust.ID {
			t.Fatalf("facts: %+v task %v", a.Facts, a.TaskID)
		}
		if e := <-ch; e.Type != "anomaly.opened" || *e.AnomalyID != a.ID || e.Status != "open" {
			t.Fatalf("event: %+v", e)
		}

		// The robot comes back: a heartbeat checks it in, and its moment
		// reaches the database with the queue's liveness flush (every
		// daemon runs it every 10 s; dispatch/liveness.go).
		if _, err := f.q.Heartbeat(ctx, f.robot.ID, claim.Task.ID, claim.Attempt.Number); err != nil {
			t.Fatal(err)
		}
		if _, err := f.q.FlushLiveness(ctx); err != nil {
			t.Fatal(err)
		}
		if err := f.mon.Detect(ctx); err != nil {
			t.Fatal(err)
		}
		a = db.Anomaly.GetX(ctx, a.ID)
		if a.Status != anomaly.StatusResolved || a.ResolvedBy != "monitor" || a.Resolution == "" || a.OpenKey != nil {
			t.Fatalf("after check-in: %+v", a)
		}
		if e := <-ch; e.Type != "anomaly.resolved" {
			t.Fatalf("event: %+v", e)
		}
	})
}

// TestAcknowledgeResolve covers the API's side: acknowledge, resolve by a
// person, and a new anomaly when the condition still holds.
func TestAcknowledgeResolve(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := sys()
		f := newFixture(t, db, monitor.Options{})
		f.clock.Add(5 * time.Minute) // idle robot silent past the default timeout
		if err := f.mon.Detect(ctx); err != nil {
			t.Fatal(err)
		}
		a := db.Anomaly.Query().OnlyX(ctx)
		if a.Severity != anomaly.SeverityWarning {
			t.Fatalf("idle robot lost: %+v", a)
		}
		a, err := f.mon.Acknowledge(ctx, a.ID, "night-shift", "calling the data centre")
		if err != nil || a.Status != anomaly.StatusAcknowledged || a.AcknowledgedBy != "night-shift" {
			t.Fatalf("acknowledge: %+v %v", a, err)
		}
		// Still lost: acknowledged stays acknowledged, no second anomaly.
		if err := f.mon.Detect(ctx); err != nil {
			t.Fatal(err)
		}
		if n := db.Anomaly.Query().CountX(ctx); n != 1 {
			t.Fatalf("%d anomalies", n)
		}
		a, err = f.mon.Resolve(ctx, a.ID, "night-shift", "robot retired")
		if err != nil || a.Status != anomaly.StatusResolved || a.Resolution != "robot retired" {
			t.Fatalf("resolve: %+v %v", a, err)
		}
		// Resolving twice changes nothing.
		if b, err := f.mon.Resolve(ctx, a.ID, "someone", "again"); err != nil || b.Resolution != "robot retired" {
			t.Fatalf("second resolve: %+v %v", b, err)
		}
		// The condition still holds: the rules open a fresh anomaly.
		if err := f.mon.Detect(ctx); err != nil {
			t.Fatal(err)
		}
		if n := db.Anomaly.Query().Where(anomaly.StatusEQ(anomaly.StatusOpen)).CountX(ctx); n != 1 {
			t.Fatalf("%d open anomalies after a premature resolve", n)
		}
	})
}

// TestRunFaultedAndFailureRate: a final failure opens run_faulted, which a
// later success of the same process resolves.
func TestRunFaulted(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := sys()
		f := newFixture(t, db, monitor.Options{})
		in := []json.RawMessage{json.RawMessage(`{}`)}
		if _, err := f.q.Submit(ctx, dispatch.SubmitRequest{CustomerID: f.cust.ID, Process: "vat", Inputs: in}); err != nil {
			t.Fatal(err)
		}
		c, err := f.q.ClaimTask(ctx, f.robot.ID)
		if err != nil || c == nil {
			t.Fatal(c, err)
		}
		if _, err := f.q.Report(ctx, f.robot.ID, c.Task.ID, c.Attempt.Number, dispatch.Result{Class: robotwire.ErrorExecution, Message: "portal refused login"}); err != nil {
			t.Fatal(err)
		}
		if err := f.mon.Detect(ctx); err != nil {
			t.Fatal(err)
		}
		a := db.Anomaly.Query().OnlyX(ctx)
		if a.Rule != anomaly.RuleRunFaulted || a.Facts["error"] == "" || a.Facts["reason"] != "retries_exhausted" {
			t.Fatalf("faulted: %+v", a)
		}
		f.clock.Add(time.Minute)
		if _, err := f.q.Submit(ctx, dispatch.SubmitRequest{CustomerID: f.cust.ID, Process: "vat", Inputs: in}); err != nil {
			t.Fatal(err)
		}
		c, err = f.q.ClaimTask(ctx, f.robot.ID)
		if err != nil || c == nil {
			t.Fatal(c, err)
		}
		if _, err := f.q.Report(ctx, f.robot.ID, c.Task.ID, c.Attempt.Number, dispatch.Result{Success: true, Output: json.RawMessage(`{}`)}); err != nil {
			t.Fatal(err)
		}
		if err := f.mon.Detect(ctx); err != nil {
			t.Fatal(err)
		}
		if a = db.Anomaly.GetX(ctx, a.ID); a.Status != anomaly.StatusResolved {
			t.Fatalf("after a success: %+v", a)
		}
	})
}

// TestQueueGrowingFromSamples drives the sampler: a full pool whose queue
// grows sample after sample opens queue_growing.
func TestQueueGrowingFromSamples(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := sys()
		f := newFixture(t, db, monitor.Options{SampleInterval: 10 * time.Second})
		db.Robot.Create().SetName("r2").SetPoolID(f.pool.ID).SetState("busy").SetLastSeenAt(f.clock.Now()).SaveX(ctx)
		for i := range 4 {
			in := make([]json.RawMessage, i+1)
			for j := range in {
				in[j] = json.RawMessage(`{}`)
			}
			if _, err := f.q.Submit(ctx, dispatch.SubmitRequest{CustomerID: f.cust.ID, Process: "vat", Inputs: in}); err != nil {
				t.Fatal(err)
			}
			db.Robot.Update().SetLastSeenAt(f.clock.Now()).ExecX(ctx)
			if err := f.mon.Sample(ctx); err != nil {
				t.Fatal(err)
			}
			f.clock.Add(10 * time.Second)
		}
		if err := f.mon.Detect(ctx); err != nil {
			t.Fatal(err)
		}
		a, err := db.Anomaly.Query().Where(anomaly.RuleEQ(anomaly.RuleQueueGrowing)).Only(ctx)
		if err != nil {
			t.Fatalf("queue_growing: %v (%v)", err, db.Anomaly.Query().AllX(ctx))
		}
		if a.Facts["pending"] != "1 → 10" {
			t.Fatalf("facts: %v", a.Facts)
		}
	})
}

func TestScheduleMissed(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := sys()
		cfg := &config.Config{Processes: []config.Process{{Name: "vat", Schedules: []config.Schedule{{Name: "daily", Cron: "0 3 * * *", Start: config.MustParseCron("0 3 * * *")}}}}}
		f := newFixture(t, db, monitor.Options{Config: cfg})
		// The process row was created at 02:00; 03:00 passes, nothing runs.
		f.clock.Add(65 * time.Minute)
		db.Robot.Update().SetLastSeenAt(f.clock.Now()).ExecX(ctx)
		if err := f.mon.Detect(ctx); err != nil {
			t.Fatal(err)
		}
		if n := db.Anomaly.Query().CountX(ctx); n != 0 {
			t.Fatalf("%d anomalies within the grace", n)
		}
		f.clock.Add(5 * time.Minute)
		db.Robot.Update().SetLastSeenAt(f.clock.Now()).ExecX(ctx)
		if err := f.mon.Detect(ctx); err != nil {
			t.Fatal(err)
		}
		a := db.Anomaly.Query().OnlyX(ctx)
		if a.Rule != anomaly.RuleScheduleMissed || a.Facts["due"] != "2026-11-22T03:00:00Z" {
			t.Fatalf("schedule: %+v", a)
		}
	})
}

func TestWebhook(t *testing.T) {
	got := make(chan monitor.WebhookPayload, 4)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var p monitor.WebhookPayload
		if err := json.NewDecoder(r.Body).Decode(&p); err != nil {
			t.Errorf("payload: %v", err)
		}
		got <- p
	}))
	defer srv.Close()
	db := storetest.SQLite(t)
	f := newFixture(t, db, monitor.Options{Webhook: monitor.NewWebhook(srv.URL, "warning")})
	ctx, cancel := context.WithCancel(sys())
	done := make(chan struct{})
	go func() { f.mon.Notify(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	f.clock.Add(5 * time.Minute)
	if err := f.mon.Detect(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case p := <-got:
		if p.Event != "anomaly.opened" || p.Rule != "heartbeat_lost" || p.Facts["robot"] != "r1" {
			t.Fatalf("payload: %+v", p)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no webhook call")
	}
}

func ExampleWebhookPayload() {
	b, _ := json.Marshal(monitor.WebhookPayload{Event: "anomaly.opened", ID: 7, Rule: "heartbeat_lost", Severity: "critical", Status: "open",
		Title: "Robot r1: heartbeat lost", Since: time.Date(2026, 11, 22, 2, 0, 0, 0, time.UTC), Facts: map[string]string{"robot": "r1"}})
	fmt.Println(string(b))
	// Output: {"event":"anomaly.opened","id":7,"rule":"heartbeat_lost","severity":"critical","status":"open","title":"Robot r1: heartbeat lost","message":"","since":"2026-11-22T02:00:00Z","facts":{"robot":"r1"}}
}

// TestTaskStuck: work in a pool with no robot opens task_stuck once it has
// waited StuckAfter, with the facts of the wait; a pool whose robot is busy
// on a long run stays quiet however long its queue; the anomaly resolves
// once a robot takes the work. Work held back by a pause is not stuck, but
// a pause longer than PausedAfter with work behind it is work_paused.
func TestTaskStuck(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := sys()
		f := newFixture(t, db, monitor.Options{})
		empty := db.Pool.Create().SetName("empty").SetProvider("local").SetMax(1).SaveX(ctx)
		db.Process.Create().SetName("orphan").SetPoolID(empty.ID).SetRunner("echo").SetMaxWaitSeconds(7200).SaveX(ctx)
		one := []json.RawMessage{json.RawMessage(`{}`)}
		submit := func(proc string, n int) {
			t.Helper()
			in := make([]json.RawMessage, n)
			for i := range in {
				in[i] = one[0]
			}
			if _, err := f.q.Submit(ctx, dispatch.SubmitRequest{CustomerID: f.cust.ID, Process: proc, Inputs: in}); err != nil {
				t.Fatal(err)
			}
		}
		stuck := func() []*ent.Anomaly {
			t.Helper()
			if err := f.mon.Detect(ctx); err != nil {
				t.Fatal(err)
			}
			return db.Anomaly.Query().Where(anomaly.RuleEQ(anomaly.RuleTaskStuck)).AllX(ctx)
		}
		submit("orphan", 2)
		// The night pool: its robot runs a long task with more waiting.
		submit("vat", 3)
		claim, err := f.q.ClaimTask(ctx, f.robot.ID)
		if err != nil || claim == nil {
			t.Fatalf("claim: %v %v", claim, err)
		}
		f.clock.Add(14 * time.Minute)
		if as := stuck(); len(as) != 0 {
			t.Fatalf("task_stuck before the threshold: %+v", as)
		}
		f.clock.Add(2 * time.Minute)
		if _, err := f.q.Heartbeat(ctx, f.robot.ID, claim.Task.ID, claim.Attempt.Number); err != nil {
			t.Fatal(err)
		}
		as := stuck()
		if len(as) != 1 {
			t.Fatalf("task_stuck anomalies: %+v", as)
		}
		a := as[0]
		if *a.PoolID != empty.ID || a.Status != anomaly.StatusOpen || a.Severity != anomaly.SeverityCritical ||
			a.Facts["waiting"] != "2" || a.Facts["robots"] != "none" || a.Facts["expires"] == "" {
			t.Fatalf("anomaly: %+v", a)
		}
		if as := stuck(); len(as) != 1 {
			t.Fatalf("opened twice: %+v", as)
		}
		// A robot joins the empty pool and takes the work.
		r := db.Robot.Create().SetName("e1").SetPoolID(empty.ID).SetState("idle").SetLastSeenAt(f.clock.Now()).SaveX(ctx)
		if c, err := f.q.ClaimTask(ctx, r.ID); err != nil || c == nil {
			t.Fatalf("claim in the empty pool: %v %v", c, err)
		}
		as = stuck()
		if len(as) != 1 || as[0].Status != anomaly.StatusResolved || as[0].Resolution == "" {
			t.Fatalf("after a robot took the work: %+v", as)
		}
		// Work of a paused pool waits on purpose: not stuck.
		paused := db.Pool.Create().SetName("paused").SetProvider("local").SetMax(1).SaveX(ctx)
		db.Process.Create().SetName("held").SetPoolID(paused.ID).SetRunner("echo").SaveX(ctx)
		submit("held", 1)
		if _, err := f.q.PausePool(ctx, "paused", "ops", "maintenance"); err != nil {
			t.Fatal(err)
		}
		f.clock.Add(time.Hour)
		for _, a := range stuck() {
			if *a.PoolID == paused.ID {
				t.Fatalf("task_stuck for a paused pool: %+v", a)
			}
		}
		// But a pause forgotten with work behind it is reported once it
		// lasts PausedAfter (4 h), and resolved by the resume.
		pausedWork := func() []*ent.Anomaly {
			t.Helper()
			if err := f.mon.Detect(ctx); err != nil {
				t.Fatal(err)
			}
			return db.Anomaly.Query().Where(anomaly.RuleEQ(anomaly.RuleWorkPaused)).AllX(ctx)
		}
		if as := pausedWork(); len(as) != 0 {
			t.Fatalf("work_paused after an hour: %+v", as)
		}
		f.clock.Add(3*time.Hour + time.Minute)
		as = pausedWork()
		if len(as) != 1 || *as[0].PoolID != paused.ID || as[0].Status != anomaly.StatusOpen || as[0].Severity != anomaly.SeverityWarning ||
			as[0].Facts["waiting"] != "1" || as[0].Facts["paused by"] != "ops" || as[0].Facts["reason"] != "maintenance" {
			t.Fatalf("work_paused anomalies: %+v", as)
		}
		if _, err := f.q.ResumePool(ctx, "paused", "ops"); err != nil {
			t.Fatal(err)
		}
		if as := pausedWork(); len(as) != 1 || as[0].Status != anomaly.StatusResolved {
			t.Fatalf("work_paused after the resume: %+v", as)
		}
	})
}

const triggersHCL = `
provider "local" { plugin = "local" }
pool "night" {
  provider = "local"
  max      = 2
}
customer "tax" { kind = "department" }
process "vat" {
  pool    = "night"
  builtin = "echo"
  owner   = "tax"
  schedule "night" {
    cron     = "0 3 * * *"
    duration = "1h"
  }
}
trigger "fired" {
  process = "vat"
  cron    = "0 3 * * *"
  slot    = "night"
}
trigger "missed" {
  process = "vat"
  cron    = "0 3 * * *"
  slot    = "night"
}
trigger "paused" {
  process = "vat"
  cron    = "0 3 * * *"
  slot    = "night"
}
`

// Missed runs come from the triggers: a trigger's run without its batch
// past the grace is the anomaly, one fired on time or skipped because an
// operator paused it is not, and the slot the triggers fire into is not
// watched on its own.
func TestScheduleMissedFromTriggers(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := sys()
		cfg, diags, _ := config.LoadSources(map[string][]byte{"t.hcl": []byte(triggersHCL)})
		if diags.HasErrors() {
			t.Fatal(diags)
		}
		f := newFixture(t, db, monitor.Options{Config: cfg})
		proc := db.Process.Query().OnlyX(ctx)
		rows := map[string]int{}
		for _, name := range []string{"fired", "missed", "paused"} {
			c := db.Trigger.Create().SetName(name).SetCustomerID(f.cust.ID).SetProcessID(proc.ID).SetCron("0 3 * * *").SetCreatedAt(f.clock.Now())
			if name == "paused" {
				c.SetPausedAt(f.clock.Now()).SetPausedBy("alice")
			}
			rows[name] = c.SaveX(ctx).ID
		}
		f.clock.Add(61 * time.Minute) // 03:01
		due := time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC)
		id := rows["fired"]
		if _, err := f.q.Submit(ctx, dispatch.SubmitRequest{CustomerID: f.cust.ID, Process: "vat", Inputs: []json.RawMessage{json.RawMessage(`{}`)},
			TriggerID: &id, ScheduledFor: &due}); err != nil {
			t.Fatal(err)
		}
		f.clock.Add(9 * time.Minute) // 03:10, past the grace
		db.Robot.Update().SetLastSeenAt(f.clock.Now()).ExecX(ctx)
		if err := f.mon.Detect(ctx); err != nil {
			t.Fatal(err)
		}
		as := db.Anomaly.Query().AllX(ctx)
		if len(as) != 1 || as[0].Rule != anomaly.RuleScheduleMissed || as[0].Facts["trigger"] != "missed" || as[0].Facts["due"] != "2026-11-22T03:00:00Z" ||
			as[0].CustomerID == nil || *as[0].CustomerID != f.cust.ID {
			t.Fatalf("anomalies: %+v", as)
		}
	})
}

// TestVMGoneOnlyUnasked: a VM that ended unasked (the fleet's vm.gone)
// opens vm_gone; one the scaler released (vm.released, core/scale's
// TestReleasedVMsAreNotGone) opens nothing.
func TestVMGoneOnlyUnasked(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := sys()
		f := newFixture(t, db, monitor.Options{Thresholds: rules.Thresholds{HeartbeatTimeout: time.Hour}})
		end := func(name string, typ events.Type) {
			v := db.VM.Create().SetPoolID(f.pool.ID).SetProvider("local").SetIdempotencyKey("k-" + name).
				SetInstanceID("i-" + name).SetState("deleted").SetCreatedAt(f.clock.Now()).SaveX(ctx)
			r := db.Robot.Create().SetName(name).SetPoolID(f.pool.ID).SetVMID(v.ID).SetState("released").
				SetLastSeenAt(f.clock.Now()).SaveX(ctx)
			events.Create(db.Event, typ, f.clock.Now()).SetPoolID(f.pool.ID).SetRobotID(r.ID).SetMessage(name).SaveX(ctx)
		}
		end("released", events.VMReleased)
		if err := f.mon.Detect(ctx); err != nil {
			t.Fatal(err)
		}
		if n := db.Anomaly.Query().CountX(ctx); n != 0 {
			t.Fatalf("%d anomalies for a released VM", n)
		}
		end("killed", events.VMGone)
		if err := f.mon.Detect(ctx); err != nil {
			t.Fatal(err)
		}
		a := db.Anomaly.Query().OnlyX(ctx)
		if a.Rule != anomaly.RuleVMGone || a.Facts["robot"] != "killed" {
			t.Fatalf("anomaly: %+v", a)
		}
	})
}

// TestDataErrorsByRate: data errors of a process are counted over the last
// hour and raise one anomaly only at the operator's rate: ten in a
// hundred runs open nothing, fifty more open one (not fifty), and it
// resolves by itself once the share falls back.
func TestDataErrorsByRate(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := sys()
		f := newFixture(t, db, monitor.Options{Thresholds: rules.Thresholds{HeartbeatTimeout: 24 * time.Hour, DataErrorRate: 0.2}})
		run := func(n int, res dispatch.Result) {
			t.Helper()
			in := make([]json.RawMessage, n)
			for i := range in {
				in[i] = json.RawMessage(`{}`)
			}
			if _, err := f.q.Submit(ctx, dispatch.SubmitRequest{CustomerID: f.cust.ID, Process: "vat", Inputs: in}); err != nil {
				t.Fatal(err)
			}
			for i := range n {
				c, err := f.q.ClaimTask(ctx, f.robot.ID)
				if err != nil || c == nil {
					t.Fatal(c, err)
				}
				if _, err := f.q.Report(ctx, f.robot.ID, c.Task.ID, c.Attempt.Number, res); err != nil {
					t.Fatal(err)
				}
				if i%10 == 9 {
					if err := f.mon.Detect(ctx); err != nil {
						t.Fatal(err)
					}
				}
			}
		}
		dataErr := dispatch.Result{Class: robotwire.ErrorData, Message: "ordered braised chicken, claims it was dog stew"}
		ok := dispatch.Result{Success: true, Output: json.RawMessage(`{}`)}
		run(90, ok)
		run(10, dataErr)
		if n := db.Anomaly.Query().CountX(ctx); n != 0 {
			t.Fatalf("%d anomalies for 10 data errors in 100 runs under a 20%% rate: %+v", n, db.Anomaly.Query().AllX(ctx))
		}
		run(50, dataErr)
		as := db.Anomaly.Query().AllX(ctx)
		if len(as) != 1 {
			t.Fatalf("%d anomalies after 60 data errors in 150 runs, want 1: %+v", len(as), as)
		}
		a := as[0]
		if a.Rule != anomaly.RuleFailureRate || a.Status != anomaly.StatusOpen || a.Severity != anomaly.SeverityWarning ||
			a.Facts["limit"] != "20%" || a.Facts["data errors"] == "" || a.Facts["process"] != "vat" {
			t.Fatalf("anomaly: %+v", a)
		}
		// Opened when the share first reached the limit (its facts are
		// that moment's), and not once per data error after.
		// An hour later the process runs cleanly: the share falls back.
		f.clock.Add(61 * time.Minute)
		run(10, ok)
		a = db.Anomaly.GetX(ctx, a.ID)
		if a.Status != anomaly.StatusResolved || a.ResolvedBy != "monitor" || a.Resolution == "" {
			t.Fatalf("after the rate fell back: %+v", a)
		}
		if n := db.Anomaly.Query().CountX(ctx); n != 1 {
			t.Fatalf("%d anomalies in all, want 1", n)
		}
	})
}
