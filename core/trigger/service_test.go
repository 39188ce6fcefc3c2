package trigger_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rpacloud/rpacloud/core/config"
	"github.com/rpacloud/rpacloud/core/dispatch"
	"github.com/rpacloud/rpacloud/core/events"
	"github.com/rpacloud/rpacloud/core/lease"
	"github.com/rpacloud/rpacloud/core/store"
	"github.com/rpacloud/rpacloud/core/store/storetest"
	"github.com/rpacloud/rpacloud/core/trigger"
	"github.com/rpacloud/rpacloud/ent"
	"github.com/rpacloud/rpacloud/ent/batch"
	"github.com/rpacloud/rpacloud/ent/event"
	"github.com/rpacloud/rpacloud/ent/privacy"
	enttrigger "github.com/rpacloud/rpacloud/ent/trigger"
)

// clock is the virtual clock every part of a "daemon" reads.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// The week's calendar: Monday 5 October 2026 is a holiday, Saturday 10
// October a working day (调休). Working days of the week at 02:00:
// Tuesday 6 to Saturday 10.
const weekCalendar = `# test calendar
2026-10-05 off
2026-10-10 work # 调休
`

const weekConfig = `
server { timezone = "Asia/Shanghai" }
provider "local" { plugin = "local" }
pool "p" {
  provider = "local"
  max      = 1
}
customer "tax" { kind = "department" }
process "vat" {
  pool    = "p"
  builtin = "echo"
  owner   = "tax"
}
calendar "cn" { file = "cn.txt" }
trigger "skip" {
  process  = "vat"
  cron     = "0 2 * * *"
  calendar = "cn"
  days     = "working"
  catch_up = "skip"
  input_template = "{\"day\":\"{{.Date}}\"}"
}
trigger "once" {
  process  = "vat"
  cron     = "0 2 * * *"
  calendar = "cn"
  days     = "working"
  catch_up = "once"
}
trigger "all" {
  process  = "vat"
  cron     = "0 2 * * *"
  calendar = "cn"
  days     = "working"
  catch_up = "all"
}
`

func loadConfig(t *testing.T, hcl string) *config.Config {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "main.hcl"), []byte(hcl), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "cn.txt"), []byte(weekCalendar), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, diags, _ := config.Load(filepath.Join(dir, "main.hcl"))
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	return cfg
}

// daemon is what a daemon runs of the triggers: its own queue, elector
// and trigger service on the shared database.
type daemon struct {
	name    string
	elector *lease.Elector
	svc     *trigger.Service
}

func newDaemon(t *testing.T, client *ent.Client, cfg *config.Config, clk *clock, name string) *daemon {
	t.Helper()
	q := dispatch.New(client, dispatch.Options{Now: clk.Now, Seed: 1})
	el, err := lease.New(client, "rpacloud.leader", name, lease.Options{TTL: 30 * time.Second, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	return &daemon{name: name, elector: el,
		svc: trigger.New(trigger.Options{Client: client, Queue: q, Config: cfg, Now: clk.Now})}
}

// leads campaigns and reports whether d leads now.
func (d *daemon) leads(t *testing.T, ctx context.Context) bool {
	_, leader, err := d.elector.Campaign(ctx)
	if err != nil {
		t.Fatalf("%s campaign: %v", d.name, err)
	}
	return leader
}

// The "Done when": a week on a virtual clock with a holiday
// calendar, two daemons, a time when both act at once (a failover's
// overlap), an outage with a restart in the middle; each expected run
// starts once and the catch-up rules hold.
func TestWeekTwoDaemons(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := privacy.DecisionContext(context.Background(), privacy.Allow)
		sh, _ := time.LoadLocation("Asia/Shanghai")
		cfg := loadConfig(t, weekConfig)
		if err := store.SyncConfig(ctx, db.Client, cfg); err != nil {
			t.Fatal(err)
		}
		clk := &clock{t: time.Date(2026, 10, 4, 12, 0, 0, 0, sh)}
		a := newDaemon(t, db.Client, cfg, clk, "a")
		b := newDaemon(t, db.Client, cfg, clk, "b")

		outageFrom := time.Date(2026, 10, 7, 1, 0, 0, 0, sh)
		outageTo := time.Date(2026, 10, 8, 9, 0, 0, 0, sh)
		overlapFrom := time.Date(2026, 10, 9, 0, 0, 0, 0, sh)
		overlapTo := time.Date(2026, 10, 10, 12, 0, 0, 0, sh)
		end := time.Date(2026, 10, 12, 0, 0, 0, 0, sh)
		restarted := false
		for now := clk.Now(); now.Before(end); now = now.Add(10 * time.Minute) {
			clk.Set(now)
			switch {
			case !now.Before(outageFrom) && now.Before(outageTo):
				continue // no daemon runs
			case !now.Before(outageTo) && !restarted:
				// Daemon a restarts: a new process, a new lease holder.
				a, restarted = newDaemon(t, db.Client, cfg, clk, "a2"), true
			}
			if !now.Before(overlapFrom) && now.Before(overlapTo) {
				// Both act as leaders at once: only the database's fences
				// (unique batch per run, compare-and-set) keep runs single.
				var wg sync.WaitGroup
				for _, d := range []*daemon{a, b} {
					wg.Go(func() {
						if err := d.svc.Tick(ctx); err != nil {
							t.Errorf("%s tick at %s: %v", d.name, now, err)
						}
					})
				}
				wg.Wait()
				continue
			}
			for _, d := range []*daemon{a, b} {
				if d.leads(t, ctx) {
					if err := d.svc.Tick(ctx); err != nil {
						t.Fatalf("%s tick at %s: %v", d.name, now, err)
					}
				}
			}
		}

		fired := map[string][]string{}
		bs, err := db.Client.Batch.Query().Where(batch.TriggerIDNotNil()).Order(ent.Asc(batch.FieldScheduledFor)).All(ctx)
		if err != nil {
			t.Fatal(err)
		}
		names := map[int]string{}
		for _, tr := range db.Client.Trigger.Query().AllX(ctx) {
			names[tr.ID] = tr.Name
		}
		for _, bt := range bs {
			fired[names[*bt.TriggerID]] = append(fired[names[*bt.TriggerID]], bt.ScheduledFor.In(sh).Format("01-02 15:04"))
		}
		want := map[string]string{
			"skip": "10-06 02:00,10-09 02:00,10-10 02:00",
			"once": "10-06 02:00,10-08 02:00,10-09 02:00,10-10 02:00",
			"all":  "10-06 02:00,10-07 02:00,10-08 02:00,10-09 02:00,10-10 02:00",
		}
		for name, w := range want {
			if got := strings.Join(fired[name], ","); got != w {
				t.Errorf("trigger %s fired %s, want %s", name, got, w)
			}
		}
		// The template rendered the scheduled day in the trigger's zone.
		tasks, err := db.Client.Task.Query().Where().All(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var inputs []string
		for _, tk := range tasks {
			if strings.Contains(tk.Input, "day") {
				inputs = append(inputs, tk.Input)
			}
		}
		sort.Strings(inputs)
		if got := strings.Join(inputs, ","); got != `{"day":"2026-10-06"},{"day":"2026-10-09"},{"day":"2026-10-10"}` {
			t.Errorf("skip's inputs %s", got)
		}
		// Skipped runs are events, once each.
		skipped, err := db.Client.Event.Query().Where(event.Type(string(events.TriggerSkipped))).All(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var msgs []string
		for _, e := range skipped {
			msgs = append(msgs, e.Message)
			if e.CustomerID == nil || e.ProcessID == nil || e.PoolID == nil {
				t.Errorf("skipped event without its subjects: %+v", e)
			}
		}
		sort.Strings(msgs)
		wantMsgs := []string{
			`trigger "once": run of 2026-10-07 02:00 CST skipped: missed while no daemon led (catch_up = once)`,
			`trigger "skip": run of 2026-10-07 02:00 CST skipped: missed while no daemon led (catch_up = skip)`,
			`trigger "skip": run of 2026-10-08 02:00 CST skipped: missed while no daemon led (catch_up = skip)`,
		}
		if strings.Join(msgs, "\n") != strings.Join(wantMsgs, "\n") {
			t.Errorf("skipped events:\n%s\nwant:\n%s", strings.Join(msgs, "\n"), strings.Join(wantMsgs, "\n"))
		}
		firedEvents, err := db.Client.Event.Query().Where(event.Type(string(events.TriggerFired))).Count(ctx)
		if err != nil || firedEvents != len(bs) {
			t.Errorf("%d fired events for %d batches (%v)", firedEvents, len(bs), err)
		}
	})
}

const pauseConfig = `
provider "local" { plugin = "local" }
pool "p" {
  provider = "local"
  max      = 1
}
customer "tax" {}
process "vat" {
  pool    = "p"
  builtin = "echo"
  owner   = "tax"
}
trigger "hourly" {
  process = "vat"
  cron    = "0 * * * *"
  inputs  = [{ n = 1 }, { n = 2 }]
}
`

// A paused trigger, process or pool fires nothing: its due runs are
// skipped with the reason; a pause survives a configuration sync; fire
// now starts one run at the current time.
func TestPauseResumeFireNow(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := privacy.DecisionContext(context.Background(), privacy.Allow)
		cfg := loadConfig(t, pauseConfig)
		if err := store.SyncConfig(ctx, db.Client, cfg); err != nil {
			t.Fatal(err)
		}
		clk := &clock{t: time.Date(2026, 1, 5, 9, 30, 0, 0, time.UTC)}
		d := newDaemon(t, db.Client, cfg, clk, "a")
		step := func(to string) {
			t.Helper()
			at, _ := time.Parse("15:04", to)
			clk.Set(time.Date(2026, 1, 5, at.Hour(), at.Minute(), 0, 0, time.UTC))
			if err := d.svc.Tick(ctx); err != nil {
				t.Fatal(err)
			}
		}
		step("09:30") // first seen: starts now
		step("10:00") // fires 10:00
		if _, err := d.svc.SetPaused(ctx, "hourly", true, "alice", "month-end freeze"); err != nil {
			t.Fatal(err)
		}
		// A sync (a reload) keeps the pause.
		if err := store.SyncConfig(ctx, db.Client, cfg); err != nil {
			t.Fatal(err)
		}
		step("11:00") // skipped: paused
		if _, err := d.svc.SetPaused(ctx, "hourly", false, "alice", ""); err != nil {
			t.Fatal(err)
		}
		step("12:00") // fires
		// A paused process stops its triggers too.
		db.Client.Process.Update().SetPausedAt(clk.Now()).SetPausedBy("bob").ExecX(ctx)
		step("13:00")
		db.Client.Process.Update().ClearPausedAt().ClearPausedBy().ExecX(ctx)

		clk.Set(time.Date(2026, 1, 5, 13, 20, 0, 0, time.UTC))
		b, err := d.svc.FireNow(ctx, "hourly", "carol")
		if err != nil {
			t.Fatal(err)
		}
		if b.Total != 2 || b.SubmittedBy != "carol" || !b.ScheduledFor.Equal(clk.Now()) {
			t.Errorf("fire now: %+v", b)
		}
		step("14:00")

		var got []string
		for _, bt := range db.Client.Batch.Query().Order(ent.Asc(batch.FieldScheduledFor)).AllX(ctx) {
			got = append(got, bt.ScheduledFor.Format("15:04"))
		}
		if want := "10:00,12:00,13:20,14:00"; strings.Join(got, ",") != want {
			t.Errorf("batches for %s, want %s", strings.Join(got, ","), want)
		}
		var msgs []string
		for _, e := range db.Client.Event.Query().Where(event.TypeHasPrefix(events.FamilyTrigger)).Order(ent.Asc(event.FieldID)).AllX(ctx) {
			msgs = append(msgs, e.Type+" "+e.Message)
		}
		for _, w := range []string{
			`trigger.paused trigger "hourly" paused by alice: month-end freeze`,
			`trigger.skipped trigger "hourly": run of 2026-01-05 11:00 UTC skipped: paused: the trigger is paused by alice: month-end freeze`,
			`trigger.resumed trigger "hourly" resumed by alice`,
			`trigger.skipped trigger "hourly": run of 2026-01-05 13:00 UTC skipped: paused: process "vat" is paused by bob`,
			`trigger.fired trigger "hourly": fired now by carol`,
		} {
			found := false
			for _, m := range msgs {
				found = found || m == w
			}
			if !found {
				t.Errorf("no event %q in\n%s", w, strings.Join(msgs, "\n"))
			}
		}
		// Unknown names answer ErrUnknown.
		if _, err := d.svc.FireNow(ctx, "nope", "carol"); err == nil || !strings.Contains(err.Error(), trigger.ErrUnknown.Error()) {
			t.Errorf("fire unknown: %v", err)
		}
		row := db.Client.Trigger.Query().Where(enttrigger.Name("hourly")).OnlyX(ctx)
		if row.PausedAt != nil || row.LastScheduledFor == nil || !row.LastScheduledFor.Equal(time.Date(2026, 1, 5, 14, 0, 0, 0, time.UTC)) {
			t.Errorf("row %+v", row)
		}
	})
}

// A long outage of a minutely trigger: catch_up = "all" fires the latest
// MaxCatchUp missed runs once each, over several passes, and the skipped ones
// are summed up in a bounded number of events.
func TestLongOutageBounded(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := privacy.DecisionContext(context.Background(), privacy.Allow)
		cfg := loadConfig(t, strings.Replace(pauseConfig, `cron    = "0 * * * *"
  inputs  = [{ n = 1 }, { n = 2 }]`, `cron     = "* * * * *"
  catch_up = "all"`, 1))
		if err := store.SyncConfig(ctx, db.Client, cfg); err != nil {
			t.Fatal(err)
		}
		start := time.Date(2026, 1, 5, 0, 0, 30, 0, time.UTC)
		clk := &clock{t: start}
		d := newDaemon(t, db.Client, cfg, clk, "a")
		if err := d.svc.Tick(ctx); err != nil { // first seen
			t.Fatal(err)
		}
		clk.Set(start.Add(2500 * time.Minute)) // down for 2500 runs
		for range 4 {
			if err := d.svc.Tick(ctx); err != nil {
				t.Fatal(err)
			}
		}
		bs := db.Client.Batch.Query().Order(ent.Asc(batch.FieldScheduledFor)).AllX(ctx)
		// The latest 100 missed runs, and the 2 of the last 2 minutes,
		// which are on time whatever the rule.
		if len(bs) != 102 || !bs[101].ScheduledFor.Equal(time.Date(2026, 1, 6, 17, 40, 0, 0, time.UTC)) {
			t.Fatalf("%d batches, the last for %v", len(bs), bs[len(bs)-1].ScheduledFor)
		}
		n := db.Client.Event.Query().Where(event.Type(string(events.TriggerSkipped))).CountX(ctx)
		if n == 0 || n > 3*11 {
			t.Errorf("%d skipped events", n)
		}
	})
}

// A changed schedule, and a trigger added back after a removal, start
// afresh: the runs between were never due under the configuration, so
// none fires as "missed while no daemon led" and none is recorded as
// skipped.
func TestScheduleChangeStartsAfresh(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := privacy.DecisionContext(context.Background(), privacy.Allow)
		at3 := strings.Replace(pauseConfig, `cron    = "0 * * * *"`, `cron     = "0 3 * * *"
  catch_up = "all"`, 1)
		cfg := loadConfig(t, at3)
		if err := store.SyncConfig(ctx, db.Client, cfg); err != nil {
			t.Fatal(err)
		}
		start := time.Date(2026, 1, 5, 1, 0, 0, 0, time.UTC)
		clk := &clock{t: start}
		if err := newDaemon(t, db.Client, cfg, clk, "a").svc.Tick(ctx); err != nil { // first seen at 01:00
			t.Fatal(err)
		}
		// At 02:30 the run moves to 02:00: today's 02:00 was never due.
		clk.Set(start.Add(90 * time.Minute))
		at2 := loadConfig(t, strings.Replace(at3, `"0 3 * * *"`, `"0 2 * * *"`, 1))
		if err := store.SyncConfig(ctx, db.Client, at2); err != nil {
			t.Fatal(err)
		}
		d := newDaemon(t, db.Client, at2, clk, "a")
		for range 2 {
			if err := d.svc.Tick(ctx); err != nil {
				t.Fatal(err)
			}
		}
		// Removed, then added back a month later: the month was never due.
		none := loadConfig(t, at3[:strings.Index(at3, `trigger "hourly"`)])
		if err := store.SyncConfig(ctx, db.Client, none); err != nil {
			t.Fatal(err)
		}
		clk.Set(start.AddDate(0, 1, 0))
		if err := store.SyncConfig(ctx, db.Client, at2); err != nil {
			t.Fatal(err)
		}
		for range 2 {
			if err := d.svc.Tick(ctx); err != nil {
				t.Fatal(err)
			}
		}
		if n := db.Client.Batch.Query().CountX(ctx); n != 0 {
			t.Errorf("%d batches of runs never due", n)
		}
		if evs := db.Client.Event.Query().Where(event.Type(string(events.TriggerSkipped))).AllX(ctx); len(evs) != 0 {
			t.Errorf("%d skipped events of runs never due, the first: %s", len(evs), evs[0].Message)
		}
		// The new schedule fires on time.
		clk.Set(time.Date(2026, 2, 5, 2, 0, 30, 0, time.UTC))
		if err := d.svc.Tick(ctx); err != nil {
			t.Fatal(err)
		}
		if n := db.Client.Batch.Query().CountX(ctx); n != 1 {
			t.Errorf("%d batches after the new schedule's run, want 1", n)
		}
	})
}

// A leader that fired a run and stopped before it advanced the trigger
// (a crash, or two leaders in a failover) left the run due; the next
// leader does not record it as skipped: it has its batch.
func TestFiredRunNotRecordedSkipped(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := privacy.DecisionContext(context.Background(), privacy.Allow)
		cfg := loadConfig(t, pauseConfig) // hourly, catch_up = skip
		if err := store.SyncConfig(ctx, db.Client, cfg); err != nil {
			t.Fatal(err)
		}
		start := time.Date(2026, 1, 5, 0, 30, 0, 0, time.UTC)
		clk := &clock{t: start}
		d := newDaemon(t, db.Client, cfg, clk, "a")
		if err := d.svc.Tick(ctx); err != nil { // first seen
			t.Fatal(err)
		}
		// The crashed leader fired 01:00 on time and never advanced.
		row := db.Client.Trigger.Query().Where(enttrigger.Name("hourly")).OnlyX(ctx)
		fired := time.Date(2026, 1, 5, 1, 0, 0, 0, time.UTC)
		q := dispatch.New(db.Client, dispatch.Options{Now: clk.Now, Seed: 1})
		if _, err := q.Submit(ctx, dispatch.SubmitRequest{CustomerID: row.CustomerID, Process: "vat", Label: "x",
			Inputs: []json.RawMessage{json.RawMessage(`{}`)}, SubmittedBy: "trigger/hourly", TriggerID: &row.ID, ScheduledFor: &fired,
			FiredBy: "trigger \"hourly\": scheduled run"}); err != nil {
			t.Fatal(err)
		}
		clk.Set(time.Date(2026, 1, 5, 4, 30, 0, 0, time.UTC)) // 01:00 to 04:00 due, all missed
		if err := d.svc.Tick(ctx); err != nil {
			t.Fatal(err)
		}
		evs := db.Client.Event.Query().Where(event.Type(string(events.TriggerSkipped))).AllX(ctx)
		var got []string
		for _, e := range evs {
			got = append(got, e.Message)
			if strings.Contains(e.Message, "01:00") {
				t.Errorf("the fired run is recorded as skipped: %s", e.Message)
			}
		}
		if len(evs) != 3 {
			t.Errorf("skipped events %q, want 02:00, 03:00, 04:00", got)
		}
	})
}

// After an outage longer than one list of runs, one pass reaches the runs
// due now while they are on time: it lists again until the list is whole
// (a minutely trigger down 30 days needed 44 passes, and the runs due
// meanwhile fell out of the on-time window and were skipped).
func TestLongOutageCaughtUpInOnePass(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := privacy.DecisionContext(context.Background(), privacy.Allow)
		cfg := loadConfig(t, strings.Replace(pauseConfig, `cron    = "0 * * * *"`, `cron    = "* * * * *"`, 1))
		if err := store.SyncConfig(ctx, db.Client, cfg); err != nil {
			t.Fatal(err)
		}
		start := time.Date(2026, 1, 5, 0, 0, 30, 0, time.UTC)
		clk := &clock{t: start}
		d := newDaemon(t, db.Client, cfg, clk, "a")
		if err := d.svc.Tick(ctx); err != nil { // first seen
			t.Fatal(err)
		}
		now := start.AddDate(0, 0, 30)
		clk.Set(now)
		if err := d.svc.Tick(ctx); err != nil {
			t.Fatal(err)
		}
		row := db.Client.Trigger.Query().Where(enttrigger.Name("hourly")).OnlyX(ctx)
		if last := now.Truncate(time.Minute); row.LastScheduledFor == nil || !row.LastScheduledFor.Equal(last) {
			t.Fatalf("after one pass the trigger handled runs up to %v, want %v", row.LastScheduledFor, last)
		}
		// catch_up = skip: the runs of the last 2 minutes are on time.
		if n := db.Client.Batch.Query().CountX(ctx); n != 2 {
			t.Errorf("%d batches, want the 2 on-time runs", n)
		}
		if n := db.Client.Event.Query().Where(event.Type(string(events.TriggerSkipped))).CountX(ctx); n > 48+11 {
			t.Errorf("%d skipped events", n)
		}
	})
}

// A pool serves several departments: a run skipped because the pool is
// paused says so, not who paused it or why (free text, perhaps about
// another department).
func TestPoolPauseReasonNotInSkips(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := privacy.DecisionContext(context.Background(), privacy.Allow)
		cfg := loadConfig(t, pauseConfig)
		if err := store.SyncConfig(ctx, db.Client, cfg); err != nil {
			t.Fatal(err)
		}
		clk := &clock{t: time.Date(2026, 1, 5, 9, 30, 0, 0, time.UTC)}
		d := newDaemon(t, db.Client, cfg, clk, "a")
		if err := d.svc.Tick(ctx); err != nil { // first seen
			t.Fatal(err)
		}
		db.Client.Pool.Update().SetPausedAt(clk.Now()).SetPausedBy("root").SetPauseReason("LEAKR other dept audit").ExecX(ctx)
		clk.Set(time.Date(2026, 1, 5, 10, 0, 30, 0, time.UTC))
		if err := d.svc.Tick(ctx); err != nil {
			t.Fatal(err)
		}
		evs := db.Client.Event.Query().Where(event.Type(string(events.TriggerSkipped))).AllX(ctx)
		want := `trigger "hourly": run of 2026-01-05 10:00 UTC skipped: paused: pool "p" is paused`
		if len(evs) != 1 || evs[0].Message != want {
			var got []string
			for _, e := range evs {
				got = append(got, e.Message)
			}
			t.Errorf("skipped events %q, want [%q]", got, want)
		}
	})
}

// Pauses at once: one changes the trigger and records the event.
func TestConcurrentPausesRecordOne(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := privacy.DecisionContext(context.Background(), privacy.Allow)
		cfg := loadConfig(t, pauseConfig)
		if err := store.SyncConfig(ctx, db.Client, cfg); err != nil {
			t.Fatal(err)
		}
		clk := &clock{t: time.Date(2026, 1, 5, 9, 30, 0, 0, time.UTC)}
		d := newDaemon(t, db.Client, cfg, clk, "a")
		var wg sync.WaitGroup
		for i := range 4 {
			wg.Go(func() {
				if _, err := d.svc.SetPaused(ctx, "hourly", true, fmt.Sprint("op", i), ""); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if n := db.Client.Event.Query().Where(event.Type(string(events.TriggerPaused))).CountX(ctx); n != 1 {
			t.Errorf("%d paused events of one pause, want 1", n)
		}
	})
}
