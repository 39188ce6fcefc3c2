package rules

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC)

func at(d time.Duration) time.Time { return t0.Add(d) }

func tp(d time.Duration) *time.Time { v := at(d); return &v }

// verdict summarises the findings of one rule: key → "active"/"clear".
func verdict(fs []Finding, r Rule) map[string]string {
	out := map[string]string{}
	for _, f := range fs {
		if f.Rule != r {
			continue
		}
		if f.Active {
			out[f.Key] = "active:" + string(f.Severity)
		} else {
			out[f.Key] = "clear"
		}
	}
	return out
}

func TestHeartbeatLost(t *testing.T) {
	run := &Run{TaskID: 9, Attempt: 2, ProcessID: 3, PoolID: 1, Process: "vat", Customer: "tax", StartedAt: at(-5 * time.Minute)}
	cases := []struct {
		name  string
		robot Robot
		want  string // "" = no finding
	}{
		{"never checked in", Robot{ID: 1, State: "provisioning"}, ""},
		{"idle, fresh", Robot{ID: 1, State: "idle", LastSeen: tp(-10 * time.Second)}, "clear"},
		{"idle, exactly at timeout", Robot{ID: 1, State: "idle", LastSeen: tp(-60 * time.Second)}, "clear"},
		{"idle, silent", Robot{ID: 1, State: "idle", LastSeen: tp(-61 * time.Second)}, "active:warning"},
		{"busy with a run, silent", Robot{ID: 1, State: "busy", LastSeen: tp(-2 * time.Minute), Run: run}, "active:critical"},
		{"released, no run", Robot{ID: 1, State: "released", LastSeen: tp(-time.Hour)}, ""},
		{"released while holding a run", Robot{ID: 1, State: "released", LastSeen: tp(-2 * time.Minute), Run: run}, "active:critical"},
		{"offline", Robot{ID: 1, State: "offline", LastSeen: tp(-time.Hour)}, ""},
		{"suspect, silent", Robot{ID: 1, State: "suspect", LastSeen: tp(-5 * time.Minute)}, "active:warning"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fs := Evaluate(State{Now: t0, Robots: []Robot{c.robot}}, Thresholds{})
			got := verdict(fs, HeartbeatLost)["heartbeat_lost/robot/1"]
			if got != c.want {
				t.Fatalf("got %q, want %q", got, c.want)
			}
		})
	}
	fs := Evaluate(State{Now: t0, Robots: []Robot{{ID: 1, Name: "r1", Pool: "p", State: "busy", LastSeen: tp(-2 * time.Minute), Run: run}}}, Thresholds{})
	f := fs[0]
	if f.Facts["process"] != "vat" || f.Facts["task"] != "9" || f.Facts["department"] != "tax" || !f.Since.Equal(at(-2*time.Minute)) {
		t.Fatalf("facts of a lost busy robot: %+v since %s", f.Facts, f.Since)
	}
	if *f.Subject.TaskID != 9 || *f.Subject.RobotID != 1 {
		t.Fatalf("subject: %+v", f.Subject)
	}
	if !strings.Contains(f.Title, "heartbeat lost") {
		t.Fatalf("title %q", f.Title)
	}
	// A shorter timeout from the configuration applies.
	fs = Evaluate(State{Now: t0, Robots: []Robot{{ID: 1, State: "idle", LastSeen: tp(-11 * time.Second)}}}, Thresholds{HeartbeatTimeout: 10 * time.Second})
	if verdict(fs, HeartbeatLost)["heartbeat_lost/robot/1"] != "active:warning" {
		t.Fatal("custom heartbeat timeout ignored")
	}
}

func TestRunHung(t *testing.T) {
	cases := []struct {
		name    string
		started time.Duration
		expect  time.Duration
		want    string
	}{
		{"within its duration", -5 * time.Minute, 10 * time.Minute, ""},
		{"past duration, within grace", -10*time.Minute - 20*time.Second, 10 * time.Minute, ""},
		{"past duration and grace", -11 * time.Minute, 10 * time.Minute, "active:warning"},
		{"twice its duration", -20 * time.Minute, 10 * time.Minute, "active:critical"},
		{"no expected duration", -20 * time.Hour, 0, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := Run{TaskID: 4, Attempt: 1, Process: "p", StartedAt: at(c.started), Expected: c.expect}
			got := verdict(Evaluate(State{Now: t0, Runs: []Run{r}}, Thresholds{}), RunHung)["run_hung/task/4/1"]
			if got != c.want {
				t.Fatalf("got %q, want %q", got, c.want)
			}
		})
	}
}

func TestRunFaulted(t *testing.T) {
	cases := []struct {
		name string
		f    Fault
		want string
	}{
		{"retries exhausted", Fault{TaskID: 1, Reason: "retries_exhausted", At: at(-time.Minute)}, "active:critical"},
		{"vendor job faulted", Fault{TaskID: 1, Reason: "faulted", Vendor: "uipath", At: at(-time.Minute)}, "active:critical"},
		// One data error is the customer's input, no interruption: never a
		// card per task (dataErrors judges their rate).
		{"data error", Fault{TaskID: 1, Reason: "data_error", At: at(-time.Minute)}, "clear"},
		{"recovered", Fault{TaskID: 1, Reason: "timeout_exhausted", At: at(-time.Hour), RecoveredAt: tp(-time.Minute)}, "clear"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fs := Evaluate(State{Now: t0, Faults: []Fault{c.f}}, Thresholds{})
			if got := verdict(fs, RunFaulted)["run_faulted/task/1"]; got != c.want {
				t.Fatalf("got %q, want %q", got, c.want)
			}
			if c.f.Vendor == "uipath" && fs[0].Subject.Vendor != "uipath" {
				t.Fatalf("vendor: %+v", fs[0].Subject)
			}
		})
	}
}

func TestVendorJobFaulted(t *testing.T) {
	f := Fault{ProcessID: 4, Process: "month-end", Vendor: "uipath", ExternalID: "j1", Reason: "faulted", Error: "Selector not found", Robot: "UIR-01", At: at(-time.Minute)}
	fs := Evaluate(State{Now: t0, Faults: []Fault{f}}, Thresholds{})
	if got := verdict(fs, RunFaulted)["run_faulted/job/uipath/j1"]; got != "active:critical" {
		t.Fatalf("got %q (%+v)", got, fs)
	}
	if fs[0].Subject.TaskID != nil || fs[0].Subject.PoolID != nil || fs[0].Facts["job"] != "j1" || fs[0].Facts["task"] != "" {
		t.Fatalf("vendor job finding: %+v", fs[0])
	}
}

func TestVMGone(t *testing.T) {
	for _, c := range []struct {
		name     string
		replaced string
		want     string
	}{{"not replaced", "", "active:warning"}, {"replaced", "i-2", "clear"}} {
		t.Run(c.name, func(t *testing.T) {
			v := VMLoss{VMID: 5, PoolID: 1, InstanceID: "i-1", At: at(-time.Minute), ReplacedBy: c.replaced}
			if got := verdict(Evaluate(State{Now: t0, VMs: []VMLoss{v}}, Thresholds{}), VMGone)["vm_gone/vm/5"]; got != c.want {
				t.Fatalf("got %q, want %q", got, c.want)
			}
		})
	}
}

func TestScheduleMissed(t *testing.T) {
	due := at(-10 * time.Minute)
	cases := []struct {
		name    string
		due     time.Time
		started *time.Time
		want    string
	}{
		{"started on time", due, tp(-9 * time.Minute), ""},
		{"not started, within grace", at(-4 * time.Minute), nil, ""},
		{"not started past grace", due, nil, "active:critical"},
		{"started late", due, tp(-time.Minute), "clear"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := ScheduledRun{ProcessID: 2, Process: "vat", Schedule: "night", Due: c.due, StartedAt: c.started}
			v := verdict(Evaluate(State{Now: t0, Schedules: []ScheduledRun{s}}, Thresholds{}), ScheduleMissed)
			got := v["schedule_missed/process/2/night/"+strconv.FormatInt(c.due.Unix(), 10)]
			if got != c.want {
				t.Fatalf("got %q, want %q (%v)", got, c.want, v)
			}
		})
	}
}

func TestFailureRate(t *testing.T) {
	cases := []struct {
		name                        string
		recentN, recentF, baseN, bF int
		want                        string
	}{
		{"too few recent runs", 5, 5, 100, 1, ""},
		{"too few baseline runs", 20, 20, 5, 0, ""},
		{"steady", 20, 2, 100, 10, "clear"},
		{"jump from zero", 20, 6, 100, 0, "active:warning"},
		{"jump to half", 20, 10, 100, 10, "active:critical"},
		{"high but always so", 20, 12, 100, 55, "clear"},
		{"exactly the jump", 20, 7, 100, 10, "active:warning"},
		{"just under the jump", 100, 34, 100, 10, "clear"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := ProcessStats{ProcessID: 3, Process: "vat", RecentRuns: c.recentN, RecentFailures: c.recentF, BaselineRuns: c.baseN, BaselineFailures: c.bF, RecentWindow: time.Hour}
			got := verdict(Evaluate(State{Now: t0, Processes: []ProcessStats{p}}, Thresholds{}), FailureRate)["failure_rate/process/3"]
			if got != c.want {
				t.Fatalf("got %q, want %q", got, c.want)
			}
		})
	}
}

func TestQueueGrowing(t *testing.T) {
	smp := func(robots int, pending ...int) []Sample {
		var out []Sample
		for i, p := range pending {
			out = append(out, Sample{At: at(time.Duration(i-len(pending)) * 10 * time.Second), Robots: robots, Pending: p})
		}
		return out
	}
	cases := []struct {
		name    string
		samples []Sample
		want    string
	}{
		{"too few samples", smp(4, 1, 2, 3), ""},
		{"growing at max", smp(4, 10, 12, 12, 15), "active:warning"},
		{"growing below max", smp(3, 10, 12, 13, 15), "clear"},
		{"flat at max", smp(4, 10, 10, 10, 10), "clear"},
		{"dipped in between", smp(4, 10, 12, 11, 15), "clear"},
		{"old dip outside the window", smp(4, 20, 10, 11, 12, 13), "active:warning"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := PoolSeries{PoolID: 1, Pool: "p", Max: 4, Samples: c.samples}
			got := verdict(Evaluate(State{Now: t0, Pools: []PoolSeries{p}}, Thresholds{}), QueueGrowing)["queue_growing/pool/1"]
			if got != c.want {
				t.Fatalf("got %q, want %q", got, c.want)
			}
		})
	}
}

func TestReconcile(t *testing.T) {
	active := func(k string) Finding { return Finding{Rule: RuleOfKey(k), Key: k, Active: true} }
	clear := func(k, why string) Finding { return Finding{Rule: RuleOfKey(k), Key: k, Resolution: why} }
	cases := []struct {
		name        string
		open        []Open
		findings    []Finding
		wantCreate  []string
		wantResolve []string
	}{
		{"new finding opens", nil, []Finding{active("heartbeat_lost/robot/1")}, []string{"heartbeat_lost/robot/1"}, nil},
		{"open stays open", []Open{{1, "heartbeat_lost/robot/1"}}, []Finding{active("heartbeat_lost/robot/1")}, nil, nil},
		{"explicit clear resolves", []Open{{1, "heartbeat_lost/robot/1"}}, []Finding{clear("heartbeat_lost/robot/1", "back")}, nil, []string{"heartbeat_lost/robot/1:back"}},
		{"absent state rule resolves", []Open{{1, "run_hung/task/4/1"}}, nil, nil, []string{"run_hung/task/4/1:condition no longer observed"}},
		{"absent sticky rule stays", []Open{{1, "run_faulted/task/4"}}, nil, nil, nil},
		{"clear without open does nothing", nil, []Finding{clear("vm_gone/vm/1", "x")}, nil, nil},
		{"active wins over clear", nil, []Finding{active("vm_gone/vm/1"), clear("vm_gone/vm/1", "x")}, []string{"vm_gone/vm/1"}, nil},
		{"sorted", nil, []Finding{active("vm_gone/vm/2"), active("heartbeat_lost/robot/1")}, []string{"heartbeat_lost/robot/1", "vm_gone/vm/2"}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := Reconcile(c.open, c.findings)
			var created, resolved []string
			for _, f := range p.Create {
				created = append(created, f.Key)
			}
			for _, r := range p.Resolve {
				resolved = append(resolved, r.Key+":"+r.Resolution)
			}
			if strings.Join(created, ",") != strings.Join(c.wantCreate, ",") || strings.Join(resolved, ",") != strings.Join(c.wantResolve, ",") {
				t.Fatalf("create %v resolve %v; want %v %v", created, resolved, c.wantCreate, c.wantResolve)
			}
		})
	}
}

func TestRuleOfKey(t *testing.T) {
	for k, want := range map[string]Rule{"heartbeat_lost/robot/1": HeartbeatLost, "queue_growing": QueueGrowing} {
		if got := RuleOfKey(k); got != want {
			t.Errorf("RuleOfKey(%q) = %q", k, got)
		}
	}
	if !RunFaulted.Sticky() || !ScheduleMissed.Sticky() || HeartbeatLost.Sticky() {
		t.Error("sticky rules")
	}
}

func TestTaskStuck(t *testing.T) {
	run := Run{TaskID: 1, Attempt: 1, ProcessID: 3, PoolID: 1, StartedAt: at(-time.Minute)}
	cases := []struct {
		name   string
		work   PoolWork
		robots []Robot
		runs   []Run
		want   string
	}{
		{"no work", PoolWork{PoolID: 1, Pool: "p"}, nil, nil, "clear"},
		{"no robots, waiting 20m", PoolWork{PoolID: 1, Pool: "p", Pending: 3, OldestSubmitted: at(-20 * time.Minute)}, nil, nil, "active:critical"},
		{"no robots, waiting 14m", PoolWork{PoolID: 1, Pool: "p", Pending: 3, OldestSubmitted: at(-14 * time.Minute)}, nil, nil, "clear"},
		{"no robots, exactly at threshold", PoolWork{PoolID: 1, Pool: "p", Pending: 3, OldestSubmitted: at(-15 * time.Minute)}, nil, nil, "active:critical"},
		{"robots busy with long runs", PoolWork{PoolID: 1, Pool: "p", Pending: 3, OldestSubmitted: at(-2 * time.Hour), LastActivity: tp(-time.Hour)},
			[]Robot{{ID: 1, PoolID: 1, State: "busy"}}, []Run{run}, "clear"},
		{"dispatched lately", PoolWork{PoolID: 1, Pool: "p", Pending: 3, OldestSubmitted: at(-2 * time.Hour), LastActivity: tp(-5 * time.Minute)},
			[]Robot{{ID: 1, PoolID: 1, State: "idle"}}, nil, "clear"},
		{"idle robot that takes nothing", PoolWork{PoolID: 1, Pool: "p", Pending: 1, OldestSubmitted: at(-2 * time.Hour), LastActivity: tp(-20 * time.Minute)},
			[]Robot{{ID: 1, PoolID: 1, State: "idle"}}, nil, "active:critical"},
		{"a run in another pool", PoolWork{PoolID: 2, Pool: "q", Pending: 1, OldestSubmitted: at(-time.Hour)}, nil, []Run{run}, "active:critical"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fs := Evaluate(State{Now: t0, Robots: c.robots, Runs: c.runs, Waiting: []PoolWork{c.work}}, Thresholds{})
			key := "task_stuck/pool/" + strconv.Itoa(c.work.PoolID)
			if got := verdict(fs, TaskStuck)[key]; got != c.want {
				t.Fatalf("got %q, want %q", got, c.want)
			}
		})
	}
	// The facts say what waits, since when, what the robots are doing and
	// when the work expires.
	w := PoolWork{PoolID: 1, Pool: "p", Pending: 4, OldestSubmitted: at(-time.Hour), ExpiresAt: tp(23 * time.Hour)}
	robots := []Robot{{ID: 1, PoolID: 1, State: "suspect"}, {ID: 2, PoolID: 1, State: "draining"}, {ID: 3, PoolID: 9, State: "idle"}}
	var f Finding
	for _, x := range Evaluate(State{Now: t0, Robots: robots, Waiting: []PoolWork{w}}, Thresholds{StuckAfter: 30 * time.Minute}) {
		if x.Rule == TaskStuck {
			f = x
		}
	}
	if !f.Active || f.Facts["waiting"] != "4" || f.Facts["robots"] != "1 draining, 1 suspect" || f.Facts["expires"] != ts(at(23*time.Hour)) ||
		!f.Since.Equal(at(-time.Hour)) || *f.Subject.PoolID != 1 || !strings.Contains(f.Message, "4 tasks wait in pool p") {
		t.Fatalf("finding: %+v", f)
	}
	// Opened while the work waits, resolved once a robot takes it.
	p := Reconcile(nil, []Finding{f})
	if len(p.Create) != 1 || p.Create[0].Key != "task_stuck/pool/1" {
		t.Fatalf("plan: %+v", p)
	}
	w.LastActivity = tp(0)
	p = Reconcile([]Open{{ID: 7, Key: "task_stuck/pool/1"}}, Evaluate(State{Now: t0, Waiting: []PoolWork{w}}, Thresholds{}))
	if len(p.Create) != 0 || len(p.Resolve) != 1 || !strings.Contains(p.Resolve[0].Resolution, "dispatched or reported work") {
		t.Fatalf("plan after a dispatch: %+v", p)
	}
	if RuleOfKey("task_stuck/pool/1").Sticky() {
		t.Fatal("task_stuck is a condition of the present, not sticky")
	}
}

// A pool or process paused for longer than PausedAfter with work waiting
// behind it is reported (warning): paused work never expires and is never
// stuck, so a forgotten pause was silent. A pause with nothing waiting, or
// a recent one, is not; a resume (the pause gone from the snapshot)
// resolves it.
func TestWorkPaused(t *testing.T) {
	cases := []struct {
		name string
		p    PausedWork
		want string
	}{
		{"pool paused 5h with work", PausedWork{Kind: "pool", ID: 1, Name: "p", PausedAt: at(-5 * time.Hour), PausedBy: "ops", Reason: "maintenance", Pending: 12}, "active:warning"},
		{"process paused 5h with work", PausedWork{Kind: "process", ID: 3, Name: "vat", PausedAt: at(-5 * time.Hour), Pending: 1}, "active:warning"},
		{"paused 3h with work", PausedWork{Kind: "pool", ID: 1, Name: "p", PausedAt: at(-3 * time.Hour), Pending: 12}, "clear"},
		{"paused 5h, nothing waits", PausedWork{Kind: "pool", ID: 1, Name: "p", PausedAt: at(-5 * time.Hour)}, "clear"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fs := Evaluate(State{Now: t0, Paused: []PausedWork{c.p}}, Thresholds{})
			key := "work_paused/" + c.p.Kind + "/" + strconv.Itoa(c.p.ID)
			if got := verdict(fs, WorkPaused)[key]; got != c.want {
				t.Fatalf("got %q, want %q", got, c.want)
			}
		})
	}
	p := PausedWork{Kind: "pool", ID: 1, Name: "p", PausedAt: at(-5 * time.Hour), PausedBy: "ops", Reason: "maintenance", Pending: 12}
	var f Finding
	for _, x := range Evaluate(State{Now: t0, Paused: []PausedWork{p}}, Thresholds{PausedAfter: time.Hour}) {
		if x.Rule == WorkPaused {
			f = x
		}
	}
	if !f.Active || f.Facts["waiting"] != "12" || f.Facts["paused by"] != "ops" || f.Subject.PoolID == nil || *f.Subject.PoolID != 1 ||
		!f.Since.Equal(at(-5*time.Hour)) || !strings.Contains(f.Message, "12 tasks wait behind it") {
		t.Fatalf("finding: %+v", f)
	}
	plan := Reconcile(nil, []Finding{f})
	if len(plan.Create) != 1 || plan.Create[0].Key != "work_paused/pool/1" {
		t.Fatalf("plan: %+v", plan)
	}
	plan = Reconcile([]Open{{ID: 7, Key: "work_paused/pool/1"}}, Evaluate(State{Now: t0}, Thresholds{}))
	if len(plan.Resolve) != 1 {
		t.Fatalf("plan after the resume: %+v", plan)
	}
	if WorkPaused.Sticky() {
		t.Fatal("work_paused is a condition of the present, not sticky")
	}
}

// TestDataErrors: data errors raise one anomaly per process, only at the
// rate the operator set, and clear when it falls back; they are no
// failure spike.
func TestDataErrors(t *testing.T) {
	cases := []struct {
		name        string
		runs, dataE int
		rate        float64
		want, spike string
	}{
		{"too few runs", 5, 5, 0, "", "clear"},
		{"expected share", 200, 17, 0, "clear", "clear"},   // the tax demo: 8.5 % under the default 20 %
		{"unlucky first runs", 10, 3, 0, "clear", "clear"}, // 30 %, but 10 runs say little
		{"ten of ten", 10, 10, 0, "active:warning", "clear"},
		{"at the default, not clearly above", 50, 10, 0, "clear", "clear"},
		{"clearly above the default", 50, 20, 0, "active:warning", "clear"},
		{"fifty of fifty", 50, 50, 0, "active:warning", "clear"},
		{"operator's lower rate", 150, 30, 0.1, "active:warning", "clear"},
		{"operator's higher rate", 50, 20, 0.5, "clear", "clear"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// Every failure is a data error, in a process that never
			// failed before: a jump for the failure-spike rule if they
			// counted there.
			p := ProcessStats{ProcessID: 3, Process: "vat", RecentRuns: c.runs, RecentFailures: c.dataE, RecentDataErrors: c.dataE,
				BaselineRuns: 100, RecentWindow: time.Hour}
			fs := Evaluate(State{Now: t0, Processes: []ProcessStats{p}}, Thresholds{DataErrorRate: c.rate})
			v := verdict(fs, FailureRate)
			if got := v[DataErrorKey(3)]; got != c.want {
				t.Fatalf("data errors: got %q, want %q", got, c.want)
			}
			if c.runs >= DefaultFailureMinRuns {
				if got := v["failure_rate/process/3"]; got != c.spike {
					t.Fatalf("failure spike: got %q, want %q", got, c.spike)
				}
			}
			n := 0
			for _, f := range fs {
				if f.Active {
					n++
				}
			}
			if n > 1 {
				t.Fatalf("%d active findings for %d data errors: %+v", n, c.dataE, fs)
			}
		})
	}
}
