package schema

import (
	"entgo.io/contrib/entgql"
	"entgo.io/ent"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/edge"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// Task is one unit of work (the seed's "dish"). attempt_no is the fencing
// number: every transition compares it, so a report from an older attempt
// can never change the task.
type Task struct{ ent.Schema }

func (Task) Mixin() []ent.Mixin { return []ent.Mixin{TimeMixin{}} }

func (Task) Fields() []ent.Field {
	return []ent.Field{
		field.Int("batch_id"),
		field.Int("process_id"),
		field.Int("pool_id"),
		field.Int("customer_id"),
		field.Int("seq").NonNegative().Comment("Position in its batch, from 0."),
		field.Enum("state").Values("pending", "running", "succeeded", "failed", "cancelled").Default("pending").
			Annotations(entgql.OrderField("STATE")),
		field.Text("input").Default("{}").Comment("JSON object given by the submitter."),
		field.Text("output").Default("").Comment("JSON returned by the last successful attempt."),
		field.Int("attempt_no").NonNegative().Default(0).
			Comment("Number of the latest attempt; the fencing token."),
		field.Int("executions_failed").NonNegative().Default(0),
		field.Int("timeouts").NonNegative().Default(0),
		field.Int("manual_retries").NonNegative().Default(0).
			Comment("Retries a person asked for (task retry, batch retry), counted apart from the automatic ones."),
		field.Time("requeued_at").Optional().Nillable().
			Comment("When a person last made the finished task pending again; its max_wait counts from here."),
		field.Enum("failure_reason").
			Values("data_error", "retries_exhausted", "timeout_exhausted", "cancelled", "expired").
			Optional().Nillable(),
		field.Text("error_message").Default(""),
		field.Time("finished_at").Optional().Nillable(),
		field.Int64("rand_key").NonNegative().Default(0).
			Comment("Uniform random sampling key, drawn afresh whenever the task becomes pending; a claim takes the first pending task of its batch at or after a random point, so it never scans the backlog.").
			Annotations(entgql.Skip(entgql.SkipAll)),
	}
}

func (Task) Edges() []ent.Edge {
	return []ent.Edge{
		edge.From("batch", Batch.Type).Ref("tasks").Field("batch_id").Unique().Required(),
		edge.To("attempts", Attempt.Type).Annotations(entgql.RelayConnection()),
	}
}

func (Task) Indexes() []ent.Index {
	return []ent.Index{
		// The claim's random draw: equality on (batch_id, state), range
		// and order on rand_key, LIMIT 1.
		index.Fields("batch_id", "state", "rand_key"),
		index.Fields("pool_id", "state"),
		index.Fields("customer_id", "state"),
	}
}

func (Task) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.QueryField(), entgql.RelayConnection()}
}

// Policy applies the access rules of policy.go.
func (Task) Policy() ent.Policy { return customerPolicy("Task") }
