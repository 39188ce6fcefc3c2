package schema

import (
	"entgo.io/contrib/entgql"
	"entgo.io/ent"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/edge"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// Robot is the agent running on a VM. It polls for work with its own token.
type Robot struct{ ent.Schema }

func (Robot) Mixin() []ent.Mixin { return []ent.Mixin{TimeMixin{}} }

func (Robot) Fields() []ent.Field {
	return []ent.Field{
		field.String("name").NotEmpty().Unique().
			Annotations(entgql.OrderField("NAME")),
		field.Int("pool_id"),
		field.Int("vm_id").Optional().Nillable(),
		field.Enum("state").
			Values("provisioning", "idle", "busy", "draining", "suspect", "offline", "released").
			Default("provisioning").
			Annotations(entgql.OrderField("STATE")),
		field.Bool("permanent").Default(false),
		field.Bool("enrolled").Default(false).
			Comment("Joined with a join token on a machine rpacloud did not rent; never released by the scaler."),
		field.Time("last_seen_at").Optional().Nillable(),
		field.String("hostname").Default(""),
		field.String("agent_version").Default(""),
	}
}

func (Robot) Edges() []ent.Edge {
	return []ent.Edge{
		edge.From("pool", Pool.Type).Ref("robots").Field("pool_id").Unique().Required(),
		edge.From("vm", VM.Type).Ref("robot").Field("vm_id").Unique(),
		edge.To("attempts", Attempt.Type).Annotations(entgql.RelayConnection()),
	}
}

func (Robot) Indexes() []ent.Index {
	return []ent.Index{index.Fields("pool_id", "state")}
}

func (Robot) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.QueryField(), entgql.RelayConnection()}
}

// Policy applies the access rules of policy.go.
func (Robot) Policy() ent.Policy { return infraPolicy() }
