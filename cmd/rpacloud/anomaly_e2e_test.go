package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rpacloud/rpacloud/plugins/sdk/sdktest"
)

const anomalyE2EHCL = `
provider "local" { plugin = "local" }
pool "p" {
  provider = "local"
  min      = 1
  max      = 1
}
customer "acme" {}
process "e" {
  pool    = "p"
  builtin = "echo"
  owner   = "acme"
  retries = 0
}
`

// TestAnomalyCLI: against a real daemon, a task that fails on a real robot
// opens run_faulted; `anomaly list` shows it, `ack` and `resolve` close the
// loop with who did it, `list` then shows nothing open and `list --all`
// the resolved one; bad input is refused with what was wrong.
func TestAnomalyCLI(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	d := sdktest.StartDaemon(t, anomalyE2EHCL)
	cli := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := run(context.Background(), append(args, "--server", d.Base, "--token", d.Token), &out, &errb)
		return code, out.String(), errb.String()
	}
	in := filepath.Join(t.TempDir(), "in.jsonl")
	if err := os.WriteFile(in, []byte(`{"fail":"execution","message":"portal refused the login"}`+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out, errs := cli("task", "submit", "--process", "e", "--customer", "acme", "--input", in); code != 0 {
		t.Fatalf("submit: %d %s %s", code, out, errs)
	}
	type listed struct {
		Anomalies []struct {
			ID             string     `json:"id"`
			Rule           string     `json:"rule"`
			Severity       string     `json:"severity"`
			Status         string     `json:"status"`
			AcknowledgedBy string     `json:"acknowledged_by"`
			ResolvedBy     string     `json:"resolved_by"`
			Resolution     string     `json:"resolution"`
			ResolvedAt     *time.Time `json:"resolved_at"`
		} `json:"anomalies"`
		Total int `json:"total"`
	}
	var l listed
	eventually(t, 90*time.Second, "the failed run's anomaly", func() (bool, string) {
		code, out, errs := cli("anomaly", "list", "-o", "json")
		l = listed{}
		if code != 0 || json.Unmarshal([]byte(out), &l) != nil {
			return false, fmt.Sprintf("%d %s %s", code, out, errs)
		}
		return len(l.Anomalies) == 1 && l.Anomalies[0].Rule == "run_faulted", out
	})
	id := l.Anomalies[0].ID
	if a := l.Anomalies[0]; a.Severity != "critical" || a.Status != "open" || l.Total != 1 {
		t.Fatalf("listed: %+v", l)
	}
	code, out, errs := cli("anomaly", "list")
	if code != 0 || !strings.Contains(out, id) || !strings.Contains(out, "run_faulted") || !strings.Contains(out, "Run of e faulted") {
		t.Fatalf("list: %d %s %s", code, out, errs)
	}

	code, out, errs = cli("anomaly", "ack", id, "--note", "calling the portal's operator")
	if code != 0 || out != "anomaly "+id+" acknowledged\n" {
		t.Fatalf("ack: %d %q %s", code, out, errs)
	}
	code, out, _ = cli("anomaly", "list")
	if code != 0 || !strings.Contains(out, "acknowledged by ") {
		t.Fatalf("list after ack: %d %s", code, out)
	}
	code, _, errs = cli("anomaly", "resolve", id)
	if code != 1 || !strings.Contains(errs, "--resolution is required") {
		t.Fatalf("resolve without a resolution: %d %s", code, errs)
	}
	code, out, errs = cli("anomaly", "resolve", id, "--resolution", "portal fixed; task retried by hand", "-o", "json")
	var resolved struct {
		ID         string `json:"id"`
		Status     string `json:"status"`
		Resolution string `json:"resolution"`
		ResolvedBy string `json:"resolved_by"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &resolved) != nil || resolved.ID != id || resolved.Status != "resolved" ||
		resolved.Resolution != "portal fixed; task retried by hand" || resolved.ResolvedBy == "" || resolved.ResolvedBy == "monitor" {
		t.Fatalf("resolve: %d %s %s", code, out, errs)
	}
	code, out, _ = cli("anomaly", "list")
	if code != 0 || out != "No open anomalies.\n" {
		t.Fatalf("list after resolve: %d %q", code, out)
	}
	code, out, _ = cli("anomaly", "list", "--all", "-o", "json")
	l = listed{}
	if code != 0 || json.Unmarshal([]byte(out), &l) != nil || len(l.Anomalies) != 1 || l.Anomalies[0].Status != "resolved" || l.Anomalies[0].ResolvedAt == nil {
		t.Fatalf("list --all: %d %s", code, out)
	}

	// Bad input: no ID, an unknown one.
	if code, _, errs := cli("anomaly", "ack"); code != exitUsage || !strings.Contains(errs, "expected the anomaly ID") {
		t.Errorf("ack without an ID: %d %s", code, errs)
	}
	if code, _, errs := cli("anomaly", "ack", "999999999"); code != 1 || !strings.Contains(errs, "anomaly 999999999") {
		t.Errorf("ack of an unknown ID: %d %s", code, errs)
	}
}
