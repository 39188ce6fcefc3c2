// Package trigger is the service that starts runs: the configuration's
// `trigger` blocks, fired by the leader on their schedule.
//
// One pass (Service.Tick) reads every trigger from config.Live and its row
// (synced by core/store), lists the scheduled runs since the last one
// handled, and decides with the pure rules of core/trigger/when: a run
// due now fires, runs missed while no leader ran follow the trigger's
// catch-up rule (skip, once, all), and nothing fires while the trigger,
// its process or its pool is paused (those runs are recorded as
// skipped, with the reason).
//
// A run happens at most once across daemons because of two fences: the
// batch of a scheduled run carries the trigger and the scheduled time
// under a unique index (dispatch.ErrAlreadySubmitted for the second
// insert), and the trigger row's last_scheduled_for advances only by
// compare-and-set, so only one pass records a run as skipped. A run
// happens at least once because a batch is submitted before the row
// advances past it: a leader that dies in between leaves the run to its
// successor, whose insert of a run already fired fails harmlessly.
//
// The API's pause, resume and fire-now (Service.SetPaused, FireNow) look
// the trigger up with the caller's context, so the storage's customer
// rule decides what a token may reach (ErrUnknown otherwise), and record
// trigger.paused, trigger.resumed and trigger.fired events; skipped runs
// are trigger.skipped events, and core/monitor's missed-run anomaly reads
// the triggers' batches and those events.
package trigger
