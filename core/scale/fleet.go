// Package scale keeps each pool's VMs in line with what the pool needs.
// Providers (providers.go) start the provider blocks' plugins and report
// their health to the API, health and metrics. This file holds the fleet
// reconciler: it keeps the pool's permanent robots
// (min) rented, follows the provider's view of every VM, and reaps VMs the
// database does not know (e.g. ones that booted after their request timed
// out). Enrolled machines (joined with a join token) are never followed,
// rented or released: their robots count as permanent capacity. The
// elastic decision (when to rent or release more) builds on it.
package scale

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/rpacloud/rpacloud/core/auth"
	"github.com/rpacloud/rpacloud/core/events"
	"github.com/rpacloud/rpacloud/ent"
	"github.com/rpacloud/rpacloud/ent/privacy"
	"github.com/rpacloud/rpacloud/ent/robot"
	"github.com/rpacloud/rpacloud/ent/schema/viewer"
	"github.com/rpacloud/rpacloud/ent/vm"
	"github.com/rpacloud/rpacloud/plugins/sdk"
)

// Provider is what the reconciler needs of a provider plugin.
type Provider interface {
	Create(ctx context.Context, req sdk.CreateRequest) (sdk.Instance, error)
	Destroy(ctx context.Context, ids []string) error
	List(ctx context.Context) ([]sdk.Instance, error)
	Healthy() bool
}

// ErrProviderDown means the pool's provider plugin is not available; the
// pool is left as it is until it comes back.
var ErrProviderDown = errors.New("provider unavailable")

// keyPrefix marks VMs rented by rpacloud, so that reaping never touches a
// provider's instances that some other tool made.
const keyPrefix = "rpacloud-"

// Fleet reconciles pools against their providers.
type Fleet struct {
	Client      *ent.Client
	Providers   func(name string) (Provider, bool)
	Bus         *events.Bus
	ServerURL   string
	Log         *slog.Logger
	BootTimeout time.Duration // a VM not created by then is failed; default 10m
	Now         func() time.Time
	// Network returns the network profile named by a pool (nil for none),
	// which the provider applies to the robot's VM.
	Network func(name string) *sdk.NetworkProfile
	// Setup returns the VM preparation a pool declares (software,
	// configuration files, remote access; nil for none), which the
	// provider applies at creation: lifecycle step S2 checks it off.
	Setup func(pool string) *sdk.VMSetup
	// RecordEndpoint stores the remote-access endpoint a provider reports
	// for a VM, so developers and business users can be shown how to
	// connect. Nil: endpoints are not kept.
	RecordEndpoint func(ctx context.Context, vmID int, ra sdk.RemoteAccess) error
}

// tokens issues and revokes robot tokens, announcing each end of a token on
// the fleet's bus so every daemon's token cache drops it at once.
func (f *Fleet) tokens() auth.Tokens { return auth.Tokens{Client: f.Client, Bus: f.Bus} }

func (f *Fleet) setup(pool string) *sdk.VMSetup {
	if f.Setup == nil {
		return nil
	}
	return f.Setup(pool)
}

// recordEndpoint keeps a reported endpoint; a failure is logged and tried
// again when the VM next changes, never fatal to the reconcile.
func (f *Fleet) recordEndpoint(ctx context.Context, p *ent.Pool, vmID int, ra *sdk.RemoteAccess) {
	if ra == nil || f.RecordEndpoint == nil {
		return
	}
	if err := f.RecordEndpoint(ctx, vmID, *ra); err != nil && f.Log != nil {
		f.Log.Warn("record remote-access endpoint", "pool", p.Name, "vm", vmID, "err", err)
	}
}

func (f *Fleet) now() time.Time {
	if f.Now != nil {
		return f.Now().UTC()
	}
	return time.Now().UTC()
}

func system(ctx context.Context) context.Context {
	return privacy.DecisionContext(ctx, privacy.Allow)
}

var liveVM = []vm.State{vm.StateRequested, vm.StateCreating, vm.StateRunning, vm.StateDeleting}

// Reconcile brings one pool in line with its provider and its min.
//
// Enrolled machines (joined with a join token, vm.enrolled) are not the
// provider's: they are never followed against its List (which does not
// know them, and would mark them gone) and never rented or released here.
// Their live robots count as permanent capacity, so a mixed pool rents
// only what min asks beyond them. A pool without a provider has only
// enrolled robots: there is nothing to reconcile.
func (f *Fleet) Reconcile(ctx context.Context, p *ent.Pool) error {
	if p.Provider == "" {
		return nil
	}
	ctx = system(ctx)
	prov, ok := f.Providers(p.Provider)
	if !ok {
		return fmt.Errorf("pool %s: provider %q: %w: not configured", p.Name, p.Provider, ErrProviderDown)
	}
	if !prov.Healthy() {
		return fmt.Errorf("pool %s: provider %q: %w", p.Name, p.Provider, ErrProviderDown)
	}
	all, err := prov.List(ctx)
	if err != nil {
		return fmt.Errorf("pool %s: list instances: %w", p.Name, err)
	}
	insts := map[string]sdk.Instance{}
	for _, in := range all {
		if in.Pool == p.Name {
			insts[in.IdempotencyKey] = in
		}
	}
	vms, err := f.Client.VM.Query().Where(vm.PoolID(p.ID), vm.StateIn(liveVM...), vm.Enrolled(false)).All(ctx)
	if err != nil {
		return fmt.Errorf("pool %s: list VMs: %w", p.Name, err)
	}
	// Only enrolled robots that are up count toward min: an enrolled
	// machine that is switched off, unreachable or never came up serves
	// no work, and nothing here can restart it, so rented robots fill in.
	permanent, err := f.Client.Robot.Query().Where(robot.PoolID(p.ID), robot.Enrolled(true),
		robot.StateIn(robot.StateIdle, robot.StateBusy)).Count(ctx)
	if err != nil {
		return fmt.Errorf("pool %s: count enrolled robots: %w", p.Name, err)
	}
	known := map[string]bool{}
	for _, v := range vms {
		known[v.IdempotencyKey] = true
		in, found := insts[v.IdempotencyKey]
		if err := f.follow(ctx, p, v, in, found); err != nil {
			return err
		}
		if v.Permanent && stillLive(v, in, found, f.now(), f.bootTimeout()) {
			permanent++
		}
	}
	// Reap what the provider runs for this pool but the database does not
	// know: a create that timed out but went through, or a leftover of a
	// wiped database. Each costs money and may hold a robot token.
	var orphans []string
	for key, in := range insts {
		if !known[key] && strings.HasPrefix(key, keyPrefix) && in.State != sdk.InstanceDeleted && in.State != sdk.InstanceDeleting {
			orphans = append(orphans, in.ID)
		}
	}
	if len(orphans) > 0 {
		f.Log.Warn("destroying instances unknown to the database", "pool", p.Name, "instances", orphans)
		if err := prov.Destroy(ctx, orphans); err != nil {
			return fmt.Errorf("pool %s: reap orphans: %w", p.Name, err)
		}
	}
	for i := permanent; i < p.Min; i++ {
		if err := f.rent(ctx, p, prov, true); err != nil {
			return err
		}
	}
	return nil
}

func (f *Fleet) network(name string) *sdk.NetworkProfile {
	if name == "" || f.Network == nil {
		return nil
	}
	return f.Network(name)
}

func (f *Fleet) bootTimeout() time.Duration {
	if f.BootTimeout > 0 {
		return f.BootTimeout
	}
	return 10 * time.Minute
}

func stillLive(v *ent.VM, in sdk.Instance, found bool, now time.Time, boot time.Duration) bool {
	if found {
		return in.State == sdk.InstanceCreating || in.State == sdk.InstanceRunning
	}
	return v.State == vm.StateRequested && now.Sub(v.CreatedAt) < boot
}

// follow updates one VM row from the provider's view.
func (f *Fleet) follow(ctx context.Context, p *ent.Pool, v *ent.VM, in sdk.Instance, found bool) error {
	upd := f.Client.VM.UpdateOneID(v.ID)
	var gone events.Type
	var endpoint *sdk.RemoteAccess
	switch {
	case !found && v.State == vm.StateRequested:
		if f.now().Sub(v.CreatedAt) < f.bootTimeout() {
			return nil // the create call may still be on its way
		}
		upd.SetState(vm.StateFailed).SetError("not created within the boot timeout")
		gone = events.VMFailed
	case !found:
		upd.SetState(vm.StateDeleted).SetError("the provider no longer knows this instance")
		gone = events.VMGone
	default:
		upd.SetInstanceID(in.ID).SetAddress(in.Address)
		// Endpoints usually appear once the instance runs and has its
		// address; record them on that change, not on every reconcile.
		if in.State == sdk.InstanceRunning && (v.State != vm.StateRunning || v.Address != in.Address) {
			endpoint = in.RemoteAccess
		}
		switch in.State {
		case sdk.InstanceCreating:
			upd.SetState(vm.StateCreating)
		case sdk.InstanceRunning:
			upd.SetState(vm.StateRunning)
		case sdk.InstanceDeleting:
			upd.SetState(vm.StateDeleting)
		case sdk.InstanceDeleted:
			upd.SetState(vm.StateDeleted)
			gone = events.VMGone
		default:
			upd.SetState(vm.StateFailed).SetError(in.Error)
			gone = events.VMFailed
		}
	}
	if gone != "" {
		// A VM whose robot rpacloud is releasing (draining: the scaler's
		// release, a draining pool, a revoke) or released ended as asked,
		// even if the provider reports its end as a failure: vm.released,
		// not vm.gone or vm.failed, which open a vm_gone anomaly. The
		// robot's state says so, not the VM's: "deleting" is also what
		// follow records when the provider stops an instance unasked.
		asked, err := f.releaseAsked(ctx, v)
		if err != nil {
			return fmt.Errorf("pool %s: VM %d: %w", p.Name, v.ID, err)
		}
		if asked {
			gone = events.VMReleased
			upd.SetError("")
		}
	}
	if err := upd.Exec(ctx); err != nil {
		return fmt.Errorf("pool %s: update VM %d: %w", p.Name, v.ID, err)
	}
	f.recordEndpoint(ctx, p, v.ID, endpoint)
	if gone != "" {
		return f.releaseRobotOf(ctx, p, v, gone)
	}
	return nil
}

// releaseAsked reports whether the robot of VM v is being released or
// was released by rpacloud, so that its VM's end is expected.
func (f *Fleet) releaseAsked(ctx context.Context, v *ent.VM) (bool, error) {
	n, err := f.Client.Robot.Query().Where(robot.VMID(v.ID),
		robot.StateIn(robot.StateDraining, robot.StateReleased)).Count(ctx)
	if err != nil {
		return false, fmt.Errorf("robot state: %w", err)
	}
	return n > 0, nil
}

// releaseRobotOf retires the robot of a VM that is gone and revokes its token.
func (f *Fleet) releaseRobotOf(ctx context.Context, p *ent.Pool, v *ent.VM, evType events.Type) error {
	r, err := f.Client.Robot.Query().Where(robot.VMID(v.ID)).Only(ctx)
	if ent.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("pool %s: robot of VM %d: %w", p.Name, v.ID, err)
	}
	if err := f.Client.Robot.UpdateOneID(r.ID).SetState(robot.StateReleased).Exec(ctx); err != nil {
		return fmt.Errorf("pool %s: release robot %s: %w", p.Name, r.Name, err)
	}
	if err := f.tokens().Revoke(ctx, auth.RobotTokenName(r.Name)); err != nil {
		f.Log.Debug("revoke robot token", "robot", r.Name, "err", err)
	}
	msg := fmt.Sprintf("VM %s of robot %s: %s", v.InstanceID, r.Name, v.Error)
	if evType == events.VMReleased {
		msg = fmt.Sprintf("VM %s of robot %s: released", v.InstanceID, r.Name)
	}
	f.event(ctx, p, &r.ID, evType, msg)
	f.Log.Info("robot released", "pool", p.Name, "robot", r.Name, "reason", evType)
	return nil
}

// rent creates a robot, its VM row and token, then asks the provider. The
// rows are written before the call, so a crash between the two leaves a
// requested VM whose key the next reconcile finds (or fails after the boot
// timeout) instead of an untracked machine.
func (f *Fleet) rent(ctx context.Context, p *ent.Pool, prov Provider, permanent bool) error {
	suffix := make([]byte, 4)
	if _, err := rand.Read(suffix); err != nil {
		return fmt.Errorf("pool %s: robot name: %w", p.Name, err)
	}
	name := p.Name + "-" + hex.EncodeToString(suffix)
	key := keyPrefix + name
	now := f.now() // the injected clock, so boot timeouts compare like with like
	v, err := f.Client.VM.Create().SetPoolID(p.ID).SetProvider(p.Provider).SetCreatedAt(now).
		SetIdempotencyKey(key).SetPermanent(permanent).Save(ctx)
	if err != nil {
		return fmt.Errorf("pool %s: record VM: %w", p.Name, err)
	}
	r, err := f.Client.Robot.Create().SetName(name).SetPoolID(p.ID).SetVMID(v.ID).SetCreatedAt(now).
		SetPermanent(permanent).Save(ctx)
	if err != nil {
		return fmt.Errorf("pool %s: record robot: %w", p.Name, err)
	}
	rid := r.ID
	secret, err := f.tokens().Issue(ctx, auth.IssueRequest{Name: auth.RobotTokenName(name), Role: viewer.Robot, RobotID: &rid})
	if err != nil {
		return fmt.Errorf("pool %s: robot token: %w", p.Name, err)
	}
	in, err := prov.Create(ctx, sdk.CreateRequest{
		IdempotencyKey: key, Pool: p.Name, RobotName: name, ServerURL: f.ServerURL, RobotToken: secret, Network: f.network(p.Network),
		Setup:  f.setup(p.Name),
		Labels: map[string]string{"rpacloud.pool": p.Name, "rpacloud.robot": name},
	})
	if err != nil {
		// The VM stays "requested": if the provider did create it after
		// all, the next List finds it by key; if not, it fails after
		// the boot timeout.
		_ = f.Client.VM.UpdateOneID(v.ID).SetError(err.Error()).Exec(ctx)
		f.event(ctx, p, &rid, events.VMCreateFailed, err.Error())
		return fmt.Errorf("pool %s: create VM for robot %s: %w", p.Name, name, err)
	}
	st := vm.StateCreating
	if in.State == sdk.InstanceRunning {
		st = vm.StateRunning
	}
	if err := f.Client.VM.UpdateOneID(v.ID).SetInstanceID(in.ID).SetAddress(in.Address).SetState(st).Exec(ctx); err != nil {
		return fmt.Errorf("pool %s: update VM: %w", p.Name, err)
	}
	f.recordEndpoint(ctx, p, v.ID, in.RemoteAccess)
	f.event(ctx, p, &rid, events.VMCreated, fmt.Sprintf("robot %s on instance %s", name, in.ID))
	f.Log.Info("robot rented", "pool", p.Name, "robot", name, "instance", in.ID, "permanent", permanent)
	return nil
}

func (f *Fleet) event(ctx context.Context, p *ent.Pool, robotID *int, typ events.Type, msg string) {
	_, err := events.Record(ctx, events.Create(f.Client.Event, typ, f.now()).SetPoolID(p.ID).SetNillableRobotID(robotID).
		SetMessage(msg), f.Bus)
	if err != nil {
		f.Log.Warn("record event", "type", typ, "err", err)
	}
}
