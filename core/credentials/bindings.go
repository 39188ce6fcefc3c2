package credentials

import (
	"context"
	"fmt"
	"sort"

	"github.com/rpacloud/rpacloud/core/config"
	"github.com/rpacloud/rpacloud/core/credentials/layout"
	"github.com/rpacloud/rpacloud/ent"
	"github.com/rpacloud/rpacloud/ent/credentialbinding"
	"github.com/rpacloud/rpacloud/ent/customer"
	"github.com/rpacloud/rpacloud/ent/privacy"
	"github.com/rpacloud/rpacloud/ent/process"

	"github.com/rpacloud/rpacloud/core/credentials/secret"
)

// Bindings knows which credentials each process uses: those its HCL block
// lists in `credentials` and those bound through the API (stored as
// CredentialBinding rows). A credential always belongs to the process's
// owner, so one department's process can never be bound to another
// department's credential.
type Bindings struct {
	client *ent.Client
	cfg    config.Live // read at each use, so a reload reaches the bindings
}

// NewBindings returns the bindings of cfg's processes plus the stored ones;
// cfg may be nil (stored bindings only).
func NewBindings(client *ent.Client, cfg config.Live) *Bindings {
	return &Bindings{client: client, cfg: cfg}
}

// declared returns the credential names the HCL of process name lists.
func (b *Bindings) declared(name string) []string {
	if b.cfg == nil {
		return nil
	}
	cfg := b.cfg.Current()
	if cfg == nil {
		return nil
	}
	for _, p := range cfg.Processes {
		if p.Name == name {
			return p.Credentials
		}
	}
	return nil
}

func sys(ctx context.Context) context.Context { return privacy.DecisionContext(ctx, privacy.Allow) }

// ForProcess returns the credentials process processID uses, sorted by
// name. The caller has already authorised the request (a robot's claim).
func (b *Bindings) ForProcess(ctx context.Context, processID int) ([]Binding, error) {
	ctx = sys(ctx)
	p, err := b.client.Process.Get(ctx, processID)
	if err != nil {
		return nil, fmt.Errorf("credentials of process %d: %w", processID, err)
	}
	names := map[string]bool{}
	for _, n := range b.declared(p.Name) {
		names[n] = true
	}
	rows, err := b.client.CredentialBinding.Query().Where(credentialbinding.ProcessID(processID)).All(ctx)
	if err != nil {
		return nil, fmt.Errorf("credentials of process %q: %w", p.Name, err)
	}
	for _, r := range rows {
		names[r.Name] = true
	}
	if len(names) == 0 {
		return nil, nil
	}
	if p.OwnerID == nil {
		return nil, fmt.Errorf("process %q uses credentials but has no owner: set owner in its HCL block so they can be found", p.Name)
	}
	owner, err := b.client.Customer.Get(ctx, *p.OwnerID)
	if err != nil {
		return nil, fmt.Errorf("credentials of process %q: owner: %w", p.Name, err)
	}
	out := make([]Binding, 0, len(names))
	for n := range names {
		out = append(out, Binding{Name: n, Ref: layout.Ref{Customer: owner.Name, Name: n}})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Processes lists the processes that use credential name of customer c.
func (b *Bindings) Processes(ctx context.Context, c *ent.Customer, name string) ([]string, error) {
	ctx = sys(ctx)
	set := map[string]bool{}
	owned, err := b.client.Process.Query().Where(process.OwnerID(c.ID)).All(ctx)
	if err != nil {
		return nil, fmt.Errorf("processes of %q: %w", c.Name, err)
	}
	for _, p := range owned {
		for _, n := range b.declared(p.Name) {
			if n == name {
				set[p.Name] = true
			}
		}
	}
	rows, err := b.client.CredentialBinding.Query().
		Where(credentialbinding.CustomerID(c.ID), credentialbinding.Name(name)).All(ctx)
	if err != nil {
		return nil, fmt.Errorf("bindings of %q: %w", name, err)
	}
	if len(rows) > 0 {
		ids := make([]int, len(rows))
		for i, r := range rows {
			ids[i] = r.ProcessID
		}
		ps, err := b.client.Process.Query().Where(process.IDIn(ids...)).All(ctx)
		if err != nil {
			return nil, fmt.Errorf("bindings of %q: %w", name, err)
		}
		for _, p := range ps {
			set[p.Name] = true
		}
	}
	out := make([]string, 0, len(set))
	for n := range set {
		out = append(out, n)
	}
	sort.Strings(out)
	return out, nil
}

// Bind binds credential name of customer c to process processName, which
// must belong to c.
func (b *Bindings) Bind(ctx context.Context, c *ent.Customer, name, processName, by string) error {
	ctx = sys(ctx)
	if err := layout.CheckName(name); err != nil {
		return fmt.Errorf("%w: %v", secret.ErrBadInput, err)
	}
	p, err := b.client.Process.Query().Where(process.Name(processName)).Only(ctx)
	if ent.IsNotFound(err) {
		return fmt.Errorf("%w: no process %q", secret.ErrBadInput, processName)
	}
	if err != nil {
		return fmt.Errorf("bind %q: %w", name, err)
	}
	if p.OwnerID == nil || *p.OwnerID != c.ID {
		return fmt.Errorf("%w: process %q does not belong to customer %q; a credential can only be bound to its own customer's processes", secret.ErrBadInput, processName, c.Name)
	}
	err = b.client.CredentialBinding.Create().SetCustomerID(c.ID).SetName(name).SetProcessID(p.ID).SetCreatedBy(by).
		OnConflictColumns(credentialbinding.FieldCustomerID, credentialbinding.FieldName, credentialbinding.FieldProcessID).
		DoNothing().Exec(ctx)
	if err != nil && !isNoRows(err) {
		return fmt.Errorf("bind %q to %q: %w", name, processName, err)
	}
	return nil
}

// isNoRows: DoNothing on a conflict inserts nothing, which ent reports as
// an error on some drivers.
func isNoRows(err error) bool { return err != nil && err.Error() == "sql: no rows in result set" }

// Unbind removes an API binding.
func (b *Bindings) Unbind(ctx context.Context, c *ent.Customer, name, processName string) error {
	ctx = sys(ctx)
	p, err := b.client.Process.Query().Where(process.Name(processName)).Only(ctx)
	if ent.IsNotFound(err) {
		return fmt.Errorf("%w: no process %q", secret.ErrBadInput, processName)
	}
	if err != nil {
		return fmt.Errorf("unbind %q: %w", name, err)
	}
	for _, n := range b.declared(p.Name) {
		if n == name {
			return fmt.Errorf("%w: process %q declares %q in its HCL block; remove it there", secret.ErrBadInput, processName, name)
		}
	}
	_, err = b.client.CredentialBinding.Delete().Where(credentialbinding.CustomerID(c.ID), credentialbinding.Name(name),
		credentialbinding.ProcessID(p.ID)).Exec(ctx)
	if err != nil {
		return fmt.Errorf("unbind %q from %q: %w", name, processName, err)
	}
	return nil
}

// DeleteAll removes every API binding of a deleted credential.
func (b *Bindings) DeleteAll(ctx context.Context, c *ent.Customer, name string) error {
	_, err := b.client.CredentialBinding.Delete().Where(credentialbinding.CustomerID(c.ID), credentialbinding.Name(name)).Exec(sys(ctx))
	if err != nil {
		return fmt.Errorf("delete bindings of %q: %w", name, err)
	}
	return nil
}

// Customer finds a customer by name.
func (b *Bindings) Customer(ctx context.Context, name string) (*ent.Customer, error) {
	c, err := b.client.Customer.Query().Where(customer.Name(name)).Only(sys(ctx))
	if ent.IsNotFound(err) {
		return nil, fmt.Errorf("%w: no customer %q", secret.ErrBadInput, name)
	}
	if err != nil {
		return nil, fmt.Errorf("customer %q: %w", name, err)
	}
	return c, nil
}
