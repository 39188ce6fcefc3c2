package graph

import (
	"context"
	"fmt"

	"github.com/rpacloud/rpacloud/core/audit"
	"github.com/rpacloud/rpacloud/ent"

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

// controlBatch runs a job-control request op on batch id for an admin or
// operator: the batch is read with the caller's rights first (another
// department's batch is not found, like one that does not exist), the
// audit entry is scoped to the batch's department, op gets the caller's
// name, and the batch is answered as it is afterwards.
func (r *mutationResolver) controlBatch(ctx context.Context, id int, op func(by string) error) (*ent.Batch, error) {
	p, err := requireRole(ctx, viewer.Admin, viewer.Operator)
	if err != nil {
		return nil, err
	}
	b, err := r.Client.Batch.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	audit.Scope(ctx, &b.CustomerID, fmt.Sprintf("batch %d", id))
	if err := op(p.Name); err != nil {
		return nil, queueError(err)
	}
	return r.Client.Batch.Get(ctx, id)
}

// controlTask is controlBatch for a task.
func (r *mutationResolver) controlTask(ctx context.Context, id int, op func(by string) error) (*ent.Task, error) {
	p, err := requireRole(ctx, viewer.Admin, viewer.Operator)
	if err != nil {
		return nil, err
	}
	t, err := r.Client.Task.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	audit.Scope(ctx, &t.CustomerID, fmt.Sprintf("task %d", id))
	if err := op(p.Name); err != nil {
		return nil, queueError(err)
	}
	return r.Client.Task.Get(ctx, id)
}
