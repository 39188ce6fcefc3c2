package sim

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/rpacloud/rpacloud/core/dispatch/policy"
	"github.com/rpacloud/rpacloud/core/scale/decide"
)

// monthOfAMillion is a 30-day trace of about a million one-minute tasks
// from 2,000 customers, peaking in the first half of the month.
func monthOfAMillion() Trace {
	rnd := rand.New(rand.NewPCG(1, 2))
	var t Trace
	n := 0
	for n < 1_000_000 {
		day := rnd.IntN(30)
		if day >= 15 && rnd.IntN(3) > 0 {
			day = rnd.IntN(15)
		}
		tasks := 1 + rnd.IntN(60)
		if rnd.IntN(50) == 0 {
			tasks = 500 + rnd.IntN(1500)
		}
		t = append(t, Batch{SubmitAt: float64(day*86400 + 8*3600 + rnd.IntN(12*3600)), Customer: fmt.Sprintf("c%04d", rnd.IntN(2000)),
			Tasks: tasks, TaskDuration: 30 + float64(rnd.IntN(60)), FailRate: 0.03, DataErrorRate: 0.01, HangRate: 0.001})
		n += tasks
	}
	return t
}

// BenchmarkSimulateMonthMillionTasks runs the policy and both baselines
// over a month of a million tasks (three full simulations per op).
func BenchmarkSimulateMonthMillionTasks(b *testing.B) {
	tr := monthOfAMillion()
	slices.SortStableFunc(tr, func(x, y Batch) int { return cmp.Compare(x.SubmitAt, y.SubmitAt) })
	for b.Loop() {
		if _, err := Simulate(tr, Options{Pool: Pool{Name: "big", Period: 30 * time.Second,
			Fairness: policy.Weighted, Settings: decide.Settings{Min: 5, Max: 400, TasksPerRobot: 10}, MaxDuration: 10 * time.Minute, Retries: 3},
			BootDelay: 90 * time.Second, Seed: 1}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(tr.Tasks()), "tasks")
}
