// Package expire is the rule of retention: which stored rows have
// outlived the operator's retention and may be deleted. It is pure (the
// standard library only) so that it is tested exhaustively; the pruner
// (core/retention) asks the database for exactly the rows it allows, and
// its tests check every row it kept or deleted against these functions.
package expire

import "time"

// Policy is how long each kind is kept; zero keeps it forever.
type Policy struct {
	Events        time.Duration
	Attempts      time.Duration
	FinishedTasks time.Duration // tasks, then their emptied batches
	Anomalies     time.Duration // resolved ones
	Audit         time.Duration
}

// Kind names what the pruner deletes: the metrics' and log's labels, in
// the order a round deletes them (an attempt before its task, a task
// before its batch).
type Kind string

// The kinds, in the order a round prunes them.
const (
	Events    Kind = "events"
	Attempts  Kind = "attempts"
	Tasks     Kind = "tasks"
	Batches   Kind = "batches"
	Anomalies Kind = "anomalies"
	Audit     Kind = "audit"
)

// Kinds lists every kind in pruning order.
var Kinds = []Kind{Events, Attempts, Tasks, Batches, Anomalies, Audit}

// Keep returns the retention of kind; zero is forever.
func (p Policy) Keep(k Kind) time.Duration {
	switch k {
	case Events:
		return p.Events
	case Attempts:
		return p.Attempts
	case Tasks, Batches:
		return p.FinishedTasks
	case Anomalies:
		return p.Anomalies
	case Audit:
		return p.Audit
	}
	return 0
}

// Cutoff is the moment before which rows of kind have expired at now; ok
// is false when the kind is kept forever. A row whose time is exactly the
// cutoff is kept.
func (p Policy) Cutoff(k Kind, now time.Time) (cut time.Time, ok bool) {
	keep := p.Keep(k)
	if keep <= 0 {
		return time.Time{}, false
	}
	return now.Add(-keep), true
}

func before(p Policy, k Kind, now time.Time, at *time.Time) bool {
	cut, ok := p.Cutoff(k, now)
	return ok && at != nil && at.Before(cut)
}

// Event is what decides an event's expiry.
type Event struct{ At time.Time }

// EventExpired: events expire by their time.
func EventExpired(p Policy, now time.Time, e Event) bool { return before(p, Events, now, &e.At) }

// AuditEntry is what decides an audit entry's expiry.
type AuditEntry struct{ At time.Time }

// AuditExpired: audit entries expire by their time (forever by default).
func AuditExpired(p Policy, now time.Time, a AuditEntry) bool { return before(p, Audit, now, &a.At) }

// Anomaly is what decides an anomaly's expiry.
type Anomaly struct {
	Status     string // open, acknowledged, resolved
	ResolvedAt *time.Time
}

// AnomalyExpired: only a resolved anomaly expires, by its resolution; an
// open or acknowledged one is someone's work in progress.
func AnomalyExpired(p Policy, now time.Time, a Anomaly) bool {
	return a.Status == "resolved" && before(p, Anomalies, now, a.ResolvedAt)
}

// Task is what decides a task's expiry.
type Task struct {
	State         string // pending, running, succeeded, failed, cancelled
	FinishedAt    *time.Time
	BatchFinished bool // its batch is in the finished stack
	// RunningAttempt: one of its attempts is still running (a robot's
	// report may yet arrive for it).
	RunningAttempt bool
}

// Finished reports a task state that no robot or sweeper changes any more
// (a person's retry makes it pending again, which reopens its batch).
func Finished(state string) bool {
	return state == "succeeded" || state == "failed" || state == "cancelled"
}

// FinishedStates are the states Finished accepts, for queries.
var FinishedStates = []string{"succeeded", "failed", "cancelled"}

// TaskExpired: a finished task of a finished batch, finished before the
// cutoff, with no attempt still running. A task of an open batch is kept
// whatever its age: the batch's counts, its retry and its documents still
// read it.
func TaskExpired(p Policy, now time.Time, t Task) bool {
	return Finished(t.State) && t.BatchFinished && !t.RunningAttempt && before(p, Tasks, now, t.FinishedAt)
}

// Attempt is what decides an attempt's expiry.
type Attempt struct {
	State      string // running, succeeded, failed, abandoned, stopped
	FinishedAt *time.Time
	Task       Task
}

// AttemptExpired: an attempt expires with its task (it cannot outlive
// it), or on its own once it ended before the attempts' cutoff and its
// task is finished in a finished batch. A running attempt never expires.
func AttemptExpired(p Policy, now time.Time, a Attempt) bool {
	if a.State == "running" {
		return false
	}
	if TaskExpired(p, now, a.Task) {
		return true
	}
	return Finished(a.Task.State) && a.Task.BatchFinished && before(p, Attempts, now, a.FinishedAt)
}

// Batch is what decides a batch's expiry.
type Batch struct {
	Finished   bool // in the finished stack
	FinishedAt *time.Time
	Tasks      int // tasks still stored
}

// BatchExpired: a finished batch expires once its tasks are gone and it
// finished before the finished tasks' cutoff.
func BatchExpired(p Policy, now time.Time, b Batch) bool {
	return b.Finished && b.Tasks == 0 && before(p, Batches, now, b.FinishedAt)
}
