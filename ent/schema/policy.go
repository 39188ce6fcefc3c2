package schema

import (
	"context"

	"entgo.io/ent"
	"entgo.io/ent/entql"

	"github.com/rpacloud/rpacloud/ent/privacy"
	"github.com/rpacloud/rpacloud/ent/schema/viewer"
)

// Privacy is enforced in the storage layer, not per resolver, so that every
// path to the data (connections, node(id), edges) applies the same rules.
// The daemon's own loops run with privacy.DecisionContext(ctx, Allow);
// requests carry a viewer.Principal.

// denyWithoutPrincipal refuses any operation made outside the daemon's own
// loops by nobody: a missing principal is a bug, never "allow".
func denyWithoutPrincipal() privacy.QueryMutationRule {
	return privacy.ContextQueryMutationRule(func(ctx context.Context) error {
		if _, ok := viewer.FromContext(ctx); !ok {
			return privacy.Denyf("no authenticated principal")
		}
		return privacy.Skip
	})
}

// allowAdmin lets administrators through.
func allowAdmin() privacy.QueryMutationRule {
	return privacy.ContextQueryMutationRule(func(ctx context.Context) error {
		if p, ok := viewer.FromContext(ctx); ok && p.Role == viewer.Admin {
			return privacy.Allow
		}
		return privacy.Skip
	})
}

// customerFilter narrows reads of a customer-owned type to the rows the
// caller may see, by the customer rule of viewer.Owned (the same table the
// API's predicate guard uses for edge sub-queries). Robots see no
// customer's rows at all: what they need of a task they get from the claim.
func customerFilter(typ string) privacy.QueryRule {
	o, ok := viewer.Owned(typ)
	if !ok {
		panic("ent/schema: " + typ + " has a customer policy but is not in viewer's ownership table")
	}
	return privacy.FilterFunc(func(ctx context.Context, f privacy.Filter) error {
		p, _ := viewer.FromContext(ctx)
		vis, cid := p.Visibility()
		switch {
		case vis == viewer.SeesAll:
			return privacy.Allow
		case vis == viewer.SeesShared && !o.Shared:
			return privacy.Denyf("robots cannot read customer data")
		case vis == viewer.SeesShared:
			f.Where(entql.FieldNil(o.Column))
		case o.Shared:
			f.Where(entql.Or(entql.FieldNil(o.Column), entql.IntEQ(cid).Field(o.Column)))
		default:
			f.Where(entql.IntEQ(cid).Field(o.Column))
		}
		return privacy.Allow
	})
}

// infraRead lets any authenticated principal read infrastructure rows
// (pools, robots, VMs, processes): they hold no customer data.
func infraRead() privacy.QueryRule {
	return privacy.QueryRuleFunc(func(ctx context.Context, _ ent.Query) error {
		if _, ok := viewer.FromContext(ctx); ok {
			return privacy.Allow
		}
		return privacy.Deny
	})
}

// mutationsThroughCore denies every direct write: writes are made by core
// packages after their own authorisation check, under an Allow decision
// context, so no API field can write around them.
func mutationsThroughCore() privacy.MutationPolicy {
	return privacy.MutationPolicy{denyWithoutPrincipal(), allowAdmin(), privacy.AlwaysDenyRule()}
}

// customerPolicy is the policy of the customer-owned type typ (its ent
// type name, a key of viewer.Owned).
func customerPolicy(typ string) privacy.Policy {
	return privacy.Policy{
		Query:    privacy.QueryPolicy{denyWithoutPrincipal(), allowAdmin(), customerFilter(typ)},
		Mutation: mutationsThroughCore(),
	}
}

func infraPolicy() privacy.Policy {
	return privacy.Policy{
		Query:    privacy.QueryPolicy{denyWithoutPrincipal(), allowAdmin(), infraRead()},
		Mutation: mutationsThroughCore(),
	}
}

func adminOnlyPolicy() privacy.Policy {
	return privacy.Policy{
		Query:    privacy.QueryPolicy{denyWithoutPrincipal(), allowAdmin(), privacy.AlwaysDenyRule()},
		Mutation: mutationsThroughCore(),
	}
}
