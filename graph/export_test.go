package graph

import (
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/rpacloud/rpacloud/core/audit"
)

// ArgClass is argClass, for the schema-derived test.
func ArgClass(s *ast.Schema, f *ast.FieldDefinition, path string) audit.Class {
	return argClass(s, f, path)
}

// SafeTextPaths lists safeText's paths, for the schema-derived test.
func SafeTextPaths() []string {
	out := make([]string, 0, len(safeText))
	for k := range safeText {
		out = append(out, k)
	}
	return out
}
