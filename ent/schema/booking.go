package schema

import (
	"entgo.io/contrib/entgql"
	"entgo.io/ent"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// Booking is a recurring slot of the run schedule that a department added
// through the API: it reserves robots of a pool for a process. Slots
// declared in HCL (schedule blocks) are read from the configuration and
// checked together with these.
type Booking struct{ ent.Schema }

func (Booking) Mixin() []ent.Mixin { return []ent.Mixin{TimeMixin{}} }

func (Booking) Fields() []ent.Field {
	return []ent.Field{
		field.String("key").NotEmpty().Unique().MaxLen(200).Comment(`"process/slot".`),
		field.Int("process_id"),
		field.String("pool").NotEmpty(),
		field.String("department").Default("").Comment("Customer name of the booking department."),
		field.String("robot").Default("").Comment("A robot of the pool; empty for any."),
		field.Int("robots").Positive().Default(1),
		field.String("cron").NotEmpty(),
		field.Int("duration_seconds").Positive(),
		field.String("timezone").Default(""),
		field.Time("valid_from").Optional().Nillable(),
		field.Time("valid_until").Optional().Nillable(),
		field.String("created_by").Default(""),
		field.Bool("clash_accepted").Default(false).
			Comment("Booked despite a clash, deliberately; the schedule flags it."),
	}
}

func (Booking) Indexes() []ent.Index {
	return []ent.Index{index.Fields("pool"), index.Fields("process_id")}
}

func (Booking) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.Skip(entgql.SkipAll)}
}

// Policy applies the access rules of policy.go: every department sees the
// whole schedule, or it could not avoid the others' slots.
func (Booking) Policy() ent.Policy { return infraPolicy() }
