package dispatch_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/rpacloud/rpacloud/core/dispatch"
	"github.com/rpacloud/rpacloud/core/metrics"
	"github.com/rpacloud/rpacloud/core/robotwire"
	"github.com/rpacloud/rpacloud/core/store"
	"github.com/rpacloud/rpacloud/core/store/storetest"
)

// histogram reads one series of a histogram: its count and sum.
func histogram(t *testing.T, o prometheus.Observer) (uint64, float64) {
	t.Helper()
	var m dto.Metric
	if err := o.(prometheus.Metric).Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetHistogram().GetSampleCount(), m.GetHistogram().GetSampleSum()
}

// The queue's metrics move with its work, labelled by pool, process and
// outcome, and only for what committed: a success, a data error and a
// time-out, each counted once (on PostgreSQL the claim and the success take
// the fast path, which counts as the ent path does).
func TestMetricsMove(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db, 1, 3)
		m := metrics.New()
		f.q = dispatch.New(db.Client, dispatch.Options{Bus: f.bus, Now: f.clock.Now, Seed: 42, Metrics: m})
		ctx := context.Background()
		f.submit(t, 3)
		f.clock.Add(30 * time.Second)

		c := f.claim(t, 0)
		if c == nil {
			t.Fatal("no task claimed")
		}
		if n, sum := histogram(t, m.QueueWait.WithLabelValues("p", "echo")); n != 1 || sum != 30 {
			t.Fatalf("queue wait after one dispatch: %d observations summing %v s, want 1 of 30 s", n, sum)
		}
		if n, _ := histogram(t, m.ClaimSeconds.WithLabelValues("p", "task")); n != 1 {
			t.Fatalf("claim durations observed: %d, want 1", n)
		}
		f.clock.Add(10 * time.Second)
		if _, err := f.q.Report(ctx, f.robots[0].ID, c.Task.ID, 1, dispatch.Result{Success: true, Output: json.RawMessage(`{}`)}); err != nil {
			t.Fatal(err)
		}

		c = f.claim(t, 0)
		if _, err := f.q.Report(ctx, f.robots[0].ID, c.Task.ID, 1, dispatch.Result{Class: robotwire.ErrorData, Message: "no such taxpayer"}); err != nil {
			t.Fatal(err)
		}
		c = f.claim(t, 0)
		f.timeOut(t, c) // abandoned; the task waits for another attempt

		// A report the fence refuses counts nothing.
		if _, err := f.q.Report(ctx, f.robots[0].ID, c.Task.ID, 1, dispatch.Result{Success: true, Output: json.RawMessage(`{}`)}); err == nil {
			t.Fatal("a report of an abandoned attempt was accepted")
		}

		for _, w := range []struct {
			c    prometheus.Counter
			want float64
			what string
		}{
			{m.TasksFinished.WithLabelValues("p", "echo", "succeeded"), 1, "tasks succeeded"},
			{m.TasksFinished.WithLabelValues("p", "echo", "data_error"), 1, "tasks failed by data error"},
			{m.AttemptsEnded.WithLabelValues("p", "echo", "succeeded"), 1, "attempts succeeded"},
			{m.AttemptsEnded.WithLabelValues("p", "echo", "failed"), 1, "attempts failed"},
			{m.AttemptsEnded.WithLabelValues("p", "echo", "abandoned"), 1, "attempts abandoned"},
		} {
			if got := testutil.ToFloat64(w.c); got != w.want {
				t.Errorf("%s: %v, want %v", w.what, got, w.want)
			}
		}
		if got := testutil.CollectAndCount(m.TasksFinished); got != 2 {
			t.Errorf("finished-task series: %d, want 2 (succeeded, data_error)", got)
		}
		if n, sum := histogram(t, m.TaskDuration.WithLabelValues("p", "echo", "succeeded")); n != 1 || sum != 40 {
			t.Errorf("duration of the succeeded task: %d observations summing %v s, want 1 of 40 s (30 waiting, 10 running)", n, sum)
		}
		if n, _ := histogram(t, m.QueueWait.WithLabelValues("p", "echo")); n != 3 {
			t.Errorf("queue waits: %d, want 3 (one per first dispatch)", n)
		}
		if n, _ := histogram(t, m.ClaimSeconds.WithLabelValues("p", "task")); n != 3 {
			t.Errorf("claims that handed out a task: %d, want 3", n)
		}
	})
}
