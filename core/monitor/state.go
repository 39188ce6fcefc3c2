package monitor

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/rpacloud/rpacloud/core/config"
	"github.com/rpacloud/rpacloud/core/events"
	"github.com/rpacloud/rpacloud/core/monitor/rules"
	"github.com/rpacloud/rpacloud/core/trigger"
	"github.com/rpacloud/rpacloud/ent"
	"github.com/rpacloud/rpacloud/ent/attempt"
	"github.com/rpacloud/rpacloud/ent/batch"
	"github.com/rpacloud/rpacloud/ent/event"
	"github.com/rpacloud/rpacloud/ent/poolsample"
	"github.com/rpacloud/rpacloud/ent/process"
	"github.com/rpacloud/rpacloud/ent/robot"
	"github.com/rpacloud/rpacloud/ent/task"
	enttrigger "github.com/rpacloud/rpacloud/ent/trigger"
	"github.com/rpacloud/rpacloud/ent/vm"
)

// Windows of the snapshot.
const (
	faultWindow    = 24 * time.Hour
	vmWindow       = 24 * time.Hour
	scheduleWindow = 24 * time.Hour
	recentWindow   = time.Hour
	baselineWindow = 24 * time.Hour
	maxFaults      = 500
)

var liveStates = []robot.State{robot.StateIdle, robot.StateBusy, robot.StateSuspect, robot.StateDraining}

// names holds the lookup tables a snapshot needs.
type names struct {
	pools     map[int]*ent.Pool
	processes map[int]*ent.Process
	customers map[int]string
	robots    map[int]string
	vendors   map[string]string // vendor block name → type
}

func (m *Monitor) names(ctx context.Context) (*names, error) {
	n := &names{pools: map[int]*ent.Pool{}, processes: map[int]*ent.Process{}, customers: map[int]string{}, robots: map[int]string{}, vendors: map[string]string{}}
	pools, err := m.client.Pool.Query().All(ctx)
	if err != nil {
		return nil, fmt.Errorf("snapshot: pools: %w", err)
	}
	for _, p := range pools {
		n.pools[p.ID] = p
	}
	procs, err := m.client.Process.Query().All(ctx)
	if err != nil {
		return nil, fmt.Errorf("snapshot: processes: %w", err)
	}
	for _, p := range procs {
		n.processes[p.ID] = p
	}
	custs, err := m.client.Customer.Query().All(ctx)
	if err != nil {
		return nil, fmt.Errorf("snapshot: customers: %w", err)
	}
	for _, c := range custs {
		n.customers[c.ID] = c.Name
	}
	for _, v := range m.o.Config.Current().Vendors {
		n.vendors[v.Name] = v.Type
	}
	return n, nil
}

// vendor is the product that runs a process: the vendor block's type for
// vendor processes, rpacloud for builtin and crawler ones.
func (n *names) vendor(processID int) string {
	p := n.processes[processID]
	if p == nil || p.Kind != process.KindVendor {
		return "rpacloud"
	}
	if t := n.vendors[p.Runner]; t != "" {
		return t
	}
	return p.Runner
}

func (n *names) process(id int) string {
	if p := n.processes[id]; p != nil {
		return p.Name
	}
	return fmt.Sprintf("process %d", id)
}

func (n *names) customer(id *int) string {
	if id == nil {
		return ""
	}
	return n.customers[*id]
}

// Snapshot reads what the rules need.
func (m *Monitor) Snapshot(ctx context.Context) (rules.State, error) {
	ctx = system(ctx)
	now := m.now()
	st := rules.State{Now: now}
	n, err := m.names(ctx)
	if err != nil {
		return st, err
	}
	runs, byRobot, err := m.runs(ctx, n)
	if err != nil {
		return st, err
	}
	st.Runs = runs
	robotIDs := make([]int, 0, len(byRobot))
	for id := range byRobot {
		robotIDs = append(robotIDs, id)
	}
	robots, err := m.client.Robot.Query().Where(robot.Or(robot.StateIn(liveStates...), robot.IDIn(robotIDs...))).All(ctx)
	if err != nil {
		return st, fmt.Errorf("snapshot: robots: %w", err)
	}
	for _, r := range robots {
		rr := rules.Robot{ID: r.ID, PoolID: r.PoolID, Name: r.Name, State: string(r.State), LastSeen: r.LastSeenAt, VMID: r.VMID, Vendor: "rpacloud"}
		if p := n.pools[r.PoolID]; p != nil {
			rr.Pool = p.Name
		}
		if run, ok := byRobot[r.ID]; ok {
			rr.Run = run
		}
		st.Robots = append(st.Robots, rr)
	}
	if st.Faults, err = m.faults(ctx, n, now); err != nil {
		return st, err
	}
	vf, err := m.vendorFaults(ctx, n, now)
	if err != nil {
		return st, err
	}
	st.Faults = append(st.Faults, vf...)
	if st.VMs, err = m.vmLosses(ctx, n, now); err != nil {
		return st, err
	}
	if st.Schedules, err = m.schedules(ctx, n, now); err != nil {
		return st, err
	}
	if st.Processes, err = m.processStats(ctx, n, now); err != nil {
		return st, err
	}
	if st.Pools, err = m.poolSeries(ctx, n, now); err != nil {
		return st, err
	}
	if st.Waiting, st.Paused, err = m.waiting(ctx, n, now); err != nil {
		return st, err
	}
	return st, nil
}

// activityTypes are the events that show a pool's robots taking and
// finishing work (with a robot): a dispatch or a robot's report. Time-outs
// and the sweeper's expiries are not progress.
var activityTypes = events.Strings(events.TaskDispatched, events.TaskSucceeded, events.TaskFailed, events.TaskRetrying)

// waiting reads the work waiting for a robot in every active pool: the
// active orders with pending tasks (few rows), and each such pool's last
// dispatch or report within the stuck threshold (an index range on
// events(pool_id, at)).
func (m *Monitor) waiting(ctx context.Context, n *names, now time.Time) ([]rules.PoolWork, []rules.PausedWork, error) {
	var rows []struct {
		PoolID    int       `json:"pool_id"`
		ProcessID int       `json:"process_id"`
		CreatedAt time.Time `json:"created_at"`
		Pending   int       `json:"pending"`
	}
	err := m.client.Batch.Query().
		Where(batch.StackIn(batch.StackNew, batch.StackServing), batch.PendingGT(0)).
		Select(batch.FieldPoolID, batch.FieldProcessID, batch.FieldCreatedAt, batch.FieldPending).Scan(ctx, &rows)
	if err != nil {
		return nil, nil, fmt.Errorf("snapshot: waiting work: %w", err)
	}
	// Every paused pool and process, with the work held back behind it.
	heldPool, heldProc := map[int]int{}, map[int]int{}
	by := map[int]*rules.PoolWork{}
	for _, p := range n.pools {
		if p.Active && p.PausedAt == nil {
			by[p.ID] = &rules.PoolWork{PoolID: p.ID, Pool: p.Name}
		}
	}
	for _, r := range rows {
		// Paused work (rpacloud pool|process pause) waits on purpose: it
		// is not stuck, and it does not expire while paused.
		if p := n.pools[r.PoolID]; p != nil && p.PausedAt != nil {
			heldPool[r.PoolID] += r.Pending
			continue
		}
		if p := n.processes[r.ProcessID]; p != nil && p.PausedAt != nil {
			heldProc[r.ProcessID] += r.Pending
			continue
		}
		w := by[r.PoolID]
		if w == nil {
			w = &rules.PoolWork{PoolID: r.PoolID, Pool: fmt.Sprintf("pool %d", r.PoolID)}
			if p := n.pools[r.PoolID]; p != nil {
				w.Pool = p.Name
			}
			by[r.PoolID] = w
		}
		if w.Pending == 0 || r.CreatedAt.Before(w.OldestSubmitted) {
			w.OldestSubmitted = r.CreatedAt
			w.ExpiresAt = nil
			if p := n.processes[r.ProcessID]; p != nil {
				e := r.CreatedAt.Add(time.Duration(p.MaxWaitSeconds) * time.Second)
				w.ExpiresAt = &e
			}
		}
		w.Pending += r.Pending
	}
	out := make([]rules.PoolWork, 0, len(by))
	for _, w := range by {
		if w.Pending > 0 {
			last, err := m.client.Event.Query().
				Where(event.PoolID(w.PoolID), event.AtGT(now.Add(-m.tune().Thresholds.StuckAfter)), event.TypeIn(activityTypes...), event.RobotIDNotNil()).
				Order(ent.Desc(event.FieldAt)).First(ctx)
			switch {
			case ent.IsNotFound(err):
			case err != nil:
				return nil, nil, fmt.Errorf("snapshot: last activity of pool %s: %w", w.Pool, err)
			default:
				at := last.At
				w.LastActivity = &at
			}
		}
		out = append(out, *w)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].PoolID < out[j].PoolID })
	var paused []rules.PausedWork
	for _, p := range n.pools {
		if p.PausedAt != nil {
			paused = append(paused, rules.PausedWork{Kind: "pool", ID: p.ID, Name: p.Name, PausedAt: *p.PausedAt,
				PausedBy: deref(p.PausedBy), Reason: deref(p.PauseReason), Pending: heldPool[p.ID]})
		}
	}
	for _, p := range n.processes {
		if p.PausedAt != nil {
			paused = append(paused, rules.PausedWork{Kind: "process", ID: p.ID, Name: p.Name, PausedAt: *p.PausedAt,
				PausedBy: deref(p.PausedBy), Reason: deref(p.PauseReason), Pending: heldProc[p.ID]})
		}
	}
	sort.Slice(paused, func(i, j int) bool {
		if paused[i].Kind != paused[j].Kind {
			return paused[i].Kind < paused[j].Kind
		}
		return paused[i].ID < paused[j].ID
	})
	return out, paused, nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// runs returns the attempts in progress, and the same runs by robot.
func (m *Monitor) runs(ctx context.Context, n *names) ([]rules.Run, map[int]*rules.Run, error) {
	atts, err := m.client.Attempt.Query().Where(attempt.StateEQ(attempt.StateRunning)).All(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("snapshot: running attempts: %w", err)
	}
	if len(atts) == 0 {
		return nil, map[int]*rules.Run{}, nil
	}
	ids := make([]int, len(atts))
	rids := make([]int, len(atts))
	for i, a := range atts {
		ids[i], rids[i] = a.TaskID, a.RobotID
	}
	tasks, err := m.client.Task.Query().Where(task.IDIn(ids...)).All(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("snapshot: running tasks: %w", err)
	}
	byID := map[int]*ent.Task{}
	for _, t := range tasks {
		byID[t.ID] = t
	}
	rs, err := m.client.Robot.Query().Where(robot.IDIn(rids...)).All(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("snapshot: robots of runs: %w", err)
	}
	rmap := map[int]*ent.Robot{}
	for _, r := range rs {
		rmap[r.ID] = r
	}
	out := make([]rules.Run, 0, len(atts))
	for _, a := range atts {
		t := byID[a.TaskID]
		if t == nil {
			continue
		}
		cid, rid := t.CustomerID, a.RobotID
		run := rules.Run{TaskID: t.ID, Attempt: a.Number, ProcessID: t.ProcessID, PoolID: t.PoolID,
			CustomerID: &cid, RobotID: &rid, Process: n.process(t.ProcessID), Customer: n.customer(&cid),
			Vendor: n.vendor(t.ProcessID), StartedAt: a.StartedAt, LastHeartbeat: a.HeartbeatAt,
			LastStep: fmt.Sprintf("attempt %d running", a.Number)}
		if r := rmap[a.RobotID]; r != nil {
			run.Robot, run.VMID = r.Name, r.VMID
		}
		if p := n.processes[t.ProcessID]; p != nil {
			run.Expected = time.Duration(p.MaxDurationSeconds) * time.Second
		}
		out = append(out, run)
	}
	byRobot := make(map[int]*rules.Run, len(out))
	for i := range out {
		byRobot[*out[i].RobotID] = &out[i]
	}
	return out, byRobot, nil
}

func (m *Monitor) faults(ctx context.Context, n *names, now time.Time) ([]rules.Fault, error) {
	tasks, err := m.client.Task.Query().
		Where(task.StateEQ(task.StateFailed), task.FinishedAtGT(now.Add(-faultWindow)),
			// Data errors are judged by their rate (processStats), and
			// must not crowd real faults out of the limit.
			task.Or(task.FailureReasonIsNil(), task.FailureReasonNEQ(task.FailureReasonDataError))).
		Order(ent.Desc(task.FieldFinishedAt)).Limit(maxFaults).All(ctx)
	if err != nil {
		return nil, fmt.Errorf("snapshot: failed tasks: %w", err)
	}
	if len(tasks) == 0 {
		return nil, nil
	}
	ids := make([]int, len(tasks))
	for i, t := range tasks {
		ids[i] = t.ID
	}
	atts, err := m.client.Attempt.Query().Where(attempt.TaskIDIn(ids...)).All(ctx)
	if err != nil {
		return nil, fmt.Errorf("snapshot: attempts of failed tasks: %w", err)
	}
	last := map[int]*ent.Attempt{}
	var rids []int
	for _, a := range atts {
		if l := last[a.TaskID]; l == nil || a.Number > l.Number {
			last[a.TaskID] = a
		}
		rids = append(rids, a.RobotID)
	}
	if err := m.robotNames(ctx, n, rids); err != nil {
		return nil, err
	}
	type pc struct{ process, customer int }
	recovered := map[pc]*time.Time{}
	out := make([]rules.Fault, 0, len(tasks))
	for _, t := range tasks {
		key := pc{t.ProcessID, t.CustomerID}
		if _, ok := recovered[key]; !ok {
			ok, err := m.client.Task.Query().Where(task.ProcessID(t.ProcessID), task.CustomerID(t.CustomerID),
				task.StateEQ(task.StateSucceeded), task.FinishedAtNotNil()).
				Order(ent.Desc(task.FieldFinishedAt)).First(ctx)
			switch {
			case ent.IsNotFound(err):
				recovered[key] = nil
			case err != nil:
				return nil, fmt.Errorf("snapshot: last success of process %d: %w", t.ProcessID, err)
			default:
				recovered[key] = ok.FinishedAt
			}
		}
		cid := t.CustomerID
		f := rules.Fault{TaskID: t.ID, ProcessID: t.ProcessID, PoolID: t.PoolID, CustomerID: &cid,
			Process: n.process(t.ProcessID), Customer: n.customer(&cid), Vendor: n.vendor(t.ProcessID),
			Error: t.ErrorMessage, At: *t.FinishedAt}
		if t.FailureReason != nil {
			f.Reason = string(*t.FailureReason)
		}
		if a := last[t.ID]; a != nil {
			rid := a.RobotID
			f.RobotID, f.Robot = &rid, n.robots[rid]
			f.LastStep = fmt.Sprintf("attempt %d (%s)", a.Number, a.State)
			if f.Error == "" {
				f.Error = a.ErrorMessage
			}
		}
		// Other runs succeeding says nothing about a task whose input is
		// wrong: a data error stays until someone handles it.
		if r := recovered[key]; r != nil && r.After(f.At) && f.Reason != "data_error" {
			f.RecoveredAt = r
		}
		out = append(out, f)
	}
	return out, nil
}

func (m *Monitor) robotNames(ctx context.Context, n *names, ids []int) error {
	var need []int
	for _, id := range ids {
		if _, ok := n.robots[id]; !ok {
			need = append(need, id)
		}
	}
	if len(need) == 0 {
		return nil
	}
	rs, err := m.client.Robot.Query().Where(robot.IDIn(need...)).Select(robot.FieldID, robot.FieldName).All(ctx)
	if err != nil {
		return fmt.Errorf("snapshot: robot names: %w", err)
	}
	for _, r := range rs {
		n.robots[r.ID] = r.Name
	}
	return nil
}

// vmLosses pairs every VM that ended unplanned (the fleet's vm.gone and
// vm.failed events) with a later running VM of the same pool, if any.
func (m *Monitor) vmLosses(ctx context.Context, n *names, now time.Time) ([]rules.VMLoss, error) {
	evs, err := m.client.Event.Query().
		Where(event.TypeIn(events.Strings(events.VMGone, events.VMFailed)...), event.AtGT(now.Add(-vmWindow)), event.RobotIDNotNil()).
		Order(ent.Asc(event.FieldAt)).All(ctx)
	if err != nil {
		return nil, fmt.Errorf("snapshot: VM losses: %w", err)
	}
	if len(evs) == 0 {
		return nil, nil
	}
	rids := make([]int, 0, len(evs))
	for _, e := range evs {
		rids = append(rids, *e.RobotID)
	}
	rs, err := m.client.Robot.Query().Where(robot.IDIn(rids...)).All(ctx)
	if err != nil {
		return nil, fmt.Errorf("snapshot: robots of lost VMs: %w", err)
	}
	vmOf := map[int]*ent.Robot{}
	var vmIDs []int
	for _, r := range rs {
		vmOf[r.ID] = r
		if r.VMID != nil {
			vmIDs = append(vmIDs, *r.VMID)
		}
	}
	vms, err := m.client.VM.Query().Where(vm.IDIn(vmIDs...)).All(ctx)
	if err != nil {
		return nil, fmt.Errorf("snapshot: lost VMs: %w", err)
	}
	vmByID := map[int]*ent.VM{}
	for _, v := range vms {
		vmByID[v.ID] = v
	}
	running, err := m.client.VM.Query().Where(vm.StateEQ(vm.StateRunning), vm.CreatedAtGT(evs[0].At.Add(-time.Minute))).
		Order(ent.Asc(vm.FieldCreatedAt)).All(ctx)
	if err != nil {
		return nil, fmt.Errorf("snapshot: replacement VMs: %w", err)
	}
	used := map[int]bool{}
	var out []rules.VMLoss
	for _, e := range evs {
		r := vmOf[*e.RobotID]
		if r == nil || r.VMID == nil || vmByID[*r.VMID] == nil {
			continue
		}
		v := vmByID[*r.VMID]
		rid := r.ID
		loss := rules.VMLoss{VMID: v.ID, PoolID: v.PoolID, InstanceID: v.InstanceID, RobotID: &rid, Robot: r.Name, Error: v.Error, At: e.At}
		if p := n.pools[v.PoolID]; p != nil {
			loss.Pool = p.Name
		}
		// A VM created up to a minute before the loss was noticed may be
		// its replacement: the provider can report the exit late.
		for _, c := range running {
			if !used[c.ID] && c.PoolID == v.PoolID && c.ID != v.ID && c.CreatedAt.After(e.At.Add(-time.Minute)) {
				used[c.ID] = true
				loss.ReplacedBy = c.InstanceID
				break
			}
		}
		out = append(out, loss)
	}
	return out, nil
}

func (m *Monitor) schedules(ctx context.Context, n *names, now time.Time) ([]rules.ScheduledRun, error) {
	byName := map[string]*ent.Process{}
	for _, p := range n.processes {
		byName[p.Name] = p
	}
	var out []rules.ScheduledRun
	cfg := m.o.Config.Current()
	// A slot a trigger fires into is watched through the trigger's runs.
	triggered := map[string]bool{}
	for _, t := range cfg.Triggers {
		if t.Slot != "" {
			triggered[t.Process+"/"+t.Slot] = true
		}
	}
	for _, cp := range cfg.Processes {
		p := byName[cp.Name]
		if p == nil || !p.Active {
			continue
		}
		for _, s := range cp.Schedules {
			if triggered[cp.Name+"/"+s.Name] {
				continue
			}
			due, ok := lastDue(s, now, p.CreatedAt)
			if !ok {
				continue
			}
			sr := rules.ScheduledRun{ProcessID: p.ID, PoolID: p.PoolID, CustomerID: p.OwnerID, Process: p.Name,
				Schedule: s.Name, Vendor: n.vendor(p.ID), Due: due}
			b, err := m.client.Batch.Query().Where(batch.ProcessID(p.ID), batch.CreatedAtGTE(due.Add(-m.tune().Thresholds.ScheduleGrace))).
				Order(ent.Asc(batch.FieldCreatedAt)).First(ctx)
			switch {
			case ent.IsNotFound(err):
			case err != nil:
				return nil, fmt.Errorf("snapshot: runs of %s: %w", p.Name, err)
			default:
				at := b.CreatedAt
				sr.StartedAt = &at
			}
			out = append(out, sr)
		}
	}
	runs, err := m.triggerRuns(ctx, cfg, n, byName, now)
	return append(out, runs...), err
}

// triggerRuns are the triggers' latest scheduled runs in the window, each
// with the start of its batch (the one fired for that run). A run an
// operator paused (the trigger, its process or its pool paused when it
// was due, or recorded as skipped because of it) is no anomaly; a run
// never fired because no daemon led and the catch-up rule skipped it is.
func (m *Monitor) triggerRuns(ctx context.Context, cfg *config.Config, n *names, procs map[string]*ent.Process, now time.Time) ([]rules.ScheduledRun, error) {
	if len(cfg.Triggers) == 0 {
		return nil, nil
	}
	rows, err := m.client.Trigger.Query().Where(enttrigger.Active(true)).All(ctx)
	if err != nil {
		return nil, fmt.Errorf("snapshot: triggers: %w", err)
	}
	byName := map[string]*ent.Trigger{}
	for _, r := range rows {
		byName[r.Name] = r
	}
	grace := m.tune().Thresholds.ScheduleGrace
	var out []rules.ScheduledRun
	for _, t := range cfg.Triggers {
		row, p := byName[t.Name], procs[t.Process]
		if row == nil || p == nil || !p.Active {
			continue
		}
		from := now.Add(-scheduleWindow)
		if row.CreatedAt.After(from) {
			from = row.CreatedAt
		}
		var due time.Time
		sch := t.Schedule()
		for r, i := sch.Next(from), 0; !r.IsZero() && !r.After(now) && i < maxTriggerRunsScanned; r, i = sch.Next(r), i+1 {
			due = r
		}
		if due.IsZero() {
			continue
		}
		excused, err := m.pausedRun(ctx, t, row, p, due, grace)
		if err != nil {
			return nil, err
		}
		if excused {
			continue
		}
		cust := row.CustomerID
		sr := rules.ScheduledRun{ProcessID: p.ID, PoolID: p.PoolID, CustomerID: &cust, Process: p.Name,
			Schedule: t.Slot, Trigger: t.Name, Vendor: n.vendor(p.ID), Due: due}
		b, err := m.client.Batch.Query().Where(batch.TriggerID(row.ID), batch.ScheduledFor(due)).Only(ctx)
		switch {
		case ent.IsNotFound(err):
		case err != nil:
			return nil, fmt.Errorf("snapshot: run of trigger %s: %w", t.Name, err)
		default:
			at := b.CreatedAt
			sr.StartedAt = &at
		}
		out = append(out, sr)
	}
	return out, nil
}

// maxTriggerRunsScanned bounds the runs of one trigger looked at in the
// window (a minutely trigger has 1440 a day).
const maxTriggerRunsScanned = 10000

// pausedRun reports whether the run of t due at due was not fired
// because an operator paused it.
func (m *Monitor) pausedRun(ctx context.Context, t config.Trigger, row *ent.Trigger, p *ent.Process, due time.Time, grace time.Duration) (bool, error) {
	pausedBy := func(at *time.Time) bool { return at != nil && !at.After(due.Add(grace)) }
	if pausedBy(row.PausedAt) || pausedBy(p.PausedAt) {
		return true, nil
	}
	pl, err := m.client.Pool.Get(ctx, p.PoolID)
	if err != nil {
		return false, fmt.Errorf("snapshot: pool of %s: %w", p.Name, err)
	}
	if pausedBy(pl.PausedAt) {
		return true, nil
	}
	// Resumed since: the skip the trigger service recorded says why.
	return m.client.Event.Query().Where(event.Type(string(events.TriggerSkipped)), event.ProcessID(p.ID),
		event.AtGTE(due), event.MessageHasPrefix(trigger.PausedSkip(t, due))).Exist(ctx)
}

// lastDue is the latest start of schedule s at or before now, within the
// schedule window and not before the process existed.
func lastDue(s config.Schedule, now, created time.Time) (time.Time, bool) {
	c := s.Start // parsed at load; a zero Cron never fires
	loc := time.UTC
	if s.Timezone != "" {
		if l, err := time.LoadLocation(s.Timezone); err == nil {
			loc = l
		}
	}
	from := now.Add(-scheduleWindow)
	if created.After(from) {
		from = created
	}
	var due time.Time
	for t := c.Next(from.In(loc)); !t.IsZero() && !t.After(now); t = c.Next(t) {
		due = t
	}
	return due.UTC(), !due.IsZero()
}

func (m *Monitor) processStats(ctx context.Context, n *names, now time.Time) ([]rules.ProcessStats, error) {
	type row struct {
		ProcessID int    `json:"process_id"`
		Type      string `json:"type"`
		Count     int    `json:"count"`
	}
	count := func(from, to time.Time) ([]row, error) {
		var rows []row
		err := m.client.Event.Query().
			Where(event.TypeIn(events.Strings(events.TaskSucceeded, events.TaskFailed)...), event.AtGT(from), event.AtLTE(to), event.ProcessIDNotNil()).
			GroupBy(event.FieldProcessID, event.FieldType).Aggregate(ent.Count()).Scan(ctx, &rows)
		return rows, err
	}
	recentFrom := now.Add(-recentWindow)
	recent, err := count(recentFrom, now)
	if err != nil {
		return nil, fmt.Errorf("snapshot: recent outcomes: %w", err)
	}
	if len(recent) == 0 {
		return nil, nil
	}
	base, err := count(recentFrom.Add(-baselineWindow), recentFrom)
	if err != nil {
		return nil, fmt.Errorf("snapshot: baseline outcomes: %w", err)
	}
	stats := map[int]*rules.ProcessStats{}
	get := func(id int) *rules.ProcessStats {
		s := stats[id]
		if s == nil {
			p := n.processes[id]
			s = &rules.ProcessStats{ProcessID: id, Process: n.process(id), Vendor: n.vendor(id),
				RecentWindow: recentWindow, BaselineWindow: baselineWindow, RecentSince: recentFrom}
			if p != nil {
				s.PoolID, s.CustomerID = p.PoolID, p.OwnerID
			}
			stats[id] = s
		}
		return s
	}
	for _, r := range recent {
		s := get(r.ProcessID)
		s.RecentRuns += r.Count
		if r.Type == string(events.TaskFailed) {
			s.RecentFailures += r.Count
		}
	}
	for _, r := range base {
		if _, ok := stats[r.ProcessID]; !ok {
			continue
		}
		s := get(r.ProcessID)
		s.BaselineRuns += r.Count
		if r.Type == string(events.TaskFailed) {
			s.BaselineFailures += r.Count
		}
	}
	// Of the failures, the data errors (the customer's input): one row
	// per process and window from the tasks table.
	dataErrors := func(from, to time.Time, add func(*rules.ProcessStats, int)) error {
		var rows []struct {
			ProcessID int `json:"process_id"`
			Count     int `json:"count"`
		}
		err := m.client.Task.Query().
			Where(task.StateEQ(task.StateFailed), task.FailureReasonEQ(task.FailureReasonDataError),
				task.FinishedAtGT(from), task.FinishedAtLTE(to)).
			GroupBy(task.FieldProcessID).Aggregate(ent.Count()).Scan(ctx, &rows)
		if err != nil {
			return err
		}
		for _, r := range rows {
			if s := stats[r.ProcessID]; s != nil {
				add(s, r.Count)
			}
		}
		return nil
	}
	if err := dataErrors(recentFrom, now, func(s *rules.ProcessStats, n int) { s.RecentDataErrors = n }); err != nil {
		return nil, fmt.Errorf("snapshot: recent data errors: %w", err)
	}
	if err := dataErrors(recentFrom.Add(-baselineWindow), recentFrom, func(s *rules.ProcessStats, n int) { s.BaselineDataErrors = n }); err != nil {
		return nil, fmt.Errorf("snapshot: baseline data errors: %w", err)
	}
	out := make([]rules.ProcessStats, 0, len(stats))
	for _, s := range stats {
		out = append(out, *s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ProcessID < out[j].ProcessID })
	return out, nil
}

func (m *Monitor) poolSeries(ctx context.Context, n *names, now time.Time) ([]rules.PoolSeries, error) {
	k := m.tune().Thresholds.QueueSamples
	since := now.Add(-time.Duration(2*k+2) * m.tune().SampleInterval)
	samples, err := m.client.PoolSample.Query().Where(poolsample.AtGT(since)).Order(ent.Asc(poolsample.FieldAt)).All(ctx)
	if err != nil {
		return nil, fmt.Errorf("snapshot: pool samples: %w", err)
	}
	by := map[int]*rules.PoolSeries{}
	var order []int
	for _, s := range samples {
		ps := by[s.PoolID]
		if ps == nil {
			ps = &rules.PoolSeries{PoolID: s.PoolID, Max: s.Max}
			if p := n.pools[s.PoolID]; p != nil {
				ps.Pool = p.Name
			}
			by[s.PoolID] = ps
			order = append(order, s.PoolID)
		}
		ps.Max = s.Max
		ps.Samples = append(ps.Samples, rules.Sample{At: s.At, Robots: s.Robots, Pending: s.Pending, Running: s.Running})
	}
	out := make([]rules.PoolSeries, 0, len(order))
	for _, id := range order {
		out = append(out, *by[id])
	}
	return out, nil
}

// vendorFaults are the vendor jobs (polled by core/monitor/vendorpoll) that
// faulted or were stopped, each recovered by a later success of the same
// process on the same vendor.
func (m *Monitor) vendorFaults(ctx context.Context, n *names, now time.Time) ([]rules.Fault, error) {
	evs, err := m.client.Event.Query().
		Where(event.TypeIn(events.Strings(events.VendorJobFaulted, events.VendorJobStopped, events.VendorJobSucceeded)...), event.AtGT(now.Add(-faultWindow))).
		Order(ent.Asc(event.FieldID)).Limit(5 * maxFaults).All(ctx)
	if err != nil {
		return nil, fmt.Errorf("snapshot: vendor jobs: %w", err)
	}
	var out []rules.Fault
	for i, e := range evs {
		if events.Is(e, events.VendorJobSucceeded) {
			continue
		}
		f := rules.Fault{Vendor: e.Vendor, ExternalID: e.ExternalID, Reason: e.Status, Error: e.Message, At: e.At, CustomerID: e.CustomerID,
			Customer: n.customer(e.CustomerID), Process: "unknown " + e.Vendor + " process"}
		if e.ProcessID != nil {
			f.ProcessID, f.Process = *e.ProcessID, n.process(*e.ProcessID)
		}
		if e.PoolID != nil {
			f.PoolID = *e.PoolID
		}
		for _, later := range evs[i+1:] {
			if events.Is(later, events.VendorJobSucceeded) && later.Vendor == e.Vendor && e.ProcessID != nil && later.ProcessID != nil && *later.ProcessID == *e.ProcessID {
				at := later.At
				f.RecoveredAt = &at
				break
			}
		}
		out = append(out, f)
	}
	return out, nil
}
