package schema_test

import (
	"slices"
	"testing"

	"entgo.io/ent"

	"github.com/rpacloud/rpacloud/ent/migrate"
	"github.com/rpacloud/rpacloud/ent/schema"
	"github.com/rpacloud/rpacloud/ent/schema/viewer"
)

// every lists the storage types; a type added to the schema and not here
// fails TestEveryTypeIsListed below, so the ownership check sees it.
var every = map[string]ent.Interface{
	"AccessSession": schema.AccessSession{}, "Anomaly": schema.Anomaly{}, "Attempt": schema.Attempt{},
	"Batch": schema.Batch{}, "Booking": schema.Booking{}, "CredentialBinding": schema.CredentialBinding{},
	"Customer": schema.Customer{}, "DownloadTicket": schema.DownloadTicket{}, "Event": schema.Event{},
	"Lease": schema.Lease{}, "LifecycleTransition": schema.LifecycleTransition{}, "Pool": schema.Pool{},
	"PoolSample": schema.PoolSample{}, "Process": schema.Process{}, "RemoteEndpoint": schema.RemoteEndpoint{},
	"Robot": schema.Robot{}, "ScaleDecision": schema.ScaleDecision{}, "Task": schema.Task{},
	"Token": schema.Token{}, "VM": schema.VM{}, "JoinToken": schema.JoinToken{}, "ConfigRevision": schema.ConfigRevision{},
	"AuditEntry": schema.AuditEntry{},
	"Trigger":    schema.Trigger{},
}

// notOwned are types with a column naming a customer that are nevertheless
// not customer data, and why.
var notOwned = map[string]string{
	"Token":      "admin-only: tokens are read by administrators alone",
	"AuditEntry": "two customer columns (actor_customer_id, scope_customer_id): its own policy (auditFilter) reads either",
}

func fields(s ent.Interface) map[string]bool {
	out := map[string]bool{"id": true}
	for _, m := range s.Mixin() {
		for _, f := range m.Fields() {
			out[f.Descriptor().Name] = true
		}
	}
	for _, f := range s.Fields() {
		out[f.Descriptor().Name] = true
	}
	return out
}

// The customer rule's table (viewer.Owned) names real types and columns,
// and every type that records a customer is in it, so neither the storage
// policies nor the API's predicate guard can miss one.
func TestOwnershipTableMatchesSchema(t *testing.T) {
	for _, typ := range viewer.OwnedTypes() {
		s, ok := every[typ]
		if !ok {
			t.Errorf("viewer.Owned lists %s, which is not a storage type", typ)
			continue
		}
		o, _ := viewer.Owned(typ)
		if !fields(s)[o.Column] {
			t.Errorf("viewer.Owned: %s has no column %s", typ, o.Column)
		}
	}
	for typ, s := range every {
		if _, owned := viewer.Owned(typ); owned || notOwned[typ] != "" {
			continue
		}
		for _, col := range []string{"customer_id", "owner_id"} {
			if fields(s)[col] {
				t.Errorf("%s has %s but is not in viewer.Owned: its rows would be readable across customers", typ, col)
			}
		}
	}
}

// A new storage type must be listed in every: the generated migration has
// one table per type.
func TestEveryTypeIsListed(t *testing.T) {
	if len(migrate.Tables) != len(every) {
		var names []string
		for _, tb := range migrate.Tables {
			names = append(names, tb.Name)
		}
		slices.Sort(names)
		t.Errorf("the schema has %d tables %v, every lists %d types: add the new type to every", len(names), names, len(every))
	}
}
