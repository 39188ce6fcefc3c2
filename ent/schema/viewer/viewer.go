// Package viewer says who is making a request and which rows each caller
// may see (the customer rule, scope.go). It lives under ent/schema because
// the storage schema's privacy policies are its first user: the API and the
// core rooms use storage, so they may import it, while storage importing a
// core room would make the arrows run both ways. It imports only the
// standard library.
package viewer

import (
	"context"
	"fmt"
)

// Role is what a token may do.
type Role string

// Roles, from most to least powerful. Operators and viewers may be bound to
// one customer; robots only ever act for themselves.
const (
	Admin    Role = "admin"
	Operator Role = "operator"
	Viewer   Role = "viewer"
	Robot    Role = "robot"
)

// Valid reports whether r is a known role.
func (r Role) Valid() bool {
	switch r {
	case Admin, Operator, Viewer, Robot:
		return true
	}
	return false
}

// Principal is the authenticated caller.
type Principal struct {
	TokenID    int
	Name       string
	Role       Role
	CustomerID *int // nil: not bound to a customer
	RobotID    *int // set for robot tokens
}

// String names the principal for logs and audit fields; never the secret.
func (p Principal) String() string {
	s := fmt.Sprintf("%s:%s", p.Role, p.Name)
	if p.CustomerID != nil {
		s += fmt.Sprintf("@customer/%d", *p.CustomerID)
	}
	return s
}

// CanMutate reports whether the principal may change anything at all
// through the people's API (robots use the robot protocol instead).
func (p Principal) CanMutate() bool { return p.Role == Admin || p.Role == Operator }

// SeesCustomer reports whether data of customer id is visible.
func (p Principal) SeesCustomer(id int) bool {
	switch p.Role {
	case Robot:
		return false
	case Admin:
		return true
	}
	return p.CustomerID == nil || *p.CustomerID == id
}

type ctxKey struct{}

// NewContext returns ctx carrying p.
func NewContext(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, ctxKey{}, p)
}

// FromContext returns the principal of ctx, if any.
func FromContext(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(ctxKey{}).(Principal)
	return p, ok
}
