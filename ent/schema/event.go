package schema

import (
	"entgo.io/contrib/entgql"
	"entgo.io/ent"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// Event is an append-only record of a change. The id orders events; the
// dimensions are plain columns (no foreign keys) so that writing an event
// never blocks on, or is lost with, the row it describes.
type Event struct{ ent.Schema }

func (Event) Fields() []ent.Field {
	return []ent.Field{
		field.Time("at").Default(nowUTC).Immutable().
			Annotations(entgql.OrderField("AT")),
		field.String("type").NotEmpty().Immutable().
			Comment("Dotted kind, e.g. task.dispatched, task.succeeded, robot.suspect."),
		field.Int("customer_id").Optional().Nillable().Immutable().Annotations(entgql.Type("ID")),
		field.Int("pool_id").Optional().Nillable().Immutable().Annotations(entgql.Type("ID")),
		field.Int("process_id").Optional().Nillable().Immutable().Annotations(entgql.Type("ID")),
		field.Int("batch_id").Optional().Nillable().Immutable().Annotations(entgql.Type("ID")),
		field.Int("task_id").Optional().Nillable().Immutable().Annotations(entgql.Type("ID")),
		field.Int("robot_id").Optional().Nillable().Immutable().Annotations(entgql.Type("ID")),
		field.Int("attempt_no").Optional().Nillable().Immutable(),
		field.String("message").Default("").Immutable(),
	}
}

func (Event) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("task_id"),
		index.Fields("customer_id", "at"),
		index.Fields("type", "at"),
	}
}

func (Event) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.QueryField(), entgql.RelayConnection()}
}

// Policy applies the access rules of policy.go.
func (Event) Policy() ent.Policy { return customerPolicy("customer_id") }
