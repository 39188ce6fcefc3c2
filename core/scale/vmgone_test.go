package scale

import (
	"context"
	"testing"
	"time"

	"github.com/rpacloud/rpacloud/core/events"
	"github.com/rpacloud/rpacloud/core/scale/decide"
	"github.com/rpacloud/rpacloud/core/store"
	"github.com/rpacloud/rpacloud/core/store/storetest"
	"github.com/rpacloud/rpacloud/ent/event"
	"github.com/rpacloud/rpacloud/ent/robot"
	"github.com/rpacloud/rpacloud/ent/scaledecision"
	"github.com/rpacloud/rpacloud/ent/task"
)

// TestReleasedVMsAreNotGone: the VMs of a real scale-down end as
// vm.released, which no anomaly rule reads; a VM destroyed behind
// rpacloud's back (as from a cloud console) still ends as vm.gone, which
// opens vm_gone (core/monitor's TestVMGoneOnlyUnasked).
func TestReleasedVMsAreNotGone(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		cd := 0
		r := newRig(t, db, decide.Settings{Min: 1, Max: 3, TasksPerRobot: 1, Cooldown: &cd})
		r.step() // the permanent robot
		r.setRobots(robot.StateBusy, robot.StateProvisioning)
		r.submit(5)
		r.step()
		expect(t, r.step(), scaledecision.ActionScaleUp, 2, 0)
		db.Task.Update().SetState(task.StateSucceeded).ExecX(sys())
		r.setRobots(robot.StateIdle, robot.StateBusy, robot.StateProvisioning)
		r.step()
		r.step()
		expect(t, r.step(), scaledecision.ActionScaleDown, 0, 2)
		waitFor(t, func() bool { return r.running() == 1 }, "the released robots' processes to stop")
		r.step() // the fleet follows the provider: the two VMs ended
		count := func(typ events.Type) int {
			return db.Event.Query().Where(event.Type(string(typ))).CountX(sys())
		}
		if n := db.Robot.Query().Where(robot.StateEQ(robot.StateReleased)).CountX(sys()); n != 2 {
			t.Fatalf("%d robots released, want 2", n)
		}
		if g, f, rel := count(events.VMGone), count(events.VMFailed), count(events.VMReleased); g != 0 || f != 0 || rel != 2 {
			t.Fatalf("after a scale-down: %d vm.gone, %d vm.failed, %d vm.released; want 0, 0, 2", g, f, rel)
		}

		// Someone destroys the permanent robot's VM outside rpacloud.
		perm := db.Robot.Query().Where(robot.Permanent(true)).WithVM().OnlyX(sys())
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := r.prov.Provider.Destroy(ctx, []string{perm.Edges.VM.InstanceID}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, func() bool { return r.running() == 0 }, "the destroyed robot's process to stop")
		r.step()
		if g, rel := count(events.VMGone), count(events.VMReleased); g != 1 || rel != 2 {
			t.Fatalf("after an unasked end: %d vm.gone, %d vm.released; want 1, 2", g, rel)
		}
		e := db.Event.Query().Where(event.Type(string(events.VMGone))).OnlyX(sys())
		if e.RobotID == nil || *e.RobotID != perm.ID {
			t.Fatalf("vm.gone names robot %v, want %d", e.RobotID, perm.ID)
		}
	})
}
