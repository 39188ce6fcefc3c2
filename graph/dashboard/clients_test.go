package dashboard_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rpacloud/rpacloud/graph/dashboard/dashtest"
)

// nodeModules copies nodetest's package files and the given scripts into a
// temporary directory and runs npm ci there, so the source tree gets no
// node_modules. It returns the directory.
func nodeModules(t *testing.T, ctx context.Context, npm string, scripts ...string) string {
	t.Helper()
	dir := t.TempDir()
	for _, f := range append([]string{"package.json", "package-lock.json"}, scripts...) {
		b, err := os.ReadFile(filepath.Join("nodetest", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ci := exec.CommandContext(ctx, npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund")
	ci.Dir = dir
	if out, err := ci.CombinedOutput(); err != nil {
		t.Fatalf("npm ci: %v\n%s", err, out)
	}
	return dir
}

// TestIntrospectionFromNPMGraphQL: the introspection query of the npm
// graphql package (GraphiQL's, Postman's and graphql-codegen's), with its
// default options and with every option on, is answered without errors
// and builds a client schema, in a real node process against a real
// daemon. It was refused before: its ofType chains go 13 levels deep.
func TestIntrospectionFromNPMGraphQL(t *testing.T) {
	node, npm := tool(t, "node"), tool(t, "npm")
	d := dashtest.Start(t, binary(t), nodeConfig)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dir := nodeModules(t, ctx, npm, "introspect.mjs")

	cmd := exec.CommandContext(ctx, node, "introspect.mjs")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "RPACLOUD_URL="+d.Base+"/graphql", "RPACLOUD_TOKEN="+d.Token)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node introspect.mjs: %v\n%s", err, stderr.String())
	}
	var variants []string
	for line := range strings.Lines(string(out)) {
		var v struct {
			Variant, Query, Subscription string
			Types                        int
			QueryFields                  []string
		}
		if err := json.Unmarshal([]byte(line), &v); err != nil {
			t.Fatalf("node printed %q: %v", line, err)
		}
		if v.Query != "Query" || v.Subscription != "Subscription" || v.Types < 50 || !slices.Contains(v.QueryFields, "pools") {
			t.Errorf("%s: client schema %+v", v.Variant, v)
		}
		variants = append(variants, v.Variant)
	}
	if strings.Join(variants, ",") != "default,full" {
		t.Fatalf("variants %v, want default and full", variants)
	}
}

// wsRun runs wsauth.mjs with token and returns its output lines as they
// come, and a function that waits for the end and returns the summary.
func wsRun(t *testing.T, ctx context.Context, node, dir, url, token string) (*bufio.Scanner, func() (int, []int)) {
	t.Helper()
	cmd := exec.CommandContext(ctx, node, "wsauth.mjs")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "RPACLOUD_URL="+url, "RPACLOUD_TOKEN="+token, "RPACLOUD_WINDOW_MS=3000", "RPACLOUD_TIMEOUT_MS=90000")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewScanner(stdout)
	return lines, func() (int, []int) {
		t.Helper()
		var sum struct {
			Attempts *int
			Codes    []int
		}
		for sum.Attempts == nil && lines.Scan() {
			if err := json.Unmarshal(lines.Bytes(), &sum); err != nil {
				t.Fatalf("node printed %q: %v", lines.Text(), err)
			}
		}
		if err := cmd.Wait(); err != nil || sum.Attempts == nil {
			t.Fatalf("node wsauth.mjs: %v\n%s", err, stderr.String())
		}
		return *sum.Attempts, sum.Codes
	}
}

// TestGraphQLWSClientRefusedDoesNotLoop: the npm graphql-ws client, set to
// retry every close for ever, gets 4403 when its token is revoked while
// connected and 4401 when it connects with a revoked or unknown token, and
// stops: a few attempts in the window, not the hot loop of reconnections
// that a normal close (1000) caused.
func TestGraphQLWSClientRefusedDoesNotLoop(t *testing.T) {
	node, npm := tool(t, "node"), tool(t, "npm")
	d := dashtest.Start(t, binary(t), nodeConfig)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	dir := nodeModules(t, ctx, npm, "wsauth.mjs")
	url := "ws" + strings.TrimPrefix(d.Base, "http") + "/graphql"

	var made struct{ CreateToken struct{ Secret string } }
	if err := d.Client().Do(ctx, `mutation($in: CreateTokenInput!) { createToken(input: $in) { secret } }`,
		map[string]any{"in": map[string]any{"name": "wall", "role": "VIEWER"}}, &made); err != nil {
		t.Fatal(err)
	}
	secret := made.CreateToken.Secret

	// Revoked while connected: 4403, then the one retry meets 4401.
	lines, wait := wsRun(t, ctx, node, dir, url, secret)
	if !lines.Scan() || !strings.Contains(lines.Text(), `"connected"`) {
		t.Fatalf("graphql-ws did not connect: %q", lines.Text())
	}
	if err := d.Client().Do(ctx, `mutation($n: String!) { revokeToken(name: $n) }`, map[string]any{"n": "wall"}, nil); err != nil {
		t.Fatal(err)
	}
	attempts, codes := wait()
	if len(codes) == 0 || codes[0] != 4403 || attempts > 2 || (len(codes) > 1 && codes[1] != 4401) {
		t.Fatalf("revoked while connected: %d attempts, close codes %v; want 4403 then at most one retry closed 4401", attempts, codes)
	}

	// A revoked token, and one the daemon never made, at connection_init.
	for _, tok := range []string{secret, "rpc_never_issued"} {
		_, wait := wsRun(t, ctx, node, dir, url, tok)
		if attempts, codes := wait(); attempts != 1 || !slices.Equal(codes, []int{4401}) {
			t.Errorf("token refused at connection_init: %d attempts, close codes %v; want 1 attempt closed 4401", attempts, codes)
		}
	}
	// The refusals are logged, the secrets are not.
	log := d.Log()
	if !strings.Contains(log, "websocket refused") || !strings.Contains(log, "code=4403") {
		t.Errorf("refusals not logged:\n%s", log)
	}
	if strings.Contains(log, secret) || strings.Contains(log, "rpc_never_issued") {
		t.Error("a token reached the daemon's log")
	}
}
