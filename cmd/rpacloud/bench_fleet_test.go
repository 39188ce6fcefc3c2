package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/rpacloud/rpacloud/core/fleetbench"
	"github.com/rpacloud/rpacloud/plugins/sdk/sdktest"
)

// A small `rpacloud bench fleet` run end to end, as a user runs it: the
// binary starts its own daemon, 20 robots speak the protocol over HTTP,
// and every submitted task is claimed once and done once, with no error
// and the figures present. On PostgreSQL too when the test server is
// there (bash .ci/services.sh), with PostgreSQL's own counters.
func TestBenchFleet(t *testing.T) {
	bin := sdktest.RpacloudBinary(t)
	dbs := []string{"sqlite"}
	if dsn := os.Getenv("RPACLOUD_TEST_POSTGRES_DSN"); dsn != "" {
		dbs = append(dbs, dsn)
	}
	t.Run("url", func(t *testing.T) { benchFleetURL(t, bin) })
	for _, db := range dbs {
		name := "sqlite"
		if db != "sqlite" {
			name = "postgres"
		}
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			var stdout, stderr bytes.Buffer
			cmd := exec.CommandContext(ctx, bin, "bench", "fleet", "--db", db, "--robots", "20", "--rate", "20",
				"--task-seconds", "1", "--heartbeat", "300ms", "--duration", "5s", "--idle", "2s", "-o", "json")
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			if err := cmd.Run(); err != nil {
				t.Fatalf("bench fleet: %v\n%s", err, stderr.String())
			}
			var r fleetbench.Result
			dec := json.NewDecoder(&stdout)
			dec.DisallowUnknownFields()
			if err := dec.Decode(&r); err != nil {
				t.Fatalf("not one result object: %v\n%s", err, stdout.String())
			}
			t.Logf("%s", stderr.String())
			if r.DB != name || r.Robots != 20 || r.RateOffered != 20 || r.DurationS != 5 || r.Machine.Cores < 1 {
				t.Errorf("run described as %+v", r)
			}
			// 20/s for 5 s, submitted every 100 ms: all 100 are offered.
			if r.TasksSubmitted != 100 || r.TasksClaimed != r.TasksSubmitted || r.TasksDone != r.TasksSubmitted {
				t.Errorf("submitted %d, claimed %d, done %d: want 100 each (each task once)", r.TasksSubmitted, r.TasksClaimed, r.TasksDone)
			}
			if len(r.Errors) != 0 {
				t.Errorf("errors: %v", r.Errors)
			}
			if r.SubmitToClaimMs.N != 100 || r.ClaimMs.N != 100 || r.ReportMs.N != 100 || r.HeartbeatMs.N == 0 ||
				r.SubmitToClaimMs.P50 <= 0 || r.SubmitToClaimMs.P99 < r.SubmitToClaimMs.P50 || r.SubmitToClaimMs.Max < r.SubmitToClaimMs.P99 {
				t.Errorf("latencies: submit→claim %+v claim %+v report %+v heartbeat %+v", r.SubmitToClaimMs, r.ClaimMs, r.ReportMs, r.HeartbeatMs)
			}
			if r.TasksPerS <= 0 || r.RateSubmitted <= 0 || r.LoadSeconds < 5 || r.Idle.Seconds < 2 || r.Idle.RSSMB <= 0 || r.Loaded.CPUPct <= 0 || r.Loaded.RSSMB <= 0 {
				t.Errorf("usage: tasks/s %v idle %+v loaded %+v", r.TasksPerS, r.Idle, r.Loaded)
			}
			// Every task is at least a claim, an attempt and a report written.
			if r.DBStatementsPerTask["write"] < 1 || r.DBStatementsPerTask["read"] <= 0 {
				t.Errorf("statements per task: %v", r.DBStatementsPerTask)
			}
			if name == "postgres" && r.Postgres["xact_commit"] <= 0 {
				t.Errorf("PostgreSQL counters: %v", r.Postgres)
			}
		})
	}
}

// Against a running daemon given by --url: robots enrol over HTTP within
// the enrolment rate limit (5 robots: within its burst), and the run
// says what it could not measure.
func benchFleetURL(t *testing.T, bin string) {
	cfg := filepath.Join(t.TempDir(), "config")
	if err := os.Mkdir(cfg, 0o755); err != nil {
		t.Fatal(err)
	}
	hcl := `pool "fleet" {
  max = 10
}
customer "bench" {}
process "task" {
  pool         = "fleet"
  builtin      = "echo"
  max_duration = "1m"
}
`
	if err := os.WriteFile(filepath.Join(cfg, "rpacloud.hcl"), []byte(hcl), 0o600); err != nil {
		t.Fatal(err)
	}
	d := sdktest.StartDaemonAt(t, bin, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, "bench", "fleet", "--url", d.Base, "--robots", "5", "--rate", "5",
		"--task-seconds", "0.5", "--duration", "2s", "--idle", "1s", "--json")
	cmd.Env = append(os.Environ(), "RPACLOUD_TOKEN="+d.Token)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("bench fleet --url: %v\n%s", err, stderr.String())
	}
	var r fleetbench.Result
	if err := json.Unmarshal(stdout.Bytes(), &r); err != nil {
		t.Fatalf("%v\n%s", err, stdout.String())
	}
	if r.DB != "url" || r.TasksSubmitted != 10 || r.TasksDone != 10 || len(r.Errors) != 0 || len(r.NotMeasured) == 0 || r.Loaded.RSSMB <= 0 {
		t.Errorf("--url run: %+v\n%s", r, stderr.String())
	}
}
