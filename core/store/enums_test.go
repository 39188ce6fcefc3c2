package store_test

import (
	"slices"
	"testing"

	"entgo.io/ent"

	"github.com/rpacloud/rpacloud/core/config"
	"github.com/rpacloud/rpacloud/core/dispatch/policy"
	"github.com/rpacloud/rpacloud/core/monitor/rules"
	"github.com/rpacloud/rpacloud/ent/schema"
)

// The storage enums that name a concept owned by a core room must hold
// exactly that room's table (which config validation reads too), so a value
// added in one place and forgotten in the other fails here rather than at
// an insert. Order does not matter to storage.
func TestEnumsMatchTheirTables(t *testing.T) {
	for _, c := range []struct {
		typ   string
		s     ent.Interface
		field string
		want  []string
	}{
		{"Pool", schema.Pool{}, "fairness", policy.Names()},
		{"Customer", schema.Customer{}, "kind", config.CustomerKinds},
		{"Anomaly", schema.Anomaly{}, "severity", rules.SeverityNames()},
		{"Anomaly", schema.Anomaly{}, "rule", names(rules.Rules)},
	} {
		got := enumValues(t, c.s, c.field)
		want := slices.Clone(c.want)
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("%s.%s: ent enum %q, table %q", c.typ, c.field, got, want)
		}
	}
}

// The defaults agree too: a pool or customer stored without the attribute
// behaves as one configured without it.
func TestEnumDefaultsMatchTheirTables(t *testing.T) {
	if d := enumDefault(t, schema.Pool{}, "fairness"); d != string(policy.Fairnesses[0].Name) {
		t.Errorf("Pool.fairness default %q, policy default %q", d, policy.Fairnesses[0].Name)
	}
	if d := enumDefault(t, schema.Customer{}, "kind"); d != config.DefaultCustomerKind {
		t.Errorf("Customer.kind default %q, config default %q", d, config.DefaultCustomerKind)
	}
}

func names[T ~string](vs []T) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = string(v)
	}
	return out
}

func enumValues(t *testing.T, s ent.Interface, name string) []string {
	t.Helper()
	for _, f := range s.Fields() {
		d := f.Descriptor()
		if d.Name != name {
			continue
		}
		var out []string
		for _, e := range d.Enums {
			out = append(out, e.V)
		}
		return out
	}
	t.Fatalf("no field %q", name)
	return nil
}

func enumDefault(t *testing.T, s ent.Interface, name string) string {
	t.Helper()
	for _, f := range s.Fields() {
		if d := f.Descriptor(); d.Name == name {
			v, _ := d.Default.(string)
			return v
		}
	}
	t.Fatalf("no field %q", name)
	return ""
}
