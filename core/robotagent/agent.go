// Package robotagent is the agent that runs on a robot's VM (`rpacloud
// robot`): it polls the daemon for work of its pool, runs each task — a
// builtin runner, or a crawler or vendor plugin — keeps the attempt alive
// with heartbeats, and reports the result. While a task runs it holds the
// awaitStop long poll open: an operator's stop (or a heartbeat answering
// STOP_REQUESTED) cancels the run's context with ErrStopRequested, which
// runners and plugins obey (a vendor job gets the vendor's stop call). The daemon never pushes work; a
// robot that stops polling simply stops getting tasks.
//
// It speaks the robot protocol of core/robotwire to the daemon's side in
// core/robotapi, over GraphQL. Given several daemons sharing one database
// (gqlclient.NewFailover), it talks to one at a time and moves to the next
// when that one cannot be reached; every loop below already retries with a
// back-off, so a move costs a task in flight nothing: its heartbeats, stop
// poll and report simply reach the next daemon. An existing machine first exchanges a join
// token for its robot identity (identity.go: Enrol, then SaveIdentity and,
// at every later start, LoadIdentity from its state directory). It links no storage (ent), no HCL and no
// event bus: a robot carries the agent, not the server (core/arrows'
// link rules keep it so).
package robotagent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/rpacloud/rpacloud/core/credentials/secret"
	"github.com/rpacloud/rpacloud/core/gqlclient"
	"github.com/rpacloud/rpacloud/core/retry"
	"github.com/rpacloud/rpacloud/core/robotwire"
	"github.com/rpacloud/rpacloud/core/textlimit"
)

// Version is reported to the daemon at registration.
var Version = "dev"

// Runner executes one task and returns its JSON output. A returned error
// wrapped with ErrData is a data error (never retried); any other error is
// an execution error.
type Runner interface {
	Run(ctx context.Context, input json.RawMessage) (json.RawMessage, error)
}

// ErrData marks a failure caused by the task's input.
var ErrData = errors.New("data error")

// ErrStopRequested is the cause (context.Cause) of a run's context when an
// operator stopped the task (task stop, batch cancel): runners and plugins
// see their context cancelled with it.
var ErrStopRequested = errors.New("stopped at the operator's request")

// errTakenBack is the cause of a run's context when the daemon no longer
// counts the attempt as running (it timed out, or was reported).
var errTakenBack = errors.New("the attempt was taken back by the daemon")

// Agent is one robot.
type Agent struct {
	Client  *gqlclient.Client
	Log     *slog.Logger
	Runners map[string]Runner // by runner name (builtin task types)
	// Plugins runs crawler and vendor processes; nil: this robot has none.
	Plugins *Plugins
	// PollWait is how long one claim waits on the server for work.
	PollWait time.Duration
	// ShutdownGrace is how long a running task may go on after the agent
	// was asked to stop, so a SIGTERM does not throw work away.
	ShutdownGrace time.Duration

	name string
	pool string
}

const (
	registerQ = `mutation($h:String!,$v:String!){registerRobot(hostname:$h,agentVersion:$v){pool robot{name}}}`
	claimQ    = `mutation($w:Int){claimTask(wait:$w){taskID attempt deadline process kind runner maxDurationSeconds input credentials{vaultAddress expiresAt items{name path wrappingToken}}}}`
	beatQ     = `mutation($t:ID!,$a:Int!){heartbeat(taskID:$t,attempt:$a)}`
	reportQ   = `mutation($in:ReportResultInput!){reportResult(input:$in)}`
	awaitQ    = `mutation($t:ID!,$a:Int!,$w:Int){awaitStop(taskID:$t,attempt:$a,wait:$w)}`
)

// stopWait is how long one awaitStop long poll is held open.
const stopWait = 30 * time.Second

// Run polls and works until ctx is cancelled.
func (a *Agent) Run(ctx context.Context) error {
	if a.Log == nil {
		a.Log = slog.Default()
	}
	if a.PollWait <= 0 {
		a.PollWait = 20 * time.Second
	}
	if a.ShutdownGrace <= 0 {
		a.ShutdownGrace = 30 * time.Second
	}
	if err := a.register(ctx); err != nil {
		return err
	}
	a.Log.Info("robot ready", "robot", a.name, "pool", a.pool, "server", a.Client.Server())
	backoff := retry.Backoff(500*time.Millisecond, 15*time.Second)
	for ctx.Err() == nil {
		var out struct {
			ClaimTask *robotwire.Claim `json:"claimTask"`
		}
		err := a.Client.Do(ctx, claimQ, map[string]any{"w": int(a.PollWait / time.Second)}, &out)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			if errors.Is(err, gqlclient.ErrUnauthorized) {
				return fmt.Errorf("robot %s: token refused: %w", a.name, err)
			}
			d := backoff.NextBackOff()
			a.Log.Warn("claim failed; retrying", "err", err, "in", d)
			retry.Sleep(ctx, d)
			continue
		}
		backoff.Reset()
		if out.ClaimTask == nil {
			continue
		}
		a.work(ctx, out.ClaimTask)
	}
	a.Log.Info("robot stopped", "robot", a.name)
	return nil
}

func (a *Agent) register(ctx context.Context) error {
	host, _ := os.Hostname()
	backoff := retry.Backoff(250*time.Millisecond, 10*time.Second)
	for {
		var out struct {
			RegisterRobot struct {
				Pool  string `json:"pool"`
				Robot struct {
					Name string `json:"name"`
				} `json:"robot"`
			} `json:"registerRobot"`
		}
		err := a.Client.Do(ctx, registerQ, map[string]any{"h": host, "v": Version}, &out)
		if err == nil {
			a.name, a.pool = out.RegisterRobot.Robot.Name, out.RegisterRobot.Pool
			return nil
		}
		if errors.Is(err, gqlclient.ErrUnauthorized) {
			return fmt.Errorf("register robot: token refused: %w", err)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		d := backoff.NextBackOff()
		a.Log.Warn("cannot reach the daemon yet", "next_server", a.Client.Server(), "err", err, "retry_in", d)
		retry.Sleep(ctx, d)
	}
}

// work runs one claim to its report. The task keeps running for up to
// ShutdownGrace after ctx is cancelled, and its result is still reported.
func (a *Agent) work(ctx context.Context, c *robotwire.Claim) {
	log := a.Log.With("task", c.TaskID, "attempt", c.Attempt, "process", c.Process)
	runCtx, cancelRunCause := context.WithCancelCause(context.WithoutCancel(ctx))
	cancelRun := func() { cancelRunCause(nil) }
	defer cancelRun()
	stopGrace := context.AfterFunc(ctx, func() {
		t := time.AfterFunc(a.ShutdownGrace, cancelRun)
		context.AfterFunc(runCtx, func() { t.Stop() })
	})
	defer stopGrace()

	// An operator's stop arrives through the awaitStop long poll (at once)
	// or as the heartbeat's STOP_REQUESTED answer (the fallback, e.g. when
	// the long poll cannot be held): either cancels the run with
	// ErrStopRequested, so builtin runners and crawler plugins see their
	// context end and vendor jobs get the vendor's stop call.
	stopDone := make(chan struct{})
	go func() {
		defer close(stopDone)
		a.awaitStop(runCtx, log, c, cancelRunCause)
	}()

	// Heartbeats at a third of the allowed duration keep the attempt alive
	// through two lost beats.
	interval := max(time.Duration(c.MaxDurationSeconds)*time.Second/3, time.Second)
	beatDone := make(chan struct{})
	go func() {
		defer close(beatDone)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-runCtx.Done():
				return
			case <-t.C:
				err := a.Client.Do(runCtx, beatQ, map[string]any{"t": c.TaskID, "a": c.Attempt}, nil)
				var gerr gqlclient.Errors
				if errors.As(err, &gerr) && gerr.HasCode("STALE_ATTEMPT") {
					log.Warn("attempt was taken back by the daemon; stopping it", "err", err)
					cancelRunCause(errTakenBack)
					return
				}
				if errors.As(err, &gerr) && gerr.HasCode("STOP_REQUESTED") {
					log.Info("an operator stopped the task; stopping the run")
					cancelRunCause(ErrStopRequested)
					return
				}
				if err != nil && runCtx.Err() == nil {
					log.Warn("heartbeat failed", "err", err)
				}
			}
		}
	}()

	out, err := a.run(runCtx, c)
	stopped := errors.Is(context.Cause(runCtx), ErrStopRequested)
	cancelRun()
	<-beatDone
	<-stopDone
	in := robotwire.Report{TaskID: c.TaskID, Attempt: c.Attempt, Success: err == nil}
	switch {
	case err != nil && stopped:
		// The daemon knows the attempt was asked to stop and ends it
		// stopped whatever the class; the message says how the run ended.
		in.ErrorClass, in.Message = robotwire.ErrorExecution, err.Error()
		log.Info("task stopped at the operator's request", "err", err)
	case err == nil:
		in.Output = out
		log.Info("task succeeded")
	case errors.Is(err, ErrData):
		in.ErrorClass, in.Message = robotwire.ErrorData, err.Error()
		log.Info("task failed: data error", "err", err)
	default:
		in.ErrorClass, in.Message = robotwire.ErrorExecution, err.Error()
		log.Info("task failed: execution error", "err", err)
	}
	a.report(ctx, log, c, in)
}

// awaitStop holds the awaitStop long poll open while the run goes on and
// cancels the run with ErrStopRequested once the daemon answers true. A
// daemon that does not know awaitStop (an older version) answers with a
// validation error: the agent then relies on heartbeats alone. Any other
// failure (a transport error, a daemon's INTERNAL error) is retried with
// a backoff, and a daemon answering false at once is asked again no more
// often than every minStopPoll, never in a tight loop.
func (a *Agent) awaitStop(ctx context.Context, log *slog.Logger, c *robotwire.Claim, cancel context.CancelCauseFunc) {
	backoff := retry.Backoff(500*time.Millisecond, 15*time.Second)
	for ctx.Err() == nil {
		var out struct {
			AwaitStop bool `json:"awaitStop"`
		}
		start := time.Now()
		err := a.Client.Do(ctx, awaitQ, map[string]any{"t": c.TaskID, "a": c.Attempt, "w": int(stopWait / time.Second)}, &out)
		var gerr gqlclient.Errors
		switch {
		case ctx.Err() != nil:
			return
		case err == nil && out.AwaitStop:
			log.Info("an operator stopped the task; stopping the run")
			cancel(ErrStopRequested)
			return
		case err == nil:
			backoff.Reset()
			if d := minStopPoll - time.Since(start); d > 0 {
				retry.Sleep(ctx, d)
			}
		case errors.As(err, &gerr) && gerr.HasCode("STALE_ATTEMPT"):
			log.Warn("attempt was taken back by the daemon; stopping it", "err", err)
			cancel(errTakenBack)
			return
		case errors.As(err, &gerr) && (gerr.HasCode("GRAPHQL_VALIDATION_FAILED") || gerr.HasCode("GRAPHQL_PARSE_FAILED")):
			log.Warn("the daemon does not hold stop requests open; stops arrive with heartbeats", "err", err)
			return
		default:
			d := backoff.NextBackOff()
			log.Warn("waiting for a stop request failed; trying again", "err", err, "in", d)
			retry.Sleep(ctx, d)
		}
	}
}

// minStopPoll is the least time between two awaitStop calls that
// answered, so a daemon that answers false without waiting is not asked
// in a tight loop.
const minStopPoll = 2 * time.Second

// report delivers a result, retrying transport failures until the
// attempt's deadline; the daemon refuses duplicates, so retrying is safe.
//
// A result the daemon refuses (RESULT_REFUSED: too big, not JSON) has
// already failed the attempt on the daemon's side with the reason: the
// agent logs it as an error and moves on, it never resends it. A request
// refused before it reached the queue (an HTTP 4xx such as 413 from a
// proxy's body limit) would leave the attempt running until its deadline,
// so the agent then reports the attempt as an execution error naming the
// refusal, once.
func (a *Agent) report(ctx context.Context, log *slog.Logger, c *robotwire.Claim, in robotwire.Report) {
	rctx, cancel := context.WithDeadline(context.WithoutCancel(ctx), c.Deadline.Add(time.Minute))
	defer cancel()
	backoff := retry.Backoff(200*time.Millisecond, 5*time.Second)
	fellBack := false
	for {
		err := a.Client.Do(rctx, reportQ, map[string]any{"in": in}, nil)
		if err == nil {
			return
		}
		var gerr gqlclient.Errors
		var serr *gqlclient.StatusError
		switch {
		case errors.As(err, &gerr) && gerr.HasCode("RESULT_REFUSED"):
			log.Error("result refused by the daemon; the attempt failed as an execution error", "err", err)
			return
		case errors.As(err, &gerr) && gerr.HasCode("STALE_ATTEMPT"):
			log.Warn("result refused: the attempt is no longer ours (timed out or already reported)", "err", err)
			return
		case errors.As(err, &gerr):
			// The daemon answered: retrying would get the same answer.
			log.Error("result refused", "err", err)
			return
		case errors.As(err, &serr) && refusedRequest(serr.Status):
			if fellBack {
				log.Error("failure report refused too; the attempt ends at its deadline", "err", err)
				return
			}
			fellBack = true
			log.Error("result not accepted by the daemon; reporting the attempt as failed", "err", err)
			in = robotwire.Report{TaskID: c.TaskID, Attempt: c.Attempt, ErrorClass: robotwire.ErrorExecution,
				Message: textlimit.Cut(fmt.Sprintf("the daemon did not accept the result: %v", err), 4096)}
			continue
		}
		if rctx.Err() != nil {
			log.Error("result not delivered before the deadline", "err", err)
			return
		}
		d := backoff.NextBackOff()
		log.Warn("report failed; retrying", "err", err, "in", d)
		retry.Sleep(rctx, d)
	}
}

// refusedRequest: an HTTP status saying the request itself will never be
// accepted as sent (a client error other than a time-out or rate limit).
func refusedRequest(status int) bool {
	return status >= 400 && status < 500 && status != http.StatusRequestTimeout && status != http.StatusTooManyRequests
}

func (a *Agent) run(ctx context.Context, c *robotwire.Claim) (json.RawMessage, error) {
	// Credentials go from Vault into memory and reach the runner through
	// ctx only; a failure is an execution error naming the credential.
	ctx, err := secret.Deliver(ctx, c.Credentials)
	if err != nil {
		return nil, fmt.Errorf("process %q: %w", c.Process, err)
	}
	out, err := a.runWith(ctx, c)
	// Whatever the runner (a third party's plugin included) returns is
	// scrubbed of the attempt's secret values here, on the robot, before
	// it reaches the daemon, its database, the API or a log.
	if secrets := secret.SecretsFrom(ctx); len(secrets) > 0 {
		if len(out) > 0 {
			out = json.RawMessage(secrets.Scrub(string(out)))
		}
		if err != nil {
			err = &scrubbedError{msg: secrets.Scrub(err.Error()), cause: err}
		}
	}
	return out, err
}

// scrubbedError keeps an error's class (errors.Is) while its text has no
// secret value.
type scrubbedError struct {
	msg   string
	cause error
}

func (e *scrubbedError) Error() string { return e.msg }
func (e *scrubbedError) Unwrap() error { return e.cause }

func (a *Agent) runWith(ctx context.Context, c *robotwire.Claim) (json.RawMessage, error) {
	if (c.Kind == "crawler" || c.Kind == "vendor") && a.Plugins != nil {
		dl, cancel := context.WithDeadline(ctx, c.Deadline)
		defer cancel()
		return a.Plugins.Run(dl, c) // plugins.go
	}
	if c.Kind != "builtin" {
		return nil, fmt.Errorf("process %q: %s processes need the %s plugin, which this robot does not have", c.Process, c.Kind, c.Runner)
	}
	r, ok := a.Runners[c.Runner]
	if !ok {
		return nil, fmt.Errorf("process %q: unknown builtin task type %q", c.Process, c.Runner)
	}
	dl, cancel := context.WithDeadline(ctx, c.Deadline)
	defer cancel()
	return r.Run(dl, c.Input)
}
