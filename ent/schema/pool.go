package schema

import (
	"entgo.io/contrib/entgql"
	"entgo.io/ent"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/edge"
	"entgo.io/ent/schema/field"
)

// Pool is a group of robots that serve the same processes and grow and
// shrink together. Its settings come from HCL and are synced into the
// database at start-up so that queries and the scaler read one source.
type Pool struct{ ent.Schema }

func (Pool) Mixin() []ent.Mixin { return []ent.Mixin{TimeMixin{}, PauseMixin{}} }

func (Pool) Fields() []ent.Field {
	return []ent.Field{
		field.String("name").NotEmpty().Unique().MaxLen(128).
			Annotations(entgql.OrderField("NAME")),
		field.String("provider").Default("").
			Comment("Name of the provider block that rents this pool's VMs; empty: the pool has only enrolled robots."),
		field.Int("min").NonNegative().Default(0).
			Comment("Permanent robots, never released."),
		field.Int("max").NonNegative().Default(1).
			Comment("Robots in all, permanent and rented."),
		field.Int("period_seconds").Positive().Default(60).
			Comment("Seconds between two readings of the scaler."),
		field.Int("tasks_per_robot").Positive().Default(1).
			Comment("R: the least work that makes renting a robot worth it."),
		field.Enum("fairness").Values("fair_share", "weighted", "oldest_served").Default("fair_share"),
		field.String("network").Default("").
			Comment("Name of the network profile its robots use; empty for none."),
		field.Bool("active").Default(true).
			Comment("False once the pool left the configuration; kept for history."),
	}
}

func (Pool) Edges() []ent.Edge {
	return []ent.Edge{
		edge.To("robots", Robot.Type).Annotations(entgql.RelayConnection()),
		edge.To("vms", VM.Type),
		edge.To("processes", Process.Type),
	}
}

func (Pool) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.QueryField(), entgql.RelayConnection()}
}

// Policy applies the access rules of policy.go.
func (Pool) Policy() ent.Policy { return infraPolicy() }
