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
		// Monitoring dimensions (core/monitor). Empty for rpacloud's own
		// events written before they existed.
		field.Int("vm_id").Optional().Nillable().Immutable().Annotations(entgql.Type("ID")),
		field.String("vendor").Default("").Immutable().
			Comment("Product that ran the work: empty or rpacloud for our robots, uipath, aa."),
		field.String("status").Default("").Immutable().
			Comment("State the subject entered, e.g. succeeded, faulted; derived from type when empty."),
		field.String("external_id").Default("").Immutable().
			Comment("The vendor's identifier of the job or robot, for vendor events."),
		field.Int("anomaly_id").Optional().Nillable().Immutable().Annotations(entgql.Type("ID")).
			Comment("The anomaly an anomaly.* event is about."),
	}
}

func (Event) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("task_id"),
		index.Fields("customer_id", "at"),
		index.Fields("type", "at"),
		index.Fields("pool_id", "at"),
	}
}

func (Event) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.QueryField(), entgql.RelayConnection()}
}

// Hooks fill the status dimension from the type so that every writer,
// including ones that predate it, produces classified events.
func (Event) Hooks() []ent.Hook {
	return []ent.Hook{eventStatusHook()}
}

// Policy applies the access rules of policy.go.
func (Event) Policy() ent.Policy { return customerPolicy("Event") }
