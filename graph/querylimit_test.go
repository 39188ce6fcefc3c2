package graph_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

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
// client library send stays within the limits. The operations are the ones
// operations_test.go finds and checks against the schema.
func TestClientQueriesWithinLimits(t *testing.T) {
	root := repoRoot(t)
	ops := goOperations(t, root, "cmd", "core", "plugins")
	ops = append(ops, jsOperations(t, root, "graph/dashboard/assets/dashboard.js")...)
	if len(ops) < 20 {
		t.Fatalf("found only %d operations; is the extraction broken?", len(ops))
	}
	for _, op := range ops {
		if err := graph.CheckQuery(op.text, graph.QueryLimits{}); err != nil {
			t.Errorf("%s: %s\n  refused: %v", op.where, op.text, err)
		}
	}
}

// Introspection is not counted in the depth limit: the ofType chains of
// GraphiQL's and graphql-codegen's query go deeper than 12 and are
// linear. Nested lists of types multiply and are bounded instead, also
// through fragments; data stays under the depth limit.
func TestCheckQueryIntrospection(t *testing.T) {
	ofType := "kind name"
	for range 20 {
		ofType = "kind name ofType { " + ofType + " }"
	}
	ok := []string{
		`{ __schema { types { fields { args { type { ` + ofType + ` } } } } } }`,
		`query Q { ...S } fragment S on Query { __schema { types { ...T } } } fragment T on __Type { fields { type { ...R } } inputFields { type { ...R } } } fragment R on __Type { ` + ofType + ` }`,
		`{ __type(name: "Pool") { fields { type { ` + ofType + ` } } } me { name } }`,
		// Three levels of lists: the standard query's bound.
		`{ __schema { types { fields { type { fields { type { interfaces { name } } } } } } } }`,
		// Data next to introspection is counted on its own.
		`{ __schema { queryType { name } } ` + strings.Repeat("pools { edges { node { ", 3) + "name" + strings.Repeat(" } } }", 3) + ` }`,
	}
	for _, q := range ok {
		if err := graph.CheckQuery(q, graph.QueryLimits{}); err != nil {
			t.Errorf("%.80s…: %v", q, err)
		}
	}
	bad := []struct{ query, code string }{
		{`{ __type(name: "Pool") { fields { type { fields { type { fields { type { fields { name } } } } } } } } }`, graph.CodeIntrospectionLimit},
		{`{ __schema { types { ...F } } } fragment F on __Type { possibleTypes { interfaces { fields { type { inputFields { name } } } } } }`, graph.CodeIntrospectionLimit},
		// A deep data query next to introspection is still refused.
		{`{ __schema { queryType { name } } ` + strings.Repeat("pools { edges { node { ", 5) + "name" + strings.Repeat(" } } }", 5) + ` }`, graph.CodeDepthLimit},
	}
	for _, c := range bad {
		if err := graph.CheckQuery(c.query, graph.QueryLimits{}); err == nil || err.Extensions["code"] != c.code {
			t.Errorf("%.80s…: got %v, want %s", c.query, err, c.code)
		}
	}
}
