package scale

import (
	"context"
	"io"
	"log/slog"
	"testing"

	"github.com/rpacloud/rpacloud/core/events"
	"github.com/rpacloud/rpacloud/core/scale/decide"
	"github.com/rpacloud/rpacloud/core/store"
	"github.com/rpacloud/rpacloud/core/store/storetest"
	"github.com/rpacloud/rpacloud/ent"
	"github.com/rpacloud/rpacloud/ent/robot"
	"github.com/rpacloud/rpacloud/ent/scaledecision"
	"github.com/rpacloud/rpacloud/ent/task"
	"github.com/rpacloud/rpacloud/ent/vm"
)

// enrolRobot records a robot as core/enrol does: an enrolled, permanent
// robot on an enrolled machine no provider knows.
func enrolRobot(t *testing.T, db *store.DB, p *ent.Pool, name string, st robot.State) *ent.Robot {
	t.Helper()
	v := db.VM.Create().SetPoolID(p.ID).SetIdempotencyKey("enrolled-" + name).SetState(vm.StateRunning).
		SetPermanent(true).SetEnrolled(true).SetHostname(name).SaveX(sys())
	return db.Robot.Create().SetName(name).SetPoolID(p.ID).SetVMID(v.ID).SetPermanent(true).SetEnrolled(true).
		SetState(st).SaveX(sys())
}

// A pool without a provider is never reconciled or scaled: no provider is
// asked for, and its enrolled robots and machines are left as they are,
// however idle.
func TestPoolWithoutProviderIsLeftAlone(t *testing.T) {
	db := storetest.SQLite(t)
	p := db.Pool.Create().SetName("onprem").SetMin(2).SetMax(3).SaveX(sys())
	a := enrolRobot(t, db, p, "a", robot.StateIdle)
	f := &Fleet{Client: db.Client, Bus: events.New(), Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Providers: func(name string) (Provider, bool) {
			t.Errorf("provider %q asked for by a pool without a provider", name)
			return nil, false
		}}
	s := &Scaler{Fleet: f}
	for range 5 {
		if err := f.Reconcile(context.Background(), p); err != nil {
			t.Fatal(err)
		}
		d, err := s.Step(context.Background(), p, 1)
		if err != nil || d != nil {
			t.Fatalf("step: %+v %v, want nothing", d, err)
		}
	}
	rb := db.Robot.Query().Where(robot.ID(a.ID)).WithVM().OnlyX(sys())
	if rb.State != robot.StateIdle || rb.Edges.VM.State != vm.StateRunning {
		t.Fatalf("enrolled robot %s, machine %s after reconciling", rb.State, rb.Edges.VM.State)
	}
	if n := db.Robot.Query().CountX(sys()); n != 1 {
		t.Fatalf("%d robots, want the 1 enrolled (nothing rented)", n)
	}
}

// In a mixed pool enrolled robots are permanent capacity: min rents only
// what they do not cover, max counts them, the provider's List (which does
// not know them) never marks their machines gone, and the scaler releases
// only rented robots.
func TestMixedPoolEnrolledRobotsArePermanentCapacity(t *testing.T) {
	db := storetest.SQLite(t)
	cd := 0
	r := newRig(t, db, decide.Settings{Min: 2, Max: 4, TasksPerRobot: 1, Cooldown: &cd})
	enrolled := enrolRobot(t, db, r.pool, "onprem-1", robot.StateIdle)

	expect(t, r.step(), scaledecision.ActionNone, 0, 0)
	if n := r.running(); n != 1 {
		t.Fatalf("%d robots rented for min 2 with 1 enrolled, want 1", n)
	}
	r.setRobots(robot.StateBusy, robot.StateProvisioning, robot.StateIdle)
	r.submit(10)
	var up *ent.ScaleDecision
	for range 5 {
		if d := r.step(); d.Action == scaledecision.ActionScaleUp {
			up = d
			break
		}
	}
	// X = 2 (1 enrolled + 1 rented): max 4 leaves 2 to rent.
	if up == nil || up.Rented != 2 || up.X != 2 {
		t.Fatalf("scale-up %+v, want 2 rented beside the enrolled robot", up)
	}
	if n := r.running(); n != 3 {
		t.Fatalf("%d rented robots run, want 3", n)
	}

	db.Task.Update().SetState(task.StateSucceeded).ExecX(sys())
	r.setRobots(robot.StateIdle, robot.StateBusy, robot.StateProvisioning)
	released := 0
	for range 6 {
		d := r.step()
		released += d.Released
	}
	// Down to min 2: the enrolled robot and one permanent rented robot.
	if released != 2 {
		t.Fatalf("%d robots released, want the 2 rented extras", released)
	}
	rb := db.Robot.Query().Where(robot.ID(enrolled.ID)).WithVM().OnlyX(sys())
	if rb.State != robot.StateIdle || rb.Edges.VM.State != vm.StateRunning || rb.Edges.VM.Error != "" {
		t.Fatalf("enrolled robot %s, machine %s (%q)", rb.State, rb.Edges.VM.State, rb.Edges.VM.Error)
	}
	waitFor(t, func() bool { return r.running() == 1 }, "the released robots' processes to stop")
}

// Enrolled robots count toward min only while they are up: an enrolled
// machine that is offline, suspect or never seen serves nothing and cannot
// be restarted from here, so min rents robots in its place.
func TestMixedPoolOfflineEnrolledRobotsDoNotCountTowardMin(t *testing.T) {
	db := storetest.SQLite(t)
	cd := 0
	r := newRig(t, db, decide.Settings{Min: 2, Max: 6, TasksPerRobot: 1, Cooldown: &cd})
	enrolRobot(t, db, r.pool, "down-1", robot.StateOffline)
	enrolRobot(t, db, r.pool, "down-2", robot.StateSuspect)
	enrolRobot(t, db, r.pool, "never-seen", robot.StateProvisioning)
	enrolRobot(t, db, r.pool, "up", robot.StateIdle)

	r.step()
	if n := r.running(); n != 1 {
		t.Fatalf("%d robots rented for min 2 with 1 enrolled robot up (3 down), want 1", n)
	}
}
