package graph

import (
	"context"
	"reflect"
	"strings"

	"entgo.io/ent/dialect/sql"
	"github.com/99designs/gqlgen/graphql"

	"github.com/rpacloud/rpacloud/ent/schema/viewer"
)

// Edge predicates and the customer rule.
//
// The storage policies (ent/schema/policy.go) filter the rows a query
// returns, but the generated `has…With` edge predicates of a `where`
// argument are SQL sub-queries that no policy sees: from a type everyone
// may read (robots, pools, processes) a viewer of customer A could ask
// yes/no questions about customer B's tasks and extract their fields by
// bisection. guardEdgePredicates closes that class of path for every field
// at once: before any resolver runs, it walks each `where` argument and
// puts the customer rule of viewer.Owned into every sub-query that reaches a
// customer-owned type, at any depth, so a predicate can only ever match
// rows the principal could have read directly. `hasX: true|false` becomes
// the equivalent `hasXWith` so it is filtered the same way. The walk works
// on the generated WhereInput types by reflection, so a new edge or type is
// covered without touching this file; the generated authorisation test
// (tenancy_test.go) proves it for every path the schema has.

// guardEdgePredicates is the field middleware that applies the guard.
func guardEdgePredicates(ctx context.Context, next graphql.Resolver) (any, error) {
	fc := graphql.GetFieldContext(ctx)
	if fc == nil || len(fc.Args) == 0 {
		return next(ctx)
	}
	p, ok := viewer.FromContext(ctx)
	if !ok {
		// No principal: the storage policies refuse every read, and with it
		// every predicate of the read.
		return next(ctx)
	}
	vis, cid := p.Visibility()
	if vis == viewer.SeesAll {
		return next(ctx)
	}
	g := scopeGuard{vis: vis, customer: cid}
	for _, a := range fc.Args {
		g.walkArg(reflect.ValueOf(a))
	}
	return next(ctx)
}

type scopeGuard struct {
	vis      viewer.Visibility
	customer int
}

// isWhereInput reports whether t is *ent.XWhereInput.
func isWhereInput(t reflect.Type) bool {
	return t.Kind() == reflect.Pointer && t.Elem().Kind() == reflect.Struct &&
		strings.HasSuffix(t.Elem().Name(), "WhereInput") &&
		strings.HasSuffix(t.Elem().PkgPath(), "/rpacloud/ent")
}

func (g scopeGuard) walkArg(v reflect.Value) {
	if !v.IsValid() {
		return
	}
	switch {
	case isWhereInput(v.Type()):
		g.walk(v)
	case v.Kind() == reflect.Slice && isWhereInput(v.Type().Elem()):
		for i := range v.Len() {
			g.walk(v.Index(i))
		}
	}
}

// walk scopes the edge predicates of one *XWhereInput and of everything
// nested in it.
func (g scopeGuard) walk(w reflect.Value) {
	if w.IsNil() {
		return
	}
	s := w.Elem()
	t := s.Type()
	// hasX: true|false into an owned type becomes hasXWith, filtered below.
	for i := range t.NumField() {
		f := t.Field(i)
		if !strings.HasPrefix(f.Name, "Has") || strings.HasSuffix(f.Name, "With") || f.Type.Kind() != reflect.Pointer || f.Type.Elem().Kind() != reflect.Bool {
			continue
		}
		with := s.FieldByName(f.Name + "With")
		if !with.IsValid() || s.Field(i).IsNil() {
			continue
		}
		target := with.Type().Elem() // *YWhereInput
		if _, owned := viewer.Owned(whereType(target)); !owned {
			continue
		}
		has := s.Field(i).Elem().Bool()
		s.Field(i).Set(reflect.Zero(f.Type))
		if has {
			with.Set(reflect.Append(with, reflect.New(target.Elem())))
			continue
		}
		// hasX: false = not (hasXWith: [{}]), kept beside any other "not".
		inner := reflect.New(t)
		iw := inner.Elem().FieldByName(f.Name + "With")
		iw.Set(reflect.Append(iw, reflect.New(target.Elem())))
		outer := reflect.New(t)
		outer.Elem().FieldByName("Not").Set(inner)
		and := s.FieldByName("And")
		and.Set(reflect.Append(and, outer))
	}
	for i := range t.NumField() {
		f := t.Field(i)
		fv := s.Field(i)
		switch {
		case f.Name == "Not" && isWhereInput(f.Type):
			g.walk(fv)
		case (f.Name == "And" || f.Name == "Or") && f.Type.Kind() == reflect.Slice:
			for j := range fv.Len() {
				g.walk(fv.Index(j))
			}
		case strings.HasPrefix(f.Name, "Has") && strings.HasSuffix(f.Name, "With") && f.Type.Kind() == reflect.Slice && isWhereInput(f.Type.Elem()):
			for j := range fv.Len() {
				if fv.Index(j).IsNil() {
					continue
				}
				g.scope(fv.Index(j))
				g.walk(fv.Index(j))
			}
		}
	}
}

// whereType is the ent type name of *XWhereInput: X.
func whereType(t reflect.Type) string {
	return strings.TrimSuffix(t.Elem().Name(), "WhereInput")
}

// scope adds the customer rule to the sub-query that w (a *YWhereInput
// reached through an edge) describes, when Y is customer-owned.
func (g scopeGuard) scope(w reflect.Value) {
	o, owned := viewer.Owned(whereType(w.Type()))
	if !owned {
		return
	}
	col, cid := o.Column, g.customer
	var pred func(*sql.Selector)
	switch {
	case g.vis == viewer.SeesShared && !o.Shared:
		pred = func(s *sql.Selector) { s.Where(sql.False()) }
	case g.vis == viewer.SeesShared:
		pred = func(s *sql.Selector) { s.Where(sql.IsNull(s.C(col))) }
	case o.Shared:
		pred = func(s *sql.Selector) { s.Where(sql.Or(sql.IsNull(s.C(col)), sql.EQ(s.C(col), cid))) }
	default:
		pred = func(s *sql.Selector) { s.Where(sql.EQ(s.C(col), cid)) }
	}
	add := w.MethodByName("AddPredicates")
	// AddPredicates(...predicate.Y); predicate.Y is func(*sql.Selector).
	add.Call([]reflect.Value{reflect.ValueOf(pred).Convert(add.Type().In(0).Elem())})
}
