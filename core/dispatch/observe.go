package dispatch

import (
	"context"
	"time"

	"github.com/rpacloud/rpacloud/core/events"
	"github.com/rpacloud/rpacloud/core/metrics"
	"github.com/rpacloud/rpacloud/ent"
	"github.com/rpacloud/rpacloud/ent/task"
)

// observation is one fact for the daemon's metrics, noted inside a
// transaction and counted only once it committed (a rolled-back claim or
// report counts nothing).
type observation struct {
	kind      obsKind
	poolID    int
	processID int
	outcome   string
	d         time.Duration
}

type obsKind int

const (
	obsTaskFinished obsKind = iota
	obsAttemptEnded
	obsFirstDispatch
)

// waitedSince is when a task started waiting: its submission, or the
// operator's requeue that made it pending again.
func waitedSince(t *ent.Task) time.Time {
	if t.RequeuedAt != nil {
		return *t.RequeuedAt
	}
	return t.CreatedAt
}

// taskOutcome is the outcome label of a finished task: succeeded, its
// failure reason, or cancelled.
func taskOutcome(t *ent.Task) string {
	switch {
	case t.State == task.StateSucceeded:
		return "succeeded"
	case t.FailureReason != nil:
		return string(*t.FailureReason)
	default:
		return string(t.State)
	}
}

// noteEvent notes the end of a task from the event that records it:
// every way a task ends records one of these three.
func (r *recorder) noteEvent(typ events.Type, t *ent.Task) {
	if t == nil {
		return
	}
	switch typ {
	case events.TaskSucceeded, events.TaskFailed, events.TaskCancelled:
		r.obs = append(r.obs, observation{kind: obsTaskFinished, poolID: t.PoolID, processID: t.ProcessID,
			outcome: taskOutcome(t), d: r.now.Sub(waitedSince(t))})
	}
}

// attemptEnded notes the end of an attempt of t with outcome (the
// attempt's final state).
func (r *recorder) attemptEnded(t *ent.Task, outcome string) {
	r.obs = append(r.obs, observation{kind: obsAttemptEnded, poolID: t.PoolID, processID: t.ProcessID, outcome: outcome})
}

// dispatched notes a task's dispatch; only its first counts as the end of
// its queue wait.
func (r *recorder) dispatched(t *ent.Task, attemptNo int) {
	if attemptNo != 1 {
		return
	}
	r.obs = append(r.obs, observation{kind: obsFirstDispatch, poolID: t.PoolID, processID: t.ProcessID, d: r.now.Sub(waitedSince(t))})
}

// observe hands committed observations to the metrics. Names come from the
// queue's settings cache (a read per pool or process every settingsTTL at
// most); one that cannot be read is labelled unknown rather than lost.
func (q *Queue) observe(ctx context.Context, obs []observation) {
	if q.metrics == nil || len(obs) == 0 {
		return
	}
	ctx = system(ctx)
	for _, o := range obs {
		pool, process := q.poolName(ctx, o.poolID), q.processName(ctx, o.processID)
		switch o.kind {
		case obsTaskFinished:
			q.metrics.TaskFinished(pool, process, o.outcome, o.d)
		case obsAttemptEnded:
			q.metrics.AttemptEnded(pool, process, o.outcome)
		case obsFirstDispatch:
			q.metrics.FirstDispatch(pool, process, o.d)
		}
	}
}

func (q *Queue) poolName(ctx context.Context, id int) string {
	if id == 0 {
		return metrics.Unknown
	}
	p, err := q.poolFrom(system(ctx), q.client.Pool, id)
	if err != nil {
		return metrics.Unknown
	}
	return p.Name
}

func (q *Queue) processName(ctx context.Context, id int) string {
	p, err := q.processFrom(ctx, q.client.Process, id)
	if err != nil {
		return metrics.Unknown
	}
	return p.Name
}
