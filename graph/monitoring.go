package graph

import (
	"context"
	"encoding/json"
	"log/slog"
	"sort"
	"time"

	"github.com/rpacloud/rpacloud/core/events"
	"github.com/rpacloud/rpacloud/core/monitor"
	"github.com/rpacloud/rpacloud/core/monitor/saturation"
	"github.com/rpacloud/rpacloud/ent"
	"github.com/rpacloud/rpacloud/ent/schema/viewer"
	"github.com/rpacloud/rpacloud/graph/model"
)

// monitorReader refuses robots, which read no monitoring data, and a
// daemon without a monitor.
func (r *Resolver) monitorReader(ctx context.Context) (viewer.Principal, error) {
	p, err := principal(ctx)
	if err != nil {
		return p, err
	}
	if p.Role == viewer.Robot {
		return p, coded(CodeForbidden, "forbidden: robots cannot read monitoring data")
	}
	if r.Monitor == nil {
		return p, coded(CodeNotFound, "monitoring is not running on this daemon")
	}
	return p, nil
}

func toSummary(s *monitor.Summary, pools []*model.PoolStatus) *model.DashboardSummary {
	out := &model.DashboardSummary{At: s.At, Pools: pools, OpenAnomalies: s.Open, RecentlyResolved: s.Resolved,
		RobotsByVendorStatus: []*model.VendorStatusCount{}, TasksByState: []*model.CountBy{}, Running: []*model.RunningProcess{},
		VendorJobs: []*model.VendorJobRunning{}, TimeZone: s.TimeZone}
	for _, j := range s.VendorJobs {
		out.VendorJobs = append(out.VendorJobs, &model.VendorJobRunning{Vendor: j.Vendor, ExternalID: j.ExternalID,
			Process: j.Process, Customer: j.Customer, Since: j.Since})
	}
	for _, c := range s.Robots {
		out.RobotsByVendorStatus = append(out.RobotsByVendorStatus, &model.VendorStatusCount{Vendor: c.Vendor, Status: c.Status, Count: c.Count})
	}
	keys := make([]string, 0, len(s.TasksByState))
	for k := range s.TasksByState {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		out.TasksByState = append(out.TasksByState, &model.CountBy{Key: k, Count: s.TasksByState[k]})
	}
	for _, run := range s.Running {
		out.Running = append(out.Running, &model.RunningProcess{TaskID: run.TaskID, Attempt: run.Attempt, Process: run.Process,
			Vendor: run.Vendor, Robot: run.Robot, Customer: run.Customer, Pool: run.PoolName, StartedAt: run.StartedAt, Deadline: run.Deadline})
	}
	return out
}

func (r *Resolver) dashboard(ctx context.Context) (*model.DashboardSummary, error) {
	s, err := r.Monitor.Summary(ctx)
	if err != nil {
		return nil, err
	}
	pools, err := (&queryResolver{r}).PoolStatus(ctx)
	if err != nil {
		return nil, err
	}
	return toSummary(s, pools), nil
}

func toUse(us []saturation.Use) []*model.Utilisation {
	out := make([]*model.Utilisation, 0, len(us))
	for _, u := range us {
		m := &model.Utilisation{Key: u.Key, Robots: u.Robots, BusySeconds: u.Busy.Seconds(), AvailableSeconds: u.Available.Seconds(),
			Utilisation: u.Utilisation, Idle: u.Idle, Peak: u.Peak, Recommended: u.Recommended}
		if u.Pool != "" {
			pool := u.Pool
			m.Pool = &pool
		}
		out = append(out, m)
	}
	return out
}

// Live views recompute after relevant events, at most every minGap, and at
// least every maxGap (so a silent change, like a robot going quiet, still
// shows), and send only when the value changed.
const (
	liveMinGap = 500 * time.Millisecond
	liveMaxGap = 5 * time.Second
)

// wakeAll are the events that may change a live view.
var wakeAll = events.Filter{Prefixes: []string{events.FamilyTask, events.FamilyBatch, events.FamilyRobot, events.FamilyVM,
	events.FamilyPool, events.FamilyAnomaly, events.FamilyScale, events.FamilyVendorJob, events.FamilyVendorRobot}}

func live[T any](ctx context.Context, bus *events.Bus, minGap, maxGap time.Duration, compute func(context.Context) (T, error), onErr func(error)) <-chan T {
	out := make(chan T, 1)
	wake := bus.Subscribe(ctx, wakeAll)
	go func() {
		defer close(out)
		defer func() {
			for range wake { // let the bus close it
			}
		}()
		var last []byte
		timer := time.NewTimer(0)
		defer timer.Stop()
		pending := true
		for {
			select {
			case <-ctx.Done():
				return
			case _, ok := <-wake:
				if !ok {
					return
				}
				// Coalesce a burst into one recomputation.
				if !pending {
					pending = true
					timer.Reset(minGap)
				}
				continue
			case <-timer.C:
			}
			v, err := compute(ctx)
			pending = false
			timer.Reset(maxGap)
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				onErr(err)
				continue
			}
			raw, _ := json.Marshal(v)
			if string(raw) == string(last) {
				continue
			}
			last = raw
			select {
			case out <- v:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out
}

// forward copies matching bus events to a subscription channel until ctx
// ends, converting them with conv (nil results are skipped).
func forward[T any](ctx context.Context, in <-chan *ent.Event, conv func(*ent.Event) T, skip func(T) bool) <-chan T {
	out := make(chan T, 64)
	go func() {
		defer close(out)
		for e := range in {
			v := conv(e)
			if skip(v) {
				continue
			}
			select {
			case out <- v:
			case <-ctx.Done():
				for range in {
				}
				return
			}
		}
	}()
	return out
}

func (r *Resolver) logErr(what string) func(error) {
	return func(err error) { slog.Default().Warn("subscription", "field", what, "err", err) }
}
