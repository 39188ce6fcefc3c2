package dispatchbench

import (
	"context"
	"testing"

	"go.uber.org/goleak"

	"github.com/rpacloud/rpacloud/core/dispatch/policy"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// The scenario's figures are deterministic; these checks pin the seed's
// promises, not speed: a newcomer waits for the next free robot under both
// policies, oldest_served tracks the fair share, FIFO does not.
func TestFairnessReport(t *testing.T) {
	rep := Fairness(DefaultFairness)
	by := map[string]PolicyFairness{}
	for _, p := range rep.Policies {
		by[p.Policy] = p
		t.Logf("%-13s first wait max %d mean %.1f, delay mean %.0f (ideal %.0f), Jain %.3f, whale done %d",
			p.Policy, p.FirstWaitMax, p.FirstWaitMean, p.DelayMean, p.IdealDelayMean, p.Jain, p.WhaleDoneSlot)
	}
	for _, name := range policy.Names() {
		if by[name].FirstWaitMax != 1 {
			t.Errorf("%s: a newcomer waited %d slots for its first dispatch, want 1", name, by[name].FirstWaitMax)
		}
	}
	if by["fifo"].FirstWaitMax <= 1 {
		t.Error("fifo served a newcomer at once: the scenario does not load the robots")
	}
	if j := by[string(policy.OldestServed)].Jain; j < 0.95 {
		t.Errorf("oldest_served: Jain %.3f, want ≥ 0.95", j)
	}
	// Issue 17's targets for fair_share: Jain ≥ 0.95 over the small
	// customers, their mean completion within twice their fair share, the
	// big order no more than 5 % later than under weighted.
	fs, w := by[string(policy.FairShare)], by[string(policy.Weighted)]
	if fs.Jain < 0.95 {
		t.Errorf("fair_share: Jain %.3f, want ≥ 0.95", fs.Jain)
	}
	if fs.DelayMean > 2*fs.IdealDelayMean {
		t.Errorf("fair_share: small customers done after %.0f slots on average, more than twice their fair share %.0f", fs.DelayMean, fs.IdealDelayMean)
	}
	if float64(fs.WhaleDoneSlot) > 1.05*float64(w.WhaleDoneSlot) {
		t.Errorf("fair_share: the big order done at slot %d, more than 5 %% after weighted's %d", fs.WhaleDoneSlot, w.WhaleDoneSlot)
	}
	total := DefaultFairness.Whale
	for _, m := range by["fifo"].Minnows {
		total += m.Tasks
	}
	for _, p := range rep.Policies {
		if p.WhaleDoneSlot > total {
			t.Errorf("%s: whale done at slot %d of %d tasks", p.Policy, p.WhaleDoneSlot, total)
		}
	}
}

func TestBurnDownSQLite(t *testing.T) {
	r, err := BurnDown(context.Background(), Options{DB: "sqlite", Tasks: 200, Robots: 4, Customers: 3})
	if err != nil {
		t.Fatal(err)
	}
	if r.Tasks != 200 || r.TasksPerS <= 0 || r.ClaimP99ms < r.ClaimP50ms {
		t.Fatalf("result: %+v", r)
	}
	rs, err := Backlog(context.Background(), Options{DB: "sqlite", Tasks: 50, Robots: 2, Customers: 4}, []int{500, 3000})
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 2 || rs[1].Backlog != 3000 || rs[1].Tasks != 50 || rs[1].Plan == "" {
		t.Fatalf("backlog results: %+v %+v", *rs[0], *rs[len(rs)-1])
	}
	t.Logf("plan at 3000: %s", rs[1].Plan)
	if _, err := BurnDown(context.Background(), Options{DB: "mysql://x", Tasks: 1, Robots: 1, Customers: 1}); err == nil {
		t.Fatal("unknown database accepted")
	}
}
