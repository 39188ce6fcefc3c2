package monitor

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/rpacloud/rpacloud/core/monitor/saturation"
	"github.com/rpacloud/rpacloud/ent"
	"github.com/rpacloud/rpacloud/ent/anomaly"
	"github.com/rpacloud/rpacloud/ent/attempt"
	"github.com/rpacloud/rpacloud/ent/event"
	"github.com/rpacloud/rpacloud/ent/pool"
	"github.com/rpacloud/rpacloud/ent/poolsample"
	"github.com/rpacloud/rpacloud/ent/process"
	"github.com/rpacloud/rpacloud/ent/robot"
	"github.com/rpacloud/rpacloud/ent/task"
)

// The read side. Functions that take the caller's ctx let the storage
// layer's privacy rules narrow what a department sees; infrastructure rows
// (robots, pools, samples) hold no customer data.

// VendorStatusCount counts robots of one vendor in one state.
type VendorStatusCount struct {
	Vendor, Status string
	Count          int
}

// Running is a run in progress.
type Running struct {
	TaskID, Attempt                            int
	Process, Vendor, Robot, Customer, PoolName string
	StartedAt, Deadline                        time.Time
}

// Summary is what the wall screen shows besides the pools.
type Summary struct {
	At           time.Time
	Robots       []VendorStatusCount
	TasksByState map[string]int
	Running      []Running
	Open         []*ent.Anomaly
	Resolved     []*ent.Anomaly
	// VendorJobs are the vendors' own jobs running now (vendorjob events),
	// beside rpacloud's runs in Running.
	VendorJobs []VendorJob
	// TimeZone is the server block's timezone (IANA; "UTC" when unset), the
	// zone the wall screen shows times in.
	TimeZone string
}

var sevOrder = map[anomaly.Severity]int{anomaly.SeverityCritical: 0, anomaly.SeverityWarning: 1, anomaly.SeverityInfo: 2}

// poolVendors maps pools to the licence their robots use: the vendor of the
// pool's vendor processes, or rpacloud.
func (m *Monitor) poolVendors(ctx context.Context, n *names) map[int]string {
	out := map[int]string{}
	for _, p := range n.processes {
		if p.Kind == process.KindVendor {
			out[p.PoolID] = n.vendor(p.ID)
		}
	}
	for id := range n.pools {
		if out[id] == "" {
			out[id] = "rpacloud"
		}
	}
	return out
}

// Summary computes the dashboard's summary as ctx's principal may see it.
func (m *Monitor) Summary(ctx context.Context) (*Summary, error) {
	now := m.now()
	sctx := system(ctx)
	n, err := m.names(sctx)
	if err != nil {
		return nil, err
	}
	pv := m.poolVendors(sctx, n)
	s := &Summary{At: now, TasksByState: map[string]int{}}

	var rrows []struct {
		PoolID int         `json:"pool_id"`
		State  robot.State `json:"state"`
		Count  int         `json:"count"`
	}
	if err := m.client.Robot.Query().Where(robot.StateNEQ(robot.StateReleased)).
		GroupBy(robot.FieldPoolID, robot.FieldState).Aggregate(ent.Count()).Scan(sctx, &rrows); err != nil {
		return nil, fmt.Errorf("summary: robots: %w", err)
	}
	byVS := map[[2]string]int{}
	for _, r := range rrows {
		byVS[[2]string{pv[r.PoolID], string(r.State)}] += r.Count
	}
	for k, c := range byVS {
		s.Robots = append(s.Robots, VendorStatusCount{Vendor: k[0], Status: k[1], Count: c})
	}
	vr, err := m.vendorRobots(sctx)
	if err != nil {
		return nil, err
	}
	s.Robots = append(s.Robots, vr...)
	sort.Slice(s.Robots, func(i, j int) bool {
		if s.Robots[i].Vendor != s.Robots[j].Vendor {
			return s.Robots[i].Vendor < s.Robots[j].Vendor
		}
		return s.Robots[i].Status < s.Robots[j].Status
	})

	var trows []struct {
		State task.State `json:"state"`
		Count int        `json:"count"`
	}
	if err := m.client.Task.Query().Where(task.Or(task.StateIn(task.StatePending, task.StateRunning), task.FinishedAtGT(now.Add(-time.Hour)))).
		GroupBy(task.FieldState).Aggregate(ent.Count()).Scan(ctx, &trows); err != nil {
		return nil, fmt.Errorf("summary: tasks: %w", err)
	}
	for _, r := range trows {
		s.TasksByState[string(r.State)] = r.Count
	}

	running, err := m.client.Task.Query().Where(task.StateEQ(task.StateRunning)).Limit(200).All(ctx)
	if err != nil {
		return nil, fmt.Errorf("summary: running tasks: %w", err)
	}
	if len(running) > 0 {
		ids := make([]int, len(running))
		for i, t := range running {
			ids[i] = t.ID
		}
		atts, err := m.client.Attempt.Query().Where(attempt.TaskIDIn(ids...), attempt.StateEQ(attempt.StateRunning)).All(sctx)
		if err != nil {
			return nil, fmt.Errorf("summary: running attempts: %w", err)
		}
		byTask := map[int]*ent.Attempt{}
		var rids []int
		for _, a := range atts {
			byTask[a.TaskID] = a
			rids = append(rids, a.RobotID)
		}
		if err := m.robotNames(sctx, n, rids); err != nil {
			return nil, err
		}
		for _, t := range running {
			a := byTask[t.ID]
			if a == nil {
				continue
			}
			cid := t.CustomerID
			r := Running{TaskID: t.ID, Attempt: a.Number, Process: n.process(t.ProcessID), Vendor: n.vendor(t.ProcessID),
				Robot: n.robots[a.RobotID], Customer: n.customer(&cid), StartedAt: a.StartedAt, Deadline: a.Deadline}
			if p := n.pools[t.PoolID]; p != nil {
				r.PoolName = p.Name
			}
			s.Running = append(s.Running, r)
		}
		sort.Slice(s.Running, func(i, j int) bool { return s.Running[i].StartedAt.Before(s.Running[j].StartedAt) })
	}

	if s.VendorJobs, err = m.vendorJobs(ctx, n); err != nil {
		return nil, err
	}
	s.TimeZone = m.o.Config.Current().Server.Timezone
	if s.TimeZone == "" {
		s.TimeZone = "UTC"
	}

	if s.Open, err = m.client.Anomaly.Query().Where(anomaly.StatusNEQ(anomaly.StatusResolved)).
		Order(ent.Desc(anomaly.FieldDetectedAt)).Limit(100).All(ctx); err != nil {
		return nil, fmt.Errorf("summary: open anomalies: %w", err)
	}
	sort.SliceStable(s.Open, func(i, j int) bool { return sevOrder[s.Open[i].Severity] < sevOrder[s.Open[j].Severity] })
	if s.Resolved, err = m.client.Anomaly.Query().Where(anomaly.StatusEQ(anomaly.StatusResolved), anomaly.ResolvedAtGT(now.Add(-time.Hour))).
		Order(ent.Desc(anomaly.FieldResolvedAt)).Limit(20).All(ctx); err != nil {
		return nil, fmt.Errorf("summary: resolved anomalies: %w", err)
	}
	return s, nil
}

// PoolSeries returns samples of the named pool (all active pools when
// empty) in [since, until), oldest first, at most 2000 per pool (thinned
// evenly) so a week's chart stays light.
func (m *Monitor) PoolSeries(ctx context.Context, poolName string, since, until time.Time) (map[*ent.Pool][]*ent.PoolSample, error) {
	q := m.client.Pool.Query().Where(pool.Active(true)).Order(pool.ByName())
	if poolName != "" {
		q = m.client.Pool.Query().Where(pool.Name(poolName))
	}
	pools, err := q.All(ctx)
	if err != nil {
		return nil, fmt.Errorf("pool series: %w", err)
	}
	out := make(map[*ent.Pool][]*ent.PoolSample, len(pools))
	for _, p := range pools {
		ss, err := m.client.PoolSample.Query().Where(poolsample.PoolID(p.ID), poolsample.AtGTE(since), poolsample.AtLT(until)).
			Order(ent.Asc(poolsample.FieldAt)).All(ctx)
		if err != nil {
			return nil, fmt.Errorf("pool series of %s: %w", p.Name, err)
		}
		if len(ss) > 2000 {
			thin := make([]*ent.PoolSample, 0, 2000)
			for i := range 2000 {
				thin = append(thin, ss[i*len(ss)/2000])
			}
			ss = thin
		}
		out[p] = ss
	}
	return out, nil
}

// Point is a bucket of an event series.
type Point struct {
	At    time.Time
	Value float64
}

// EventSeries counts events per status in buckets of step since since.
func (m *Monitor) EventSeries(ctx context.Context, types []string, since time.Time, step time.Duration, poolID, processID *int) (map[string][]Point, error) {
	now := m.now()
	if step <= 0 {
		return nil, fmt.Errorf("event series: bucket must be positive, got %s", step)
	}
	// The refusals do not say how many buckets it would be: that number
	// moves with the clock, and an answer must depend on the request and
	// the data only (the generated tenancy test compares two answers).
	buckets := int(now.Sub(since)/step) + 1
	if buckets < 1 {
		return nil, fmt.Errorf("event series: since %s is in the future", since.Format(time.RFC3339))
	}
	if buckets > 2000 {
		return nil, fmt.Errorf("event series: from %s in buckets of %s is over 2000 buckets; use a larger bucket or a later since", since.Format(time.RFC3339), step)
	}
	q := m.client.Event.Query().Where(event.AtGTE(since))
	if len(types) > 0 {
		q = q.Where(event.TypeIn(types...))
	}
	if poolID != nil {
		q = q.Where(event.PoolID(*poolID))
	}
	if processID != nil {
		q = q.Where(event.ProcessID(*processID))
	}
	evs, err := q.Limit(200000).Select(event.FieldAt, event.FieldStatus).All(ctx)
	if err != nil {
		return nil, fmt.Errorf("event series: %w", err)
	}
	out := map[string][]Point{}
	for _, e := range evs {
		pts := out[e.Status]
		if pts == nil {
			pts = make([]Point, buckets)
			for i := range pts {
				pts[i].At = since.Add(time.Duration(i) * step)
			}
			out[e.Status] = pts
		}
		if i := int(e.At.Sub(since) / step); i >= 0 && i < buckets {
			pts[i].Value++
		}
	}
	return out, nil
}

// SaturationReport is saturation.Report with the pools' utilisation series.
type SaturationReport struct {
	saturation.Report
	Series map[string][]saturation.Point
}

// Saturation measures robots over window; pool and vendor narrow it.
func (m *Monitor) Saturation(ctx context.Context, window time.Duration, poolName, vendor string, buckets int) (*SaturationReport, error) {
	sctx := system(ctx)
	now := m.now()
	from := now.Add(-window)
	n, err := m.names(sctx)
	if err != nil {
		return nil, err
	}
	pv := m.poolVendors(sctx, n)
	rs, err := m.client.Robot.Query().Where(robot.CreatedAtLT(now),
		robot.Or(robot.StateNEQ(robot.StateReleased), robot.UpdatedAtGT(from))).All(sctx)
	if err != nil {
		return nil, fmt.Errorf("saturation: robots: %w", err)
	}
	var robots []saturation.Robot
	ids := []int{}
	for _, r := range rs {
		p := n.pools[r.PoolID]
		if p == nil || (poolName != "" && p.Name != poolName) || (vendor != "" && pv[r.PoolID] != vendor) {
			continue
		}
		sr := saturation.Robot{ID: r.ID, Name: r.Name, Pool: p.Name, Vendor: pv[r.PoolID], From: r.CreatedAt}
		if r.State == robot.StateReleased {
			// Released robots stop changing: their last update is when
			// they left.
			u := r.UpdatedAt
			sr.Until = &u
		}
		robots = append(robots, sr)
		ids = append(ids, r.ID)
	}
	atts, err := m.client.Attempt.Query().Where(attempt.RobotIDIn(ids...), attempt.StartedAtLT(now),
		attempt.Or(attempt.FinishedAtIsNil(), attempt.FinishedAtGT(from))).
		Select(attempt.FieldRobotID, attempt.FieldStartedAt, attempt.FieldFinishedAt, attempt.FieldState).All(sctx)
	if err != nil {
		return nil, fmt.Errorf("saturation: attempts: %w", err)
	}
	busy := make([]saturation.Busy, 0, len(atts))
	for _, a := range atts {
		b := saturation.Busy{RobotID: a.RobotID, Start: a.StartedAt}
		if a.FinishedAt != nil {
			b.End = *a.FinishedAt
		}
		busy = append(busy, b)
	}
	rep := &SaturationReport{Report: saturation.Compute(now, window, robots, busy, saturation.Options{})}
	if buckets > 0 {
		rep.Series = saturation.Series(now, window, min(buckets, 500), robots, busy)
	}
	return rep, nil
}
