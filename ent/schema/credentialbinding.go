package schema

import (
	"entgo.io/contrib/entgql"
	"entgo.io/ent"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// CredentialBinding says that a process uses one credential of its owner,
// bound through the API (bindings declared in HCL live in the process's
// `credentials` list). It holds names only: the credential itself is in
// Vault, never in the database.
type CredentialBinding struct{ ent.Schema }

func (CredentialBinding) Fields() []ent.Field {
	return []ent.Field{
		field.Int("customer_id").Comment("Customer (department) owning the credential and the process."),
		field.String("name").NotEmpty().MaxLen(200).Comment("Credential name under the customer, e.g. etax/acme."),
		field.Int("process_id"),
		field.String("created_by").Default("").Comment("Principal that made the binding."),
		field.Time("created_at").Immutable().Default(nowUTC),
	}
}

func (CredentialBinding) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("customer_id", "name", "process_id").Unique(),
		index.Fields("process_id"),
	}
}

// The API exposes bindings as a credential's list of processes, not as
// rows of their own.
func (CredentialBinding) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.Skip(entgql.SkipAll)}
}

// Policy applies the access rules of policy.go.
func (CredentialBinding) Policy() ent.Policy { return customerPolicy("CredentialBinding") }
