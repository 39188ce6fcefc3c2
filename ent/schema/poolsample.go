package schema

import (
	"entgo.io/contrib/entgql"
	"entgo.io/ent"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// PoolSample is one periodic reading of a pool for the dashboard's time
// series and the queue-growth rule: size, idle robots and queue depth.
type PoolSample struct{ ent.Schema }

func (PoolSample) Fields() []ent.Field {
	return []ent.Field{
		field.Time("at").Default(nowUTC).Immutable().
			Annotations(entgql.OrderField("AT")),
		field.Int("pool_id").Immutable().Annotations(entgql.Type("ID")),
		field.Int("robots").NonNegative().Immutable().Comment("X: provisioned, not released."),
		field.Int("idle").NonNegative().Immutable().Comment("Z: up and idle."),
		field.Int("busy").NonNegative().Immutable(),
		field.Int("pending").NonNegative().Immutable(),
		field.Int("running").NonNegative().Immutable(),
		field.Int("max").NonNegative().Immutable().Comment("The pool's max at the time."),
	}
}

func (PoolSample) Indexes() []ent.Index {
	return []ent.Index{index.Fields("pool_id", "at"), index.Fields("at")}
}

func (PoolSample) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.QueryField(), entgql.RelayConnection()}
}

// Policy applies the access rules of policy.go.
func (PoolSample) Policy() ent.Policy { return infraPolicy() }
