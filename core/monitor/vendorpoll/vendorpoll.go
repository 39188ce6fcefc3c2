// Package vendorpoll pulls the job and robot state of an RPA vendor's
// orchestrator (UiPath Orchestrator, AA Control Room) through a vendor
// plugin into the monitoring model, so that runs the vendor started on its
// own schedules appear beside rpacloud's: every change of a job's or a
// robot's state becomes an event (vendorjob.<state>, vendorrobot.<state>)
// classified by vendor, process, pool and department.
package vendorpoll

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/rpacloud/rpacloud/core/events"
	"github.com/rpacloud/rpacloud/ent"
	"github.com/rpacloud/rpacloud/ent/privacy"
	"github.com/rpacloud/rpacloud/ent/process"
	"github.com/rpacloud/rpacloud/plugins/sdk"
)

// Source is the part of a vendor plugin the poller uses; sdk.Vendor and
// the plugin host's supervised vendor client both satisfy it.
type Source interface {
	ListJobs(ctx context.Context, f sdk.JobFilter) ([]sdk.Job, error)
	ListRobots(ctx context.Context) ([]sdk.VendorRobot, error)
}

// Poller follows one vendor block.
type Poller struct {
	Client *ent.Client
	Bus    *events.Bus
	// Name is the vendor block's name; Type its product (uipath, aa).
	Name, Type string
	Source     Source
	Interval   time.Duration // default 30s
	// Lookback bounds the first poll; later polls overlap the previous
	// one by Interval so a job created during a poll is not missed.
	Lookback time.Duration // default 24h
	Now      func() time.Time
	Log      *slog.Logger

	jobs   map[string]sdk.JobState
	robots map[string]sdk.RobotState
	since  time.Time
}

// Change is one state change seen by a poll.
type Change struct {
	Kind  string // "job" or "robot"
	ID    string
	State string
	Job   *sdk.Job
	Robot *sdk.VendorRobot
}

// DiffJobs returns the jobs whose state differs from prev, and records the
// new states in prev. Jobs absent from a poll are left alone: a list is
// bounded by time, so absence says nothing.
func DiffJobs(prev map[string]sdk.JobState, jobs []sdk.Job) []Change {
	var out []Change
	// Oldest first, so one job's changes come out in the order they happened.
	for i := len(jobs) - 1; i >= 0; i-- {
		j := jobs[i]
		if prev[j.ID] == j.State {
			continue
		}
		prev[j.ID] = j.State
		out = append(out, Change{Kind: "job", ID: j.ID, State: string(j.State), Job: &j})
	}
	return out
}

// DiffRobots is DiffJobs for robots; a robot that disappears from the
// vendor's list is reported as "removed".
func DiffRobots(prev map[string]sdk.RobotState, robots []sdk.VendorRobot) []Change {
	var out []Change
	seen := map[string]bool{}
	for _, r := range robots {
		seen[r.ID] = true
		if prev[r.ID] == r.State {
			continue
		}
		prev[r.ID] = r.State
		out = append(out, Change{Kind: "robot", ID: r.ID, State: string(r.State), Robot: &r})
	}
	for id := range prev {
		if !seen[id] {
			delete(prev, id)
			out = append(out, Change{Kind: "robot", ID: id, State: "removed"})
		}
	}
	return out
}

func (p *Poller) now() time.Time {
	if p.Now != nil {
		return p.Now().UTC()
	}
	return time.Now().UTC()
}

// Poll reads the vendor once and records what changed.
func (p *Poller) Poll(ctx context.Context) error {
	if p.jobs == nil {
		p.jobs, p.robots = map[string]sdk.JobState{}, map[string]sdk.RobotState{}
		lb := p.Lookback
		if lb <= 0 {
			lb = 24 * time.Hour
		}
		p.since = p.now().Add(-lb)
	}
	start := p.now()
	jobs, err := p.Source.ListJobs(ctx, sdk.JobFilter{Since: p.since})
	if err != nil {
		return fmt.Errorf("vendor %s: list jobs: %w", p.Name, err)
	}
	robots, err := p.Source.ListRobots(ctx)
	if err != nil {
		return fmt.Errorf("vendor %s: list robots: %w", p.Name, err)
	}
	changes := append(DiffJobs(p.jobs, jobs), DiffRobots(p.robots, robots)...)
	if err := p.record(ctx, changes); err != nil {
		return err
	}
	p.since = start.Add(-p.interval())
	return nil
}

func (p *Poller) interval() time.Duration {
	if p.Interval > 0 {
		return p.Interval
	}
	return 30 * time.Second
}

// Run polls until ctx ends. Errors are logged and the next poll retries.
func (p *Poller) Run(ctx context.Context) {
	log := p.Log
	if log == nil {
		log = slog.Default()
	}
	t := time.NewTicker(p.interval())
	defer t.Stop()
	for {
		if err := p.Poll(ctx); err != nil && ctx.Err() == nil {
			log.Warn("vendor poll", "vendor", p.Name, "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (p *Poller) record(ctx context.Context, changes []Change) error {
	if len(changes) == 0 {
		return nil
	}
	sctx := privacy.DecisionContext(ctx, privacy.Allow)
	procs, err := p.Client.Process.Query().Where(process.KindEQ(process.KindVendor), process.Runner(p.Name)).All(sctx)
	if err != nil {
		return fmt.Errorf("vendor %s: processes: %w", p.Name, err)
	}
	byPackage := map[string]*ent.Process{}
	for _, pr := range procs {
		byPackage[pr.Package] = pr
	}
	now := p.now()
	creates := make([]*ent.EventCreate, 0, len(changes))
	for _, c := range changes {
		typ := events.VendorRobot(c.State)
		if c.Kind == "job" {
			typ = events.VendorJob(c.State)
		}
		e := events.Create(p.Client.Event, typ, now).SetVendor(p.Type).SetExternalID(c.ID).SetStatus(c.State)
		switch c.Kind {
		case "job":
			j := c.Job
			e.SetMessage(fmt.Sprintf("%s job %s of %s on %s: %s (%s)", p.Type, j.ID, j.Package, j.Robot, c.State, firstNonEmpty(j.Info, j.VendorState)))
			if pr := byPackage[j.Package]; pr != nil {
				e.SetProcessID(pr.ID).SetPoolID(pr.PoolID).SetNillableCustomerID(pr.OwnerID)
			}
		default:
			msg := fmt.Sprintf("%s robot %s: %s", p.Type, c.ID, c.State)
			if c.Robot != nil {
				msg = fmt.Sprintf("%s robot %s on %s: %s (%s)", p.Type, c.Robot.Name, c.Robot.Machine, c.State, c.Robot.VendorState)
			}
			e.SetMessage(msg)
		}
		creates = append(creates, e)
	}
	evs, err := p.Client.Event.CreateBulk(creates...).Save(sctx)
	if err != nil {
		return fmt.Errorf("vendor %s: record %d changes: %w", p.Name, len(creates), err)
	}
	p.Bus.Publish(evs...)
	return nil
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}
