package expire

import (
	"testing"
	"time"
)

var (
	now     = time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	day     = 24 * time.Hour
	policy  = Policy{Events: 30 * day, Attempts: 60 * day, FinishedTasks: 90 * day, Anomalies: 90 * day, Audit: 365 * day}
	forever = Policy{}
)

// moments are the interesting times around every cutoff: none, long ago,
// just before, exactly at, just after, and now.
func moments(keep time.Duration) []*time.Time {
	at := func(d time.Duration) *time.Time { t := now.Add(d); return &t }
	return []*time.Time{nil, at(-10 * 365 * day), at(-keep - time.Nanosecond), at(-keep), at(-keep + time.Nanosecond), at(0), at(time.Hour)}
}

// expiredAt is the cutoff rule stated once more, independently: strictly
// older than the retention, and never when kept forever.
func expiredAt(keep time.Duration, at *time.Time) bool {
	return keep > 0 && at != nil && now.Sub(*at) > keep
}

var (
	taskStates    = []string{"pending", "running", "succeeded", "failed", "cancelled"}
	attemptStates = []string{"running", "succeeded", "failed", "abandoned", "stopped"}
)

func TestTaskExpiredExhaustive(t *testing.T) {
	for _, p := range []Policy{policy, forever} {
		for _, st := range taskStates {
			for _, fin := range []bool{false, true} {
				for _, run := range []bool{false, true} {
					for _, at := range moments(policy.FinishedTasks) {
						tk := Task{State: st, FinishedAt: at, BatchFinished: fin, RunningAttempt: run}
						want := st != "pending" && st != "running" && fin && !run && expiredAt(p.FinishedTasks, at)
						if got := TaskExpired(p, now, tk); got != want {
							t.Errorf("%+v %v: TaskExpired = %v, want %v", p, tk, got, want)
						}
					}
				}
			}
		}
	}
}

func TestAttemptExpiredExhaustive(t *testing.T) {
	for _, p := range []Policy{policy, forever, {Attempts: 60 * day}, {FinishedTasks: 10 * day, Attempts: 60 * day}} {
		for _, ast := range attemptStates {
			for _, aat := range moments(p.Attempts) {
				for _, st := range taskStates {
					for _, fin := range []bool{false, true} {
						for _, tat := range moments(p.FinishedTasks) {
							// A task with this attempt running has a running attempt.
							a := Attempt{State: ast, FinishedAt: aat, Task: Task{State: st, FinishedAt: tat, BatchFinished: fin, RunningAttempt: ast == "running"}}
							closed := st != "pending" && st != "running" && fin
							want := ast != "running" && closed && (expiredAt(p.Attempts, aat) || expiredAt(p.FinishedTasks, tat))
							if got := AttemptExpired(p, now, a); got != want {
								t.Errorf("%+v %+v: AttemptExpired = %v, want %v", p, a, got, want)
							}
							// An attempt never outlives its task.
							if TaskExpired(p, now, a.Task) && ast != "running" && !AttemptExpired(p, now, a) {
								t.Errorf("%+v %+v: task expired but not its attempt", p, a)
							}
						}
					}
				}
			}
		}
	}
}

func TestBatchExpiredExhaustive(t *testing.T) {
	for _, p := range []Policy{policy, forever} {
		for _, fin := range []bool{false, true} {
			for _, n := range []int{0, 1, 500} {
				for _, at := range moments(policy.FinishedTasks) {
					b := Batch{Finished: fin, FinishedAt: at, Tasks: n}
					want := fin && n == 0 && expiredAt(p.FinishedTasks, at)
					if got := BatchExpired(p, now, b); got != want {
						t.Errorf("%+v %+v: BatchExpired = %v, want %v", p, b, got, want)
					}
				}
			}
		}
	}
}

func TestEventsAuditAnomalies(t *testing.T) {
	for _, p := range []Policy{policy, forever} {
		for _, at := range moments(policy.Events) {
			if at == nil {
				continue
			}
			if got, want := EventExpired(p, now, Event{At: *at}), expiredAt(p.Events, at); got != want {
				t.Errorf("%+v event at %v: %v, want %v", p, at, got, want)
			}
		}
		for _, at := range moments(policy.Audit) {
			if at == nil {
				continue
			}
			if got, want := AuditExpired(p, now, AuditEntry{At: *at}), expiredAt(p.Audit, at); got != want {
				t.Errorf("%+v audit at %v: %v, want %v", p, at, got, want)
			}
		}
		for _, st := range []string{"open", "acknowledged", "resolved"} {
			for _, at := range moments(policy.Anomalies) {
				a := Anomaly{Status: st, ResolvedAt: at}
				if got, want := AnomalyExpired(p, now, a), st == "resolved" && expiredAt(p.Anomalies, at); got != want {
					t.Errorf("%+v %+v: %v, want %v", p, a, got, want)
				}
			}
		}
	}
}

func TestKindsAndCutoff(t *testing.T) {
	seen := map[Kind]bool{}
	for _, k := range Kinds {
		if seen[k] {
			t.Fatalf("kind %s twice", k)
		}
		seen[k] = true
		if policy.Keep(k) <= 0 {
			t.Errorf("kind %s has no retention in a full policy", k)
		}
		if _, ok := forever.Cutoff(k, now); ok {
			t.Errorf("kind %s has a cutoff when kept forever", k)
		}
		if cut, ok := policy.Cutoff(k, now); !ok || !cut.Equal(now.Add(-policy.Keep(k))) {
			t.Errorf("kind %s: cutoff %v %v", k, cut, ok)
		}
	}
	// Dependency order: attempts before tasks before batches.
	idx := map[Kind]int{}
	for i, k := range Kinds {
		idx[k] = i
	}
	if !(idx[Attempts] < idx[Tasks] && idx[Tasks] < idx[Batches]) {
		t.Errorf("kinds out of dependency order: %v", Kinds)
	}
	if policy.Keep("unknown") != 0 {
		t.Error("an unknown kind has a retention")
	}
	for _, s := range FinishedStates {
		if !Finished(s) {
			t.Errorf("%s listed but not finished", s)
		}
	}
}
