package dashboard_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/rpacloud/rpacloud/graph/dashboard/dashtest"
)

const nodeConfig = `
customer "acme" {}

pool "p" {
  provider = "local"
  min      = 1
  max      = 1
  period   = "5s"
}

process "echo" {
  pool    = "p"
  builtin = "echo"
}
`

func tool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("RPACLOUD_REQUIRE_NODE") == "1" {
			t.Fatalf("RPACLOUD_REQUIRE_NODE=1 but %s is not installed", name)
		}
		t.Skipf("%s is not installed", name)
	}
	return p
}

// TestGraphQLWSClient subscribes with the npm graphql-ws client, a real
// third-party implementation of graphql-transport-ws, and checks it
// receives the events of a batch submitted after it subscribed.
func TestGraphQLWSClient(t *testing.T) {
	node, npm := tool(t, "node"), tool(t, "npm")
	d := dashtest.Start(t, binary(t), nodeConfig)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	dir := nodeModules(t, ctx, npm, "subscribe.mjs") // clients_test.go

	const tasks = 3
	cmd := exec.CommandContext(ctx, node, "subscribe.mjs")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"RPACLOUD_URL=ws"+strings.TrimPrefix(d.Base, "http")+"/graphql",
		"RPACLOUD_TOKEN="+d.Token,
		"RPACLOUD_WANT=6", // dispatched and succeeded, per task
		"RPACLOUD_TIMEOUT_MS=90000")
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
	if !lines.Scan() || !strings.Contains(lines.Text(), `"connected":true`) {
		_ = cmd.Wait()
		t.Fatalf("node client did not connect: %q\n%s", lines.Text(), stderr.String())
	}
	// The subscribe message follows connection_ack at once; give it a
	// moment to reach the server before the events it should see.
	time.Sleep(300 * time.Millisecond)
	in := make([]map[string]any, tasks)
	for i := range in {
		in[i] = map[string]any{"n": i}
	}
	if err := d.Submit(ctx, "echo", "acme", in...); err != nil {
		t.Fatal(err)
	}
	type ev struct {
		ID, Type, Status, TaskID string
	}
	var got []ev
	for lines.Scan() {
		var e ev
		if err := json.Unmarshal(lines.Bytes(), &e); err != nil {
			t.Fatalf("node printed %q: %v", lines.Text(), err)
		}
		got = append(got, e)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("node client: %v\n%s\ngot %+v", err, stderr.String(), got)
	}
	perTask := map[string][]string{}
	for _, e := range got {
		if !strings.HasPrefix(e.Type, "task.") || e.TaskID == "" || e.Status == "" {
			t.Fatalf("unexpected event %+v", e)
		}
		perTask[e.TaskID] = append(perTask[e.TaskID], e.Type)
	}
	if len(perTask) != tasks {
		t.Fatalf("events of %d tasks, want %d: %+v", len(perTask), tasks, got)
	}
	for id, types := range perTask {
		if strings.Join(types, ",") != "task.dispatched,task.succeeded" {
			t.Errorf("task %s: %v, want dispatched then succeeded", id, types)
		}
	}
}
