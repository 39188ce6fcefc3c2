package schema

import (
	"entgo.io/contrib/entgql"
	"entgo.io/ent"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// ConfigRevision is one applied configuration: the HCL files as applied
// (by SIGHUP, at start or through applyConfig), so that every daemon on
// one database runs the same one (cmd/rpacloud/daemon followOthers). The
// files hold no secret: the loader refuses literal secrets, so they carry
// vault: references only. Admin-only and never in the GraphQL schema.
type ConfigRevision struct{ ent.Schema }

func (ConfigRevision) Fields() []ent.Field {
	return []ent.Field{
		field.String("hash").NotEmpty().Immutable().
			Comment("Hex sha256 of the files, canonical: sorted by name, each name and content length-prefixed."),
		field.JSON("files", map[string]string{}).Immutable().
			Comment("File name (base name, ending in .hcl) to content."),
		field.String("applied_by").Default("").Immutable(),
		field.Time("created_at").Immutable().Default(nowUTC),
	}
}

func (ConfigRevision) Indexes() []ent.Index {
	return []ent.Index{index.Fields("created_at")}
}

func (ConfigRevision) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.Skip(entgql.SkipAll)}
}

// Policy applies the access rules of policy.go.
func (ConfigRevision) Policy() ent.Policy { return adminOnlyPolicy() }
