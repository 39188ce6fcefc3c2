package schema

import (
	"entgo.io/contrib/entgql"
	"entgo.io/ent"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// ScaleDecision is one reading of a pool by the scaler and what it decided
// from it, with the reason, so operators can see why a pool has the size
// it has. The rule's memory (streaks, cooldown) is kept on the row too: a
// new leader resumes from the last row instead of starting afresh. The
// pool is a plain column, like an event's, so history outlives nothing and
// blocks nothing.
type ScaleDecision struct{ ent.Schema }

func (ScaleDecision) Fields() []ent.Field {
	return []ent.Field{
		field.Time("at").Default(nowUTC).Immutable().
			Annotations(entgql.OrderField("AT")),
		field.Int("pool_id").Immutable().Annotations(entgql.Type("ID")),
		field.String("pool_name").Immutable(),
		// The reading.
		field.Int("x").Immutable().Comment("Robots in the pool, booting ones included."),
		field.Int("z").Immutable().Comment("Robots up and idle."),
		field.Int("d").Immutable().Comment("Tasks not finished: pending plus running."),
		field.Int("booting").Default(0).Immutable(),
		field.Int("idle_rented").Default(0).Immutable(),
		field.Int("vendor_others").Default(0).Immutable().
			Comment("Robots of the pool's vendor in other pools (licence cap)."),
		field.Int("prewarm_floor").Default(0).Immutable(),
		// The decision.
		field.Enum("action").Values("none", "scale_up", "scale_down", "cooldown").Immutable().
			Annotations(entgql.OrderField("ACTION")),
		field.Int("rent").Default(0).Immutable(),
		field.Int("release").Default(0).Immutable(),
		field.Int("target").Immutable(),
		field.String("capped").Default("").Immutable().
			Comment("The bound that cut the decision short: max, licence, min or idle."),
		field.String("reason").Immutable(),
		// What carrying it out did.
		field.Int("rented").Default(0).Comment("Robots actually rented."),
		field.Int("released").Default(0).Comment("Robots actually sent to release."),
		field.Int("boot_failures").Default(0).Immutable().
			Comment("Robots destroyed at this reading for not coming up within the boot timeout."),
		field.String("error").Default("").Comment("Provider error while carrying it out; retried next period."),
		// The rule's memory after this reading.
		field.Int("up_streak").Default(0).Immutable(),
		field.Int("down_streak").Default(0).Immutable(),
		field.Int("cooldown_left").Default(0).Immutable(),
		field.Int64("term").Default(0).Immutable().Comment("Leader term of the daemon that decided."),
	}
}

func (ScaleDecision) Indexes() []ent.Index {
	return []ent.Index{index.Fields("pool_id", "at")}
}

// The query field is in schema/scaling.graphqls, with its resolver in
// graph/scaling.resolvers.go.
func (ScaleDecision) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.RelayConnection()}
}

// Policy applies the access rules of policy.go.
func (ScaleDecision) Policy() ent.Policy { return infraPolicy() }
