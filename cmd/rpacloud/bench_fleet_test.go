package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
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
				"--task-seconds", "1", "--duration", "5s", "--idle", "2s", "-o", "json")
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
			if r.TasksPerS <= 0 || r.Idle.Seconds < 2 || r.Idle.RSSMB <= 0 || r.Loaded.CPUPct <= 0 || r.Loaded.RSSMB <= 0 {
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
