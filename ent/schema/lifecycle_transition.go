package schema

import (
	"entgo.io/contrib/entgql"
	"entgo.io/ent"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// LifecycleTransition is one step of a process's delivery path (S1..S5,
// accepted) with the evidence its gate saw. Rows are appended, never
// changed: the unique (process_id, seq) makes two concurrent transitions
// of one process impossible, so the loser is told to reload.
type LifecycleTransition struct{ ent.Schema }

func (LifecycleTransition) Fields() []ent.Field {
	return []ent.Field{
		field.Int("process_id").Immutable(),
		field.Int("seq").Positive().Immutable().Comment("1 for the first step of the process."),
		field.String("from_stage").NotEmpty().Immutable(),
		field.String("to_stage").NotEmpty().Immutable(),
		field.String("action").NotEmpty().Immutable(),
		field.String("actor").NotEmpty().Immutable().Comment("Name of the token that asked."),
		field.Time("at").Default(nowUTC).Immutable(),
		field.Text("note").Default("").Immutable(),
		field.Text("evidence").Default("{}").Immutable().
			Comment("JSON of lifecycle.Evidence as the gate saw it, runs and VMs included."),
	}
}

func (LifecycleTransition) Indexes() []ent.Index {
	return []ent.Index{index.Fields("process_id", "seq").Unique()}
}

func (LifecycleTransition) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.Skip(entgql.SkipAll)}
}

// Policy applies the access rules of policy.go.
func (LifecycleTransition) Policy() ent.Policy { return infraPolicy() }
