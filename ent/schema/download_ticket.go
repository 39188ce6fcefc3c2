package schema

import (
	"entgo.io/contrib/entgql"
	"entgo.io/ent"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/field"
)

// DownloadTicket lets a browser fetch a document or an .rdp file by URL,
// which cannot carry an Authorization header. Only a SHA-256 of the ticket
// is stored; it is short-lived, and the download re-checks the rights of
// the token that asked for it. Stored (not signed in memory) so any daemon
// sharing the database serves it.
type DownloadTicket struct{ ent.Schema }

func (DownloadTicket) Fields() []ent.Field {
	return []ent.Field{
		field.String("hash").NotEmpty().Unique().Sensitive(),
		field.Enum("kind").Values("document", "rdp"),
		field.Text("params").Default("{}").Comment("JSON: what to serve."),
		field.Int("token_id").Comment("The token that asked; revoked or expired, the ticket dies too."),
		field.Time("expires_at"),
		field.Time("created_at").Default(nowUTC).Immutable(),
	}
}

func (DownloadTicket) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.Skip(entgql.SkipAll)}
}

// Policy applies the access rules of policy.go.
func (DownloadTicket) Policy() ent.Policy { return adminOnlyPolicy() }
