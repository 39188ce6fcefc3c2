package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The tax-filing example's trace through the real command: one JSON
// object with both baselines, the same for the same seed.
func TestSimulateExample(t *testing.T) {
	args := []string{"--config", "../../examples/tax-filing/simulation/tax-rpa.hcl",
		"--trace", "../../examples/tax-filing/trace.csv", "--robot-hour-cost", "0.12", "--json"}
	var out1, out2, errb bytes.Buffer
	if code := run(context.Background(), append([]string{"simulate"}, args...), &out1, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	run(context.Background(), append([]string{"simulate"}, args...), &out2, &errb)
	if out1.String() != out2.String() {
		t.Fatal("two runs with the same seed printed different reports")
	}
	var rep map[string]any
	if err := json.Unmarshal(out1.Bytes(), &rep); err != nil {
		t.Fatalf("not one JSON object: %v", err)
	}
	for _, k := range []string{"robot_hours", "cost", "peak_robots", "scale_ups", "scale_downs", "direction_changes",
		"batch_completion_p50_s", "batch_completion_p95_s", "batch_completion_max_s", "customer_max_wait_s",
		"jain_index_slowdown", "offline_lower_bound_robot_hours", "baselines"} {
		if _, ok := rep[k]; !ok {
			t.Errorf("report lacks %q", k)
		}
	}
	b := rep["baselines"].(map[string]any)
	for _, k := range []string{"static", "target_tracking"} {
		if _, ok := b[k].(map[string]any)["robot_hours"]; !ok {
			t.Errorf("baseline %s lacks robot_hours", k)
		}
	}
}

func TestSimulateErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.csv")
	if err := os.WriteFile(bad, []byte("submit_at_s,customer,tasks,task_duration_s\n10,acme,three,60\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--trace", bad}, 2, "usage: rpacloud simulate"},
		{[]string{"--config", "../../examples/tax-filing/simulation/tax-rpa.hcl", "--trace", bad}, 1, "bad.csv:2: tasks = \"three\" is not a number"},
		{[]string{"--config", "../../examples/tax-filing/simulation/tax-rpa.hcl", "--trace", bad, "--pool", "nope"}, 1, `no pool "nope"`},
		{[]string{"--config", "../../examples/tax-filing/simulation/tax-rpa.hcl", "--trace", filepath.Join(dir, "missing.csv")}, 1, "no such file"},
	}
	for _, c := range cases {
		var out, errb bytes.Buffer
		code := run(context.Background(), append([]string{"simulate"}, c.args...), &out, &errb)
		if code != c.code || !strings.Contains(errb.String(), c.want) {
			t.Errorf("simulate %v: exit %d, stderr %q; want exit %d and %q", c.args, code, errb.String(), c.code, c.want)
		}
	}
}

// -o json is --json: the same report, byte for byte.
func TestSimulateOutputJSON(t *testing.T) {
	args := []string{"simulate", "--config", "../../examples/tax-filing/simulation/tax-rpa.hcl",
		"--trace", "../../examples/tax-filing/trace.csv"}
	var legacy, out, errb bytes.Buffer
	if code := run(context.Background(), append(args, "--json"), &legacy, &errb); code != 0 {
		t.Fatalf("--json: exit %d: %s", code, errb.String())
	}
	if code := run(context.Background(), append(args, "-o", "json"), &out, &errb); code != 0 {
		t.Fatalf("-o json: exit %d: %s", code, errb.String())
	}
	if out.String() != legacy.String() {
		t.Error("-o json and --json print different reports")
	}
}
