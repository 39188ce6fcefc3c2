package graph

import (
	"context"

	"github.com/rpacloud/rpacloud/ent/predicate"
	"github.com/rpacloud/rpacloud/ent/process"
	"github.com/rpacloud/rpacloud/ent/schema/viewer"
)

// poolOperator admits who may pause and resume pools: they are the
// platform's, shared by every department, so an admin or an operator bound
// to no customer.
func poolOperator(ctx context.Context) (viewer.Principal, error) {
	p, err := requireRole(ctx, viewer.Admin, viewer.Operator)
	if err != nil {
		return p, err
	}
	if p.Role == viewer.Operator && p.CustomerID != nil {
		return p, coded(CodeForbidden, "forbidden: pools are shared by every department; a department's operator may pause its own processes instead")
	}
	return p, nil
}

// processScope restricts a department's operator to its own processes (a
// shared process runs other departments' work too); another department's
// process, or a shared one, is then not found, like one that does not
// exist.
func processScope(p viewer.Principal) predicate.Process {
	if p.Role == viewer.Admin || p.CustomerID == nil {
		return nil
	}
	return process.OwnerID(*p.CustomerID)
}
