package graph

import (
	"context"
	"fmt"
	"math"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
	"github.com/vektah/gqlparser/v2/parser"
)

// Error codes of the operation-size limits, in extensions.code.
const (
	CodeFieldLimit = "FIELD_LIMIT_EXCEEDED"
	CodeAliasLimit = "ALIAS_LIMIT_EXCEEDED"
	CodeDepthLimit = "DEPTH_LIMIT_EXCEEDED"
	// An introspection query nests the fields that list types inside
	// each other deeper than MaxIntrospectionLists.
	CodeIntrospectionLimit = "INTROSPECTION_LIMIT_EXCEEDED"
	CodeFragmentCycle      = "FRAGMENT_CYCLE"
	CodeRequestTooLarge    = "REQUEST_TOO_LARGE"
	CodeBadRequest         = "BAD_REQUEST"
)

// shape is what one selection set costs once every fragment spread in it
// is replaced by the fragment's selections, the way gqlgen's complexity
// walk and the executor see it.
type shape struct {
	fields  int64 // fields selected, counted once per place they are reached
	aliases int64 // of those, the ones renamed with an alias
	depth   int64 // deepest field nesting, introspection's counted as 1
	// lists is the deepest nesting of fields named like introspection's
	// type lists (introspectionLists), wherever they are; introLists is
	// that nesting under __schema and __type, the only place it counts.
	lists, introLists int64
}

// MaxIntrospectionLists bounds how deep introspection's type lists may
// nest. Introspection is left out of the depth limit (GraphiQL's and
// graphql-codegen's query goes 13 levels deep through ofType chains,
// which are linear and bounded by the field and token limits), but lists
// of types nested in each other multiply: types{fields{type{fields{...}}}}
// is the schema's size to the power of the nesting. 3 is the bound of
// graphql-js's MaxIntrospectionDepthRule, which every standard
// introspection query (types → fields → args) stays within.
const MaxIntrospectionLists = 3

// introspectionLists are the introspection fields that list other types'
// members, whose nesting multiplies the work; enumValues and args do not
// lead to further types on their own.
var introspectionLists = map[string]bool{"fields": true, "inputFields": true, "interfaces": true, "possibleTypes": true}

// isIntrospectionRoot reports the fields that enter introspection.
func isIntrospectionRoot(name string) bool { return name == "__schema" || name == "__type" }

// measurer computes shapes with one result per fragment (dynamic
// programming over the fragment graph), so a document whose fragments each
// spread the next one twice costs a walk linear in its size, not 2ⁿ.
// Counts saturate instead of overflowing: n spreads of 2 reach 2ⁿ.
type measurer struct {
	frags  ast.FragmentDefinitionList
	memo   map[string]shape
	active map[string]bool // fragments on the walk's stack, to catch cycles
	cycle  string          // first fragment found spreading itself
}

func newMeasurer(frags ast.FragmentDefinitionList) *measurer {
	return &measurer{frags: frags, memo: map[string]shape{}, active: map[string]bool{}}
}

func satAdd(a, b int64) int64 {
	if a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}

func (m *measurer) set(set ast.SelectionSet) shape {
	var s shape
	for _, sel := range set {
		var sub shape
		switch sel := sel.(type) {
		case *ast.Field:
			sub = m.set(sel.SelectionSet)
			sub.fields = satAdd(sub.fields, 1)
			switch {
			case isIntrospectionRoot(sel.Name):
				// Below it only introspection types: no data.
				sub.introLists = max(sub.lists, sub.introLists)
				sub.lists, sub.depth = 0, 1
			default:
				sub.depth = satAdd(sub.depth, 1)
				if introspectionLists[sel.Name] {
					sub.lists = satAdd(sub.lists, 1)
				}
			}
			if sel.Alias != "" && sel.Alias != sel.Name {
				sub.aliases = satAdd(sub.aliases, 1)
			}
		case *ast.InlineFragment:
			sub = m.set(sel.SelectionSet)
		case *ast.FragmentSpread:
			sub = m.fragment(sel.Name)
		}
		s.fields = satAdd(s.fields, sub.fields)
		s.aliases = satAdd(s.aliases, sub.aliases)
		s.depth = max(s.depth, sub.depth)
		s.lists = max(s.lists, sub.lists)
		s.introLists = max(s.introLists, sub.introLists)
	}
	return s
}

func (m *measurer) fragment(name string) shape {
	if s, ok := m.memo[name]; ok {
		return s
	}
	if m.active[name] {
		// Validation refuses cycles too, but only after walks that would
		// not end; count nothing here and let the caller refuse.
		if m.cycle == "" {
			m.cycle = name
		}
		return shape{}
	}
	f := m.frags.ForName(name)
	if f == nil {
		return shape{} // unknown fragment: validation reports it
	}
	m.active[name] = true
	s := m.set(f.SelectionSet)
	delete(m.active, name)
	m.memo[name] = s
	return s
}

// QueryLimits bound what one operation may select, counted with every
// fragment spread expanded.
type QueryLimits struct {
	MaxFields  int // fields selected; default MaxFields
	MaxAliases int // aliased fields; default MaxAliases
	MaxDepth   int // nesting; default MaxDepth
	MaxTokens  int // lexer tokens of the whole document; default MaxTokens
}

func (l QueryLimits) withDefaults() QueryLimits {
	if l.MaxFields <= 0 {
		l.MaxFields = MaxFields
	}
	if l.MaxAliases <= 0 {
		l.MaxAliases = MaxAliases
	}
	if l.MaxDepth <= 0 {
		l.MaxDepth = MaxDepth
	}
	if l.MaxTokens <= 0 {
		l.MaxTokens = MaxTokens
	}
	return l
}

// CheckQuery parses a document (linear in its size, token-limited) and
// refuses it when any of its operations goes over a limit once fragments
// are expanded, or when a fragment spreads itself. A document that does
// not parse is let through: the executor reports the syntax error with
// its usual code.
func CheckQuery(query string, l QueryLimits) *gqlerror.Error {
	l = l.withDefaults()
	doc, err := parser.ParseQueryWithTokenLimit(&ast.Source{Input: query}, l.MaxTokens)
	if err != nil {
		return nil
	}
	m := newMeasurer(doc.Fragments)
	// Every operation, not only the one asked for: validation walks them
	// all.
	for _, op := range doc.Operations {
		s := m.set(op.SelectionSet)
		if m.cycle != "" {
			return coded(CodeFragmentCycle, "fragment %q spreads itself, directly or through other fragments", m.cycle)
		}
		if e := checkShape(op, s, l); e != nil {
			return e
		}
	}
	// Fragments no operation uses are refused by validation, which still
	// walks them first.
	for _, f := range doc.Fragments {
		m.fragment(f.Name)
		if m.cycle != "" {
			return coded(CodeFragmentCycle, "fragment %q spreads itself, directly or through other fragments", m.cycle)
		}
	}
	return nil
}

func checkShape(op *ast.OperationDefinition, s shape, l QueryLimits) *gqlerror.Error {
	name := "the operation"
	if op.Name != "" {
		name = fmt.Sprintf("operation %q", op.Name)
	}
	switch {
	case s.fields > int64(l.MaxFields):
		return coded(CodeFieldLimit, "%s selects %s fields once its fragments are expanded; the limit is %d", name, count(s.fields), l.MaxFields)
	case s.aliases > int64(l.MaxAliases):
		return coded(CodeAliasLimit, "%s selects %s aliased fields once its fragments are expanded; the limit is %d", name, count(s.aliases), l.MaxAliases)
	case s.depth > int64(l.MaxDepth):
		return coded(CodeDepthLimit, "%s is nested %s levels deep; the limit is %d", name, count(s.depth), l.MaxDepth)
	case s.introLists > MaxIntrospectionLists:
		return coded(CodeIntrospectionLimit, "%s nests fields, inputFields, interfaces or possibleTypes %s levels deep in introspection; the limit is %d", name, count(s.introLists), MaxIntrospectionLists)
	}
	return nil
}

// count prints a saturated count as what it is: a lower bound.
func count(n int64) string {
	if n == math.MaxInt64 {
		return "more than 9223372036854775806"
	}
	return fmt.Sprint(n)
}

// queryLimit runs CheckQuery before gqlgen parses and validates a query,
// for every transport (POST, GET and websocket subscriptions): gqlgen's
// complexity walk and the validator expand fragment spreads without
// memoisation, so the bound has to come before them.
type queryLimit struct{ limits QueryLimits }

var _ interface {
	graphql.HandlerExtension
	graphql.OperationParameterMutator
	graphql.OperationContextMutator
} = queryLimit{}

func (queryLimit) ExtensionName() string                   { return "QueryLimit" }
func (queryLimit) Validate(graphql.ExecutableSchema) error { return nil }

func (q queryLimit) MutateOperationParameters(ctx context.Context, p *graphql.RawParams) *gqlerror.Error {
	return CheckQuery(p.Query, q.limits)
}

// MutateOperationContext checks the depth of the operation actually run
// again on the validated document, with the same memoised walk: a query
// from a persisted-query cache may not have gone through
// MutateOperationParameters with its text.
func (q queryLimit) MutateOperationContext(ctx context.Context, oc *graphql.OperationContext) *gqlerror.Error {
	if oc.Operation == nil || oc.Doc == nil {
		return nil
	}
	l := q.limits.withDefaults()
	return checkShape(oc.Operation, newMeasurer(oc.Doc.Fragments).set(oc.Operation.SelectionSet), l)
}
