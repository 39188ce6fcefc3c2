package graph_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/rpacloud/rpacloud/core/auth"
	"github.com/rpacloud/rpacloud/core/dispatch"
	"github.com/rpacloud/rpacloud/core/events"
	"github.com/rpacloud/rpacloud/core/store/storetest"
	"github.com/rpacloud/rpacloud/ent/privacy"
	"github.com/rpacloud/rpacloud/ent/schema/viewer"
	"github.com/rpacloud/rpacloud/graph"
)

// fuzzRequestBound is how long one fuzzed request may take before the
// fuzz target calls it a hang: the operation limits exist so that no
// request costs anywhere near this.
const fuzzRequestBound = 10 * time.Second

// fuzzServer is the daemon's API over SQLite, built once per fuzz
// function, and a client with its own transport so that its idle
// connections can be closed before goleak looks.
type fuzzServer struct {
	url    string
	token  string
	client *http.Client
}

func newFuzzServer(tb testing.TB) *fuzzServer {
	tb.Helper()
	db := storetest.SQLite(tb)
	ctx := privacy.DecisionContext(context.Background(), privacy.Allow)
	db.Customer.Create().SetName("acme").SaveX(ctx)
	pl := db.Pool.Create().SetName("p").SetProvider("local").SaveX(ctx)
	db.Process.Create().SetName("echo").SetPoolID(pl.ID).SetRunner("echo").SaveX(ctx)
	db.Robot.Create().SetName("r1").SetPoolID(pl.ID).SaveX(ctx)
	bus := events.New()
	res := &graph.Resolver{Client: db.Client, Queue: dispatch.New(db.Client, dispatch.Options{Bus: bus}), Bus: bus}
	h := graph.NewHandler(res, graph.HandlerOptions{Logger: slog.New(slog.DiscardHandler)})
	base, cancel := context.WithCancel(context.Background())
	srv := httptest.NewUnstartedServer(auth.Middleware(db.Client, h))
	srv.Config.BaseContext = func(net.Listener) context.Context { return base }
	srv.Config.ErrorLog = nil
	srv.Start()
	tr := &http.Transport{}
	s := &fuzzServer{url: srv.URL, client: &http.Client{Transport: tr}}
	tb.Cleanup(func() {
		tr.CloseIdleConnections()
		cancel()
		srv.Close()
	})
	tok, err := auth.Issue(context.Background(), db.Client, auth.IssueRequest{Name: "wall", Role: viewer.Viewer})
	if err != nil {
		tb.Fatal(err)
	}
	s.token = tok
	return s
}

// post sends one body and returns the status and response body. It fails
// the test when the server does not answer within fuzzRequestBound.
func (s *fuzzServer) post(t *testing.T, body []byte) (int, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), fuzzRequestBound)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+s.token)
	start := time.Now()
	resp, err := s.client.Do(req)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil {
			t.Fatalf("no answer within %v to a %d-byte request", fuzzRequestBound, len(body))
		}
		t.Fatalf("request failed after %v: %v", time.Since(start), err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading the answer after %v: %v", time.Since(start), err)
	}
	return resp.StatusCode, out
}

// deepQuery nests pools, robots and pool n times (8n levels).
func deepQuery(n int) string {
	return strings.Repeat("{pools{edges{node{robots{edges{node{pool", n) + "{name}" + strings.Repeat("}}}}}}}}", n)
}

func manyAliases(n int) string {
	var b strings.Builder
	b.WriteString("{")
	for i := range n {
		fmt.Fprintf(&b, "a%d:me{name} ", i)
	}
	b.WriteString("}")
	return b.String()
}

func hugeIDs(n int) string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("%d", 1<<32+i)
	}
	b, _ := json.Marshal(map[string]any{"ids": ids})
	return string(b)
}

// FuzzGraphQLOperation sends arbitrary operations, with and without
// arbitrary variables, to the API as a viewer. The server must answer
// each one (no panic, no hang, HTTP 200, 400, 413 or 422 with a JSON
// body) and keep answering {me{name}} afterwards.
func FuzzGraphQLOperation(f *testing.F) {
	seeds := []struct{ query, vars string }{
		{`{me{name role}}`, ``},
		{`query Q($n:Int){tasks(first:$n){totalCount edges{node{id state}}}}`, `{"n":5}`},
		{`{pools{edges{node{name robots{totalCount}}}}}`, `null`},
		{`{processes{edges{node{name pool{name}}}}}`, `{}`},
		{`query($id:ID!){node(id:$id){id}}`, `{"id":"1"}`},
		{`query($ids:[ID!]!){nodes(ids:$ids){id}}`, `{"ids":["1","2","4294967297"]}`},
		{`mutation{submitBatch(input:{process:"echo",inputs:[{a:1}]}){id}}`, ``},
		{`mutation($c:String){submitBatch(input:{process:"echo",customer:$c,inputs:[{a:1}]}){id total}}`, `{"c":"acme"}`},
		{`{__schema{types{name fields{name}}}}`, ``},
		{`{__typename}`, `[]`},
		{`subscription{events{type}}`, ``},
		{`{nope}`, `{"x":`},
		{`{me{name}`, `"str"`},
		{``, ``},
		{`query($a:Int){me{name}}`, `{"a":"not an int"}`},
		{`{tasks(first:100000){totalCount}}`, ``},
		{`{tasks(first:-1){totalCount}}`, ``},
		{deepQuery(3), ``},
		{deepQuery(40), ``},
		{strings.Repeat("{me", 500) + strings.Repeat("}", 500), ``},
		{manyAliases(2000), ``},
		{`{...A} fragment A on Query {...B} fragment B on Query {me{name} ...A}`, ``},
		{`{me{name}} fragment A on Query {...A}`, ``},
		{fragmentBomb(30), ``},
		{`{...F0} ` + fragmentBomb(30), ``},
		{`query($ids:[ID!]!){nodes(ids:$ids){id}}`, hugeIDs(20000)},
		{`query($s:String){me{name}}`, `{"s":"` + strings.Repeat("x", 300000) + `"}`},
		{`{me{name}}`, strings.Repeat(`[`, 10000)},
		{`query($x:Int=1){me{name}} query B{me{role}}`, ``},
		{`{me @skip(if:true){name} me @include(if:false){role}}`, ``},
	}
	for _, s := range seeds {
		f.Add(s.query, s.vars)
	}
	s := newFuzzServer(f)
	f.Cleanup(s.client.CloseIdleConnections)
	allowed := map[int]bool{
		http.StatusOK: true, http.StatusBadRequest: true,
		http.StatusRequestEntityTooLarge: true, http.StatusUnprocessableEntity: true,
	}
	f.Fuzz(func(t *testing.T, query, vars string) {
		q, err := json.Marshal(query)
		if err != nil {
			t.Skip("not encodable")
		}
		bodies := [][]byte{[]byte(`{"query":` + string(q) + `}`)}
		if vars != "" {
			// Variables as given, valid JSON or not.
			bodies = append(bodies, []byte(`{"query":`+string(q)+`,"variables":`+vars+`}`))
			// The input as a variable value of a query that takes one.
			v, _ := json.Marshal(map[string]string{"s": vars, "id": vars})
			bodies = append(bodies, []byte(`{"query":"query($s:String,$id:ID!){me{name} node(id:$id){id}}","variables":`+string(v)+`}`))
		}
		for _, body := range bodies {
			code, out := s.post(t, body)
			if !allowed[code] {
				t.Fatalf("HTTP %d for %.200q: %.300s", code, body, out)
			}
			var resp struct {
				Data   json.RawMessage   `json:"data"`
				Errors []json.RawMessage `json:"errors"`
			}
			if err := json.Unmarshal(out, &resp); err != nil {
				t.Fatalf("HTTP %d answer is not JSON (%v): %.300s", code, err, out)
			}
			if code != http.StatusOK && len(resp.Errors) == 0 {
				t.Fatalf("HTTP %d without errors: %.300s", code, out)
			}
		}
		code, out := s.post(t, []byte(`{"query":"{me{name}}"}`))
		if code != http.StatusOK || !strings.Contains(string(out), `"name":"wall"`) {
			t.Fatalf("after the input the daemon answers {me{name}} with HTTP %d: %.300s", code, out)
		}
	})
}
