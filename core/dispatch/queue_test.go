package dispatch_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"go.uber.org/goleak"

	"github.com/rpacloud/rpacloud/core/dispatch"
	"github.com/rpacloud/rpacloud/core/events"
	"github.com/rpacloud/rpacloud/core/lease"
	"github.com/rpacloud/rpacloud/core/robotwire"
	"github.com/rpacloud/rpacloud/core/store"
	"github.com/rpacloud/rpacloud/core/store/storetest"
	"github.com/rpacloud/rpacloud/ent"
	"github.com/rpacloud/rpacloud/ent/attempt"
	"github.com/rpacloud/rpacloud/ent/batch"
	"github.com/rpacloud/rpacloud/ent/event"
	"github.com/rpacloud/rpacloud/ent/pool"
	"github.com/rpacloud/rpacloud/ent/privacy"
	"github.com/rpacloud/rpacloud/ent/robot"
	"github.com/rpacloud/rpacloud/ent/task"
	"github.com/rpacloud/rpacloud/plugins/sdk/sdktest"
)

func TestMain(m *testing.M) {
	if os.Getenv(crashEnvDriver) != "" {
		os.Exit(crashChild())
	}
	goleak.VerifyTestMain(m)
}

type fixture struct {
	db     *store.DB
	q      *dispatch.Queue
	clock  *sdktest.Clock
	cust   *ent.Customer
	pool   *ent.Pool
	robots []*ent.Robot
	bus    *events.Bus
}

func sys() context.Context { return privacy.DecisionContext(context.Background(), privacy.Allow) }

func newFixture(t *testing.T, db *store.DB, robots, retries int) *fixture {
	t.Helper()
	ctx := sys()
	f := &fixture{db: db, clock: sdktest.NewClock(time.Date(2026, 11, 1, 8, 0, 0, 0, time.UTC)), bus: events.New()}
	f.q = dispatch.New(db.Client, dispatch.Options{Bus: f.bus, Now: f.clock.Now, Seed: 42})
	f.cust = db.Customer.Create().SetName("acme").SaveX(ctx)
	f.pool = db.Pool.Create().SetName("p").SetProvider("local").SetMax(10).SaveX(ctx)
	db.Process.Create().SetName("echo").SetPoolID(f.pool.ID).SetRunner("echo").
		SetMaxDurationSeconds(60).SetRetries(retries).SaveX(ctx)
	for i := range robots {
		f.robots = append(f.robots, db.Robot.Create().SetName(fmt.Sprintf("r%d", i)).SetPoolID(f.pool.ID).SaveX(ctx))
	}
	return f
}

// checkIn makes robot r idle and just seen, as its empty poll would
// (without polling: the poll could take a task).
func (f *fixture) checkIn(r int) {
	f.db.Robot.UpdateOneID(f.robots[r].ID).SetState(robot.StateIdle).SetLastSeenAt(f.clock.Now()).ExecX(sys())
}

func inputs(n int) []json.RawMessage {
	out := make([]json.RawMessage, n)
	for i := range out {
		out[i] = json.RawMessage(fmt.Sprintf(`{"n":%d}`, i))
	}
	return out
}

func (f *fixture) submit(t *testing.T, n int) *ent.Batch {
	t.Helper()
	b, err := f.q.Submit(context.Background(), dispatch.SubmitRequest{CustomerID: f.cust.ID, Process: "echo", Inputs: inputs(n)})
	if err != nil {
		t.Fatalf("submit: %v", err)
	}
	return b
}

func (f *fixture) claim(t *testing.T, r int) *dispatch.Claim {
	t.Helper()
	c, err := f.q.ClaimTask(context.Background(), f.robots[r].ID)
	if err != nil {
		t.Fatalf("claim: %v", err)
	}
	return c
}

func TestSubmitClaimReport(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db, 2, 3)
		b := f.submit(t, 3)
		seen := map[int]bool{}
		for range 3 {
			c := f.claim(t, 0)
			if c == nil {
				t.Fatal("no task claimed from a batch with pending tasks")
			}
			if seen[c.Task.ID] {
				t.Fatalf("task %d dispatched twice", c.Task.ID)
			}
			seen[c.Task.ID] = true
			if c.Attempt.Number != 1 || c.Deadline != f.clock.Now().Add(time.Minute) {
				t.Fatalf("attempt %d deadline %v", c.Attempt.Number, c.Deadline)
			}
			out, err := f.q.Report(context.Background(), f.robots[0].ID, c.Task.ID, 1, dispatch.Result{Success: true, Output: json.RawMessage(`{"ok":true}`)})
			if err != nil {
				t.Fatalf("report: %v", err)
			}
			if out.State != task.StateSucceeded || out.Output != `{"ok":true}` {
				t.Fatalf("task after report: %s %q", out.State, out.Output)
			}
		}
		if c := f.claim(t, 0); c != nil {
			t.Fatalf("claimed task %d from an empty queue", c.Task.ID)
		}
		got := db.Batch.GetX(sys(), b.ID)
		if got.Stack != batch.StackFinished || got.Succeeded != 3 || got.Pending != 0 || got.Running != 0 || got.FinishedAt == nil {
			t.Fatalf("batch after all reports: %+v", got)
		}
		if st := db.Robot.GetX(sys(), f.robots[0].ID).State; st != robot.StateIdle {
			t.Fatalf("robot state %s, want idle", st)
		}
	})
}

func TestRetriesThenFail(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db, 1, 3)
		f.submit(t, 1)
		for attempt := 1; attempt <= 4; attempt++ {
			c := f.claim(t, 0)
			if c == nil || c.Attempt.Number != attempt {
				t.Fatalf("attempt %d: claim %+v", attempt, c)
			}
			out, err := f.q.Report(context.Background(), f.robots[0].ID, c.Task.ID, attempt, dispatch.Result{Class: robotwire.ErrorExecution, Message: "portal down"})
			if err != nil {
				t.Fatal(err)
			}
			want := task.StatePending
			if attempt == 4 {
				want = task.StateFailed
			}
			if out.State != want {
				t.Fatalf("after attempt %d: %s, want %s", attempt, out.State, want)
			}
		}
		tk := db.Task.Query().OnlyX(sys())
		if tk.FailureReason == nil || *tk.FailureReason != task.FailureReasonRetriesExhausted || tk.ExecutionsFailed != 4 {
			t.Fatalf("task: %+v", tk)
		}
		if n := db.Attempt.Query().CountX(sys()); n != 4 {
			t.Fatalf("%d attempts, want 4 (1 + 3 retries)", n)
		}
	})
}

func TestDataErrorIsFinal(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db, 1, 3)
		b := f.submit(t, 1)
		c := f.claim(t, 0)
		out, err := f.q.Report(context.Background(), f.robots[0].ID, c.Task.ID, 1, dispatch.Result{Class: robotwire.ErrorData, Message: "tax id does not exist"})
		if err != nil {
			t.Fatal(err)
		}
		if out.State != task.StateFailed || *out.FailureReason != task.FailureReasonDataError || out.ErrorMessage != "tax id does not exist" {
			t.Fatalf("task: %+v", out)
		}
		if f.claim(t, 0) != nil {
			t.Fatal("a data error was retried")
		}
		if got := db.Batch.GetX(sys(), b.ID); got.Stack != batch.StackFinished || got.Failed != 1 {
			t.Fatalf("batch: %+v", got)
		}
	})
}

func TestStaleReportsAreRefused(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db, 2, 3)
		f.submit(t, 1)
		c := f.claim(t, 0)
		ctx := context.Background()
		ok := dispatch.Result{Success: true}
		// Another robot cannot report for this attempt.
		if _, err := f.q.Report(ctx, f.robots[1].ID, c.Task.ID, 1, ok); !errors.Is(err, dispatch.ErrStaleAttempt) {
			t.Fatalf("report by another robot: %v", err)
		}
		// A wrong attempt number is refused.
		if _, err := f.q.Report(ctx, f.robots[0].ID, c.Task.ID, 2, ok); !errors.Is(err, dispatch.ErrStaleAttempt) {
			t.Fatalf("report for a future attempt: %v", err)
		}
		if _, err := f.q.Report(ctx, f.robots[0].ID, c.Task.ID, 1, ok); err != nil {
			t.Fatal(err)
		}
		// A duplicate report changes nothing.
		if _, err := f.q.Report(ctx, f.robots[0].ID, c.Task.ID, 1, dispatch.Result{Class: robotwire.ErrorData, Message: "late"}); !errors.Is(err, dispatch.ErrStaleAttempt) {
			t.Fatalf("duplicate report: %v", err)
		}
		tk := db.Task.GetX(sys(), c.Task.ID)
		if tk.State != task.StateSucceeded {
			t.Fatalf("task changed by a duplicate report: %s", tk.State)
		}
		if got := db.Batch.Query().OnlyX(sys()); got.Succeeded != 1 || got.Failed != 0 {
			t.Fatalf("batch counted twice: %+v", got)
		}
	})
}

func TestBadInputs(t *testing.T) {
	db := storetest.SQLite(t)
	f := newFixture(t, db, 1, 3)
	ctx := context.Background()
	cases := map[string]dispatch.SubmitRequest{
		"no tasks":        {CustomerID: f.cust.ID, Process: "echo"},
		"unknown process": {CustomerID: f.cust.ID, Process: "nope", Inputs: inputs(1)},
		"not an object":   {CustomerID: f.cust.ID, Process: "echo", Inputs: []json.RawMessage{json.RawMessage(`[1]`)}},
		"secret in input": {CustomerID: f.cust.ID, Process: "echo", Inputs: []json.RawMessage{json.RawMessage(`{"a":1}`), json.RawMessage(`{"credentials":{"portal":{"password":"x"}}}`)}},
	}
	for name, req := range cases {
		if _, err := f.q.Submit(ctx, req); !errors.Is(err, dispatch.ErrBadInput) {
			t.Errorf("%s: %v, want ErrBadInput", name, err)
		}
	}
	if n := db.Task.Query().CountX(sys()); n != 0 {
		t.Fatalf("bad submissions left %d tasks", n)
	}
}

// A result the daemon cannot record ends its attempt at once as an
// execution error with the reason (the robot believes it is done and sends
// nothing more), is retried like any execution error, and fails the task
// with retries_exhausted once the retries are spent. The robot gets
// ErrResultRefused. Before, the attempt stayed running until its deadline.
func TestRefusedResultsFailTheAttempt(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db, 1, 2)
		ctx := context.Background()
		f.submit(t, 1)
		big := json.RawMessage(`{"blob":"` + strings.Repeat("x", dispatch.MaxOutputBytes) + `"}`)
		results := []struct {
			res  dispatch.Result
			want string
		}{
			{dispatch.Result{Success: true, Output: big}, fmt.Sprintf("result refused: output of %d bytes exceeds the limit of %d bytes", len(big), dispatch.MaxOutputBytes)},
			{dispatch.Result{Success: true, Output: json.RawMessage(`{nope`)}, "result refused: output is not valid JSON"},
			{dispatch.Result{Class: "weird", Message: "x"}, `result refused: error class "weird" is neither execution nor data`},
		}
		for i, r := range results {
			c := f.claim(t, 0)
			if c == nil || c.Attempt.Number != i+1 {
				t.Fatalf("attempt %d: claim %+v", i+1, c)
			}
			out, err := f.q.Report(ctx, f.robots[0].ID, c.Task.ID, c.Attempt.Number, r.res)
			if !errors.Is(err, dispatch.ErrResultRefused) || !strings.Contains(err.Error(), strings.TrimPrefix(r.want, "result refused: ")) {
				t.Fatalf("attempt %d: report error %v, want ErrResultRefused with the reason", i+1, err)
			}
			a := db.Attempt.Query().Where(attempt.TaskID(c.Task.ID), attempt.Number(c.Attempt.Number)).OnlyX(sys())
			if a.State != attempt.StateFailed || a.ErrorClass == nil || *a.ErrorClass != attempt.ErrorClassExecution || a.ErrorMessage != r.want || a.FinishedAt == nil {
				t.Fatalf("attempt %d after a refused result: %s %v %q", i+1, a.State, a.ErrorClass, a.ErrorMessage)
			}
			want := task.StatePending
			if i == 2 {
				want = task.StateFailed
			}
			if out == nil || out.State != want || out.ErrorMessage != r.want {
				t.Fatalf("attempt %d: task %+v, want %s", i+1, out, want)
			}
			if st := db.Robot.GetX(sys(), f.robots[0].ID).State; st != robot.StateIdle {
				t.Fatalf("robot is %s after a refused result, want idle", st)
			}
			// Sending it again changes nothing.
			if _, err := f.q.Report(ctx, f.robots[0].ID, c.Task.ID, c.Attempt.Number, r.res); !errors.Is(err, dispatch.ErrStaleAttempt) {
				t.Fatalf("attempt %d: second report %v, want ErrStaleAttempt", i+1, err)
			}
		}
		tk := db.Task.Query().OnlyX(sys())
		if tk.FailureReason == nil || *tk.FailureReason != task.FailureReasonRetriesExhausted || tk.ExecutionsFailed != 3 || tk.Timeouts != 0 {
			t.Fatalf("task: %+v", tk)
		}
		if b := db.Batch.Query().OnlyX(sys()); b.Stack != batch.StackFinished || b.Failed != 1 || b.Running != 0 {
			t.Fatalf("batch: %+v", b)
		}
	})
}

// A failure message over the limit is shortened, not refused: the robot's
// verdict (here a data error) stands.
func TestLongFailureMessageIsTruncated(t *testing.T) {
	db := storetest.SQLite(t)
	f := newFixture(t, db, 1, 3)
	f.submit(t, 1)
	c := f.claim(t, 0)
	msg := strings.Repeat("é", dispatch.MaxOutputBytes)
	out, err := f.q.Report(context.Background(), f.robots[0].ID, c.Task.ID, 1, dispatch.Result{Class: robotwire.ErrorData, Message: msg})
	if err != nil {
		t.Fatal(err)
	}
	if out.State != task.StateFailed || *out.FailureReason != task.FailureReasonDataError ||
		len(out.ErrorMessage) > dispatch.MaxOutputBytes || !utf8.ValidString(out.ErrorMessage) || !strings.Contains(out.ErrorMessage, "truncated") {
		t.Fatalf("task: %s %v, message of %d bytes", out.State, out.FailureReason, len(out.ErrorMessage))
	}
}

func TestHeartbeatAndTimeouts(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db, 4, 3)
		ctx := context.Background()
		f.submit(t, 1)
		c := f.claim(t, 0)
		f.clock.Add(50 * time.Second)
		d, err := f.q.Heartbeat(ctx, f.robots[0].ID, c.Task.ID, 1)
		if err != nil || !d.Equal(f.clock.Now().Add(time.Minute)) {
			t.Fatalf("heartbeat: %v %v", d, err)
		}
		f.clock.Add(50 * time.Second) // past the first deadline, not the extended one
		if n, err := f.q.Sweep(ctx); err != nil || n != 0 {
			t.Fatalf("sweep after heartbeat abandoned %d (%v)", n, err)
		}
		// Three different robots time out: the task fails.
		for i := range 3 {
			if i > 0 {
				c = f.claim(t, i)
				if c == nil {
					t.Fatalf("robot %d got nothing after a time-out elsewhere", i)
				}
			}
			f.clock.Add(2 * time.Minute)
			if n, err := f.q.Sweep(ctx); err != nil || n != 1 {
				t.Fatalf("sweep %d: %d, %v", i, n, err)
			}
			if st := db.Robot.GetX(sys(), f.robots[i].ID).State; st != robot.StateSuspect {
				t.Fatalf("robot %d is %s after a time-out, want suspect", i, st)
			}
			// While another live robot could take it, the timed-out robot
			// does not get the same task back.
			if i < 2 {
				f.checkIn(i + 1)
				if again := f.claim(t, i); again != nil {
					t.Fatalf("robot %d got task %d again after timing out on it", i, again.Task.ID)
				}
			}
		}
		tk := db.Task.Query().OnlyX(sys())
		if tk.State != task.StateFailed || *tk.FailureReason != task.FailureReasonTimeoutExhausted || tk.Timeouts != 3 {
			t.Fatalf("task: %+v", tk)
		}
		// A late report from an abandoned attempt is refused.
		if _, err := f.q.Report(ctx, f.robots[0].ID, tk.ID, 1, dispatch.Result{Success: true}); !errors.Is(err, dispatch.ErrStaleAttempt) {
			t.Fatalf("late report: %v", err)
		}
		if n := db.Event.Query().CountX(sys()); n == 0 {
			t.Fatal("no events recorded")
		}
	})
}

// timeOut lets the running attempt of c pass its deadline and sweeps it.
func (f *fixture) timeOut(t *testing.T, c *dispatch.Claim) *ent.Task {
	t.Helper()
	f.clock.Add(c.Deadline.Sub(f.clock.Now()) + time.Second)
	if n, err := f.q.Sweep(context.Background()); err != nil || n != 1 {
		t.Fatalf("sweep: %d, %v", n, err)
	}
	return f.db.Task.GetX(sys(), c.Task.ID)
}

// In a pool of one robot a time-out cannot go to another robot: the robot
// that timed out takes the task again, and after MaxTimeoutRobots
// time-outs in all the task fails with timeout_exhausted. Before, the task
// stayed pending forever. A success on a retry ends it as well.
func TestTimeoutsInAPoolOfOne(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db, 1, 3)
		f.submit(t, 2)
		var tk *ent.Task
		for n := 1; n <= dispatch.MaxTimeoutRobots; n++ {
			c := f.claim(t, 0)
			if c == nil {
				t.Fatalf("time-out %d: the only robot got nothing back", n)
			}
			if tk != nil && c.Task.ID != tk.ID {
				// The other task: finish it, then take the timed-out one.
				if _, err := f.q.Report(context.Background(), f.robots[0].ID, c.Task.ID, c.Attempt.Number, dispatch.Result{Success: true}); err != nil {
					t.Fatal(err)
				}
				if c = f.claim(t, 0); c == nil || c.Task.ID != tk.ID {
					t.Fatalf("time-out %d: the only robot did not get the timed-out task back: %+v", n, c)
				}
			}
			tk = f.timeOut(t, c)
			want := task.StatePending
			if n == dispatch.MaxTimeoutRobots {
				want = task.StateFailed
			}
			if tk.State != want || tk.Timeouts != n {
				t.Fatalf("after time-out %d: %s with %d time-outs, want %s", n, tk.State, tk.Timeouts, want)
			}
		}
		if tk.FailureReason == nil || *tk.FailureReason != task.FailureReasonTimeoutExhausted || tk.FinishedAt == nil ||
			tk.ErrorMessage != "timed out 3 times (on 1 robot)" {
			t.Fatalf("task: %v %q", tk.FailureReason, tk.ErrorMessage)
		}
		// The draws may have given the time-outs to one task all along
		// (which task is drawn depends on the random stream); the other
		// is then still pending.
		if c := f.claim(t, 0); c != nil {
			if c.Task.ID == tk.ID {
				t.Fatalf("claimed task %d after it failed", c.Task.ID)
			}
			if _, err := f.q.Report(context.Background(), f.robots[0].ID, c.Task.ID, c.Attempt.Number, dispatch.Result{Success: true}); err != nil {
				t.Fatal(err)
			}
		}
		if c := f.claim(t, 0); c != nil {
			t.Fatalf("claimed task %d after everything finished", c.Task.ID)
		}
		if b := db.Batch.Query().OnlyX(sys()); b.Stack != batch.StackFinished || b.Failed != 1 || b.Succeeded != 1 {
			t.Fatalf("batch: %+v", b)
		}

		// A retry on the same robot that succeeds ends the task.
		f.submit(t, 1)
		c := f.claim(t, 0)
		f.timeOut(t, c)
		c = f.claim(t, 0)
		if c == nil || c.Attempt.Number != 2 {
			t.Fatalf("retry after a time-out: %+v", c)
		}
		if out, err := f.q.Report(context.Background(), f.robots[0].ID, c.Task.ID, 2, dispatch.Result{Success: true}); err != nil || out.State != task.StateSucceeded {
			t.Fatalf("report the retry: %v %v", out, err)
		}
	})
}

// In a pool of two, the task goes to the other robot first; once both
// timed out on it, either takes it again, and it ends after
// MaxTimeoutRobots time-outs in all.
func TestTimeoutsInAPoolOfTwo(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db, 2, 3)
		f.submit(t, 1)
		c := f.claim(t, 0)
		f.checkIn(1)
		f.timeOut(t, c)
		f.checkIn(1) // robot 1 polled recently: it counts as another robot
		if again := f.claim(t, 0); again != nil {
			t.Fatal("robot 0 took its timed-out task back while robot 1 was there")
		}
		c = f.claim(t, 1)
		if c == nil {
			t.Fatal("robot 1 got nothing after robot 0 timed out")
		}
		f.timeOut(t, c)
		// Both timed out: robot 0 may take it again, whoever else is live.
		f.checkIn(1)
		c = f.claim(t, 0)
		if c == nil || c.Attempt.Number != 3 {
			t.Fatalf("robot 0 did not retry the task both robots timed out on: %+v", c)
		}
		tk := f.timeOut(t, c)
		if tk.State != task.StateFailed || *tk.FailureReason != task.FailureReasonTimeoutExhausted || tk.ErrorMessage != "timed out 3 times (on 2 robots)" {
			t.Fatalf("task: %s %v %q", tk.State, tk.FailureReason, tk.ErrorMessage)
		}
	})
}

// An idle robot that stopped polling does not count as another robot: the
// robot that timed out takes the task back once the others have been
// silent for IdleLiveness. A busy robot always counts.
func TestTimeoutFallbackIgnoresSilentRobots(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db, 3, 3) // max_duration 1 min
		f.submit(t, 2)
		a := f.claim(t, 0)
		f.checkIn(1) // robot 1 is idle and seen at t0
		f.clock.Add(30 * time.Second)
		b := f.claim(t, 2) // robot 2 busy with the other task
		if a == nil || b == nil {
			t.Fatal("nothing claimed")
		}
		f.clock.Add(31 * time.Second) // t0+61s: a's deadline passed, b's not
		beat := func() {
			t.Helper()
			if _, err := f.q.Heartbeat(ctx, f.robots[2].ID, b.Task.ID, 1); err != nil {
				t.Fatal(err)
			}
		}
		beat()
		if n, err := f.q.Sweep(ctx); err != nil || n != 1 {
			t.Fatalf("sweep: %d %v", n, err)
		}
		if c := f.claim(t, 0); c != nil {
			t.Fatal("robot 0 took its timed-out task back beside a live idle and a busy robot")
		}
		f.clock.Add(49 * time.Second)
		beat()
		f.clock.Add(15 * time.Second) // t0+125s: robot 1 silent for over IdleLiveness
		if c := f.claim(t, 0); c != nil {
			t.Fatal("robot 0 took its timed-out task back beside a busy robot")
		}
		if _, err := f.q.Report(ctx, f.robots[2].ID, b.Task.ID, 1, dispatch.Result{Success: true}); err != nil {
			t.Fatal(err)
		}
		if c := f.claim(t, 0); c != nil {
			t.Fatal("robot 0 took its timed-out task back beside a robot that just reported")
		}
		f.clock.Add(dispatch.IdleLiveness + time.Second)
		c := f.claim(t, 0)
		if c == nil || c.Task.ID != a.Task.ID || c.Attempt.Number != 2 {
			t.Fatalf("robot 0 did not retry its task once the others fell silent: %+v", c)
		}
	})
}

// A pool with no robot able to take its work still ends it: a task still
// waiting max_wait after its submission fails with reason expired. A
// running attempt is not cut short; its task expires once pending again.
func TestExpireAfterMaxWait(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db, 0, 3)
		db.Process.Update().SetMaxWaitSeconds(3600).ExecX(sys())
		b := f.submit(t, 3)
		f.clock.Add(time.Hour)
		if n, err := f.q.Expire(ctx); err != nil || n != 0 {
			t.Fatalf("expire at exactly max_wait: %d, %v", n, err)
		}
		// A robot joins and starts one task just before the bound.
		f.robots = append(f.robots, db.Robot.Create().SetName("late").SetPoolID(f.pool.ID).SaveX(sys()))
		c := f.claim(t, 0)
		f.clock.Add(time.Second)
		if n, err := f.q.Expire(ctx); err != nil || n != 2 {
			t.Fatalf("expire past max_wait: %d, %v (want the 2 waiting tasks)", n, err)
		}
		for _, tk := range db.Task.Query().Where(task.BatchID(b.ID)).AllX(sys()) {
			if tk.ID == c.Task.ID {
				if tk.State != task.StateRunning {
					t.Fatalf("the running task is %s", tk.State)
				}
				continue
			}
			if tk.State != task.StateFailed || tk.FailureReason == nil || *tk.FailureReason != task.FailureReasonExpired ||
				tk.FinishedAt == nil || !strings.Contains(tk.ErrorMessage, "still waiting for a robot 1h0m1s after its submission") {
				t.Fatalf("task %d: %s %v %q", tk.ID, tk.State, tk.FailureReason, tk.ErrorMessage)
			}
		}
		// The running attempt times out: its task is pending again and
		// past max_wait, so it expires too, and the batch is finished.
		f.timeOut(t, c)
		if n, err := f.q.Expire(ctx); err != nil || n != 1 {
			t.Fatalf("expire the timed-out task: %d, %v", n, err)
		}
		got := db.Batch.GetX(sys(), b.ID)
		if got.Stack != batch.StackFinished || got.Failed != 3 || got.Pending != 0 || got.Running != 0 {
			t.Fatalf("batch: %+v", got)
		}
		if n := db.Event.Query().Where(event.Type("task.failed"), event.BatchID(b.ID)).CountX(sys()); n != 3 {
			t.Fatalf("%d task.failed events, want 3", n)
		}
		if n, err := f.q.Expire(ctx); err != nil || n != 0 {
			t.Fatalf("expire again: %d, %v", n, err)
		}
	})
}

// Many robots claiming at once never get the same task twice, on either
// database.
func TestConcurrentClaims(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		const robots, tasks = 8, 120
		f := newFixture(t, db, robots, 3)
		f.submit(t, tasks/2)
		f.submit(t, tasks/2)
		var mu sync.Mutex
		got := map[int]int{}
		var wg sync.WaitGroup
		errs := make(chan error, robots)
		for r := range robots {
			wg.Go(func() {
				for {
					c, err := f.q.ClaimTask(context.Background(), f.robots[r].ID)
					if err != nil {
						errs <- err
						return
					}
					if c == nil {
						return
					}
					mu.Lock()
					got[c.Task.ID]++
					mu.Unlock()
					if _, err := f.q.Report(context.Background(), f.robots[r].ID, c.Task.ID, c.Attempt.Number, dispatch.Result{Success: true}); err != nil {
						errs <- err
						return
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		if len(got) != tasks {
			t.Fatalf("%d tasks done, want %d", len(got), tasks)
		}
		for id, n := range got {
			if n != 1 {
				t.Fatalf("task %d dispatched %d times", id, n)
			}
		}
		if n := db.Task.Query().Where(task.StateEQ(task.StateSucceeded)).CountX(sys()); n != tasks {
			t.Fatalf("%d succeeded in the database, want %d", n, tasks)
		}
	})
}

// Only robots of the pool that owns the process get its tasks.
func TestPoolIsolation(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db, 1, 3)
		other := db.Pool.Create().SetName("other").SetProvider("local").SetMax(1).SaveX(sys())
		stranger := db.Robot.Create().SetName("stranger").SetPoolID(other.ID).SaveX(sys())
		f.submit(t, 3)
		if c, err := f.q.ClaimTask(context.Background(), stranger.ID); err != nil || c != nil {
			t.Fatalf("a robot of another pool claimed %v (%v)", c, err)
		}
		if c := f.claim(t, 0); c == nil {
			t.Fatal("the pool's own robot got nothing")
		}
	})
}

// The seed's promise on the real queue: with a backlog in service, a new
// customer's batch is served at the next poll; under oldest_served the
// batches in service then take turns by their last service, and so they
// do under fair_share when, as here, no batch holds a robot at a poll.
func TestRestaurantOrderOnTheQueue(t *testing.T) {
	for _, fair := range []pool.Fairness{pool.FairnessFairShare, pool.FairnessWeighted, pool.FairnessOldestServed} {
		t.Run(string(fair), func(t *testing.T) {
			storetest.Each(t, func(t *testing.T, db *store.DB) {
				f := newFixture(t, db, 1, 3)
				db.Pool.UpdateOneID(f.pool.ID).SetFairness(fair).ExecX(sys())
				ctx := context.Background()
				serve := func() int {
					t.Helper()
					f.clock.Add(time.Second)
					c := f.claim(t, 0)
					if c == nil {
						t.Fatal("nothing claimed")
					}
					if _, err := f.q.Report(ctx, f.robots[0].ID, c.Task.ID, c.Attempt.Number, dispatch.Result{Success: true}); err != nil {
						t.Fatal(err)
					}
					return c.Task.BatchID
				}
				whale := f.submit(t, 500)
				for range 5 {
					if b := serve(); b != whale.ID {
						t.Fatalf("served batch %d, only the whale exists", b)
					}
				}
				f.clock.Add(time.Second)
				first := f.submit(t, 3)
				f.clock.Add(time.Second)
				second := f.submit(t, 3)
				// Bottom of A first, then the next of A.
				if b := serve(); b != first.ID {
					t.Fatalf("served batch %d, want the oldest new batch %d", b, first.ID)
				}
				if b := serve(); b != second.ID {
					t.Fatalf("served batch %d, want the next new batch %d", b, second.ID)
				}
				if fair != pool.FairnessWeighted {
					// B by last service: whale (served longest ago), first, second.
					for i, want := range []int{whale.ID, first.ID, second.ID, whale.ID} {
						if b := serve(); b != want {
							t.Fatalf("B turn %d: served batch %d, want %d", i, b, want)
						}
					}
				}
			})
		})
	}
}

// Two daemons' sweepers on one database, each among its daemon's leader
// services: only the lease holder sweeps.
func TestSweeperLeader(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db, 1, 3)
		f.submit(t, 1)
		f.claim(t, 0)
		f.clock.Add(2 * time.Minute)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var mu sync.Mutex
		sweeps := map[string]int{}
		// Neither daemon leaves (and resigns) before both have campaigned
		// all their rounds and the leader has swept, so the rounds
		// overlap: a daemon that finished and resigned would rightly hand
		// the lease to the other, which is a handover, not two leaders.
		var finished sync.WaitGroup
		finished.Add(2)
		run := func(name string, q *dispatch.Queue) {
			e, err := lease.New(db.Client, "rpacloud.leader", name, lease.Options{TTL: time.Minute, Now: f.clock.Now})
			if err != nil {
				finished.Done()
				t.Error(err)
				return
			}
			swept := make(chan struct{})
			sweeper := lease.Service{Name: "sweeper", Run: func(ctx context.Context, _ int64) {
				rounds := 0
				q.RunSweeper(ctx, dispatch.SweeperOptions{Tick: func(ctx context.Context, _ time.Duration) bool {
					rounds++
					switch rounds {
					case 1:
						mu.Lock()
						sweeps[name]++
						mu.Unlock()
						return true
					case 2:
						close(swept)
					}
					<-ctx.Done()
					return false
				}})
			}}
			n := 0
			lease.NewGroup(lease.GroupOptions{Elector: e, Logger: slog.New(slog.DiscardHandler), Tick: func(ctx context.Context, _ time.Duration) bool {
				n++
				if n > 3 {
					if e.Leading() {
						<-swept
					}
					finished.Done()
					finished.Wait()
					return false
				}
				return ctx.Err() == nil
			}}, sweeper).Run(ctx)
		}
		var wg sync.WaitGroup
		q2 := dispatch.New(db.Client, dispatch.Options{Now: f.clock.Now, Seed: 2})
		wg.Go(func() { run("a", f.q) })
		wg.Go(func() { run("b", q2) })
		wg.Wait()
		if len(sweeps) != 1 {
			t.Fatalf("sweeping daemons: %v, want exactly one", sweeps)
		}
		if tk := db.Task.Query().OnlyX(sys()); tk.State != task.StatePending || tk.Timeouts != 1 {
			t.Fatalf("task after the leader's sweeps: %s, %d time-outs", tk.State, tk.Timeouts)
		}
	})
}

// server.limits.result_bytes reaches the queue: an output over the
// configured limit is refused (the attempt fails), a message over it is
// shortened to it.
func TestResultLimitSetting(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db, 1, 2)
		f.q = dispatch.New(db.Client, dispatch.Options{Bus: f.bus, Now: f.clock.Now, Seed: 42, MaxResultBytes: 2048})
		ctx := context.Background()
		f.submit(t, 1)
		c := f.claim(t, 0)
		out := json.RawMessage(`{"blob":"` + strings.Repeat("x", 3000) + `"}`)
		if _, err := f.q.Report(ctx, f.robots[0].ID, c.Task.ID, c.Attempt.Number, dispatch.Result{Success: true, Output: out}); !errors.Is(err, dispatch.ErrResultRefused) ||
			!strings.Contains(err.Error(), "exceeds the limit of 2048 bytes") {
			t.Fatalf("output over the configured limit: %v", err)
		}
		c = f.claim(t, 0)
		tk, err := f.q.Report(ctx, f.robots[0].ID, c.Task.ID, c.Attempt.Number, dispatch.Result{Class: robotwire.ErrorExecution, Message: strings.Repeat("m", 5000)})
		if err != nil || len(tk.ErrorMessage) > 2048 || !strings.Contains(tk.ErrorMessage, "truncated") {
			t.Fatalf("long message: %d bytes, %v", len(tk.ErrorMessage), err)
		}
	})
}
