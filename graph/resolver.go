// Package graph serves the GraphQL API: the resolvers, the generated
// executor, and the HTTP handler with its transports and limits.
package graph

import (
	"context"
	"errors"
	"fmt"

	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/rpacloud/rpacloud/core/credentials"
	"github.com/rpacloud/rpacloud/core/dispatch"
	"github.com/rpacloud/rpacloud/core/events"
	"github.com/rpacloud/rpacloud/core/lifecycle/delivery"
	"github.com/rpacloud/rpacloud/core/monitor"
	"github.com/rpacloud/rpacloud/core/viewer"
	"github.com/rpacloud/rpacloud/ent"
)

// ProviderHealth tells whether the plugin behind a provider block is up.
type ProviderHealth interface {
	ProviderHealthy(name string) bool
}

// Resolver is the root of every resolver; it holds the daemon's services.
type Resolver struct {
	Client    *ent.Client
	Queue     *dispatch.Queue
	Bus       *events.Bus
	Providers ProviderHealth
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
	}
	return fmt.Errorf("%w", err)
}

// wakeTypes are the events after which a waiting robot should try again.
var wakeTypes = map[events.Type]bool{events.BatchSubmitted: true, events.TaskRetrying: true, events.TaskDelayed: true}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
