package schema

import (
	"context"

	"entgo.io/contrib/entgql"
	"entgo.io/ent"
	"entgo.io/ent/entql"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"

	"github.com/rpacloud/rpacloud/ent/privacy"
	"github.com/rpacloud/rpacloud/ent/schema/viewer"
)

// AuditEntry records one change made by a person, a token or an operator's
// signal: who, when, what, from where and how it ended (core/audit writes
// them). It is append-only: every field is immutable, no API field writes
// it, and a hook refuses updates and deletes whatever the context, so not
// even an administrator's token can rewrite the trail. Like Event it has
// plain columns and no edges, so an entry outlives what it names and no
// `has…With` predicate can reach another type through it.
type AuditEntry struct{ ent.Schema }

// Bounds of the text fields; core/audit cuts to them.
const (
	AuditActorMax     = 200
	AuditActionMax    = 100
	AuditTargetMax    = 300
	AuditArgumentsMax = 4096
	AuditCodeMax      = 64
	AuditRemoteMax    = 100
	AuditRequestIDMax = 128
)

func (AuditEntry) Fields() []ent.Field {
	return []ent.Field{
		field.Time("at").Default(nowUTC).Immutable().
			Annotations(entgql.OrderField("AT")),
		field.String("actor").NotEmpty().MaxLen(AuditActorMax).Immutable().
			Comment("Who: the API token's name, or signal:SIGHUP, join-token:ID, daemon:bootstrap."),
		field.String("actor_role").Default("").MaxLen(32).Immutable().
			Comment("The token's role (admin, operator, viewer); empty for non-token actors."),
		field.Int("actor_customer_id").Optional().Nillable().Immutable().Annotations(entgql.Type("ID")).
			Comment("The customer the actor's token is bound to; null for platform-wide tokens."),
		field.Int("scope_customer_id").Optional().Nillable().Immutable().Annotations(entgql.Type("ID")).
			Comment("The customer whose work or data the action concerned, who may read the entry; null: platform-wide."),
		field.String("action").NotEmpty().MaxLen(AuditActionMax).Immutable().
			Comment("The operation: the GraphQL mutation's name (submitBatch) or reloadConfig, enrolRobot, createToken."),
		field.String("target").Default("").MaxLen(AuditTargetMax).Immutable().
			Comment("What it acted on, e.g. `batch 42`, `process vat-filing`."),
		field.String("arguments").Default("").MaxLen(AuditArgumentsMax).Immutable().
			Comment("JSON of the arguments; values not classified as safe are replaced by \"[redacted]\"."),
		field.Enum("outcome").Values("ok", "refused", "error").Immutable(),
		field.String("error_code").Default("").MaxLen(AuditCodeMax).Immutable().
			Comment("The API's error code when the outcome is not ok, e.g. FORBIDDEN."),
		field.String("remote_addr").Default("").MaxLen(AuditRemoteMax).Immutable().
			Comment("The request's peer address (no proxy header is trusted); empty for signals."),
		field.String("request_id").Default("").MaxLen(AuditRequestIDMax).Immutable().
			Comment("The request's X-Request-Id header, if it carried one."),
	}
}

// Indexes serve the newest-first listing by each filter; a department
// principal's privacy rule is scope_customer_id = c OR actor_customer_id
// = c, so both columns need an index led by them (without the second, the
// OR is a scan of the whole, never-pruned table).
func (AuditEntry) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("at"),
		index.Fields("scope_customer_id", "at"),
		index.Fields("actor_customer_id", "at"),
		index.Fields("actor", "at"),
	}
}

func (AuditEntry) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.QueryField("auditEntries"), entgql.RelayConnection()}
}

// Hooks make the trail append-only below every caller.
func (AuditEntry) Hooks() []ent.Hook {
	return []ent.Hook{func(next ent.Mutator) ent.Mutator {
		return ent.MutateFunc(func(ctx context.Context, m ent.Mutation) (ent.Value, error) {
			if !m.Op().Is(ent.OpCreate) {
				return nil, privacy.Denyf("the audit trail is append-only: %s refused", m.Op())
			}
			return next.Mutate(ctx, m)
		})
	}}
}

// Policy: administrators and principals bound to no customer read every
// entry (they see every customer's data already); a principal bound to a
// customer reads the entries about that customer's work and those made by
// its own customer's tokens; robots read none. Writes are core/audit's
// alone, under the daemon's decision context.
func (AuditEntry) Policy() ent.Policy {
	return privacy.Policy{
		Query:    privacy.QueryPolicy{denyWithoutPrincipal(), allowAdmin(), auditFilter()},
		Mutation: privacy.MutationPolicy{privacy.AlwaysDenyRule()},
	}
}

func auditFilter() privacy.QueryRule {
	return privacy.FilterFunc(func(ctx context.Context, f privacy.Filter) error {
		p, _ := viewer.FromContext(ctx)
		vis, cid := p.Visibility()
		switch vis {
		case viewer.SeesAll:
			return privacy.Allow
		case viewer.SeesShared:
			return privacy.Denyf("robots cannot read the audit trail")
		}
		f.Where(entql.Or(entql.IntEQ(cid).Field("scope_customer_id"), entql.IntEQ(cid).Field("actor_customer_id")))
		return privacy.Allow
	})
}
