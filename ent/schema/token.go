package schema

import (
	"entgo.io/contrib/entgql"
	"entgo.io/ent"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/field"
)

// Token is an API credential. Only a SHA-256 of the secret is stored; the
// secret is shown once, when the token is made. Tokens never appear in the
// GraphQL schema.
type Token struct{ ent.Schema }

func (Token) Mixin() []ent.Mixin { return []ent.Mixin{TimeMixin{}} }

func (Token) Fields() []ent.Field {
	return []ent.Field{
		field.String("name").NotEmpty().Unique(),
		field.String("hash").NotEmpty().Unique().Sensitive(),
		field.Enum("role").Values("admin", "operator", "viewer", "robot"),
		field.Int("customer_id").Optional().Nillable().
			Comment("Operators and viewers may be bound to one customer."),
		field.Int("robot_id").Optional().Nillable().Comment("Set for robot tokens."),
		field.Time("expires_at").Optional().Nillable(),
		field.Time("revoked_at").Optional().Nillable(),
	}
}

func (Token) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.Skip(entgql.SkipAll)}
}

// Policy applies the access rules of policy.go.
func (Token) Policy() ent.Policy { return adminOnlyPolicy() }
