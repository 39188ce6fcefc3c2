package schema

import (
	"time"

	"entgo.io/contrib/entgql"
	"entgo.io/ent"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/mixin"
)

// TimeMixin stamps rows with creation and update times. Times are always
// stored in UTC so that SQLite and PostgreSQL order them the same way.
type TimeMixin struct{ mixin.Schema }

func (TimeMixin) Fields() []ent.Field {
	return []ent.Field{
		field.Time("created_at").Immutable().Default(nowUTC).
			Annotations(entgql.OrderField("CREATED_AT")),
		field.Time("updated_at").Default(nowUTC).UpdateDefault(nowUTC).
			Annotations(entgql.OrderField("UPDATED_AT")),
	}
}

func nowUTC() time.Time { return time.Now().UTC() }

// PauseMixin is an operator's pause of a pool or a process (`rpacloud pool
// pause`, `rpacloud process pause`): paused work is not dispatched and its
// triggers do not fire. The fields are set only by that command, never by
// a configuration sync, and have no defaults, so the sync's upsert (which
// writes the columns it sets) leaves a pause in place across reloads and
// restarts.
type PauseMixin struct{ mixin.Schema }

func (PauseMixin) Fields() []ent.Field {
	return []ent.Field{
		field.Time("paused_at").Optional().Nillable().
			Comment("When an operator paused it; null while it runs."),
		field.String("paused_by").Optional().Nillable().MaxLen(128).
			Comment("Name of the token that paused it."),
		field.String("pause_reason").Optional().Nillable().MaxLen(512).
			Comment("Why, as the operator wrote it; shown on the dashboard."),
	}
}
