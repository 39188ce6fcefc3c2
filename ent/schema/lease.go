package schema

import (
	"entgo.io/contrib/entgql"
	"entgo.io/ent"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/field"
)

// Lease elects one daemon to run a loop that must run once per deployment
// (sweeper, scaler, pollers) when several daemons share a database. The term
// grows with every change of holder, so a stale leader can be fenced.
type Lease struct{ ent.Schema }

func (Lease) Fields() []ent.Field {
	return []ent.Field{
		field.String("name").NotEmpty().Unique(),
		field.String("holder").NotEmpty(),
		field.Int64("term").Positive(),
		field.Time("expires_at"),
	}
}

func (Lease) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.Skip(entgql.SkipAll)}
}

// Policy applies the access rules of policy.go.
func (Lease) Policy() ent.Policy { return adminOnlyPolicy() }
