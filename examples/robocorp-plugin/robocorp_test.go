package robocorp_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"

	robocorp "github.com/rpacloud/rpacloud/examples/robocorp-plugin"
	"github.com/rpacloud/rpacloud/examples/robocorp-plugin/fakecr"
	"github.com/rpacloud/rpacloud/plugins/sdk"
)

func configured(t *testing.T, cr *fakecr.CR, extra map[string]string) (*robocorp.Plugin, *httptest.Server) {
	t.Helper()
	srv := httptest.NewServer(cr)
	t.Cleanup(srv.Close)
	p := robocorp.New()
	cfg := map[string]string{"url": srv.URL + "/api/v1", "workspace_id": "ws-1", "api_key": "key-1"}
	for k, v := range extra {
		cfg[k] = v
	}
	diags, err := p.Configure(context.Background(), cfg)
	if err != nil || len(diags) > 0 {
		t.Fatalf("configure: %v %v", diags, err)
	}
	return p, srv
}

// A job is a process run: started with the task's input as its one work
// item, followed to completed, or to unresolved when work items fail.
func TestJobLifecycle(t *testing.T) {
	cr := fakecr.New("key-1", "ws-1")
	cr.AddProcess(fakecr.Process{ID: "p-vat", Name: "VAT filing"})
	cr.AddProcess(fakecr.Process{ID: "p-bad", Name: "Always fails", Script: []string{"new", "in_progress", "unresolved"}})
	p, _ := configured(t, cr, nil)
	ctx := context.Background()

	j, err := p.StartJob(ctx, sdk.StartJobRequest{Package: "p-vat", Input: json.RawMessage(`{"company":"C1"}`)})
	if err != nil || j.State != sdk.JobPending || j.Package != "p-vat" {
		t.Fatalf("start: %+v %v", j, err)
	}
	for !j.State.Terminal() {
		if j, err = p.GetJob(ctx, j.ID); err != nil {
			t.Fatal(err)
		}
	}
	if j.State != sdk.JobSucceeded || j.VendorState != "completed" {
		t.Fatalf("end: %+v", j)
	}
	if runs := cr.Runs(); len(runs) != 1 || string(runs[0].Payloads[0]) != `{"company":"C1"}` || runs[0].StartedBy != "api" {
		t.Fatalf("runs: %+v", runs)
	}

	j, _ = p.StartJob(ctx, sdk.StartJobRequest{Package: "p-bad"})
	for !j.State.Terminal() {
		j, _ = p.GetJob(ctx, j.ID)
	}
	if j.State != sdk.JobFaulted || !strings.Contains(j.Info, "unresolved") {
		t.Fatalf("failing run: %+v", j)
	}

	if _, err := p.StartJob(ctx, sdk.StartJobRequest{Package: "p-none"}); !errors.Is(err, sdk.ErrInvalidRequest) || !strings.Contains(err.Error(), "Process p-none not found") {
		t.Fatalf("unknown process: %v", err)
	}
	if _, err := p.StartJob(ctx, sdk.StartJobRequest{Package: "p-vat", Input: json.RawMessage(`[1]`)}); !errors.Is(err, sdk.ErrInvalidRequest) {
		t.Fatalf("non-object input: %v", err)
	}
	j, _ = p.StartJob(ctx, sdk.StartJobRequest{Package: "p-vat"})
	if err := p.StopJob(ctx, j.ID, true); err != nil {
		t.Fatal(err)
	}
	if j, _ = p.GetJob(ctx, j.ID); j.State != sdk.JobStopped {
		t.Fatalf("stopped run: %+v", j)
	}
}

// Lists are read page by page to the end, through rate limiting; runs the
// scheduler started are among the jobs; workers are the robots.
func TestListsReadEveryPage(t *testing.T) {
	cr := fakecr.New("key-1", "ws-1")
	cr.ThrottleEvery = 3
	cr.AddProcess(fakecr.Process{ID: "p-vat", Name: "VAT filing"})
	cr.AddRuns("p-vat", 7, "unresolved")
	for i, st := range []string{"online", "busy", "offline", "online", "busy"} {
		cr.AddWorker(fakecr.Worker{ID: "w" + string(rune('1'+i)), Name: "worker-" + string(rune('1'+i)), State: st})
	}
	p, _ := configured(t, cr, map[string]string{"page_size": "2"})
	ctx := context.Background()
	jobs, err := p.ListJobs(ctx, sdk.JobFilter{})
	if err != nil || len(jobs) != 7 || jobs[0].State != sdk.JobFaulted {
		t.Fatalf("jobs: %d %+v %v", len(jobs), jobs, err)
	}
	robots, err := p.ListRobots(ctx)
	if err != nil || len(robots) != 5 || robots[1].State != sdk.RobotBusy || robots[2].State != sdk.RobotDisconnected {
		t.Fatalf("robots: %+v %v", robots, err)
	}
}

// A wrong key is an authentication error naming Control Room's message,
// never the key; bad configuration is per-attribute diagnostics.
func TestErrors(t *testing.T) {
	cr := fakecr.New("key-1", "ws-1")
	p, _ := configured(t, cr, map[string]string{"api_key": "wrong-key"})
	_, err := p.ListRobots(context.Background())
	if !errors.Is(err, robocorp.ErrAuth) || !strings.Contains(err.Error(), "API key missing or invalid") || strings.Contains(err.Error(), "wrong-key") {
		t.Fatalf("wrong key: %v", err)
	}
	diags, _ := robocorp.New().Configure(context.Background(), map[string]string{"url": "ftp://x", "page_size": "0", "region": "eu"})
	got := map[string]bool{}
	for _, d := range diags {
		got[d.Attribute] = true
	}
	for _, a := range []string{"url", "workspace_id", "api_key", "page_size", "region"} {
		if !got[a] {
			t.Errorf("no diagnostic for %s: %v", a, diags)
		}
	}
}
