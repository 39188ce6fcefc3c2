package viewer

// The customer rule: which stored rows belong to which customer, and what a
// principal may see of them. It is kept here, in one table, because two
// mechanisms must apply it identically: the storage policies (ent/schema)
// filter the rows every query returns, and the API's predicate guard
// (graph) filters the sub-queries of `has…With` edge predicates, which no
// storage policy sees. A test checks the table against the schema.

// Owner says how rows of one stored type belong to customers.
type Owner struct {
	// Column holds the owning customer's id.
	Column string
	// Shared: a row whose Column is NULL belongs to no customer and is
	// visible to every authenticated principal (a shared process). When
	// false such rows are fleet-wide and only unbound principals see them.
	Shared bool
}

// owned lists every customer-owned type by its ent type name. Types not
// listed are either infrastructure (pools, robots, VMs…: readable by
// every authenticated principal) or admin-only; ent/schema says which.
var owned = map[string]Owner{
	"Anomaly":           {Column: "customer_id"},
	"Attempt":           {Column: "customer_id"},
	"Batch":             {Column: "customer_id"},
	"CredentialBinding": {Column: "customer_id"},
	"Customer":          {Column: "id"},
	"Event":             {Column: "customer_id"},
	"Process":           {Column: "owner_id", Shared: true},
	"Task":              {Column: "customer_id"},
	"Trigger":           {Column: "customer_id"},
}

// Owned reports how rows of the ent type typ belong to customers; ok is
// false for types that hold no customer's data.
func Owned(typ string) (o Owner, ok bool) {
	o, ok = owned[typ]
	return o, ok
}

// OwnedTypes lists the customer-owned types (for tests and documentation).
func OwnedTypes() []string {
	out := make([]string, 0, len(owned))
	for t := range owned {
		out = append(out, t)
	}
	return out
}

// Visibility is what a principal may see of customer-owned rows.
type Visibility int

// Visibilities.
const (
	// SeesAll: admins and principals bound to no customer.
	SeesAll Visibility = iota
	// SeesOne: principals bound to one customer see its rows (and shared
	// rows of types that have them).
	SeesOne
	// SeesShared: robots see no customer's rows, only shared ones; what
	// they need of a task they get from the claim.
	SeesShared
)

// Visibility returns what p may see of customer-owned rows and, for
// SeesOne, the customer.
func (p Principal) Visibility() (Visibility, int) {
	switch {
	case p.Role == Robot:
		return SeesShared, 0
	case p.Role == Admin || p.CustomerID == nil:
		return SeesAll, 0
	}
	return SeesOne, *p.CustomerID
}
