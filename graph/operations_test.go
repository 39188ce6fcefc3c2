package graph_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/vektah/gqlparser/v2"
	gqlast "github.com/vektah/gqlparser/v2/ast"
)

// operation is one GraphQL document written by hand outside the schema:
// a Go string literal or a JavaScript template literal.
type operation struct {
	where string // file:line
	text  string
}

// repoRoot is the module root, two levels above this package's directory.
func repoRoot(t *testing.T) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Dir(wd)
}

func loadSchema(t *testing.T, root string) *gqlast.Schema {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(root, "schema", "*.graphqls"))
	if err != nil || len(files) == 0 {
		t.Fatalf("schema files: %v (%d found)", err, len(files))
	}
	var srcs []*gqlast.Source
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		srcs = append(srcs, &gqlast.Source{Name: f, Input: string(b)})
	}
	s, gerr := gqlparser.LoadSchema(srcs...)
	if gerr != nil {
		t.Fatalf("schema: %v", gerr)
	}
	return s
}

// opStart recognises the start of a GraphQL document: an operation
// keyword, or an anonymous query's selection set opening on a field name
// and holding a nested selection (a JSON object opens on a quote; a route
// pattern's "{name}" nests nothing).
var opStart = regexp.MustCompile(`^\s*(?:(?:query|mutation|subscription)\b[^{}]*\{\s*[A-Za-z_.]|fragment\s+\w+\s+on\b|\{\s*[A-Za-z_][^{}]*\{)`)

// formatVerb marks a document assembled with fmt at run time: its text is
// not the operation sent, so it cannot be checked here.
var formatVerb = regexp.MustCompile(`%[-+# 0-9.]*[sdvq]`)

// malformedOnPurpose are files whose documents are invalid by design: they
// test how the API refuses malformed, cyclic or oversized documents.
var malformedOnPurpose = map[string]bool{
	"graph/fuzz_test.go":       true,
	"graph/querylimit_test.go": true,
	"graph/operations_test.go": true,
}

// goOperations collects the string literals of the Go files under dirs
// that are GraphQL documents.
func goOperations(t *testing.T, root string, dirs ...string) []operation {
	t.Helper()
	var ops []operation
	fset := token.NewFileSet()
	for _, dir := range dirs {
		err := filepath.WalkDir(filepath.Join(root, dir), func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() && (d.Name() == "testdata" || d.Name() == "node_modules") {
				return filepath.SkipDir
			}
			rel, _ := filepath.Rel(root, path)
			if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "generated.go") || malformedOnPurpose[filepath.ToSlash(rel)] {
				return nil
			}
			src, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			f, err := parser.ParseFile(fset, path, src, parser.SkipObjectResolution)
			if err != nil {
				return err
			}
			lines := strings.Split(string(src), "\n")
			consts := fileConsts(f)
			add := func(n ast.Node, s string) {
				if !opStart.MatchString(s) || formatVerb.MatchString(s) {
					return
				}
				pos := fset.Position(n.Pos())
				if markedInvalid(lines, pos.Line) {
					return
				}
				ops = append(ops, operation{where: filepath.ToSlash(rel) + ":" + strconv.Itoa(pos.Line), text: s})
			}
			ast.Inspect(f, func(n ast.Node) bool {
				switch n := n.(type) {
				case *ast.BinaryExpr:
					// A document put together from literals and string
					// constants is checked whole; one with a run-time part
					// cannot be checked here.
					if n.Op != token.ADD {
						return true
					}
					if s, ok := fold(n, consts); ok {
						add(n, s)
					}
					return false
				case *ast.BasicLit:
					if n.Kind == token.STRING {
						if s, err := strconv.Unquote(n.Value); err == nil {
							add(n, s)
						}
					}
				}
				return true
			})
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return ops
}

// markedInvalid: a document is invalid on purpose (a test of how the API
// refuses it) when its line or the one before says gqlcheck:invalid.
func markedInvalid(lines []string, line int) bool {
	for _, l := range []int{line - 1, line - 2} {
		if l >= 0 && l < len(lines) && strings.Contains(lines[l], "gqlcheck:invalid") {
			return true
		}
	}
	return false
}

// fileConsts are the file's constant expressions by name.
func fileConsts(f *ast.File) map[string]ast.Expr {
	m := map[string]ast.Expr{}
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.CONST {
			continue
		}
		for _, spec := range g.Specs {
			vs := spec.(*ast.ValueSpec)
			for i, name := range vs.Names {
				if i < len(vs.Values) {
					m[name.Name] = vs.Values[i]
				}
			}
		}
	}
	return m
}

// fold evaluates a string expression of literals, the file's constants and
// +; ok is false when part of it is known only at run time.
func fold(e ast.Expr, consts map[string]ast.Expr) (string, bool) {
	switch e := e.(type) {
	case *ast.BasicLit:
		if e.Kind != token.STRING {
			return "", false
		}
		s, err := strconv.Unquote(e.Value)
		return s, err == nil
	case *ast.Ident:
		if v, ok := consts[e.Name]; ok {
			return fold(v, consts)
		}
	case *ast.ParenExpr:
		return fold(e.X, consts)
	case *ast.BinaryExpr:
		if e.Op == token.ADD {
			a, ok1 := fold(e.X, consts)
			b, ok2 := fold(e.Y, consts)
			return a + b, ok1 && ok2
		}
	}
	return "", false
}

var (
	jsTemplate = regexp.MustCompile("(?s)`([^`]*)`")
	jsConst    = regexp.MustCompile("(?s)const\\s+([A-Z_a-z][A-Za-z_0-9]*)\\s*=\\s*`([^`]*)`")
	jsInterp   = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z_0-9]*)\}`)
)

// jsOperations collects the template literals of the JavaScript files that
// are GraphQL documents, with ${NAME} replaced by the file's const NAME.
func jsOperations(t *testing.T, root string, files ...string) []operation {
	t.Helper()
	var ops []operation
	for _, name := range files {
		b, err := os.ReadFile(filepath.Join(root, name))
		if err != nil {
			t.Fatal(err)
		}
		src := string(b)
		consts := map[string]string{}
		for _, m := range jsConst.FindAllStringSubmatch(src, -1) {
			consts[m[1]] = m[2]
		}
		for _, m := range jsTemplate.FindAllStringSubmatchIndex(src, -1) {
			text := src[m[2]:m[3]]
			if !opStart.MatchString(text) {
				continue
			}
			text = jsInterp.ReplaceAllStringFunc(text, func(s string) string {
				if v, ok := consts[s[2:len(s)-1]]; ok {
					return v
				}
				return s
			})
			line := 1 + strings.Count(src[:m[0]], "\n")
			ops = append(ops, operation{where: name + ":" + strconv.Itoa(line), text: text})
		}
	}
	return ops
}

// TestOperationsMatchSchema: every GraphQL operation written by hand, in
// the Go of the core, the commands, the API, the plugins and the examples
// and in the dashboard's and the npm client's JavaScript, is valid against
// the schema, so a renamed or removed field fails here rather than at run
// time in a robot, the CLI or a browser.
func TestOperationsMatchSchema(t *testing.T) {
	root := repoRoot(t)
	schema := loadSchema(t, root)
	ops := goOperations(t, root, "core", "cmd", "graph", "plugins", "examples")
	ops = append(ops, jsOperations(t, root, "graph/dashboard/assets/dashboard.js", "graph/dashboard/nodetest/subscribe.mjs", "graph/dashboard/nodetest/wsauth.mjs")...)
	// The extraction must keep finding the operations; a regression in it
	// would otherwise pass silently.
	if len(ops) < 23 {
		t.Fatalf("found %d hand-written operations, want at least 23", len(ops))
	}
	t.Logf("%d hand-written operations checked", len(ops))
	for _, op := range ops {
		if _, errs := gqlparser.LoadQueryWithRules(schema, op.text, nil); errs != nil {
			t.Errorf("%s: %v\n%s", op.where, errs, op.text)
		}
	}
}

// TestOperationsCheckCatchesUnknownField: the check fails on an operation
// that names a field the schema does not have.
func TestOperationsCheckCatchesUnknownField(t *testing.T) {
	schema := loadSchema(t, repoRoot(t))
	if _, errs := gqlparser.LoadQueryWithRules(schema, `{ pools { edges { node { name noSuchField } } } }`, nil); errs == nil {
		t.Fatal("an unknown field passed validation")
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "x.go"), []byte("package x\n\nconst q = `query { me { name } noSuchRootField }`\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ops := goOperations(t, dir, ".")
	if len(ops) != 1 {
		t.Fatalf("extracted %d operations from the fixture, want 1", len(ops))
	}
	if _, errs := gqlparser.LoadQueryWithRules(schema, ops[0].text, nil); errs == nil {
		t.Fatal("an unknown root field passed validation")
	}
}
