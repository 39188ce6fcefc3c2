package schema

import (
	"entgo.io/contrib/entgql"
	"entgo.io/ent"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/edge"
	"entgo.io/ent/schema/field"
)

// Process is a named automation. Its definition lives in HCL; the row keeps
// what the queue and the API need.
type Process struct{ ent.Schema }

func (Process) Mixin() []ent.Mixin { return []ent.Mixin{TimeMixin{}, PauseMixin{}} }

func (Process) Fields() []ent.Field {
	return []ent.Field{
		field.String("name").NotEmpty().Unique().MaxLen(128).
			Annotations(entgql.OrderField("NAME")),
		field.Int("pool_id"),
		field.Int("owner_id").Optional().Nillable().
			Comment("Customer (department) that owns the process."),
		field.Enum("kind").Values("builtin", "vendor", "crawler").Default("builtin"),
		field.String("runner").Default("").
			Comment("Task type for builtin processes (noop, echo); plugin name otherwise."),
		field.String("package").Default(""),
		field.Int("max_duration_seconds").Positive().Default(600),
		field.Int("retries").NonNegative().Default(3).
			Comment("Extra attempts after an execution error."),
		field.Int("max_wait_seconds").Positive().Default(86400).
			Comment("How long after its submission a task may still be waiting for a robot; the sweeper then fails it with reason expired."),
		field.String("schedule").Default(""),
		field.Bool("active").Default(true),
	}
}

func (Process) Edges() []ent.Edge {
	return []ent.Edge{
		edge.From("pool", Pool.Type).Ref("processes").Field("pool_id").Unique().Required(),
		edge.From("owner", Customer.Type).Ref("processes").Field("owner_id").Unique(),
		edge.To("batches", Batch.Type).Annotations(entgql.RelayConnection()),
	}
}

func (Process) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.QueryField(), entgql.RelayConnection()}
}

// Policy applies the access rules of policy.go.
func (Process) Policy() ent.Policy { return customerPolicy("Process") }
