package robotapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/rpacloud/rpacloud/core/config"
	"github.com/rpacloud/rpacloud/core/credentials"
	"github.com/rpacloud/rpacloud/core/dispatch"
	"github.com/rpacloud/rpacloud/core/events"
	"github.com/rpacloud/rpacloud/core/robotapi"
	"github.com/rpacloud/rpacloud/core/robotwire"
	"github.com/rpacloud/rpacloud/core/store"
	"github.com/rpacloud/rpacloud/core/store/storetest"
	"github.com/rpacloud/rpacloud/ent"
	"github.com/rpacloud/rpacloud/ent/attempt"
	"github.com/rpacloud/rpacloud/ent/customer"
	"github.com/rpacloud/rpacloud/ent/pool"
	"github.com/rpacloud/rpacloud/ent/privacy"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const hcl = `
provider "local" { plugin = "local" }
customer "acme" {}
pool "p" {
  provider = "local"
  max      = 2
}
pool "q" {
  provider = "local"
  max      = 2
}
process "crawl" {
  pool    = "p"
  crawler = "http"
  flow    = "f"
}
process "other" {
  pool    = "q"
  crawler = "http"
  flow    = "f"
}
process "echo" {
  pool    = "p"
  builtin = "echo"
}
process "filing" {
  pool        = "p"
  builtin     = "echo"
  owner       = "acme"
  credentials = ["etax/acme"]
}
flow "f" {
  step "navigate" { url = "https://etax.example.gov/" }
}
`

type fixture struct {
	svc   *robotapi.Service
	db    *ent.Client
	robot int // of pool p
	other int // of pool q
	cust  int
}

func sys() context.Context { return privacy.DecisionContext(context.Background(), privacy.Allow) }

// newFixture stores the configuration as the daemon does at start-up and
// adds a robot to each pool.
func newFixture(t *testing.T) *fixture {
	t.Helper()
	cfg, diags, _ := config.LoadSources(map[string][]byte{"a.hcl": []byte(hcl)})
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	db := storetest.SQLite(t)
	ctx := sys()
	if err := store.SyncConfig(ctx, db.Client, cfg); err != nil {
		t.Fatal(err)
	}
	p := db.Pool.Query().Where(pool.Name("p")).OnlyX(ctx)
	q := db.Pool.Query().Where(pool.Name("q")).OnlyX(ctx)
	f := &fixture{db: db.Client, cust: db.Customer.Query().Where(customer.Name("acme")).OnlyIDX(ctx)}
	f.robot = db.Robot.Create().SetName("r1").SetPoolID(p.ID).SaveX(ctx).ID
	f.other = db.Robot.Create().SetName("r2").SetPoolID(q.ID).SaveX(ctx).ID
	bus := events.New()
	f.svc = &robotapi.Service{Client: db.Client, Queue: dispatch.New(db.Client, dispatch.Options{Bus: bus}), Bus: bus,
		Bindings: credentials.NewBindings(db.Client, cfg), Config: cfg}
	return f
}

// A robot gets the spec of its own pool's crawler and vendor processes and
// nothing else; unknown, builtin and other pools' processes answer alike.
func TestProcessSpecOnlyForOwnPool(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	spec, err := f.svc.ProcessSpec(ctx, f.robot, "crawl")
	if err != nil || spec.Name != "crawl" || spec.Flow == nil || len(spec.Flow.Steps) != 1 {
		t.Fatalf("own pool: %+v %v", spec, err)
	}
	for _, c := range []struct {
		robot int
		name  string
	}{{f.robot, "other"}, {f.other, "crawl"}, {f.robot, "echo"}, {f.robot, "nope"}} {
		if _, err := f.svc.ProcessSpec(ctx, c.robot, c.name); !errors.Is(err, robotapi.ErrNoSpec) {
			t.Errorf("robot %d, process %q: %v, want ErrNoSpec", c.robot, c.name, err)
		}
	}
	if _, err := (&robotapi.Service{Client: f.db}).ProcessSpec(ctx, f.robot, "crawl"); !errors.Is(err, robotapi.ErrNoSpec) {
		t.Errorf("without a configuration: %v", err)
	}
}

func (f *fixture) submit(t *testing.T, proc string) {
	t.Helper()
	if _, err := f.svc.Queue.Submit(context.Background(), dispatch.SubmitRequest{
		CustomerID: f.cust, Process: proc, Inputs: []json.RawMessage{json.RawMessage(`{"n":1}`)},
	}); err != nil {
		t.Fatal(err)
	}
}

// The long poll answers nothing after the wait, and a claim as soon as
// work arrives; the claim reports back with the one error class.
func TestClaimLongPollAndReport(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	start := time.Now()
	c, err := f.svc.Claim(ctx, f.robot, time.Second)
	if err != nil || c != nil {
		t.Fatalf("empty queue: %+v %v", c, err)
	}
	if time.Since(start) < time.Second {
		t.Fatal("the claim did not wait")
	}
	go func() {
		time.Sleep(200 * time.Millisecond)
		f.submit(t, "echo")
	}()
	c, err = f.svc.Claim(ctx, f.robot, 10*time.Second)
	if err != nil || c == nil || c.Process != "echo" || c.Kind != "builtin" || c.Runner != "echo" || c.Attempt != 1 || string(c.Input) != `{"n":1}` || c.Credentials != nil {
		t.Fatalf("claim: %+v %v", c, err)
	}
	if _, err := f.svc.Heartbeat(ctx, f.robot, c.TaskID, c.Attempt); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.Report(ctx, f.robot, robotwire.Report{TaskID: c.TaskID, Attempt: c.Attempt, ErrorClass: robotwire.ErrorData, Message: "bad id"}); err != nil {
		t.Fatal(err)
	}
	a := f.db.Attempt.Query().OnlyX(sys())
	if a.ErrorClass == nil || *a.ErrorClass != attempt.ErrorClassData || a.ErrorMessage != "bad id" {
		t.Fatalf("attempt %+v", a)
	}
	// The attempt is over: a second report is stale.
	if err := f.svc.Report(ctx, f.robot, robotwire.Report{TaskID: c.TaskID, Attempt: c.Attempt}); !errors.Is(err, dispatch.ErrStaleAttempt) {
		t.Fatalf("second report: %v", err)
	}
}

// A claim whose credentials cannot be granted (here: no Vault) fails its
// attempt at once as an execution error naming the credential, and the
// robot gets nothing from the poll, which it waits out.
func TestClaimFailsFastWithoutCredentials(t *testing.T) {
	f := newFixture(t)
	f.submit(t, "filing")
	start := time.Now()
	c, err := f.svc.Claim(context.Background(), f.robot, time.Second)
	if err != nil || c != nil {
		t.Fatalf("claim: %+v %v", c, err)
	}
	if time.Since(start) < time.Second {
		t.Error("the robot did not wait out its poll")
	}
	a := f.db.Attempt.Query().OnlyX(sys())
	if a.State != attempt.StateFailed || a.ErrorClass == nil || *a.ErrorClass != attempt.ErrorClassExecution || !strings.Contains(a.ErrorMessage, `"etax/acme"`) {
		t.Fatalf("attempt %s %v %q", a.State, a.ErrorClass, a.ErrorMessage)
	}
}

// AwaitStop answers false after its wait, true as soon as an operator stops
// the task, and STALE_ATTEMPT for another robot's or
// a finished attempt. A paused pool gives its robots nothing; its resume
// wakes a waiting claim.
func TestAwaitStopAndPause(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.submit(t, "echo")
	c, err := f.svc.Claim(ctx, f.robot, 0)
	if err != nil || c == nil {
		t.Fatalf("claim: %+v %v", c, err)
	}
	if stop, err := f.svc.AwaitStop(ctx, f.robot, c.TaskID, c.Attempt, 300*time.Millisecond); stop || err != nil {
		t.Fatalf("await without a stop: %v %v", stop, err)
	}
	if _, err := f.svc.AwaitStop(ctx, f.other, c.TaskID, c.Attempt, 0); !errors.Is(err, dispatch.ErrStaleAttempt) {
		t.Fatalf("another robot's attempt: %v", err)
	}
	go func() {
		time.Sleep(200 * time.Millisecond)
		if _, err := f.svc.Queue.StopTask(context.Background(), c.TaskID, "ops", "test"); err != nil {
			t.Error(err)
		}
	}()
	start := time.Now()
	stop, err := f.svc.AwaitStop(ctx, f.robot, c.TaskID, c.Attempt, 10*time.Second)
	if !stop || err != nil || time.Since(start) > 5*time.Second {
		t.Fatalf("await with a stop: %v %v after %s", stop, err, time.Since(start))
	}
	if _, err := f.svc.Heartbeat(ctx, f.robot, c.TaskID, c.Attempt); !errors.Is(err, dispatch.ErrStopRequested) {
		t.Fatalf("heartbeat after the stop: %v", err)
	}
	if err := f.svc.Report(ctx, f.robot, robotwire.Report{TaskID: c.TaskID, Attempt: c.Attempt, ErrorClass: robotwire.ErrorExecution, Message: "context canceled"}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.AwaitStop(ctx, f.robot, c.TaskID, c.Attempt, 0); !errors.Is(err, dispatch.ErrStaleAttempt) {
		t.Fatalf("await on a stopped attempt: %v", err)
	}

	if _, err := f.svc.Queue.PausePool(ctx, "p", "ops", "maintenance"); err != nil {
		t.Fatal(err)
	}
	f.submit(t, "echo")
	if c, err := f.svc.Claim(ctx, f.robot, 0); err != nil || c != nil {
		t.Fatalf("claim in a paused pool: %+v %v", c, err)
	}
	go func() {
		time.Sleep(200 * time.Millisecond)
		if _, err := f.svc.Queue.ResumePool(context.Background(), "p", "ops"); err != nil {
			t.Error(err)
		}
	}()
	if c, err := f.svc.Claim(ctx, f.robot, 10*time.Second); err != nil || c == nil {
		t.Fatalf("claim after the resume: %+v %v", c, err)
	}
}

// A stop requested through another daemon (its own event bus: the event
// does not reach this one here) is still noticed by AwaitStop, from the
// database, at its next check (StopBackstop, shortened here).
func TestAwaitStopSeesAnotherDaemonsStop(t *testing.T) {
	f := newFixture(t)
	f.svc.StopBackstop = 200 * time.Millisecond
	ctx := context.Background()
	f.submit(t, "echo")
	c, err := f.svc.Claim(ctx, f.robot, 0)
	if err != nil || c == nil {
		t.Fatalf("claim: %+v %v", c, err)
	}
	other := dispatch.New(f.db, dispatch.Options{Bus: events.New()})
	go func() {
		time.Sleep(200 * time.Millisecond)
		if _, err := other.StopTask(context.Background(), c.TaskID, "ops", ""); err != nil {
			t.Error(err)
		}
	}()
	start := time.Now()
	stop, err := f.svc.AwaitStop(ctx, f.robot, c.TaskID, c.Attempt, 10*time.Second)
	if !stop || err != nil || time.Since(start) > 5*time.Second {
		t.Fatalf("await with another daemon's stop: %v %v after %s", stop, err, time.Since(start))
	}
}

// AwaitStop reads its attempt once at the start; after that the service's
// backstop checks every open call together every DefaultStopBackstop (5
// s): every busy robot holds one open, so 500 robots made 500 reads a
// second with a check per call every second. Within a 2.5 s wait it reads
// the attempt at most twice (it read it 4 times with a check every second).
func TestAwaitStopReadsDatabaseSeldom(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.submit(t, "echo")
	c, err := f.svc.Claim(ctx, f.robot, 0)
	if err != nil || c == nil {
		t.Fatalf("claim: %+v %v", c, err)
	}
	var reads atomic.Int32
	f.db.Attempt.Intercept(ent.InterceptFunc(func(next ent.Querier) ent.Querier {
		return ent.QuerierFunc(func(ctx context.Context, q ent.Query) (ent.Value, error) {
			reads.Add(1)
			return next.Query(ctx, q)
		})
	}))
	if stop, err := f.svc.AwaitStop(ctx, f.robot, c.TaskID, c.Attempt, 2500*time.Millisecond); stop || err != nil {
		t.Fatalf("await without a stop: %v %v", stop, err)
	}
	if n := reads.Load(); n > 2 {
		t.Fatalf("AwaitStop read the attempt %d times in 2.5 s, want 2 (a check every %s)", n, robotapi.DefaultStopBackstop)
	}
}
