package scale

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"

	"github.com/rpacloud/rpacloud/core/dispatch"
	"github.com/rpacloud/rpacloud/core/events"
	"github.com/rpacloud/rpacloud/core/metrics"
	"github.com/rpacloud/rpacloud/core/pluginhost"
	"github.com/rpacloud/rpacloud/core/scale/decide"
	"github.com/rpacloud/rpacloud/core/scale/poolconf"
	"github.com/rpacloud/rpacloud/core/store"
	"github.com/rpacloud/rpacloud/core/store/storetest"
	"github.com/rpacloud/rpacloud/ent"
	"github.com/rpacloud/rpacloud/ent/privacy"
	"github.com/rpacloud/rpacloud/ent/robot"
	"github.com/rpacloud/rpacloud/ent/scaledecision"
	"github.com/rpacloud/rpacloud/ent/task"
	"github.com/rpacloud/rpacloud/ent/vm"
	"github.com/rpacloud/rpacloud/plugins/sdk"
	"github.com/rpacloud/rpacloud/plugins/sdk/sdktest"
)

// pluginDir holds the real local provider plugin; robotBin stands in for
// `rpacloud robot` (a process that sleeps until it is stopped).
var pluginDir, robotBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "scale-test-")
	if err != nil {
		panic(err)
	}
	pluginDir = filepath.Join(dir, "plugins")
	robotBin = filepath.Join(dir, "fakerobot")
	code := 0
	for _, b := range [][2]string{
		{filepath.Join(pluginDir, "rpacloud-provider-local"), "../../plugins/provider/local/cmd/rpacloud-provider-local"},
		{robotBin, "../../plugins/provider/local/testdata/fakerobot"},
	} {
		if out, err := exec.Command("go", "build", "-o", b[0], b[1]).CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "go build %s: %v\n%s", b[1], err, out)
			code = 1
		}
	}
	if code == 0 {
		code = m.Run()
		if code == 0 {
			if err := goleak.Find(); err != nil {
				fmt.Fprintln(os.Stderr, err)
				code = 1
			}
		}
	}
	os.RemoveAll(dir)
	os.Exit(code)
}

func sys() context.Context { return privacy.DecisionContext(context.Background(), privacy.Allow) }

// clock is a virtual clock the test moves by hand.
// flaky wraps a provider and fails Create or Destroy while told to.
type flaky struct {
	Provider
	mu                  sync.Mutex
	failCreate, failDel bool
	creates             int
	setups              []*sdk.VMSetup
	remote              *sdk.RemoteAccess // reported on every instance when set
}

func (f *flaky) List(ctx context.Context) ([]sdk.Instance, error) {
	list, err := f.Provider.List(ctx)
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range list {
		list[i].RemoteAccess = f.remote
	}
	return list, err
}

func (f *flaky) Create(ctx context.Context, req sdk.CreateRequest) (sdk.Instance, error) {
	f.mu.Lock()
	fail := f.failCreate
	f.creates++
	f.setups = append(f.setups, req.Setup)
	remote := f.remote
	f.mu.Unlock()
	if fail {
		return sdk.Instance{}, fmt.Errorf("create %s: %w", req.RobotName, sdk.ErrOutOfCapacity)
	}
	in, err := f.Provider.Create(ctx, req)
	in.RemoteAccess = remote
	return in, err
}

func (f *flaky) Destroy(ctx context.Context, ids []string) error {
	f.mu.Lock()
	fail := f.failDel
	f.mu.Unlock()
	if fail {
		return errors.New("destroy: RequestLimitExceeded")
	}
	return f.Provider.Destroy(ctx, ids)
}

type rig struct {
	t      *testing.T
	db     *store.DB
	prov   *flaky
	fleet  *Fleet
	scaler *Scaler
	clock  *sdktest.Clock
	pool   *ent.Pool
	queue  *dispatch.Queue
	cust   int
}

func newRig(t *testing.T, db *store.DB, settings decide.Settings) *rig {
	host := pluginhost.New(pluginhost.Options{Dir: pluginDir, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		StartTimeout: 20 * time.Second, StopTimeout: 10 * time.Second})
	t.Cleanup(host.Close)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	pc, err := host.Provider(ctx, "local", "local", map[string]string{
		"state_dir": t.TempDir(), "robot_command": robotBin, "stop_robots_on_exit": "true",
	})
	if err != nil {
		t.Fatalf("start the local provider plugin: %v", err)
	}
	prov := &flaky{Provider: pc}
	clk := sdktest.NewClock(time.Date(2026, 11, 12, 9, 0, 0, 0, time.UTC))
	p := db.Pool.Create().SetName("tax").SetProvider("local").SetMin(settings.Min).SetMax(settings.Max).
		SetPeriodSeconds(30).SetTasksPerRobot(settings.TasksPerRobot).SetNetwork("egress").SaveX(sys())
	db.Process.Create().SetName("vat").SetPoolID(p.ID).SetRunner("noop").SaveX(sys())
	cust := db.Customer.Create().SetName("acme").SaveX(sys())
	f := &Fleet{Client: db.Client, Bus: events.New(), ServerURL: "http://127.0.0.1:1", Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Providers: func(string) (Provider, bool) { return prov, true }, Now: clk.Now,
		Network: func(name string) *sdk.NetworkProfile {
			if name != "egress" {
				return nil
			}
			return &sdk.NetworkProfile{Proxy: "http://egress.internal:3128"}
		}}
	s := &Scaler{Fleet: f, Metrics: metrics.New(), Pools: func() map[string]poolconf.Pool {
		return map[string]poolconf.Pool{"tax": {Name: "tax", Settings: settings, BootTimeout: 10 * time.Minute}}
	}}
	return &rig{t: t, db: db, prov: prov, fleet: f, scaler: s, clock: clk, pool: p, cust: cust.ID,
		queue: dispatch.New(db.Client, dispatch.Options{Bus: f.Bus, Now: clk.Now, Seed: 1})}
}

func (r *rig) step() *ent.ScaleDecision {
	r.t.Helper()
	r.clock.Add(30 * time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := r.fleet.Reconcile(ctx, r.pool); err != nil {
		r.t.Fatalf("reconcile: %v", err)
	}
	d, err := r.scaler.Step(ctx, r.pool, 7)
	if err != nil && d == nil {
		r.t.Fatalf("step: %v", err)
	}
	return d
}

func (r *rig) submit(n int) {
	r.t.Helper()
	in := make([]json.RawMessage, n)
	for i := range in {
		in[i] = json.RawMessage(`{"n":1}`)
	}
	if _, err := r.queue.Submit(context.Background(), dispatch.SubmitRequest{CustomerID: r.cust, Process: "vat", Inputs: in}); err != nil {
		r.t.Fatal(err)
	}
}

// setRobots moves every robot in one of from to state to, as the robots'
// own check-ins and claims would.
func (r *rig) setRobots(to robot.State, from ...robot.State) {
	r.db.Robot.Update().Where(robot.StateIn(from...)).SetState(to).ExecX(sys())
}

// running lists the instances the provider really runs for the pool.
func (r *rig) running() int {
	r.t.Helper()
	insts, err := r.prov.List(context.Background())
	if err != nil {
		r.t.Fatal(err)
	}
	n := 0
	for _, in := range insts {
		if in.State == sdk.InstanceRunning || in.State == sdk.InstanceCreating {
			n++
		}
	}
	return n
}

func expect(t *testing.T, d *ent.ScaleDecision, action scaledecision.Action, rent, release int) {
	t.Helper()
	if d.Action != action || d.Rent != rent || d.Release != release {
		t.Fatalf("decision %s rent=%d release=%d (%s), want %s rent=%d release=%d", d.Action, d.Rent, d.Release, d.Reason, action, rent, release)
	}
}

func TestScalerRentsAndReleasesRealRobots(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		r := newRig(t, db, decide.Settings{Min: 1, Max: 5, TasksPerRobot: 2})
		d := r.step() // the fleet rents the permanent robot
		expect(t, d, scaledecision.ActionNone, 0, 0)
		if n := r.running(); n != 1 {
			t.Fatalf("%d robot processes run, want the 1 permanent", n)
		}
		// The robot runs behind its pool's network profile.
		name := db.Robot.Query().OnlyX(sys()).Name
		t.Cleanup(func() { os.Remove(filepath.Join(os.TempDir(), "fakerobot-"+name+".json")) })
		var started struct{ Env []string }
		waitFor(t, func() bool {
			b, err := os.ReadFile(filepath.Join(os.TempDir(), "fakerobot-"+name+".json"))
			return err == nil && json.Unmarshal(b, &started) == nil
		}, "the robot process to start")
		if !slices.Contains(started.Env, "HTTPS_PROXY=http://egress.internal:3128") {
			t.Fatalf("robot environment lacks the pool's proxy: %v", started.Env)
		}
		r.setRobots(robot.StateBusy, robot.StateProvisioning)
		r.submit(20)

		// Two readings with Z=0 and D=20 > X=1: N = ceil(19/2) = 10,
		// capped by max 5: rent 4.
		expect(t, r.step(), scaledecision.ActionNone, 0, 0)
		d = r.step()
		expect(t, d, scaledecision.ActionScaleUp, 4, 0)
		if d.Rented != 4 || d.Capped != "max" || d.X != 1 || d.D != 20 {
			t.Fatalf("scale-up row %+v", d)
		}
		if n := r.running(); n != 5 {
			t.Fatalf("%d robot processes run after renting 4, want 5", n)
		}
		// The cooldown skips R = 2 readings.
		expect(t, r.step(), scaledecision.ActionCooldown, 0, 0)
		expect(t, r.step(), scaledecision.ActionCooldown, 0, 0)

		// The work is done, every robot idle: after three readings with
		// D < X, the four rented robots go; the permanent one stays.
		db.Task.Update().SetState(task.StateSucceeded).ExecX(sys())
		r.setRobots(robot.StateIdle, robot.StateBusy, robot.StateProvisioning)
		expect(t, r.step(), scaledecision.ActionNone, 0, 0)
		expect(t, r.step(), scaledecision.ActionNone, 0, 0)
		d = r.step()
		expect(t, d, scaledecision.ActionScaleDown, 0, 4)
		if d.Capped != "min" || d.Released != 4 {
			t.Fatalf("scale-down row %+v", d)
		}
		if n := db.Robot.Query().Where(robot.StateEQ(robot.StateDraining)).CountX(sys()); n != 4 {
			t.Fatalf("%d robots draining, want 4", n)
		}
		r.step() // the fleet follows the provider: VMs gone, robots released
		perm := db.Robot.Query().Where(robot.Permanent(true)).OnlyX(sys())
		if perm.State == robot.StateReleased {
			t.Fatal("the permanent robot was released")
		}
		if n := db.Robot.Query().Where(robot.StateEQ(robot.StateReleased)).CountX(sys()); n != 4 {
			t.Fatalf("%d robots released, want 4", n)
		}
		waitFor(t, func() bool { return r.running() == 1 }, "the released robots' processes to stop")

		rows := db.ScaleDecision.Query().CountX(sys())
		if rows < 9 {
			t.Fatalf("%d decisions recorded, want one per reading", rows)
		}
		// Each recorded decision is counted by action for Prometheus.
		m := r.scaler.Metrics
		for action, want := range map[scaledecision.Action]float64{
			scaledecision.ActionScaleUp: 1, scaledecision.ActionScaleDown: 1, scaledecision.ActionCooldown: 2,
			scaledecision.ActionNone: float64(rows - 4),
		} {
			if got := testutil.ToFloat64(m.ScaleDecisions.WithLabelValues(r.pool.Name, string(action))); got != want {
				t.Errorf("rpacloud_scale_decisions_total{action=%q}: %v, want %v", action, got, want)
			}
		}
	})
}

func TestProviderErrorsLeaveThePoolConsistent(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		cd := 0
		r := newRig(t, db, decide.Settings{Min: 0, Max: 3, TasksPerRobot: 1, Cooldown: &cd})
		r.submit(10)
		r.prov.failCreate = true
		r.step()
		d := r.step()
		if d.Action != scaledecision.ActionScaleUp || d.Rented != 0 || d.Error == "" {
			t.Fatalf("failed scale-up row %+v", d)
		}
		// The failed robot is recorded as provisioning, with its key: it
		// counts in X, so the next readings never rent it twice.
		if n := db.VM.Query().Where(vm.StateEQ(vm.StateRequested)).CountX(sys()); n != 1 {
			t.Fatalf("%d requested VMs, want 1", n)
		}
		r.prov.failCreate = false
		r.step()
		d = r.step()
		// X = 1 (the requested one), N = ceil((10-1)/1) = 9 → max 3: rent 2.
		expect(t, d, scaledecision.ActionScaleUp, 2, 0)
		if total := db.VM.Query().CountX(sys()); total != 3 {
			t.Fatalf("%d VMs recorded, want 3 (never past max)", total)
		}

		// Robots that never come up are destroyed after the boot timeout
		// and counted; the VM whose create failed is failed by the fleet.
		r.clock.Add(11 * time.Minute)
		d = r.step()
		if d.BootFailures != 2 {
			t.Fatalf("boot failures %d, want 2: %+v", d.BootFailures, d)
		}
		if n := db.VM.Query().Where(vm.StateEQ(vm.StateFailed)).CountX(sys()); n != 3 {
			t.Fatalf("%d failed VMs, want 3", n)
		}
		if n := db.Robot.Query().Where(robot.StateEQ(robot.StateReleased)).CountX(sys()); n != 3 {
			t.Fatalf("%d robots released, want 3", n)
		}
		waitFor(t, func() bool { return r.running() == 0 }, "robots that did not boot to be destroyed")
	})
}

func TestReleaseRetriedAfterDestroyFails(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		cd := 0
		r := newRig(t, db, decide.Settings{Min: 0, Max: 2, TasksPerRobot: 1, Cooldown: &cd})
		r.submit(5)
		r.step()
		expect(t, r.step(), scaledecision.ActionScaleUp, 2, 0)
		db.Task.Update().SetState(task.StateSucceeded).ExecX(sys())
		r.setRobots(robot.StateIdle, robot.StateProvisioning)
		r.prov.failDel = true
		r.step()
		r.step()
		d := r.step()
		if d.Action != scaledecision.ActionScaleDown || d.Error == "" {
			t.Fatalf("failed release row %+v", d)
		}
		// Drained, not yet destroyed: no new work reaches them, and the
		// next period destroys them.
		if n := db.Robot.Query().Where(robot.StateEQ(robot.StateDraining)).CountX(sys()); n != 2 {
			t.Fatalf("%d robots draining, want 2", n)
		}
		if n := r.running(); n != 2 {
			t.Fatalf("%d processes run, want 2 still", n)
		}
		r.prov.failDel = false
		r.step()
		r.step()
		waitFor(t, func() bool { return r.running() == 0 }, "the drained robots to be destroyed")
		if n := db.Robot.Query().Where(robot.StateEQ(robot.StateReleased)).CountX(sys()); n != 2 {
			t.Fatalf("%d robots released, want 2", n)
		}
	})
}

// TestSetupAndEndpoints: a rented VM is created with its pool's declared
// preparation, and the remote-access endpoint its provider reports is
// handed to RecordEndpoint (lifecycle step S2 needs both).
func TestSetupAndEndpoints(t *testing.T) {
	db := storetest.SQLite(t)
	r := newRig(t, db, decide.Settings{Min: 1, Max: 1, TasksPerRobot: 1})
	want := &sdk.VMSetup{Software: []string{"chromium"}, ConfigFiles: []string{"/etc/tax.json"}, RemoteAccess: "ssh"}
	r.fleet.Setup = func(pool string) *sdk.VMSetup {
		if pool == "tax" {
			return want
		}
		return nil
	}
	var mu sync.Mutex
	recorded := map[int]sdk.RemoteAccess{}
	r.fleet.RecordEndpoint = func(_ context.Context, vmID int, ra sdk.RemoteAccess) error {
		mu.Lock()
		defer mu.Unlock()
		recorded[vmID] = ra
		return nil
	}
	r.prov.mu.Lock()
	r.prov.remote = &sdk.RemoteAccess{Protocol: "ssh", Host: "127.0.0.1", Port: 2222, Username: "rpa"}
	r.prov.mu.Unlock()
	r.step()
	r.prov.mu.Lock()
	setups := r.prov.setups
	r.prov.mu.Unlock()
	if len(setups) != 1 || setups[0] != want {
		t.Fatalf("setups passed to the provider: %+v", setups)
	}
	v := db.VM.Query().OnlyX(sys())
	mu.Lock()
	got, ok := recorded[v.ID]
	mu.Unlock()
	if !ok || got.Port != 2222 || got.Protocol != "ssh" {
		t.Fatalf("endpoints recorded: %+v", recorded)
	}
}

func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	sdktest.Eventually(t, 30*time.Second, what, cond)
}
