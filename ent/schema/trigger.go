package schema

import (
	"entgo.io/contrib/entgql"
	"entgo.io/ent"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// Trigger starts batches of a process on a schedule (HCL `trigger`
// blocks). Its definition lives in the configuration, synced into this
// row like pools and processes; the row adds what the trigger service
// and operators change: the last scheduled run handled (advanced by
// compare-and-set, so two leaders never both handle one) and a pause
// (PauseMixin: never written by the sync).
type Trigger struct{ ent.Schema }

func (Trigger) Mixin() []ent.Mixin { return []ent.Mixin{TimeMixin{}, PauseMixin{}} }

func (Trigger) Fields() []ent.Field {
	return []ent.Field{
		field.String("name").NotEmpty().Unique().MaxLen(128).
			Annotations(entgql.OrderField("NAME")),
		field.Int("customer_id").
			Comment("The customer the batches are submitted for."),
		field.Int("process_id"),
		field.String("cron").Default(""),
		field.String("timezone").Default("UTC"),
		field.String("calendar").Default("").
			Comment("Name of the calendar block; empty: none."),
		field.String("days").Default("").
			Comment("working, non_working or empty (every day)."),
		field.String("catch_up").Default("skip"),
		field.Bool("active").Default(true).
			Comment("False once the trigger left the configuration."),
		field.Time("last_scheduled_for").Optional().Nillable().
			Comment("The latest scheduled run the trigger service handled (fired or skipped); no default, so the sync never resets it."),
	}
}

func (Trigger) Indexes() []ent.Index {
	return []ent.Index{index.Fields("customer_id")}
}

func (Trigger) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.QueryField(), entgql.RelayConnection()}
}

// Policy applies the access rules of policy.go.
func (Trigger) Policy() ent.Policy { return customerPolicy("Trigger") }
