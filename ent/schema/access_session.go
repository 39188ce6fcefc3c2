package schema

import (
	"entgo.io/contrib/entgql"
	"entgo.io/ent"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// AccessSession records who was given remote access to which VM, for
// which process and lifecycle step (developers in S3/S4, business users in
// S5). It is the seed's "connect from your own desk" made accountable.
type AccessSession struct{ ent.Schema }

func (AccessSession) Fields() []ent.Field {
	return []ent.Field{
		field.Int("process_id").Immutable(),
		field.Int("vm_id").Optional().Nillable().Immutable(),
		field.String("vm").NotEmpty().Immutable().Comment("Robot (VM) name, kept if the VM goes."),
		field.String("user").NotEmpty().Immutable().Comment("Name of the token that connected."),
		field.String("protocol").NotEmpty().Immutable(),
		field.String("host").NotEmpty().Immutable(),
		field.Int("port").Positive().Immutable(),
		field.String("stage").NotEmpty().Immutable().Comment("The process's lifecycle stage at the time."),
		field.String("purpose").Default("").Immutable(),
		field.Time("at").Default(nowUTC).Immutable(),
	}
}

func (AccessSession) Indexes() []ent.Index {
	return []ent.Index{index.Fields("process_id", "at")}
}

func (AccessSession) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.Skip(entgql.SkipAll)}
}

// Policy applies the access rules of policy.go.
func (AccessSession) Policy() ent.Policy { return infraPolicy() }
