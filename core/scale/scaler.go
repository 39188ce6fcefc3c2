package scale

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/rpacloud/rpacloud/core/auth"
	"github.com/rpacloud/rpacloud/core/config"
	"github.com/rpacloud/rpacloud/core/events"
	"github.com/rpacloud/rpacloud/core/metrics"
	"github.com/rpacloud/rpacloud/core/scale/decide"
	"github.com/rpacloud/rpacloud/core/scale/poolconf"
	"github.com/rpacloud/rpacloud/ent"
	"github.com/rpacloud/rpacloud/ent/pool"
	"github.com/rpacloud/rpacloud/ent/process"
	"github.com/rpacloud/rpacloud/ent/robot"
	"github.com/rpacloud/rpacloud/ent/scaledecision"
	"github.com/rpacloud/rpacloud/ent/task"
	"github.com/rpacloud/rpacloud/ent/vm"
)

// Scaler is the elastic half of the loop: every period it reads each pool
// (X, Z, D), applies the seed's rule (package decide), rents and releases
// robots through the fleet, and records the reading and the decision.
//
// It keeps nothing of importance in memory: the rule's streaks and
// cooldown are read back from the pool's last ScaleDecision row, so a
// daemon that takes over the leadership continues where the last one
// stopped. Only the leader may call Step.
type Scaler struct {
	Fleet *Fleet
	// Pools returns the scaling configuration of each pool by name: the
	// one source of a pool's settings. A pool missing from it (a row no
	// configuration declares) scales with the seed's defaults and its
	// row's bounds.
	Pools func() map[string]poolconf.Pool
	// Metrics counts the decisions Step records; nil counts nothing.
	Metrics *metrics.Metrics
}

// liveRobot are the robot states that make up X: everything provisioned
// and not on its way out.
var liveRobot = []robot.State{robot.StateProvisioning, robot.StateIdle, robot.StateBusy, robot.StateSuspect}

// Due reports whether the pool's period has passed since its last reading.
func (s *Scaler) Due(ctx context.Context, p *ent.Pool) (bool, error) {
	last, err := s.last(ctx, p)
	if err != nil || last == nil {
		return err == nil, err
	}
	return !s.Fleet.now().Before(last.At.Add(s.config(p).Period)), nil
}

func (s *Scaler) last(ctx context.Context, p *ent.Pool) (*ent.ScaleDecision, error) {
	last, err := s.Fleet.Client.ScaleDecision.Query().Where(scaledecision.PoolID(p.ID)).
		Order(ent.Desc(scaledecision.FieldAt), ent.Desc(scaledecision.FieldID)).First(system(ctx))
	if ent.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("pool %s: last scaling decision: %w", p.Name, err)
	}
	return last, nil
}

func (s *Scaler) config(p *ent.Pool) poolconf.Pool {
	if s.Pools != nil {
		if c, ok := s.Pools()[p.Name]; ok {
			if c.Period <= 0 {
				c.Period = config.DefaultPeriod
			}
			return c
		}
	}
	return poolconf.Pool{Name: p.Name, Provider: p.Provider, Period: time.Duration(p.PeriodSeconds) * time.Second,
		Settings: decide.Settings{Min: p.Min, Max: p.Max, TasksPerRobot: p.TasksPerRobot}}
}

// Step reads one pool, decides, acts and records. term is the leader term
// of this daemon, stored with the decision. A pool without a provider has
// only enrolled robots, which are never rented or released: it is not
// scaled, and Step answers nil.
func (s *Scaler) Step(ctx context.Context, p *ent.Pool, term int64) (*ent.ScaleDecision, error) {
	if p.Provider == "" {
		return nil, nil
	}
	ctx = system(ctx)
	f := s.Fleet
	prov, ok := f.Providers(p.Provider)
	if !ok || !prov.Healthy() {
		return nil, fmt.Errorf("pool %s: provider %q: %w", p.Name, p.Provider, ErrProviderDown)
	}
	cfg := s.config(p)
	st := cfg.Settings
	now := f.now()

	var errs []error
	bootFailures, err := s.reapBootTimeouts(ctx, p, prov, cfg.BootTimeout)
	if err != nil {
		errs = append(errs, err)
	}
	if err := s.retryReleases(ctx, p, prov); err != nil {
		errs = append(errs, err)
	}

	r, views, err := s.read(ctx, p, cfg)
	if err != nil {
		return nil, err
	}
	var state decide.State
	last, err := s.last(ctx, p)
	if err != nil {
		return nil, err
	}
	if last != nil {
		state = decide.State{UpStreak: last.UpStreak, DownStreak: last.DownStreak, Cooldown: last.CooldownLeft}
	}
	d, next := decide.Decide(st, state, r)

	rented, released := 0, 0
	for range d.Rent {
		if err := f.rent(ctx, p, prov, false); err != nil {
			// The robot row stays provisioning with its key; the fleet
			// finds the instance or fails it after the boot timeout.
			errs = append(errs, err)
			break
		}
		rented++
	}
	for _, id := range decide.PickRelease(views, d.Release) {
		ok, err := s.release(ctx, p, prov, id)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if ok {
			released++
		}
	}
	msg := ""
	if err := errors.Join(errs...); err != nil {
		msg = err.Error()
	}
	row, err := f.Client.ScaleDecision.Create().
		SetAt(now).SetPoolID(p.ID).SetPoolName(p.Name).
		SetX(r.X).SetZ(r.Z).SetD(r.D).SetBooting(r.Booting).SetIdleRented(r.IdleRented).
		SetVendorOthers(r.VendorOthers).SetPrewarmFloor(r.PrewarmFloor).
		SetAction(scaledecision.Action(d.Action)).SetRent(d.Rent).SetRelease(d.Release).SetTarget(d.Target).
		SetCapped(d.Capped).SetReason(d.Reason).SetRented(rented).SetReleased(released).
		SetBootFailures(bootFailures).SetError(msg).
		SetUpStreak(next.UpStreak).SetDownStreak(next.DownStreak).SetCooldownLeft(next.Cooldown).SetTerm(term).
		Save(ctx)
	if err != nil {
		return nil, fmt.Errorf("pool %s: record scaling decision: %w", p.Name, err)
	}
	s.Metrics.ScaleDecision(p.Name, string(d.Action))
	if d.Action == decide.ScaleUp || d.Action == decide.ScaleDown || msg != "" {
		f.event(ctx, p, nil, events.PoolAction(string(d.Action)), d.Reason)
		f.Log.Info("scaling decision", "pool", p.Name, "action", d.Action, "rent", d.Rent, "release", d.Release,
			"rented", rented, "released", released, "reason", d.Reason, "err", msg)
	}
	if msg != "" {
		return row, fmt.Errorf("pool %s: %s", p.Name, msg)
	}
	return row, nil
}

// demand is the pool's D: its running tasks and the pending tasks a robot
// may take. Pending tasks of a paused pool or process (rpacloud pool|process
// pause) are not dispatched, so they rent no VM; the pool's min still
// holds. The pause is read from the database (not the pool row the caller
// holds), so it counts from the next round.
func (s *Scaler) demand(ctx context.Context, p *ent.Pool) (int, error) {
	c := s.Fleet.Client
	pl, err := c.Pool.Get(ctx, p.ID)
	if err != nil {
		return 0, fmt.Errorf("pool %s: read pause: %w", p.Name, err)
	}
	if pl.PausedAt != nil {
		n, err := c.Task.Query().Where(task.PoolID(p.ID), task.StateEQ(task.StateRunning)).Count(ctx)
		if err != nil {
			return 0, fmt.Errorf("pool %s: count tasks: %w", p.Name, err)
		}
		return n, nil
	}
	paused, err := c.Process.Query().Where(process.PoolID(p.ID), process.PausedAtNotNil()).IDs(ctx)
	if err != nil {
		return 0, fmt.Errorf("pool %s: paused processes: %w", p.Name, err)
	}
	n, err := c.Task.Query().Where(task.PoolID(p.ID), task.Or(task.StateEQ(task.StateRunning),
		task.And(task.StateEQ(task.StatePending), task.ProcessIDNotIn(paused...)))).Count(ctx)
	if err != nil {
		return 0, fmt.Errorf("pool %s: count tasks: %w", p.Name, err)
	}
	return n, nil
}

// read takes the reading and the release candidates.
func (s *Scaler) read(ctx context.Context, p *ent.Pool, cfg poolconf.Pool) (decide.Reading, []decide.Robot, error) {
	f := s.Fleet
	now := f.now()
	robots, err := f.Client.Robot.Query().Where(robot.PoolID(p.ID), robot.StateIn(liveRobot...)).All(ctx)
	if err != nil {
		return decide.Reading{}, nil, fmt.Errorf("pool %s: read robots: %w", p.Name, err)
	}
	var r decide.Reading
	var views []decide.Robot
	for _, rb := range robots {
		r.X++
		switch rb.State {
		case robot.StateProvisioning:
			r.Booting++
		case robot.StateIdle:
			r.Z++
			if !rb.Permanent && !rb.Enrolled {
				r.IdleRented++
			}
			// Enrolled robots are permanent capacity: never a release
			// candidate, whatever their permanent flag says.
			views = append(views, decide.Robot{ID: rb.ID, Permanent: rb.Permanent || rb.Enrolled, Idle: true,
				IdleFor: int64(now.Sub(rb.UpdatedAt) / time.Second)})
		}
	}
	d, err := s.demand(ctx, p)
	if err != nil {
		return r, nil, err
	}
	r.D = d
	if cfg.Settings.LicenceCap > 0 && cfg.Vendor != "" {
		var others []string
		for name, c := range s.Pools() {
			if name != p.Name && c.Vendor == cfg.Vendor {
				others = append(others, name)
			}
		}
		if len(others) > 0 {
			n, err := f.Client.Robot.Query().Where(robot.StateIn(liveRobot...),
				robot.HasPoolWith(pool.NameIn(others...))).Count(ctx)
			if err != nil {
				return r, nil, fmt.Errorf("pool %s: count vendor robots: %w", p.Name, err)
			}
			r.VendorOthers = n
		}
	}
	if cfg.PrewarmRobots > 0 {
		r.PrewarmFloor = decide.PrewarmFloor(cfg.Slots, now, cfg.PrewarmLead, cfg.PrewarmRobots)
	}
	return r, views, nil
}

// release drains one idle robot and asks the provider to destroy its VM.
// The robot is marked draining first, by a compare-and-set on its idle
// state, so no new task reaches it; ok is false when it took work in the
// meantime (it is then left alone).
func (s *Scaler) release(ctx context.Context, p *ent.Pool, prov Provider, robotID int) (bool, error) {
	return s.releaseRobot(ctx, p, prov, robotID, false, "chosen for release: idle and rented")
}

// releaseRobot is release; permanent robots too when permanentToo (a
// draining pool keeps none).
func (s *Scaler) releaseRobot(ctx context.Context, p *ent.Pool, prov Provider, robotID int, permanentToo bool, why string) (bool, error) {
	f := s.Fleet
	// Enrolled robots belong to the enterprise's machines: never released,
	// not even by a draining pool.
	upd := f.Client.Robot.Update().Where(robot.ID(robotID), robot.StateEQ(robot.StateIdle), robot.Enrolled(false))
	if !permanentToo {
		upd = upd.Where(robot.Permanent(false))
	}
	n, err := upd.SetState(robot.StateDraining).Save(ctx)
	if err != nil {
		return false, fmt.Errorf("pool %s: drain robot %d: %w", p.Name, robotID, err)
	}
	if n != 1 {
		return false, nil
	}
	rb, err := f.Client.Robot.Get(ctx, robotID)
	if err != nil {
		return false, fmt.Errorf("pool %s: robot %d: %w", p.Name, robotID, err)
	}
	if rb.State != robot.StateDraining {
		// A claim that read the robot as idle before the drain won.
		return false, nil
	}
	f.event(ctx, p, &rb.ID, events.RobotDraining, why)
	return true, s.destroy(ctx, p, prov, rb)
}

// Drain releases the robots of a pool that left the configuration (it is
// inactive: no process of it takes submissions). The work it had accepted
// still runs: while a task of the pool is pending or running nothing is
// released, so pending tasks are claimed by its robots as before; then
// every idle robot, permanent ones included, is released. left is the
// number of robots still live.
func (s *Scaler) Drain(ctx context.Context, p *ent.Pool) (left int, err error) {
	ctx = system(ctx)
	f := s.Fleet
	prov, ok := f.Providers(p.Provider)
	if !ok || !prov.Healthy() {
		return 0, fmt.Errorf("pool %s: provider %q: %w", p.Name, p.Provider, ErrProviderDown)
	}
	if err := s.retryReleases(ctx, p, prov); err != nil {
		return 0, err
	}
	// Enrolled robots are never released (releaseRobot refuses them too).
	robots, err := f.Client.Robot.Query().Where(robot.PoolID(p.ID), robot.Enrolled(false), robot.StateIn(liveRobot...)).All(ctx)
	if err != nil {
		return 0, fmt.Errorf("pool %s: list robots: %w", p.Name, err)
	}
	work, err := f.Client.Task.Query().Where(task.PoolID(p.ID), task.StateIn(task.StatePending, task.StateRunning)).Exist(ctx)
	if err != nil {
		return 0, fmt.Errorf("pool %s: count tasks: %w", p.Name, err)
	}
	if work {
		return len(robots), nil
	}
	left = len(robots)
	var errs []error
	for _, rb := range robots {
		if rb.State != robot.StateIdle {
			continue
		}
		ok, err := s.releaseRobot(ctx, p, prov, rb.ID, true, "released: its pool left the configuration and has no work left")
		if err != nil {
			errs = append(errs, err)
		}
		if ok {
			left--
		}
	}
	return left, errors.Join(errs...)
}

// destroy asks the provider to destroy a draining robot's VM. Destroy is
// idempotent, so a failure is simply retried at the next period.
func (s *Scaler) destroy(ctx context.Context, p *ent.Pool, prov Provider, rb *ent.Robot) error {
	f := s.Fleet
	if rb.VMID == nil {
		return f.Client.Robot.UpdateOneID(rb.ID).SetState(robot.StateReleased).Exec(ctx)
	}
	v, err := f.Client.VM.Get(ctx, *rb.VMID)
	if err != nil {
		return fmt.Errorf("pool %s: VM of robot %s: %w", p.Name, rb.Name, err)
	}
	if v.InstanceID != "" {
		if err := prov.Destroy(ctx, []string{v.InstanceID}); err != nil {
			_ = f.Client.VM.UpdateOneID(v.ID).SetError(err.Error()).Exec(ctx)
			return fmt.Errorf("pool %s: destroy VM %s of robot %s: %w", p.Name, v.InstanceID, rb.Name, err)
		}
	}
	if err := f.Client.VM.UpdateOneID(v.ID).SetState(vm.StateDeleting).Exec(ctx); err != nil {
		return fmt.Errorf("pool %s: mark VM %d deleting: %w", p.Name, v.ID, err)
	}
	return nil
}

// retryReleases destroys again the VMs of robots left draining by an
// earlier failure (or a crash between the drain and the provider call).
func (s *Scaler) retryReleases(ctx context.Context, p *ent.Pool, prov Provider) error {
	rbs, err := s.Fleet.Client.Robot.Query().Where(robot.PoolID(p.ID), robot.StateEQ(robot.StateDraining),
		robot.Enrolled(false)).WithVM().All(ctx)
	if err != nil {
		return fmt.Errorf("pool %s: draining robots: %w", p.Name, err)
	}
	var errs []error
	for _, rb := range rbs {
		if rb.Edges.VM != nil && (rb.Edges.VM.State == vm.StateDeleting || rb.Edges.VM.State == vm.StateDeleted) {
			continue
		}
		errs = append(errs, s.destroy(ctx, p, prov, rb))
	}
	return errors.Join(errs...)
}

// reapBootTimeouts destroys rented robots that never came up within the
// boot timeout (the robot never checked in), so a VM that hangs in boot is
// not paid for forever, and counts them.
func (s *Scaler) reapBootTimeouts(ctx context.Context, p *ent.Pool, prov Provider, timeout time.Duration) (int, error) {
	f := s.Fleet
	if timeout <= 0 {
		timeout = f.bootTimeout()
	}
	// Enrolled robots are not the provider's to destroy: one that has
	// not checked in yet is simply not there.
	rbs, err := f.Client.Robot.Query().Where(robot.PoolID(p.ID), robot.StateEQ(robot.StateProvisioning),
		robot.Enrolled(false), robot.CreatedAtLT(f.now().Add(-timeout))).WithVM().All(ctx)
	if err != nil {
		return 0, fmt.Errorf("pool %s: booting robots: %w", p.Name, err)
	}
	n := 0
	var errs []error
	for _, rb := range rbs {
		if v := rb.Edges.VM; v != nil && v.InstanceID != "" {
			if err := prov.Destroy(ctx, []string{v.InstanceID}); err != nil {
				errs = append(errs, fmt.Errorf("pool %s: destroy VM %s that did not boot: %w", p.Name, v.InstanceID, err))
				continue
			}
		}
		if v := rb.Edges.VM; v != nil {
			if err := f.Client.VM.UpdateOneID(v.ID).SetState(vm.StateFailed).
				SetError(fmt.Sprintf("robot did not come up within the boot timeout (%s)", timeout)).Exec(ctx); err != nil {
				errs = append(errs, err)
				continue
			}
		}
		if err := f.Client.Robot.UpdateOneID(rb.ID).SetState(robot.StateReleased).Exec(ctx); err != nil {
			errs = append(errs, err)
			continue
		}
		// Already revoked (e.g. by an administrator) is fine; anything
		// else is worth a line, as in the fleet's release.
		if err := f.tokens().Revoke(ctx, auth.RobotTokenName(rb.Name)); err != nil && f.Log != nil {
			f.Log.Debug("revoke robot token", "robot", rb.Name, "err", err)
		}
		f.event(ctx, p, &rb.ID, events.VMBootTimeout, fmt.Sprintf("robot %s did not come up within %s; destroyed", rb.Name, timeout))
		n++
	}
	return n, errors.Join(errs...)
}
