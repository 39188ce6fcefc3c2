package delivery

import (
	"context"
	"fmt"
	"time"

	"github.com/rpacloud/rpacloud/core/documents"
	"github.com/rpacloud/rpacloud/core/schedule"
	"github.com/rpacloud/rpacloud/ent/attempt"
	"github.com/rpacloud/rpacloud/ent/customer"
	"github.com/rpacloud/rpacloud/ent/robot"
	"github.com/rpacloud/rpacloud/ent/schema/viewer"
)

// Week returns the Monday-to-Monday week containing t in the documents'
// time zone: the run schedule's window.
func (s *Service) Week(t time.Time) (time.Time, time.Time) {
	loc := time.UTC
	if s.config() != nil && s.config().Documents.Timezone != "" {
		if l, err := time.LoadLocation(s.config().Documents.Timezone); err == nil {
			loc = l
		}
	}
	t = t.In(loc)
	d := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, loc)
	for d.Weekday() != time.Monday {
		d = d.AddDate(0, 0, -1)
	}
	return d.UTC(), d.AddDate(0, 0, 7).UTC()
}

// Data gathers everything the documents of a process say, over the
// schedule window [from, to).
func (s *Service) Data(ctx context.Context, p viewer.Principal, name string, from, to time.Time) (documents.Data, error) {
	var d documents.Data
	if err := mayRead(p); err != nil {
		return d, err
	}
	proc, err := s.processByName(ctx, p, name)
	if err != nil {
		return d, err
	}
	st, err := s.state(ctx, proc)
	if err != nil {
		return d, err
	}
	d.Generated = s.now()
	d.ServerURL = s.PublicURL
	d.Organisation = "rpacloud"
	if s.config() != nil {
		d.Organisation = s.config().Documents.Organisation
		d.Support = s.config().Documents.Support
		d.Timezone = s.config().Documents.Timezone
	}
	d.Stage, d.History, d.Access, d.Require = st.Stage, st.History, st.Access, st.Require
	if d.Process, d.Pool, err = s.processData(ctx, proc); err != nil {
		return d, err
	}
	if d.VMs, err = s.vms(ctx, proc.PoolID); err != nil {
		return d, err
	}
	sd, err := s.scheduleData(ctx, p, proc.Edges.Pool.Name, d.Process.Kind == "vendor", from, to)
	if err != nil {
		return d, err
	}
	d.Schedule = sd
	return d, nil
}

func (s *Service) scheduleData(ctx context.Context, p viewer.Principal, poolName string, licensed bool, from, to time.Time) (documents.ScheduleData, error) {
	sd := documents.ScheduleData{From: from, To: to}
	all, err := s.Bookings(ctx, "")
	if err != nil {
		return sd, err
	}
	// The pool's bookings: the pool is what departments share.
	for _, b := range all {
		if b.Pool == poolName {
			sd.Bookings = append(sd.Bookings, b)
		}
	}
	pools, err := s.Pools(ctx)
	if err != nil {
		return sd, err
	}
	for _, p := range pools {
		if p.Name == poolName {
			sd.Pools = []schedule.Pool{p}
		}
	}
	cs, err := schedule.Clashes(sd.Bookings, pools, from, to)
	if err != nil {
		return sd, fmt.Errorf("%w: %v", ErrBadInput, err)
	}
	sd.Clashes = schedule.Summarise(cs)
	booked, err := schedule.Booked(sd.Bookings, sd.Pools, from, to)
	if err != nil {
		return sd, fmt.Errorf("%w: %v", ErrBadInput, err)
	}
	measured, err := s.measured(ctx, poolName, from, to)
	if err != nil {
		return sd, err
	}
	bookedRobot := map[string]float64{}
	for _, u := range booked {
		if u.Robot == "" {
			sd.Utilisation = append(sd.Utilisation, documents.RobotUse{Pool: u.Pool, Booked: u.Share(), Measured: measured[""], Licensed: licensed})
		} else {
			bookedRobot[u.Robot] = u.Share()
		}
	}
	names := map[string]bool{}
	for r := range measured {
		if r != "" {
			names[r] = true
		}
	}
	for r := range bookedRobot {
		names[r] = true
	}
	for _, r := range sortedStrings(names) {
		sd.Utilisation = append(sd.Utilisation, documents.RobotUse{Pool: poolName, Robot: r, Booked: bookedRobot[r], Measured: measured[r], Licensed: licensed})
	}
	if sd.Departments, err = s.departments(ctx); err != nil {
		return sd, err
	}
	if sd.Triggers, err = s.triggerRuns(ctx, p, poolName, from, to); err != nil {
		return sd, err
	}
	return sd, nil
}

// maxTriggerRuns bounds the runs listed per trigger in one window.
const maxTriggerRuns = 200

// triggerRuns are the triggers of the pool's processes, from the running
// configuration (the pool is shared, as its bookings are), with their runs
// in [from, to). A principal bound to a customer sees the triggers of
// that customer and its departments in full; another department's trigger
// is a row of run times only (Other), so the pool's load shows without
// naming what another department runs (the triggers query answers such a
// name NOT_FOUND).
func (s *Service) triggerRuns(ctx context.Context, p viewer.Principal, poolName string, from, to time.Time) ([]documents.TriggerRuns, error) {
	cfg := s.config()
	if cfg == nil {
		return nil, nil
	}
	var own map[string]bool // nil: every trigger is the caller's to see
	if vis, cid := p.Visibility(); vis != viewer.SeesAll {
		own = map[string]bool{}
		if vis == viewer.SeesOne {
			names, err := s.Client.Customer.Query().Where(customer.Or(customer.ID(cid), customer.ParentID(cid))).
				Select(customer.FieldName).Strings(sys(ctx))
			if err != nil {
				return nil, fmt.Errorf("customers of the caller: %w", err)
			}
			for _, n := range names {
				own[n] = true
			}
		}
	}
	inPool := map[string]bool{}
	for _, proc := range cfg.Processes {
		inPool[proc.Name] = proc.Pool == poolName
	}
	var out []documents.TriggerRuns
	for _, t := range cfg.Triggers {
		if !inPool[t.Process] {
			continue
		}
		// Runs strictly after from-1ns: a run exactly at from is in the window.
		runs, more := t.Schedule().Runs(from.Add(-time.Nanosecond), to.Add(-time.Nanosecond), maxTriggerRuns)
		if own != nil && !own[t.Customer] {
			out = append(out, documents.TriggerRuns{Other: true, Runs: runs, More: more})
			continue
		}
		out = append(out, documents.TriggerRuns{Name: t.Name, Process: t.Process, Department: t.Customer,
			Cron: t.Cron, Timezone: t.Timezone, Calendar: t.Calendar, Days: t.Days, Slot: t.Slot, Runs: runs, More: more})
	}
	return out, nil
}

// measured returns each robot's busy share of the elapsed part of [from,
// to), from its attempts, and the pool's under "".
func (s *Service) measured(ctx context.Context, poolName string, from, to time.Time) (map[string]float64, error) {
	out := map[string]float64{}
	pl, err := s.poolByName(ctx, poolName)
	if err != nil {
		return nil, err
	}
	end := to
	if now := s.now(); now.Before(end) {
		end = now
	}
	if !end.After(from) {
		return out, nil
	}
	window := end.Sub(from)
	robots, err := s.Client.Robot.Query().Where(robot.PoolID(pl.ID), robot.StateNEQ(robot.StateReleased)).All(sys(ctx))
	if err != nil {
		return nil, fmt.Errorf("robots of %q: %w", poolName, err)
	}
	var total time.Duration
	for _, r := range robots {
		atts, err := s.Client.Attempt.Query().Where(
			attempt.RobotID(r.ID), attempt.StartedAtLT(end),
			attempt.Or(attempt.FinishedAtIsNil(), attempt.FinishedAtGT(from)),
		).All(sys(ctx))
		if err != nil {
			return nil, fmt.Errorf("attempts of robot %q: %w", r.Name, err)
		}
		var busy time.Duration
		for _, a := range atts {
			a0, a1 := a.StartedAt, end
			if a.FinishedAt != nil {
				a1 = *a.FinishedAt
			}
			if a0.Before(from) {
				a0 = from
			}
			if a1.After(end) {
				a1 = end
			}
			if a1.After(a0) {
				busy += a1.Sub(a0)
			}
		}
		busy = min(busy, window)
		out[r.Name] = busy.Seconds() / window.Seconds()
		total += busy
	}
	if pl.Max > 0 {
		out[""] = total.Seconds() / (window.Seconds() * float64(pl.Max))
	}
	return out, nil
}

// Render makes one document of a process in the current week.
func (s *Service) Render(ctx context.Context, p viewer.Principal, name string, k documents.Kind, f documents.Format, lang documents.Language) ([]byte, error) {
	from, to := s.Week(s.now())
	d, err := s.Data(ctx, p, name, from, to)
	if err != nil {
		return nil, err
	}
	return documents.Render(ctx, k, f, d, lang, s.Printer)
}

// Language is the configured documents language.
func (s *Service) Language() documents.Language {
	if s.config() != nil && s.config().Documents.Language == "zh" {
		return documents.Chinese
	}
	return documents.English
}
