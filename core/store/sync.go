package store

import (
	"context"
	"fmt"

	"github.com/rpacloud/rpacloud/core/config"
	"github.com/rpacloud/rpacloud/ent"
	"github.com/rpacloud/rpacloud/ent/customer"
	"github.com/rpacloud/rpacloud/ent/pool"
	"github.com/rpacloud/rpacloud/ent/privacy"
	"github.com/rpacloud/rpacloud/ent/process"
	"github.com/rpacloud/rpacloud/ent/trigger"
)

// SyncConfig makes the database's customers, pools, processes and triggers match the
// configuration, in one transaction. Pools and processes that left the
// configuration are deactivated, not deleted: their history stays
// queryable and their queued tasks are not lost.
func SyncConfig(ctx context.Context, client *ent.Client, cfg *config.Config) error {
	_, err := ApplyConfig(ctx, client, cfg, nil, "")
	return err
}

// ApplyConfig is SyncConfig that also records files (base name → content;
// nil: none) as the latest configuration revision, applied by by, in the
// same transaction: a revision exists exactly when its configuration was
// synced, so a daemon that follows the latest revision never applies one
// whose sync failed.
func ApplyConfig(ctx context.Context, client *ent.Client, cfg *config.Config, files map[string]string, by string) (*ent.ConfigRevision, error) {
	ctx = privacy.DecisionContext(ctx, privacy.Allow)
	tx, err := client.Tx(ctx)
	if err != nil {
		return nil, fmt.Errorf("sync config: %w", err)
	}
	if err := syncTx(ctx, tx, cfg); err != nil {
		_ = tx.Rollback()
		return nil, fmt.Errorf("sync config: %w", err)
	}
	var rev *ent.ConfigRevision
	if files != nil {
		if rev, err = tx.ConfigRevision.Create().SetHash(RevisionHash(files)).SetFiles(files).SetAppliedBy(by).Save(ctx); err != nil {
			_ = tx.Rollback()
			return nil, fmt.Errorf("sync config: record the revision: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("sync config: commit: %w", err)
	}
	return rev, nil
}

func syncTx(ctx context.Context, tx *ent.Tx, cfg *config.Config) error {
	custIDs := map[string]int{}
	// Parents first, so a department can point at its company.
	pending := append([]config.Customer(nil), cfg.Customers...)
	for len(pending) > 0 {
		progress := false
		rest := pending[:0]
		for _, c := range pending {
			var parent *int
			if c.Parent != "" {
				id, ok := custIDs[c.Parent]
				if !ok {
					rest = append(rest, c)
					continue
				}
				parent = &id
			}
			kind := customer.Kind(c.Kind)
			if kind == "" {
				kind = customer.KindCompany
			}
			id, err := tx.Customer.Create().SetName(c.Name).SetDisplayName(c.DisplayName).
				SetKind(kind).SetNillableParentID(parent).
				OnConflictColumns(customer.FieldName).UpdateNewValues().ID(ctx)
			if err != nil {
				return fmt.Errorf("customer %q: %w", c.Name, err)
			}
			custIDs[c.Name] = id
			progress = true
		}
		pending = rest
		if !progress {
			return fmt.Errorf("customer %q: parent %q is not declared (or the parents form a cycle)", pending[0].Name, pending[0].Parent)
		}
	}

	poolIDs := map[string]int{}
	names := make([]string, 0, len(cfg.Pools))
	for _, p := range cfg.Pools {
		// Configuration has validated the name against policy.Fairnesses,
		// which the stored enum spells (enums_test.go).
		fair := pool.Fairness(p.Fairness)
		if fair == "" {
			fair = pool.Fairness(config.DefaultFairness)
		}
		id, err := tx.Pool.Create().SetName(p.Name).SetProvider(p.Provider).
			SetMin(p.Min).SetMax(p.Max).SetPeriodSeconds(max(int(p.Period.Seconds()), 1)).
			SetTasksPerRobot(max(p.TasksPerRobot, 1)).SetFairness(fair).SetNetwork(p.Network).SetActive(true).
			OnConflictColumns(pool.FieldName).UpdateNewValues().ID(ctx)
		if err != nil {
			return fmt.Errorf("pool %q: %w", p.Name, err)
		}
		poolIDs[p.Name] = id
		names = append(names, p.Name)
	}
	if err := tx.Pool.Update().Where(pool.NameNotIn(names...)).SetActive(false).Exec(ctx); err != nil {
		return fmt.Errorf("deactivate pools: %w", err)
	}

	names = names[:0]
	procIDs := map[string]int{}
	for _, p := range cfg.Processes {
		poolID, ok := poolIDs[p.Pool]
		if !ok {
			return fmt.Errorf("process %q: pool %q is not declared", p.Name, p.Pool)
		}
		var owner *int
		if p.Owner != "" {
			id, ok := custIDs[p.Owner]
			if !ok {
				return fmt.Errorf("process %q: owner %q is not declared", p.Name, p.Owner)
			}
			owner = &id
		}
		id, err := tx.Process.Create().SetName(p.Name).SetPoolID(poolID).SetNillableOwnerID(owner).
			SetKind(process.Kind(p.Kind)).SetRunner(p.Runner).SetPackage(p.Package).
			SetMaxDurationSeconds(max(int(p.MaxDuration.Seconds()), 1)).SetRetries(p.Retries).
			SetMaxWaitSeconds(max(int(p.MaxWait.Seconds()), 1)).
			SetSchedule(scheduleText(p.Schedules)).SetActive(true).
			OnConflictColumns(process.FieldName).UpdateNewValues().ID(ctx)
		if err != nil {
			return fmt.Errorf("process %q: %w", p.Name, err)
		}
		procIDs[p.Name] = id
		names = append(names, p.Name)
	}
	if err := tx.Process.Update().Where(process.NameNotIn(names...)).SetActive(false).Exec(ctx); err != nil {
		return fmt.Errorf("deactivate processes: %w", err)
	}
	return syncTriggers(ctx, tx, cfg, custIDs, procIDs)
}

// syncTriggers upserts the configuration's triggers. The columns it sets
// are the definition; an operator's pause is never set here, so it
// survives reloads, restarts and a removal. The last scheduled run handled
// survives them too, unless the schedule changed (cron, zone, calendar or
// days) or the trigger comes back after a removal: then it is cleared, and
// the leader starts the trigger afresh at its next pass, as a new one. The
// runs between the old schedule and the new one were never due under
// either: calling them missed while no daemon led would fire surprise
// runs under once and all, record false skips and raise false anomalies.
func syncTriggers(ctx context.Context, tx *ent.Tx, cfg *config.Config, custIDs, procIDs map[string]int) error {
	names := make([]string, 0, len(cfg.Triggers))
	for _, t := range cfg.Triggers {
		names = append(names, t.Name)
	}
	// The configuration bounds the triggers, so one read holds them.
	old, err := tx.Trigger.Query().Where(trigger.NameIn(names...)).All(ctx)
	if err != nil {
		return fmt.Errorf("read triggers: %w", err)
	}
	before := make(map[string]*ent.Trigger, len(old))
	for _, r := range old {
		before[r.Name] = r
	}
	var restart []int
	for _, t := range cfg.Triggers {
		custID, ok := custIDs[t.Customer]
		if !ok {
			return fmt.Errorf("trigger %q: customer %q is not declared", t.Name, t.Customer)
		}
		procID, ok := procIDs[t.Process]
		if !ok {
			return fmt.Errorf("trigger %q: process %q is not declared", t.Name, t.Process)
		}
		zone := t.Location().String()
		if r := before[t.Name]; r != nil && r.LastScheduledFor != nil &&
			(!r.Active || r.Cron != t.Cron || r.Timezone != zone || r.Calendar != t.Calendar || r.Days != t.Days) {
			restart = append(restart, r.ID)
		}
		err := tx.Trigger.Create().SetName(t.Name).SetCustomerID(custID).SetProcessID(procID).
			SetCron(t.Cron).SetTimezone(zone).SetCalendar(t.Calendar).SetDays(t.Days).
			SetCatchUp(string(t.Rule())).SetActive(true).
			OnConflictColumns(trigger.FieldName).UpdateNewValues().Exec(ctx)
		if err != nil {
			return fmt.Errorf("trigger %q: %w", t.Name, err)
		}
	}
	if len(restart) > 0 {
		if err := tx.Trigger.Update().Where(trigger.IDIn(restart...)).ClearLastScheduledFor().Exec(ctx); err != nil {
			return fmt.Errorf("restart changed triggers: %w", err)
		}
	}
	if err := tx.Trigger.Update().Where(trigger.NameNotIn(names...), trigger.Active(true)).SetActive(false).Exec(ctx); err != nil {
		return fmt.Errorf("deactivate triggers: %w", err)
	}
	return nil
}

func scheduleText(ss []config.Schedule) string {
	out := ""
	for i, s := range ss {
		if i > 0 {
			out += "; "
		}
		out += fmt.Sprintf("%s: %s for %s", s.Name, s.Cron, s.Duration)
		if s.Timezone != "" {
			out += " " + s.Timezone
		}
	}
	return out
}
