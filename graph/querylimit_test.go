package graph_test

import (
	"context"
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	gqlast "github.com/vektah/gqlparser/v2/ast"
	gqlparser "github.com/vektah/gqlparser/v2/parser"

	"github.com/rpacloud/rpacloud/graph"
)

// fragmentBomb returns a query whose fragments each spread the next one
// twice: n fragments expand to 2ⁿ selections of the last one.
func fragmentBomb(n int) string {
	var b strings.Builder
	b.WriteString("query Bomb { ...F0 }\n")
	for i := range n {
		fmt.Fprintf(&b, "fragment F%d on Query { ...F%d ...F%d }\n", i, i+1, i+1)
	}
	fmt.Fprintf(&b, "fragment F%d on Query { me { name } }\n", n)
	return b.String()
}

func TestCheckQueryFragmentBomb(t *testing.T) {
	for _, n := range []int{24, 30, 60, 200} {
		err := graph.CheckQuery(fragmentBomb(n), graph.QueryLimits{})
		if err == nil || err.Extensions["code"] != graph.CodeFieldLimit {
			t.Fatalf("n=%d: got %v, want %s", n, err, graph.CodeFieldLimit)
		}
		if !strings.Contains(err.Message, "the limit is 10000") || !strings.Contains(err.Message, `"Bomb"`) {
			t.Errorf("n=%d: message %q does not name the operation and the limit", n, err.Message)
		}
	}
	// n=60 expands to 2⁶¹ fields (2⁶⁰ copies of me{name}): the count is
	// exact, not wrapped.
	if err := graph.CheckQuery(fragmentBomb(60), graph.QueryLimits{}); !strings.Contains(err.Message, "selects 2305843009213693952 fields") {
		t.Errorf("n=60: %s", err.Message)
	}
	// Below the limit the same shape passes: the count is of real work.
	if err := graph.CheckQuery(fragmentBomb(10), graph.QueryLimits{}); err != nil {
		t.Errorf("n=10 (2047 fields): %v", err)
	}
}

func TestCheckQueryLimits(t *testing.T) {
	cases := []struct {
		name, query, code string
	}{
		{"cycle", `{...A} fragment A on Query {...B} fragment B on Query {me{name} ...A}`, graph.CodeFragmentCycle},
		{"unused cycle", `{me{name}} fragment A on Query {...A}`, graph.CodeFragmentCycle},
		{"aliases", "{" + strings.Repeat("...M ", 300) + "} fragment M on Query { a: me { name } b: me { name } }", graph.CodeAliasLimit},
		{"depth through fragments", `{...A} fragment A on Query {pools{edges{node{...B}}}} fragment B on Pool {robots{edges{node{pool{...C}}}}} fragment C on Pool {robots{edges{node{pool{robots{edges{node{name}}}}}}}}`, graph.CodeDepthLimit},
		{"second operation", "query A {me{name}} query B {" + strings.Repeat("...F ", 200) + "} fragment F on Query {...G ...G ...G ...G ...G ...G ...G ...G ...G ...G ...G ...G ...G ...G ...G ...G ...G ...G ...G ...G ...G ...G ...G ...G ...G ...G ...G ...G ...G ...G } fragment G on Query { me { name } }", graph.CodeFieldLimit},
	}
	for _, c := range cases {
		err := graph.CheckQuery(c.query, graph.QueryLimits{})
		if err == nil || err.Extensions["code"] != c.code {
			t.Errorf("%s: got %v, want %s", c.name, err, c.code)
		}
	}
	// Syntax errors are left to the executor, which reports them with
	// its own code.
	if err := graph.CheckQuery(`{me{name}`, graph.QueryLimits{}); err != nil {
		t.Errorf("syntax error: %v", err)
	}
}

// The bomb is refused on every transport and for every role, before
// gqlgen's unmemoised walks (n=30 ran for minutes before).
func TestFragmentBombRefused(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	for _, n := range []int{30, 60} {
		q := fragmentBomb(n)
		for name, c := range map[string]interface {
			Do(context.Context, string, map[string]any, any) error
		}{"admin": e.admin, "viewer": e.view, "robot": e.bot} {
			if err := c.Do(ctx, q, nil, nil); code(err) != graph.CodeFieldLimit {
				t.Errorf("POST n=%d as %s: %v", n, name, err)
			}
		}
		req, _ := http.NewRequest(http.MethodGet, e.srv.URL+"?query="+url.QueryEscape(q), nil)
		req.Header.Set("Authorization", "Bearer "+e.view.Token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body := readAll(t, resp)
		if !strings.Contains(body, graph.CodeFieldLimit) {
			t.Errorf("GET n=%d: %d %s", n, resp.StatusCode, body)
		}
	}

	// Subscriptions too: the limit is an operation-parameter mutator,
	// which the websocket transport runs as well.
	conn := dialInit(t, e, e.view.Token)
	_ = conn.WriteJSON(map[string]any{"id": "1", "type": "subscribe", "payload": map[string]any{"query": fragmentBomb(60)}})
	_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	for {
		var msg struct {
			Type    string          `json:"type"`
			Payload json.RawMessage `json:"payload"`
		}
		if err := conn.ReadJSON(&msg); err != nil {
			t.Fatalf("subscribe bomb: %v", err)
		}
		if msg.Type == "ping" {
			continue
		}
		// gqlgen answers an operation it cannot start with "next"
		// carrying the errors (then "complete"), or with "error".
		if (msg.Type != "next" && msg.Type != "error") || !strings.Contains(string(msg.Payload), graph.CodeFieldLimit) {
			t.Fatalf("subscribe bomb: %s %s", msg.Type, msg.Payload)
		}
		break
	}
}

// dialInit opens a graphql-transport-ws connection and waits for the
// acknowledgement of connection_init with token.
func dialInit(t *testing.T, e *env, token string) *websocket.Conn {
	t.Helper()
	d := websocket.Dialer{Subprotocols: []string{"graphql-transport-ws"}}
	conn, resp, err := d.Dial("ws"+strings.TrimPrefix(e.srv.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	t.Cleanup(func() { conn.Close() })
	_ = conn.WriteJSON(map[string]any{"type": "connection_init", "payload": map[string]any{"Authorization": "Bearer " + token}})
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	var msg map[string]any
	if err := conn.ReadJSON(&msg); err != nil || msg["type"] != "connection_ack" {
		t.Fatalf("init: %v %v", msg, err)
	}
	return conn
}

func readAll(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// Every GraphQL operation the dashboard, the CLI, the robots and the
// client library send stays within the limits.
func TestClientQueriesWithinLimits(t *testing.T) {
	var queries []string
	for _, dir := range []string{"../cmd", "../core", "../plugins"} {
		queries = append(queries, goQueries(t, dir)...)
	}
	queries = append(queries, jsQueries(t, "dashboard/assets/dashboard.js")...)
	if len(queries) < 20 {
		t.Fatalf("found only %d operations; is the extraction broken?", len(queries))
	}
	for _, q := range queries {
		if err := graph.CheckQuery(q, graph.QueryLimits{}); err != nil {
			t.Errorf("%s\n  refused: %v", q, err)
		}
	}
}

func isOperation(s string) bool {
	s = strings.TrimSpace(s)
	if !strings.HasPrefix(s, "{") && !strings.HasPrefix(s, "query") && !strings.HasPrefix(s, "mutation") && !strings.HasPrefix(s, "subscription") {
		return false
	}
	doc, err := gqlparser.ParseQuery(&gqlast.Source{Input: s})
	return err == nil && len(doc.Operations) > 0 && len(doc.Operations[0].SelectionSet) > 0
}

// goQueries returns the string constants of non-test Go files under dir
// that parse as GraphQL operations, folding + of literals and of the
// package's string constants (queries are built that way).
func goQueries(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	pkgs := map[string][]*ast.File{}
	fset := token.NewFileSet()
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return err
		}
		f, err := parser.ParseFile(fset, p, nil, 0)
		if err != nil {
			return err
		}
		pkgs[filepath.Dir(p)] = append(pkgs[filepath.Dir(p)], f)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, files := range pkgs {
		consts := map[string]ast.Expr{}
		for _, f := range files {
			for _, decl := range f.Decls {
				if g, ok := decl.(*ast.GenDecl); ok && g.Tok == token.CONST {
					for _, spec := range g.Specs {
						vs := spec.(*ast.ValueSpec)
						for i, n := range vs.Names {
							if i < len(vs.Values) {
								consts[n.Name] = vs.Values[i]
							}
						}
					}
				}
			}
		}
		var eval func(ast.Expr, int) (string, bool)
		eval = func(x ast.Expr, depth int) (string, bool) {
			if depth > 10 {
				return "", false
			}
			switch x := x.(type) {
			case *ast.BasicLit:
				if x.Kind != token.STRING {
					return "", false
				}
				s, err := strconv.Unquote(x.Value)
				return s, err == nil
			case *ast.Ident:
				if v, ok := consts[x.Name]; ok {
					return eval(v, depth+1)
				}
			case *ast.ParenExpr:
				return eval(x.X, depth+1)
			case *ast.BinaryExpr:
				if x.Op == token.ADD {
					a, ok1 := eval(x.X, depth+1)
					b, ok2 := eval(x.Y, depth+1)
					return a + b, ok1 && ok2
				}
			}
			return "", false
		}
		for _, f := range files {
			ast.Inspect(f, func(n ast.Node) bool {
				x, ok := n.(ast.Expr)
				if !ok {
					return true
				}
				if s, ok := eval(x, 0); ok && isOperation(s) {
					out = append(out, s)
					return false
				}
				return true
			})
		}
	}
	return out
}

// jsQueries returns the template literals of a script that parse as
// GraphQL operations, with ${NAME} replaced by the script's constant
// template literals.
func jsQueries(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	src := string(b)
	consts := map[string]string{}
	for _, m := range regexp.MustCompile("const ([A-Z_]+) = `([^`$]*)`").FindAllStringSubmatch(src, -1) {
		consts[m[1]] = m[2]
	}
	var out []string
	for _, m := range regexp.MustCompile("`([^`]*)`").FindAllStringSubmatch(src, -1) {
		s := regexp.MustCompile(`\$\{([A-Z_]+)\}`).ReplaceAllStringFunc(m[1], func(ref string) string {
			return consts[ref[2:len(ref)-1]]
		})
		if isOperation(s) {
			out = append(out, s)
		}
	}
	return out
}
