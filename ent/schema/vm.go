package schema

import (
	"entgo.io/contrib/entgql"
	"entgo.io/ent"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/edge"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// VM is one machine rented from a provider for a pool. The idempotency key
// is written before the provider is called, so a retried or crashed create
// finds the same key and never rents twice.
type VM struct{ ent.Schema }

func (VM) Mixin() []ent.Mixin { return []ent.Mixin{TimeMixin{}} }

func (VM) Fields() []ent.Field {
	return []ent.Field{
		field.Int("pool_id"),
		field.String("provider").NotEmpty(),
		field.String("idempotency_key").NotEmpty().Unique(),
		field.String("instance_id").Default("").
			Comment("The provider's identifier; empty until the provider answered."),
		field.Enum("state").
			Values("requested", "creating", "running", "deleting", "deleted", "failed").
			Default("requested"),
		field.Bool("permanent").Default(false).
			Comment("Permanent VMs make up the pool's min and are never released."),
		field.String("address").Default(""),
		field.String("error").Default("").
			Comment("Last provider error, for operators."),
	}
}

func (VM) Edges() []ent.Edge {
	return []ent.Edge{
		edge.From("pool", Pool.Type).Ref("vms").Field("pool_id").Unique().Required(),
		edge.To("robot", Robot.Type).Unique(),
	}
}

func (VM) Indexes() []ent.Index {
	return []ent.Index{index.Fields("pool_id", "state")}
}

func (VM) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.RelayConnection()}
}

// Policy applies the access rules of policy.go.
func (VM) Policy() ent.Policy { return infraPolicy() }
