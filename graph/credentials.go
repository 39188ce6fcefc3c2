package graph

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/rpacloud/rpacloud/core/audit"
	"github.com/rpacloud/rpacloud/core/credentials"
	"github.com/rpacloud/rpacloud/core/credentials/layout"
	"github.com/rpacloud/rpacloud/core/events"
	"github.com/rpacloud/rpacloud/ent"
	"github.com/rpacloud/rpacloud/ent/privacy"
	"github.com/rpacloud/rpacloud/ent/process"
	"github.com/rpacloud/rpacloud/ent/schema/viewer"
	"github.com/rpacloud/rpacloud/graph/model"

	"github.com/rpacloud/rpacloud/core/credentials/secret"
)

// credentialCustomer authorises a credential operation and finds the
// customer it is about: the named one, or the token's own. Operators and
// viewers bound to a customer reach only that customer's credentials;
// writing needs operator or admin.
func (r *Resolver) credentialCustomer(ctx context.Context, op string, name *string, write bool) (viewer.Principal, *ent.Customer, error) {
	roles := []viewer.Role{viewer.Admin, viewer.Operator, viewer.Viewer}
	if write {
		roles = roles[:2]
	}
	p, err := requireRole(ctx, roles...)
	if err != nil {
		return p, nil, err
	}
	if r.CredentialBindings == nil {
		return p, nil, coded(CodeBadInput, "%s: %v", op, secret.ErrOff)
	}
	var c *ent.Customer
	switch {
	case name != nil && *name != "":
		c, err = r.CredentialBindings.Customer(ctx, *name)
		if err != nil {
			return p, nil, credentialError(op, err)
		}
	case p.CustomerID != nil:
		c, err = r.Client.Customer.Get(privacy.DecisionContext(ctx, privacy.Allow), *p.CustomerID)
		if err != nil {
			return p, nil, fmt.Errorf("%s: customer: %w", op, err)
		}
	default:
		return p, nil, coded(CodeBadInput, "%s: name the customer (this token is not bound to one)", op)
	}
	if !p.SeesCustomer(c.ID) {
		return p, nil, coded(CodeForbidden, "forbidden: this token may not reach credentials of customer %q", c.Name)
	}
	if r.Vault == nil {
		return p, nil, coded(CodeBadInput, "%s: %v", op, secret.ErrOff)
	}
	return p, c, nil
}

// writeCredential stores or rotates a credential and binds it to the
// processes named. The input's values go to Vault and nowhere else: they
// are never logged, and no error repeats them.
func (r *Resolver) writeCredential(ctx context.Context, op string, in model.CredentialInput, rotate bool) (*model.Credential, error) {
	p, c, err := r.credentialCustomer(ctx, op, in.Customer, true)
	if err != nil {
		return nil, err
	}
	audit.Scope(ctx, &c.ID, "credential "+in.Name)
	sec := secret.Secret{Username: deref(in.Username), Password: deref(in.Password), TOTPSeed: deref(in.TotpSeed)}
	for _, f := range in.Fields {
		if sec.Extra == nil {
			sec.Extra = map[string]string{}
		}
		if _, dup := sec.Extra[f.Name]; dup {
			return nil, coded(CodeBadInput, "%s: field %q given twice", op, f.Name)
		}
		sec.Extra[f.Name] = f.Value
	}
	// Check the bindings first, so a bad process name stores nothing.
	for _, proc := range in.Processes {
		if err := r.checkBindable(ctx, c, proc); err != nil {
			return nil, credentialError(op, err)
		}
	}
	ref := layout.Ref{Customer: c.Name, Name: in.Name}
	if rotate {
		_, err = r.Vault.Rotate(ctx, ref, sec, p.String())
	} else {
		_, err = r.Vault.Put(ctx, ref, sec, p.String())
	}
	if err != nil {
		return nil, credentialError(op, err)
	}
	for _, proc := range in.Processes {
		if err := r.CredentialBindings.Bind(ctx, c, in.Name, proc, p.String()); err != nil {
			return nil, credentialError(op, err)
		}
	}
	evType := events.CredentialStored
	if rotate {
		evType = events.CredentialRotated
	}
	r.audit(ctx, p, evType, c, in.Name)
	return r.credentialMeta(ctx, op, c, in.Name)
}

func (r *Resolver) checkBindable(ctx context.Context, c *ent.Customer, proc string) error {
	p, err := r.Client.Process.Query().Where(process.Name(proc)).Only(privacy.DecisionContext(ctx, privacy.Allow))
	if ent.IsNotFound(err) {
		return fmt.Errorf("%w: no process %q", secret.ErrBadInput, proc)
	}
	if err != nil {
		return fmt.Errorf("process %q: %w", proc, err)
	}
	if p.OwnerID == nil || *p.OwnerID != c.ID {
		return fmt.Errorf("%w: process %q does not belong to customer %q; a credential can only be bound to its own customer's processes", secret.ErrBadInput, proc, c.Name)
	}
	return nil
}

func (r *Resolver) credentialMeta(ctx context.Context, op string, c *ent.Customer, name string) (*model.Credential, error) {
	m, err := r.Vault.Meta(ctx, layout.Ref{Customer: c.Name, Name: name})
	if err != nil {
		return nil, credentialError(op, err)
	}
	return r.credentialModel(ctx, c, m)
}

func (r *Resolver) credentialModel(ctx context.Context, c *ent.Customer, m credentials.Meta) (*model.Credential, error) {
	procs, err := r.CredentialBindings.Processes(ctx, c, m.Name)
	if err != nil {
		return nil, err
	}
	fields := m.Fields
	if fields == nil {
		fields = []string{}
	}
	return &model.Credential{
		Customer: c.Name, Name: m.Name, Version: m.Version, CreatedAt: m.CreatedAt, UpdatedAt: m.UpdatedAt,
		UpdatedBy: m.UpdatedBy, Fields: fields, Processes: procs,
	}, nil
}

// audit records who changed which credential, as an event (names only).
func (r *Resolver) audit(ctx context.Context, p viewer.Principal, typ events.Type, c *ent.Customer, name string) {
	// An audit event that cannot be stored does not undo the change made.
	_, _ = events.Record(privacy.DecisionContext(ctx, privacy.Allow),
		events.Create(r.Client.Event, typ, time.Now().UTC()).SetCustomerID(c.ID).
			SetMessage(fmt.Sprintf("%s by %s", name, p.String())), r.Bus)
}

// credentialError turns an error of the credentials package into a GraphQL
// error with a code. The message names the credential, never a value.
func credentialError(op string, err error) error {
	switch {
	case errors.Is(err, secret.ErrBadInput), errors.Is(err, secret.ErrExists),
		errors.Is(err, secret.ErrNotFound), errors.Is(err, secret.ErrOff):
		code := CodeBadInput
		if errors.Is(err, secret.ErrNotFound) {
			code = CodeNotFound
		}
		return coded(code, "%s: %v", op, err)
	case errors.Is(err, secret.ErrDenied):
		return coded(CodeForbidden, "%s: %v", op, err)
	}
	return coded("VAULT_UNAVAILABLE", "%s: %v", op, err)
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func nonEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
