package schema

import (
	"context"
	"strings"

	"entgo.io/ent"
)

// eventStatusHook sets status to the last part of the dotted type
// ("task.succeeded" → "succeeded") when the writer left it empty.
func eventStatusHook() ent.Hook {
	return func(next ent.Mutator) ent.Mutator {
		return ent.MutateFunc(func(ctx context.Context, m ent.Mutation) (ent.Value, error) {
			if !m.Op().Is(ent.OpCreate) {
				return next.Mutate(ctx, m)
			}
			if v, ok := m.Field("status"); ok && v.(string) != "" {
				return next.Mutate(ctx, m)
			}
			if v, ok := m.Field("type"); ok {
				typ := v.(string)
				if err := m.SetField("status", typ[strings.LastIndexByte(typ, '.')+1:]); err != nil {
					return nil, err
				}
			}
			return next.Mutate(ctx, m)
		})
	}
}
