package sim

import (
	"cmp"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rpacloud/rpacloud/core/dispatch/policy"
	"github.com/rpacloud/rpacloud/core/scale/decide"
)

func testPool() Pool {
	return Pool{Name: "p", Period: 30 * time.Second, Fairness: policy.Weighted,
		Settings: decide.Settings{Min: 2, Max: 20, TasksPerRobot: 10}, MaxDuration: 10 * time.Minute, Retries: 3}
}

// burstTrace is a day with a burst of work at 09:00 and a trickle
// otherwise.
func burstTrace(seed uint64) Trace {
	rnd := rand.New(rand.NewPCG(seed, 1))
	var t Trace
	for i := range 200 {
		at := float64(rnd.IntN(86400))
		if i < 60 {
			at = 9*3600 + float64(rnd.IntN(1800))
		}
		t = append(t, Batch{SubmitAt: at, Customer: fmt.Sprintf("c%d", i%17), Tasks: 1 + rnd.IntN(40),
			TaskDuration: 60 + float64(rnd.IntN(120)), FailRate: 0.05, DataErrorRate: 0.01, HangRate: 0.005})
	}
	var sb strings.Builder
	if err := t.Write(&sb); err != nil {
		panic(err)
	}
	out, err := ReadTrace(strings.NewReader(sb.String()), "burst.csv")
	if err != nil {
		panic(err)
	}
	return out
}

func TestDeterministicForASeed(t *testing.T) {
	tr := burstTrace(7)
	o := Options{Pool: testPool(), BootDelay: 90 * time.Second, RobotHourCost: 0.5, Seed: 42}
	a, err := Simulate(tr, o)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Simulate(tr, o)
	if !reflect.DeepEqual(a, b) {
		ja, _ := json.Marshal(a)
		jb, _ := json.Marshal(b)
		t.Fatalf("two runs with seed 42 differ:\n%s\n%s", ja, jb)
	}
	o.Seed = 43
	c, _ := Simulate(tr, o)
	if reflect.DeepEqual(a, c) {
		t.Errorf("seeds 42 and 43 gave identical reports; is the seed used?")
	}
}

func TestReportIsConsistent(t *testing.T) {
	tr := burstTrace(3)
	o := Options{Pool: testPool(), BootDelay: 90 * time.Second, RobotHourCost: 0.5, Seed: 1}
	rep, err := Simulate(tr, o)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []Result{rep.Result, rep.Baselines.Static, rep.Baselines.TargetTracking} {
		if got := r.TasksSucceeded + r.TasksFailed; got != rep.Tasks {
			t.Errorf("%s: %d tasks finished, trace has %d", r.Strategy, got, rep.Tasks)
		}
		if r.RobotHours < rep.LowerBound {
			t.Errorf("%s: %.3f robot-hours beat the lower bound %.3f", r.Strategy, r.RobotHours, rep.LowerBound)
		}
		if r.PeakRobots > o.Pool.Settings.Max && r.Strategy != Static {
			t.Errorf("%s: peak %d > max %d", r.Strategy, r.PeakRobots, o.Pool.Settings.Max)
		}
		if r.CompletionP50 > r.CompletionP95 || r.CompletionP95 > r.CompletionMax {
			t.Errorf("%s: quantiles out of order: %v %v %v", r.Strategy, r.CompletionP50, r.CompletionP95, r.CompletionMax)
		}
		if r.JainSlowdown <= 0 || r.JainSlowdown > 1 {
			t.Errorf("%s: Jain's index %v", r.Strategy, r.JainSlowdown)
		}
		if len(r.CustomerMaxWait) != rep.Customers {
			t.Errorf("%s: waits for %d customers, want %d", r.Strategy, len(r.CustomerMaxWait), rep.Customers)
		}
		if math.Abs(r.Cost-r.RobotHours*0.5) > 0.01 {
			t.Errorf("%s: cost %v for %v robot-hours at 0.5", r.Strategy, r.Cost, r.RobotHours)
		}
	}
	if rep.ScaleUps == 0 || rep.ScaleDowns == 0 {
		t.Errorf("the policy never scaled on a burst: %+v", rep.Result)
	}
	if rep.Baselines.Static.ScaleUps != 0 || rep.Baselines.Static.PeakRobots != rep.Baselines.Static.Robots {
		t.Errorf("static pool changed size: %+v", rep.Baselines.Static)
	}
}

func TestLowerBound(t *testing.T) {
	cases := []struct {
		work, horizon float64
		min           int
		boot, want    float64
	}{
		{work: 10, horizon: 24, min: 2, boot: 0.025, want: 48},         // min robots do it all
		{work: 100, horizon: 24, min: 2, boot: 0.5, want: 100 + 0.5*3}, // 52 excess: 3 rentals of ≤ 23.5h
		{work: 100, horizon: 24, min: 0, boot: 0, want: 100},
		{work: 0, horizon: 24, min: 0, boot: 1, want: 0},
	}
	for _, c := range cases {
		if got := LowerBound(c.work, c.horizon, c.min, c.boot); math.Abs(got-c.want) > 1e-9 {
			t.Errorf("LowerBound(%v, %v, %d, %v) = %v, want %v", c.work, c.horizon, c.min, c.boot, got, c.want)
		}
	}
}

func TestReadTraceErrors(t *testing.T) {
	cases := map[string]string{
		"":                             "empty trace",
		"submit_at_s,customer,tasks\n": `missing column "task_duration_s"`,
		"submit_at_s,customer,tasks,task_duration_s,colour\n":                                `unknown column "colour"`,
		"submit_at_s,customer,tasks,task_duration_s\n":                                       "no batches",
		"submit_at_s,customer,tasks,task_duration_s\n1,a,x,60\n":                             `t.csv:2: tasks = "x" is not a number`,
		"submit_at_s,customer,tasks,task_duration_s\n1,a,0,60\n":                             "t.csv:2: tasks = 0 is out of range",
		"submit_at_s,customer,tasks,task_duration_s\n1,a,2.5,60\n":                           "not a whole number",
		"submit_at_s,customer,tasks,task_duration_s\n1,,2,60\n":                              "t.csv:2: customer is empty",
		"submit_at_s,customer,tasks,task_duration_s,fail_rate,hang_rate\n1,a,2,60,0.7,0.6\n": "more than 1",
		"submit_at_s,customer,tasks,task_duration_s\n-1,a,2,60\n":                            "submit_at_s = -1 is out of range",
	}
	for in, want := range cases {
		_, err := ReadTrace(strings.NewReader(in), "t.csv")
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ReadTrace(%q) = %v, want an error containing %q", in, err, want)
		}
	}
	tr, err := ReadTrace(strings.NewReader("submit_at_s,customer,tasks,task_duration_s\n# a comment\n90,b,1,5\n10,a,3,60\n"), "t.csv")
	if err != nil || len(tr) != 2 || tr[0].Customer != "a" || tr[1].SubmitAt != 90 {
		t.Fatalf("ReadTrace = %+v, %v", tr, err)
	}
}

func TestPrewarmRentsBeforeThePeak(t *testing.T) {
	// A peak at 09:00 announced by a schedule: with pre-warm the pool is
	// already large when the burst lands.
	tr := Trace{}
	for i := range 40 {
		tr = append(tr, Batch{SubmitAt: 9 * 3600, Customer: fmt.Sprintf("c%d", i), Tasks: 10, TaskDuration: 120})
	}
	p := testPool()
	p.PrewarmRobots, p.PrewarmLead = 20, 10*time.Minute
	p.Slots = []decide.Slot{{Start: daily(9), Duration: time.Hour}}
	o := Options{Pool: p, BootDelay: 90 * time.Second, Seed: 1}
	warm, err := Simulate(tr, o)
	if err != nil {
		t.Fatal(err)
	}
	o.Pool.PrewarmRobots = 0
	cold, _ := Simulate(tr, o)
	if warm.CompletionP95 >= cold.CompletionP95 {
		t.Errorf("pre-warm did not help: p95 %v with, %v without", warm.CompletionP95, cold.CompletionP95)
	}
}

// daily fires at hour:00 every day.
type daily int

func (d daily) Next(t time.Time) time.Time {
	n := time.Date(t.Year(), t.Month(), t.Day(), int(d), 0, 0, 0, t.Location())
	if !n.After(t) {
		n = n.AddDate(0, 0, 1)
	}
	return n
}

// TestLongBacklog drives the two-step weighted draw (more than 2×chunk
// batches in service) and checks every task still finishes once.
func TestLongBacklog(t *testing.T) {
	var tr Trace
	for i := range 1500 {
		tr = append(tr, Batch{SubmitAt: float64(i % 7), Customer: fmt.Sprintf("c%d", i%50), Tasks: 1 + i%5, TaskDuration: 1, FailRate: 0.1})
	}
	p := testPool()
	p.Settings.Min, p.Settings.Max = 1, 3
	rep, err := Simulate(tr, Options{Pool: p, BootDelay: time.Second, Seed: 9})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []Result{rep.Result, rep.Baselines.Static, rep.Baselines.TargetTracking} {
		if got := r.TasksSucceeded + r.TasksFailed; got != rep.Tasks {
			t.Errorf("%s: %d tasks finished, want %d", r.Strategy, got, rep.Tasks)
		}
	}
}

// The report runs the pool's scaling rule under every dispatch policy, in
// policy.Fairnesses' order, the pool's own run being the report's result;
// the same trace does the same work under each.
func TestEveryFairnessSideBySide(t *testing.T) {
	tr := burstTrace(11)
	for _, f := range policy.Fairnesses {
		o := Options{Pool: testPool(), BootDelay: 90 * time.Second, Seed: 5}
		o.Pool.Fairness = f.Name
		rep, err := Simulate(tr, o)
		if err != nil {
			t.Fatal(err)
		}
		if len(rep.Fairness) != len(policy.Fairnesses) {
			t.Fatalf("%s: %d fairness runs, want %d", f.Name, len(rep.Fairness), len(policy.Fairnesses))
		}
		for i, r := range rep.Fairness {
			if r.Fairness != policy.Fairnesses[i].Name || r.Strategy != Policy {
				t.Fatalf("%s: run %d is %s/%s, want %s/policy", f.Name, i, r.Fairness, r.Strategy, policy.Fairnesses[i].Name)
			}
			if r.Fairness == f.Name && !reflect.DeepEqual(r, rep.Result) {
				t.Fatalf("%s: the pool's own run differs from the report's result", f.Name)
			}
			if done := r.TasksSucceeded + r.TasksFailed; done != tr.Tasks() {
				t.Fatalf("%s under %s: %d tasks finished of %d", f.Name, r.Fairness, done, tr.Tasks())
			}
			if r.LargestBatch <= 0 || len(r.CustomerCompletion) != rep.Customers {
				t.Fatalf("%s under %s: largest batch %v s, %d customers' completions of %d", f.Name, r.Fairness, r.LargestBatch, len(r.CustomerCompletion), rep.Customers)
			}
		}
	}
}

// The heap the simulator keeps stack B in serves exactly the batch
// policy.Pick chooses from all candidates, at every poll of whole
// simulations (checkOrder panics at the first disagreement), under both
// ordered fairnesses, with retries, hangs and a burst of open batches.
func TestOrderAgreesWithPick(t *testing.T) {
	for _, f := range []policy.Fairness{policy.FairShare, policy.OldestServed} {
		for seed := range uint64(4) {
			o := Options{Pool: testPool(), BootDelay: 90 * time.Second, Seed: seed, checkOrder: true}
			o.Pool.Fairness = f
			if _, err := Simulate(burstTrace(seed+20), o); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// BenchmarkSimulateOpenBatches: 30 000 batches of 5 tasks submitted within
// ten minutes on a pool of at most 40 robots, so that stack B holds
// thousands of open batches for hours: each poll must not scan them.
func BenchmarkSimulateOpenBatches(b *testing.B) {
	rnd := rand.New(rand.NewPCG(1, 2))
	tr := make(Trace, 30000)
	for i := range tr {
		tr[i] = Batch{SubmitAt: float64(rnd.IntN(600)), Customer: fmt.Sprintf("c%d", i%500), Tasks: 5, TaskDuration: 60}
	}
	slices.SortStableFunc(tr, func(x, y Batch) int { return cmp.Compare(x.SubmitAt, y.SubmitAt) })
	o := Options{Pool: testPool(), BootDelay: 90 * time.Second, Seed: 1}
	o.Pool.Settings.Max = 40
	o.Pool.Fairness = policy.FairShare
	for b.Loop() {
		if _, err := Simulate(tr, o); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(tr.Tasks()), "tasks")
}
