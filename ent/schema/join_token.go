package schema

import (
	"entgo.io/contrib/entgql"
	"entgo.io/ent"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/field"
)

// JoinToken lets existing machines enrol as robots of one pool. Like
// Token, only a SHA-256 of the secret is stored and the secret is shown
// once; it is consumed one use per enrolment, by a compare-and-set on
// uses, so concurrent joins never exceed max_uses. It is left out of the
// generated GraphQL schema: the API serves it through hand-written types
// that carry neither secret nor hash.
type JoinToken struct{ ent.Schema }

func (JoinToken) Mixin() []ent.Mixin { return []ent.Mixin{TimeMixin{}} }

func (JoinToken) Fields() []ent.Field {
	return []ent.Field{
		field.String("hash").NotEmpty().Unique().Sensitive(),
		field.Int("pool_id"),
		field.String("pool_name").NotEmpty().
			Comment("The pool's name when the token was made, for listings."),
		field.Time("expires_at"),
		field.Int("max_uses").Positive(),
		field.Int("uses").NonNegative().Default(0),
		field.Time("revoked_at").Optional().Nillable(),
		field.String("created_by").Default("").
			Comment("Name of the API token that made it."),
	}
}

func (JoinToken) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.Skip(entgql.SkipAll)}
}

// Policy applies the access rules of policy.go.
func (JoinToken) Policy() ent.Policy { return adminOnlyPolicy() }
