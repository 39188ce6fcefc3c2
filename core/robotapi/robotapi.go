package robotapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/rpacloud/rpacloud/core/config"
	"github.com/rpacloud/rpacloud/core/credentials"
	"github.com/rpacloud/rpacloud/core/dispatch"
	"github.com/rpacloud/rpacloud/core/events"
	"github.com/rpacloud/rpacloud/core/robotwire"
	"github.com/rpacloud/rpacloud/core/store"
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
	// StopBackstop is how often the open AwaitStop calls are checked in
	// the database (one statement for all of them) in case the
	// task.stop_requested event was missed; <= 0: DefaultStopBackstop.
	StopBackstop time.Duration
	// Backstop is how often the pools with parked robots are checked for
	// work in case an event was missed; <= 0: DefaultBackstop.
	Backstop time.Duration
	// MaxWokenPerPool bounds the parked robots of one pool woken and
	// claiming at once (parking.Lot.MaxInFlight); <= 0:
	// DefaultMaxWokenPerPool.
	MaxWokenPerPool int
	// Log receives the backstops' failures; nil: slog.Default().
	Log *slog.Logger

	lot lotState
}

// DefaultMaxWokenPerPool is the PostgreSQL store's connection pool: more
// claims at once than the database serves at once only wait for a
// connection.
const DefaultMaxWokenPerPool = store.PostgresMaxConns

// DefaultStopBackstop is AwaitStop's database check interval. Every busy
// robot holds an AwaitStop open; all of a daemon's are checked together,
// one statement per 500 attempts per interval. The event wakes a call at
// once in the ordinary case, so the interval only bounds how late a stop
// whose event was lost is noticed.
const DefaultStopBackstop = 5 * time.Second

// ErrRevoked ends the open claim of a robot whose identity was revoked
// while it waited; its next request is refused by authentication.
var ErrRevoked = fmt.Errorf("%w: the robot's identity was revoked", dispatch.ErrRobotUnavailable)

// MaxPollWait bounds how long one claim waits for work.
const MaxPollWait = 30 * time.Second

// wakeTypes are the events after which a parked robot of the event's pool
// should try again. A revoked robot's parked poll ends at once with
// ErrRevoked.
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
//
// A robot that finds nothing parks in memory in its pool's FIFO
// (core/robotapi/parking) and claims again only when woken: by an event
// saying work may have arrived in its pool (one robot per event, then as
// many as the claims' backlog says), or by the backstop. A robot whose
// last claim found nothing (within MaxPollWait) parks at once, without a
// database statement (its check-in is kept in memory,
// dispatch.Queue.Seen), as of the epoch that claim saw: if work arrived
// since and no robot is claiming it, it is woken at once (parking.Lot.Park);
// otherwise the claims in flight wake it when their backlog says so. A
// poll that does not wait always claims.
func (s *Service) Claim(ctx context.Context, robotID int, wait time.Duration) (*robotwire.Claim, error) {
	wait = min(max(wait, 0), MaxPollWait)
	deadline := time.Now().Add(wait)
	s.hold()
	defer s.release()
	l := &s.lot
	var w *waiter // this poll's place in the lot, while it has one
	defer func() {
		if w == nil {
			return
		}
		l.mu.Lock()
		defer l.mu.Unlock()
		if l.waiters[robotID] == w {
			delete(l.waiters, robotID)
			l.deliver(l.lot.Leave(robotID))
		}
	}()
	poolID, err := s.poolOf(ctx, robotID)
	if err != nil {
		return nil, fmt.Errorf("claimTask: robot: %w", err)
	}
	l.mu.Lock()
	// Only a poll that waits parks without a claim: the lot learns of an
	// event a moment after it is published, and a poll that parks then is
	// woken by it, while one that does not wait would answer null.
	start := l.lot.Epoch(poolID)
	markPool, markEpoch, skip := l.lot.LastEmpty(robotID, s.Queue.Now(), MaxPollWait)
	skip = skip && wait > 0 && markPool == poolID
	if skip {
		// Park as of the epoch its last claim saw: Park wakes it at once
		// if work arrived since and nobody is claiming it.
		start = markEpoch
	}
	l.mu.Unlock()
	if skip {
		s.Queue.Seen(robotID, s.Queue.Now())
		l.skipped.Add(1)
	}
	for {
		if !skip {
			res, err := s.Queue.Claim(ctx, robotID)
			l.dbClaims.Add(1)
			if err != nil {
				return nil, err
			}
			got := res.Claim != nil
			l.mu.Lock()
			l.deliver(l.lot.Done(robotID, poolID, start, res.Backlog, got, s.Queue.Now()))
			if got && w != nil {
				if l.waiters[robotID] == w {
					delete(l.waiters, robotID)
				}
				w = nil
			}
			l.mu.Unlock()
			if got {
				c := res.Claim
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
		}
		skip = false
		left := time.Until(deadline)
		if left <= 0 {
			return nil, nil
		}
		if w == nil {
			l.mu.Lock()
			now, displaced := l.lot.Park(robotID, poolID, start)
			if old := l.waiters[robotID]; displaced && old != nil {
				old.end(errDisplaced)
			}
			w = &waiter{ch: make(chan error, 1)}
			l.waiters[robotID] = w
			start = l.lot.Epoch(poolID)
			l.mu.Unlock()
			if now {
				continue
			}
		}
		t := time.NewTimer(left)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case err := <-w.ch:
			t.Stop()
			if err != nil {
				// Revoked or displaced: the lot has let go of it.
				w = nil
				if errors.Is(err, errDisplaced) {
					return nil, nil
				}
				return nil, err
			}
			l.mu.Lock()
			start = l.lot.Epoch(poolID)
			l.mu.Unlock()
		case <-t.C:
			return nil, nil
		}
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
// It reads the attempt once when it starts; then it is woken by the
// task.stop_requested event (relayed between daemons on PostgreSQL),
// which the service receives through one subscription for all open calls,
// and by the backstop: every StopBackstop (5 s) one statement per 500
// attempts checks all the attempts awaited on this daemon, in case the
// event was missed. A woken call reads its attempt again to answer. An
// attempt that is no longer running answers dispatch.ErrStaleAttempt.
func (s *Service) AwaitStop(ctx context.Context, robotID, taskID, attempt int, wait time.Duration) (bool, error) {
	wait = min(max(wait, 0), MaxStopWait)
	deadline := time.Now().Add(wait)
	// The call is a sign of life like a heartbeat: a long task whose
	// heartbeats are minutes apart still checks in at every awaitStop.
	s.Queue.Seen(robotID, s.Queue.Now())
	s.hold()
	defer s.release()
	l := &s.lot
	// Registered before the first check, so a stop requested in between
	// is not missed.
	sw := &stopWaiter{ch: make(chan struct{}, 1)}
	l.mu.Lock()
	if l.stops[taskID] == nil {
		l.stops[taskID] = make(map[*stopWaiter]struct{})
	}
	l.stops[taskID][sw] = struct{}{}
	l.mu.Unlock()
	defer func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		delete(l.stops[taskID], sw)
		if len(l.stops[taskID]) == 0 {
			delete(l.stops, taskID)
		}
	}()
	for {
		id, stop, err := s.Queue.StopCheck(ctx, robotID, taskID, attempt)
		if err != nil || stop {
			return stop, err
		}
		l.mu.Lock()
		sw.attempt = id
		l.mu.Unlock()
		left := time.Until(deadline)
		if left <= 0 {
			return false, nil
		}
		t := time.NewTimer(left)
		select {
		case <-ctx.Done():
			t.Stop()
			return false, ctx.Err()
		case <-sw.ch:
			t.Stop()
		case <-t.C:
			return false, nil
		}
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
