package schema

import (
	"entgo.io/contrib/entgql"
	"entgo.io/ent"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/edge"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// Batch is one order of tasks submitted together by one customer (the seed's
// "menu"). Its stack is the restaurant algorithm's bookkeeping: A (new), B
// (in service), C (finished); last_served_at orders B.
type Batch struct{ ent.Schema }

func (Batch) Mixin() []ent.Mixin { return []ent.Mixin{TimeMixin{}} }

func (Batch) Fields() []ent.Field {
	return []ent.Field{
		field.Int("customer_id"),
		field.Int("process_id"),
		field.Int("pool_id").Comment("Copied from the process so the claim needs no join."),
		field.String("label").Default("").MaxLen(256).
			Comment("Free text the submitter chose, e.g. an order number."),
		field.Enum("stack").Values("new", "serving", "finished").Default("new").
			Annotations(entgql.OrderField("STACK")),
		field.Int("total").NonNegative(),
		field.Int("pending").NonNegative(),
		field.Int("running").NonNegative().Default(0),
		field.Int("succeeded").NonNegative().Default(0),
		field.Int("failed").NonNegative().Default(0),
		field.Int("cancelled").NonNegative().Default(0),
		field.Time("last_served_at").Optional().Nillable().
			Annotations(entgql.OrderField("LAST_SERVED_AT")),
		field.Time("finished_at").Optional().Nillable(),
		field.String("submitted_by").Default("").
			Comment("Name of the token that submitted the batch."),
		field.Int("trigger_id").Optional().Nillable().
			Comment("The trigger that fired the batch; null for a submission."),
		field.Time("scheduled_for").Optional().Nillable().
			Comment("The scheduled run the trigger fired the batch for (the current time for a fire-now)."),
	}
}

func (Batch) Edges() []ent.Edge {
	return []ent.Edge{
		edge.From("customer", Customer.Type).Ref("batches").Field("customer_id").Unique().Required(),
		edge.From("process", Process.Type).Ref("batches").Field("process_id").Unique().Required(),
		edge.To("tasks", Task.Type).Annotations(entgql.RelayConnection()),
	}
}

func (Batch) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("pool_id", "stack", "last_served_at"),
		index.Fields("customer_id", "created_at"),
		// One batch per scheduled run of a trigger, whatever two leaders
		// overlapping in a failover do: the second insert fails.
		index.Fields("trigger_id", "scheduled_for").Unique(),
	}
}

func (Batch) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.QueryField(), entgql.RelayConnection()}
}

// Policy applies the access rules of policy.go.
func (Batch) Policy() ent.Policy { return customerPolicy("Batch") }
