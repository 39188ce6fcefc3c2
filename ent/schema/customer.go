package schema

import (
	"entgo.io/contrib/entgql"
	"entgo.io/ent"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/edge"
	"entgo.io/ent/schema/field"
)

// Customer is a tenant: a company that buys the service, or a department of
// an enterprise that owns processes. Departments hang under their company
// through parent, so an operator of a company can later be given its
// departments too.
type Customer struct{ ent.Schema }

func (Customer) Mixin() []ent.Mixin { return []ent.Mixin{TimeMixin{}} }

func (Customer) Fields() []ent.Field {
	return []ent.Field{
		field.String("name").NotEmpty().Unique().MaxLen(128).
			Comment("Stable identifier used in tokens, HCL and the CLI.").
			Annotations(entgql.OrderField("NAME")),
		field.String("display_name").Default(""),
		field.Enum("kind").Values("company", "department").Default("company"),
		field.Int("parent_id").Optional().Nillable(),
	}
}

func (Customer) Edges() []ent.Edge {
	return []ent.Edge{
		edge.To("children", Customer.Type).
			From("parent").Field("parent_id").Unique(),
		edge.To("batches", Batch.Type).Annotations(entgql.RelayConnection()),
		edge.To("processes", Process.Type),
	}
}

func (Customer) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.QueryField(), entgql.RelayConnection()}
}

// Policy applies the access rules of policy.go.
func (Customer) Policy() ent.Policy { return customerPolicy("Customer") }
