package robotapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/rpacloud/rpacloud/core/config"
	"github.com/rpacloud/rpacloud/core/credentials"
	"github.com/rpacloud/rpacloud/core/dispatch"
	"github.com/rpacloud/rpacloud/core/events"
	"github.com/rpacloud/rpacloud/core/robotwire"
	"github.com/rpacloud/rpacloud/core/textlimit"
	"github.com/rpacloud/rpacloud/ent"
	"github.com/rpacloud/rpacloud/ent/privacy"
)

// Service answers robots. Every method takes the id of the robot the
// caller authenticated as; authorisation beyond "is a robot" (a spec only
// for the process's pool) is decided here.
type Service struct {
	Client *ent.Client
	Queue  *dispatch.Queue
	Bus    *events.Bus
	// Bindings and Vault grant a claim's credentials. Bindings nil:
	// credential features are off and claims carry no grant; Vault nil
	// with bindings: a process that binds credentials fails its attempts,
	// naming them.
	Bindings *credentials.Bindings
	Vault    *credentials.Service
	// Config is where process specs are built from, read at each request
	// so that a reload reaches the robots; nil: none is served.
	Config config.Live
	// Retired serves the specs of processes a reload removed, so that the
	// tasks their draining pool had accepted still run; nil: none.
	Retired func(name string) (spec *robotwire.ProcessSpec, pool string, found bool)
	// StopBackstop is how often AwaitStop reads the database in case the
	// task.stop_requested event was missed; <= 0: DefaultStopBackstop.
	StopBackstop time.Duration
}

// DefaultStopBackstop is AwaitStop's database check interval. Every busy
// robot holds an AwaitStop open, so this is a read per robot per
// interval (500 robots: 100 reads/s at 5 s, not 500 at 1 s); the event
// wakes it at once in the ordinary case, so the interval only bounds how
// late a stop whose event was lost is noticed.
const DefaultStopBackstop = 5 * time.Second

// ErrRevoked ends the open claim of a robot whose identity was revoked
// while it waited; its next request is refused by authentication.
var ErrRevoked = fmt.Errorf("%w: the robot's identity was revoked", dispatch.ErrRobotUnavailable)

// MaxPollWait bounds how long one claim waits for work.
const MaxPollWait = 30 * time.Second

// wakeTypes are the events after which a waiting robot should try again.
// A revoked robot is woken too: its next claim finds it released and is
// refused, so a revocation ends its long poll at once.
var wakeTypes = map[events.Type]bool{events.BatchSubmitted: true, events.TaskRetrying: true, events.TaskDelayed: true,
	events.RobotRevoked: true, events.BatchRequeued: true, events.PoolResumed: true, events.ProcessResumed: true}

// Register records a robot's hostname and agent version at start-up and
// returns the robot and the name of its pool.
func (s *Service) Register(ctx context.Context, robotID int, hostname, agentVersion string) (*ent.Robot, string, error) {
	sys := privacy.DecisionContext(ctx, privacy.Allow)
	rb, err := s.Client.Robot.UpdateOneID(robotID).SetHostname(textlimit.Cut(hostname, 255)).
		SetAgentVersion(textlimit.Cut(agentVersion, 64)).SetLastSeenAt(time.Now().UTC()).Save(sys)
	if err != nil {
		return nil, "", fmt.Errorf("registerRobot: %w", err)
	}
	pl, err := s.Client.Pool.Get(sys, rb.PoolID)
	if err != nil {
		return nil, "", fmt.Errorf("registerRobot: pool: %w", err)
	}
	return rb, pl.Name, nil
}

// Claim takes the next task of the robot's pool, waiting up to wait
// (bounded by MaxPollWait) for one; nil when none came. Errors of the
// queue (dispatch.ErrRobotUnavailable, ...) are returned as they are.
func (s *Service) Claim(ctx context.Context, robotID int, wait time.Duration) (*robotwire.Claim, error) {
	wait = min(max(wait, 0), MaxPollWait)
	var wake <-chan *ent.Event
	deadline := time.Now().Add(wait)
	for {
		c, err := s.Queue.ClaimTask(ctx, robotID)
		if err != nil {
			return nil, err
		}
		if c != nil {
			claim := &robotwire.Claim{
				TaskID: c.Task.ID, Attempt: c.Attempt.Number, Deadline: c.Deadline,
				Process: c.Process.Name, Kind: string(c.Process.Kind), Runner: c.Process.Runner,
				MaxDurationSeconds: c.Process.MaxDurationSeconds, Input: json.RawMessage(c.Task.Input),
			}
			ok, err := s.grant(ctx, robotID, c, claim, deadline)
			if !ok {
				return nil, err
			}
			return claim, nil
		}
		left := time.Until(deadline)
		if left <= 0 {
			return nil, nil
		}
		if wake == nil {
			// Long poll: wake up when work may have arrived in this
			// robot's pool, and at least every second in case the
			// event came from another daemon.
			sctx, cancel := context.WithCancel(ctx)
			defer cancel()
			rb, err := s.Client.Robot.Get(privacy.DecisionContext(ctx, privacy.Allow), robotID)
			if err != nil {
				return nil, fmt.Errorf("claimTask: robot: %w", err)
			}
			wake = s.Bus.Subscribe(sctx, events.Filter{PoolID: &rb.PoolID, Types: wakeTypes})
		}
		t := time.NewTimer(min(left, time.Second))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case ev := <-wake:
			if ev != nil && events.Is(ev, events.RobotRevoked) && ev.RobotID != nil && *ev.RobotID == robotID {
				t.Stop()
				return nil, ErrRevoked
			}
		case <-t.C:
		}
		t.Stop()
	}
}

// grant gives a claim the grant of its process's credentials. When they
// cannot be granted (Vault sealed, unreachable, denying, a credential
// missing, or Vault not configured), the attempt fails at once as an
// execution error naming the credential, so the task is retried per its
// process's policy, and the robot gets no task from this poll: it waits
// out the poll instead (until pollEnd), so a Vault outage cannot burn
// through the queue at the speed of the robots' polling. ok is false when
// there is no claim to hand out; err is then the request's own failure,
// if any.
func (s *Service) grant(ctx context.Context, robotID int, c *dispatch.Claim, claim *robotwire.Claim, pollEnd time.Time) (ok bool, err error) {
	if s.Bindings == nil {
		return true, nil
	}
	binds, err := s.Bindings.ForProcess(ctx, c.Process.ID)
	var g *robotwire.Grant
	if err == nil && len(binds) > 0 {
		g, err = s.Vault.Grant(ctx, credentials.GrantRequest{
			TaskID: c.Task.ID, Attempt: c.Attempt.Number, Deadline: c.Deadline, Bindings: binds,
		})
	}
	if err == nil {
		claim.Credentials = g
		return true, nil
	}
	msg := err.Error()
	if _, rerr := s.Queue.Report(ctx, robotID, c.Task.ID, c.Attempt.Number, dispatch.Result{Class: robotwire.ErrorExecution, Message: msg}); rerr != nil {
		return false, fmt.Errorf("claimTask: fail attempt after %s: %w", msg, rerr)
	}
	t := time.NewTimer(max(time.Until(pollEnd), 0))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false, ctx.Err()
	case <-t.C:
	}
	return false, nil
}

// Heartbeat keeps a running attempt alive and returns its new deadline.
func (s *Service) Heartbeat(ctx context.Context, robotID, taskID, attempt int) (time.Time, error) {
	return s.Queue.Heartbeat(ctx, robotID, taskID, attempt)
}

// MaxStopWait bounds how long one awaitStop waits.
const MaxStopWait = 60 * time.Second

// AwaitStop answers true as soon as an operator asks robot robotID to stop
// its running attempt (task stop, batch cancel), or false after wait
// (bounded by MaxStopWait). The agent holds it open while it runs a task,
// so it learns of a stop within moments rather than at its next heartbeat.
// It wakes on the task.stop_requested event (relayed between daemons on
// PostgreSQL) and checks the database every StopBackstop (5 s) as well,
// in case the event was missed. An attempt that is no longer running answers
// dispatch.ErrStaleAttempt.
func (s *Service) AwaitStop(ctx context.Context, robotID, taskID, attempt int, wait time.Duration) (bool, error) {
	wait = min(max(wait, 0), MaxStopWait)
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Subscribed before the first check, so a stop requested in between
	// is not missed.
	var wake <-chan *ent.Event
	if s.Bus != nil {
		wake = s.Bus.Subscribe(sctx, events.Filter{TaskID: &taskID, Types: map[events.Type]bool{events.TaskStopRequested: true}})
	}
	every := s.StopBackstop
	if every <= 0 {
		every = DefaultStopBackstop
	}
	deadline := time.Now().Add(wait)
	for {
		stop, err := s.Queue.StopRequested(ctx, robotID, taskID, attempt)
		if err != nil || stop {
			return stop, err
		}
		left := time.Until(deadline)
		if left <= 0 {
			return false, nil
		}
		t := time.NewTimer(min(left, every))
		select {
		case <-ctx.Done():
			t.Stop()
			return false, ctx.Err()
		case <-wake:
		case <-t.C:
		}
		t.Stop()
	}
}

// Report records an attempt's outcome as the robot sent it. A failure
// without a class goes to the queue like any other result it cannot
// record: the attempt fails with the reason and the robot is refused
// (dispatch.ErrResultRefused), instead of the attempt waiting for its
// deadline.
func (s *Service) Report(ctx context.Context, robotID int, r robotwire.Report) error {
	res := dispatch.Result{Success: r.Success, Message: r.Message}
	if len(r.Output) > 0 && string(r.Output) != "null" {
		res.Output = r.Output
	}
	if !r.Success {
		res.Class = r.ErrorClass
	}
	_, err := s.Queue.Report(ctx, robotID, r.TaskID, r.Attempt, res)
	return err
}

// ErrNoSpec answers a spec request for a process that is not a crawler or
// vendor process of the robot's pool. Unknown processes and those of
// other pools answer alike, so a robot learns nothing about other pools.
var ErrNoSpec = errors.New("no crawler or vendor process of that name runs in this robot's pool")

// ProcessSpec returns what the robot needs to run a crawler or vendor
// process of its own pool; ErrNoSpec for any other.
func (s *Service) ProcessSpec(ctx context.Context, robotID int, name string) (*robotwire.ProcessSpec, error) {
	var (
		spec  *robotwire.ProcessSpec
		pool  string
		found bool
	)
	if s.Config != nil && s.Config.Current() != nil {
		spec, pool, found = BuildSpec(s.Config.Current(), name)
	}
	if !found && s.Retired != nil {
		spec, pool, found = s.Retired(name)
	}
	if !found {
		return nil, ErrNoSpec
	}
	sys := privacy.DecisionContext(ctx, privacy.Allow)
	rb, err := s.Client.Robot.Get(sys, robotID)
	if err != nil {
		return nil, fmt.Errorf("processSpec: robot: %w", err)
	}
	pl, err := rb.QueryPool().Only(sys)
	if err != nil {
		return nil, fmt.Errorf("processSpec: pool: %w", err)
	}
	if pl.Name != pool {
		return nil, ErrNoSpec
	}
	return spec, nil
}
