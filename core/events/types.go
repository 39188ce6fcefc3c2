package events

import (
	"context"
	"fmt"
	"time"

	"github.com/rpacloud/rpacloud/ent"
)

// Type names what an event records. Its value is what the events table
// stores in its type column and what API clients filter on, so a value
// never changes once released: add a constant instead.
type Type string

// The event types rpacloud records. The part before the dot is the
// family a subscriber can select with a prefix (Filter.Prefixes).
const (
	BatchSubmitted Type = "batch.submitted"
	BatchFinished  Type = "batch.finished"

	TaskDispatched Type = "task.dispatched"
	TaskSucceeded  Type = "task.succeeded"
	TaskFailed     Type = "task.failed"
	TaskRetrying   Type = "task.retrying"
	TaskDelayed    Type = "task.delayed"
	TaskCancelled  Type = "task.cancelled"
	// TaskStopRequested: an operator asked the robot running the task to
	// stop (task stop, batch cancel); it carries the robot and the pool so
	// the robot's long poll (awaitStop) wakes on any daemon.
	TaskStopRequested Type = "task.stop_requested"
	// TaskRequeued: an operator retried a finished task (task retry,
	// batch retry); it is pending again.
	TaskRequeued Type = "task.requeued"
	// BatchRequeued: one per transaction of a retry (task retry, and each
	// chunk of up to 200 tasks of a batch retry), with the batch's pool and
	// how many tasks it made pending. It, not task.requeued, wakes the
	// pool's waiting robots: a 10 000-task retry wakes them 50 times, not
	// 10 000.
	BatchRequeued Type = "batch.requeued"

	RobotDraining Type = "robot.draining"
	RobotEnrolled Type = "robot.enrolled"
	RobotRevoked  Type = "robot.revoked"

	VMCreated      Type = "vm.created"
	VMCreateFailed Type = "vm.create_failed"
	VMFailed       Type = "vm.failed"
	VMGone         Type = "vm.gone"
	VMBootTimeout  Type = "vm.boot_timeout"
	// VMReleased: a VM ended because rpacloud asked (the scaler released
	// or drained its robot, or an administrator revoked it). Unlike
	// vm.gone it is no anomaly: nothing was interrupted.
	VMReleased Type = "vm.released"

	AnomalyOpened       Type = "anomaly.opened"
	AnomalyAcknowledged Type = "anomaly.acknowledged"
	AnomalyResolved     Type = "anomaly.resolved"

	CredentialStored  Type = "credential.stored"
	CredentialRotated Type = "credential.rotated"
	CredentialDeleted Type = "credential.deleted"

	VendorJobFaulted   Type = "vendorjob.faulted"
	VendorJobStopped   Type = "vendorjob.stopped"
	VendorJobSucceeded Type = "vendorjob.succeeded"

	// ConfigApplied: a new configuration was applied to a running daemon
	// (SIGHUP or applyConfig); the message has the plan's summary and who
	// applied it.
	ConfigApplied Type = "config.applied"
	// ConfigRefused: a reload the daemon started itself (SIGHUP, or
	// following another daemon) was refused; the message has the reason.
	// A refused applyConfig answers its caller instead: no event. Who sent
	// SIGHUP (systemctl reload) sees success either way, so the refusal is
	// recorded where the dashboard shows it.
	ConfigRefused Type = "config.refused"

	// Pauses by an operator (pool pause/resume, process pause/resume):
	// paused work is not dispatched. They carry the pool (and the process
	// and its owner), so a resume wakes the pool's waiting robots.
	PoolPaused     Type = "pool.paused"
	PoolResumed    Type = "pool.resumed"
	ProcessPaused  Type = "process.paused"
	ProcessResumed Type = "process.resumed"
	// Triggers (core/trigger). Each names the trigger's customer, process
	// and pool, so the customer rule applies; the message names the
	// trigger and the scheduled run.
	TriggerFired   Type = "trigger.fired"   // a batch started for a scheduled run, or fired now
	TriggerSkipped Type = "trigger.skipped" // a scheduled run not started, with the reason (paused, catch-up)
	TriggerPaused  Type = "trigger.paused"
	TriggerResumed Type = "trigger.resumed"

	// TokenRevoked: a bearer token stopped being valid (revoked, or
	// replaced by a re-issue of its name). Its message names the token's
	// id ("token 42 revoked: robot/r1"), never the secret or its hash; it
	// has no customer, so only platform operators see it. Every daemon's
	// token cache (core/auth) drops the token when it arrives.
	TokenRevoked Type = "token.revoked"
)

// Families: the prefixes of the types above, for Filter.Prefixes.
const (
	FamilyBatch       = "batch."
	FamilyTask        = "task."
	FamilyRobot       = "robot."
	FamilyVM          = "vm."
	FamilyPool        = "pool."
	FamilyAnomaly     = "anomaly."
	FamilyScale       = "scale."
	FamilyCredential  = "credential."
	FamilyVendorJob   = "vendorjob."
	FamilyVendorRobot = "vendorrobot."
	FamilyConfig      = "config."
	FamilyProcess     = "process."
	FamilyTrigger     = "trigger."
	FamilyToken       = "token."
)

// PoolAction is the type of a scaler decision's event: "pool." and the
// decision's action (scale_up, scale_down, cooldown, none).
func PoolAction(action string) Type { return Type(FamilyPool + action) }

// VendorJob is the type of a vendor job's state change: "vendorjob." and the
// state the vendor poller normalised it to.
func VendorJob(state string) Type { return Type(FamilyVendorJob + state) }

// VendorRobot is the type of a vendor robot's state change.
func VendorRobot(state string) Type { return Type(FamilyVendorRobot + state) }

// Strings spells types for a query on the type column.
func Strings(ts ...Type) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = string(t)
	}
	return out
}

// Is reports whether e records an event of type t.
func Is(e *ent.Event, t Type) bool { return Type(e.Type) == t }

// Create is the one way to start an event: its type and time set, the
// caller adds the subjects and message, then saves it inside its own
// transaction (and publishes after the commit) or hands it to Record.
// The vendor is rpacloud (OwnVendor) unless the caller sets another: an
// event rpacloud records of its own queue, robots or fleet is rpacloud's,
// so events(where:{vendor:"rpacloud"}) finds it; the vendor poller and
// anomalies about a vendor's job set theirs.
func Create(c *ent.EventClient, t Type, at time.Time) *ent.EventCreate {
	return c.Create().SetType(string(t)).SetAt(at).SetVendor(OwnVendor)
}

// OwnVendor is the vendor of rpacloud's own robots, runs and events.
const OwnVendor = "rpacloud"

// Record saves an event made with Create outside any transaction and
// publishes it to bus (which may be nil).
func Record(ctx context.Context, c *ent.EventCreate, bus *Bus) (*ent.Event, error) {
	e, err := c.Save(ctx)
	if err != nil {
		typ, _ := c.Mutation().GetType()
		return nil, fmt.Errorf("record event %s: %w", typ, err)
	}
	bus.Publish(e)
	return e, nil
}
