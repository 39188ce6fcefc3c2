package schema

import (
	"entgo.io/contrib/entgql"
	"entgo.io/ent"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/edge"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// VM is one machine of a pool: rented from a provider, or enrolled (an
// existing machine that joined with a join token). The idempotency key
// is written before the provider is called, so a retried or crashed create
// finds the same key and never rents twice.
type VM struct{ ent.Schema }

func (VM) Mixin() []ent.Mixin { return []ent.Mixin{TimeMixin{}} }

func (VM) Fields() []ent.Field {
	return []ent.Field{
		field.Int("pool_id"),
		field.String("provider").Default("").
			Comment("Empty for an enrolled machine: no provider rents or follows it."),
		field.String("idempotency_key").NotEmpty().Unique(),
		field.String("instance_id").Default("").
			Comment("The provider's identifier; empty until the provider answered."),
		field.Enum("state").
			Values("requested", "creating", "running", "deleting", "deleted", "failed").
			Default("requested"),
		field.Bool("permanent").Default(false).
			Comment("Permanent VMs make up the pool's min and are never released."),
		field.String("address").Default(""),
		field.Bool("enrolled").Default(false).
			Comment("A machine that joined with a join token: never followed against, or released through, a provider."),
		field.String("hostname").Default("").MaxLen(255),
		field.String("os").Default("").MaxLen(128),
		field.Strings("addresses").Optional().
			Comment("Every address an enrolled machine reported; address holds the first."),
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
