// Package graph serves the GraphQL API: the resolvers, the generated
// executor, and the HTTP handler with its transports and limits.
package graph

import (
	"context"
	"errors"
	"fmt"

	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/rpacloud/rpacloud/core/credentials"
	"github.com/rpacloud/rpacloud/core/delivery"
	"github.com/rpacloud/rpacloud/core/dispatch"
	"github.com/rpacloud/rpacloud/core/enrol"
	"github.com/rpacloud/rpacloud/core/events"
	"github.com/rpacloud/rpacloud/core/monitor"
	"github.com/rpacloud/rpacloud/core/robotapi"
	"github.com/rpacloud/rpacloud/core/scale"
	"github.com/rpacloud/rpacloud/core/trigger"
	"github.com/rpacloud/rpacloud/ent"
	"github.com/rpacloud/rpacloud/ent/schema/viewer"
)

// Resolver is the root of every resolver; it holds the daemon's services.
type Resolver struct {
	Client *ent.Client
	Queue  *dispatch.Queue
	Bus    *events.Bus
	// Providers are the provider blocks' plugins; nil in tests without a
	// fleet (every provider then reads as unhealthy).
	Providers *scale.Providers
	// Monitor serves anomalies, time series, saturation and the dashboard
	// (schema/monitoring.graphqls).
	Monitor *monitor.Monitor
	// Vault is the credentials service; nil when no Vault is configured
	// (credential features off). CredentialBindings is always set.
	Vault              *credentials.Service
	CredentialBindings *credentials.Bindings
	// Delivery serves the lifecycle, remote access, run schedule and
	// documents (schema/lifecycle.graphqls).
	Delivery *delivery.Service
	// Robots serves the robot protocol (registerRobot, claimTask,
	// processSpec, heartbeat, reportResult). nil: one is made from the
	// fields above, which serves no process specs.
	Robots *robotapi.Service
	// Config applies configuration files live (applyConfig); nil: the
	// mutation answers that this server does not.
	Config ConfigApplier
	// Enrol makes join tokens and revokes robots (schema/enrol.graphqls).
	// nil: one is made from the fields above.
	Enrol *enrol.Service
	// Triggers pauses, resumes and fires triggers and lists their next
	// runs (schema/trigger.graphqls); nil: no trigger is known.
	Triggers *trigger.Service
}

func (r *Resolver) enrol() *enrol.Service {
	if r.Enrol != nil {
		return r.Enrol
	}
	return &enrol.Service{Client: r.Client, Bus: r.Bus}
}

// enrolError turns a refusal of core/enrol into BAD_USER_INPUT with its
// message; other errors pass through to the error presenter.
func enrolError(err error) error {
	if errors.Is(err, enrol.ErrBadInput) || errors.Is(err, enrol.ErrRefused) || errors.Is(err, enrol.ErrConflict) {
		return coded(CodeBadInput, "%v", err)
	}
	return err
}

// robots is the robot protocol's room the robot resolvers call into.
func (r *Resolver) robots() *robotapi.Service {
	if r.Robots != nil {
		return r.Robots
	}
	return &robotapi.Service{Client: r.Client, Queue: r.Queue, Bus: r.Bus, Bindings: r.CredentialBindings, Vault: r.Vault}
}

// Page sizes: a connection without first/last gets DefaultPage items, and
// nobody gets more than MaxPage in one request.
const (
	DefaultPage = 50
	MaxPage     = 500
)

func pageArgs(first, last *int) (*int, *int, error) {
	for _, v := range []*int{first, last} {
		if v != nil && (*v < 0 || *v > MaxPage) {
			return nil, nil, gqlerror.Errorf("first/last must be between 0 and %d, got %d", MaxPage, *v)
		}
	}
	if first == nil && last == nil {
		n := DefaultPage
		first = &n
	}
	return first, last, nil
}

// Error codes in the extensions of GraphQL errors.
const (
	CodeUnauthenticated = "UNAUTHENTICATED"
	CodeForbidden       = "FORBIDDEN"
	CodeBadInput        = "BAD_USER_INPUT"
	CodeStale           = "STALE_ATTEMPT"
	// CodeResultRefused: the daemon could not record the result as sent; the
	// attempt has failed as an execution error with the reason, and the
	// robot must not send it again.
	CodeResultRefused = "RESULT_REFUSED"
	CodeNotFound      = "NOT_FOUND"
	// CodeStopRequested answers a heartbeat of an attempt an operator asked
	// to stop: stop the run and report; the deadline was not extended.
	CodeStopRequested = "STOP_REQUESTED"
	// CodeUnfinished: a batch-wide request (cancelBatch, retryBatch)
	// stopped part-way; what it did stays done, the same request again
	// finishes it.
	CodeUnfinished = "UNFINISHED"
)

func coded(code, format string, args ...any) *gqlerror.Error {
	e := gqlerror.Errorf(format, args...)
	e.Extensions = map[string]any{"code": code}
	return e
}

func principal(ctx context.Context) (viewer.Principal, error) {
	p, ok := viewer.FromContext(ctx)
	if !ok {
		return viewer.Principal{}, coded(CodeUnauthenticated, "unauthenticated")
	}
	return p, nil
}

func requireRole(ctx context.Context, roles ...viewer.Role) (viewer.Principal, error) {
	p, err := principal(ctx)
	if err != nil {
		return p, err
	}
	for _, r := range roles {
		if p.Role == r {
			return p, nil
		}
	}
	return p, coded(CodeForbidden, "forbidden: role %s may not do this", p.Role)
}

func robotOf(ctx context.Context) (int, error) {
	p, err := requireRole(ctx, viewer.Robot)
	if err != nil {
		return 0, err
	}
	if p.RobotID == nil {
		return 0, coded(CodeForbidden, "forbidden: robot token without a robot")
	}
	return *p.RobotID, nil
}

// queueError turns a dispatch error into a GraphQL error with a code the
// robot can act on; unexpected errors pass through to the error presenter.
func queueError(err error) error {
	switch {
	case errors.Is(err, dispatch.ErrStaleAttempt):
		return coded(CodeStale, "%v", err)
	case errors.Is(err, dispatch.ErrResultRefused):
		return coded(CodeResultRefused, "%v", err)
	case errors.Is(err, dispatch.ErrBadInput):
		return coded(CodeBadInput, "%v", err)
	case errors.Is(err, dispatch.ErrRobotUnavailable):
		return coded(CodeForbidden, "%v", err)
	case errors.Is(err, dispatch.ErrStopRequested):
		return coded(CodeStopRequested, "%v", err)
	case errors.Is(err, dispatch.ErrWrongState):
		return coded(CodeRefused, "%v", err)
	case errors.Is(err, dispatch.ErrUnfinished):
		return coded(CodeUnfinished, "%v", err)
	}
	return fmt.Errorf("%w", err)
}
