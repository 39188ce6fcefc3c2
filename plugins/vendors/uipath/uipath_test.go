package uipath_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/rpacloud/rpacloud/plugins/sdk"
	"github.com/rpacloud/rpacloud/plugins/sdk/sdktest"
	"github.com/rpacloud/rpacloud/plugins/vendors/uipath"
	"github.com/rpacloud/rpacloud/plugins/vendors/uipath/fakeorch"
)

func TestMain(m *testing.M) {
	if len(os.Args) == 4 && os.Args[1] == "plugin" {
		uipath.Main()
		os.Exit(0)
	}
	goleak.VerifyTestMain(m)
}

func newFake(t *testing.T) *fakeorch.Server {
	f := fakeorch.New("rpacloud-app", "app-s3cret", 42)
	t.Cleanup(f.Close)
	f.AddRelease(fakeorch.Release{Key: "5b8a3c2e-0d1f-4b5a-9c7e-1a2b3c4d5e6f", Name: "TaxFiling.VAT", ProcessKey: "TaxFiling.VAT",
		Output: `{"receipt":"VAT-1"}`})
	f.AddRelease(fakeorch.Release{Key: "6c9b4d3f-1e2a-4c6b-8d7f-2b3c4d5e6f70", Name: "Always.Faults", ProcessKey: "Always.Faults",
		Script: []string{"Pending", "Running", "Faulted"}, Info: "System.Exception: the portal timed out"})
	f.AddRelease(fakeorch.Release{Key: "7d0c5e40-2f3b-4d7c-9e80-3c4d5e6f7081", Name: "Pauses", ProcessKey: "Pauses",
		Script: []string{"Pending", "Running", "Suspended", "Resumed", "Successful"}})
	f.AddSession(fakeorch.Session{ID: 1, RobotID: 11, RobotName: "tax-robot-1", MachineName: "VM-1", State: "Available"})
	f.AddSession(fakeorch.Session{ID: 2, RobotID: 12, RobotName: "tax-robot-2", MachineName: "VM-2", State: "Busy"})
	f.AddSession(fakeorch.Session{ID: 3, RobotID: 13, RobotName: "tax-robot-3", MachineName: "VM-3", State: "Available", IsUnresponsive: true})
	f.AddSession(fakeorch.Session{ID: 4, RobotID: 14, RobotName: "tax-robot-4", MachineName: "VM-4", State: "Disconnected"})
	return f
}

func cfg(f *fakeorch.Server, extra ...string) map[string]string {
	c := map[string]string{"url": f.URL, "token_url": f.URL + "/identity_/connect/token",
		"client_id": "rpacloud-app", "client_secret": "app-s3cret", "folder_id": "42", "max_retries": "3"}
	for i := 0; i+1 < len(extra); i += 2 {
		if extra[i+1] == "" {
			delete(c, extra[i])
		} else {
			c[extra[i]] = extra[i+1]
		}
	}
	return c
}

// start runs the plugin for vendor block name (the block's name does not
// reach the plugin).
func start(t *testing.T, _ string, c map[string]string) *sdk.GRPCVendorClient {
	t.Helper()
	return sdktest.StartVendor(t, "uipath", c).Vendor()
}

func follow(t *testing.T, v *sdk.GRPCVendorClient, id string) []sdk.Job {
	t.Helper()
	var seen []sdk.Job
	for i := 0; i < 20; i++ {
		j, err := v.GetJob(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		seen = append(seen, j)
		if j.State.Terminal() {
			return seen
		}
	}
	t.Fatalf("job %s never ended: %+v", id, seen)
	return nil
}

func states(js []sdk.Job) string {
	var s []string
	for _, j := range js {
		s = append(s, string(j.State)+"/"+j.VendorState)
	}
	return strings.Join(s, " ")
}

func TestJobLifecycle(t *testing.T) {
	f := newFake(t)
	v := start(t, "uipath-prod", cfg(f))
	ctx := context.Background()

	j, err := v.StartJob(ctx, sdk.StartJobRequest{Package: "TaxFiling.VAT", Input: []byte(`{"company":"C1"}`), Reference: "task-1"})
	if err != nil {
		t.Fatal(err)
	}
	if j.State != sdk.JobPending || j.VendorState != "Pending" || j.ID == "" {
		t.Fatalf("started job %+v", j)
	}
	seen := follow(t, v, j.ID)
	if got := states(seen); got != "running/Running succeeded/Successful" {
		t.Errorf("states %s", got)
	}
	last := seen[len(seen)-1]
	if string(last.Output) != `{"receipt":"VAT-1"}` || last.Robot != "tax-robot-1" || last.EndedAt.IsZero() {
		t.Errorf("finished job %+v", last)
	}
	jobs := f.Jobs()
	if len(jobs) != 1 || jobs[0].Input != `{"company":"C1"}` || jobs[0].Strategy != "ModernJobsCount" {
		t.Errorf("fake saw %+v", jobs)
	}

	fj, err := v.StartJob(ctx, sdk.StartJobRequest{Package: "Always.Faults"})
	if err != nil {
		t.Fatal(err)
	}
	seen = follow(t, v, fj.ID)
	if last := seen[len(seen)-1]; last.State != sdk.JobFaulted || last.Info != "System.Exception: the portal timed out" {
		t.Errorf("faulted job %+v", last)
	}

	pj, _ := v.StartJob(ctx, sdk.StartJobRequest{Package: "Pauses", Robot: "tax-robot-2"})
	if got := states(follow(t, v, pj.ID)); got != "running/Running suspended/Suspended running/Resumed succeeded/Successful" {
		t.Errorf("suspend/resume: %s", got)
	}
	if js := f.Jobs(); js[2].Strategy != "Specific" || len(js[2].RobotIDs) != 1 || js[2].RobotIDs[0] != 12 {
		t.Errorf("robot not targeted: %+v", js[2])
	}

	sj, _ := v.StartJob(ctx, sdk.StartJobRequest{Package: "TaxFiling.VAT"})
	if err := v.StopJob(ctx, sj.ID, true); err != nil {
		t.Fatal(err)
	}
	if got, _ := v.GetJob(ctx, sj.ID); got.State != sdk.JobStopped || !strings.Contains(got.Info, "Kill") {
		t.Errorf("stopped job %+v", got)
	}

	if _, err := v.StartJob(ctx, sdk.StartJobRequest{Package: "No.Such.Process"}); !errors.Is(err, sdk.ErrInvalidRequest) ||
		!strings.Contains(err.Error(), `no release (process) "No.Such.Process"`) {
		t.Errorf("unknown release: %v", err)
	}
	if _, err := v.GetJob(ctx, "999999"); !errors.Is(err, sdk.ErrInvalidRequest) || !strings.Contains(err.Error(), "Job does not exist.") {
		t.Errorf("unknown job: %v", err)
	}
	// Every OData call carried the folder header and a bearer token: the
	// fake refuses others. One token served them all.
	if n := f.TokenRequests(); n != 1 {
		t.Errorf("%d token requests, want 1", n)
	}
}

func TestPagingAndFilters(t *testing.T) {
	f := newFake(t)
	f.AddJobs("TaxFiling.VAT", 230, "Successful")
	f.AddJobs("Always.Faults", 7, "Faulted")
	v := start(t, "uipath-prod", cfg(f))
	ctx := context.Background()
	all, err := v.ListJobs(ctx, sdk.JobFilter{})
	if err != nil || len(all) != 237 {
		t.Fatalf("ListJobs: %d, %v", len(all), err)
	}
	pages := 0
	for _, r := range f.Requests {
		if strings.HasPrefix(r, "GET /odata/Jobs?") && strings.Contains(r, "%24top=100") {
			pages++
		}
	}
	if pages != 3 {
		t.Errorf("%d pages of 100, want 3: %v", pages, f.Requests)
	}
	faulted, err := v.ListJobs(ctx, sdk.JobFilter{States: []sdk.JobState{sdk.JobFaulted}})
	if err != nil || len(faulted) != 7 {
		t.Fatalf("faulted: %d %v", len(faulted), err)
	}
	limited, err := v.ListJobs(ctx, sdk.JobFilter{Limit: 150})
	if err != nil || len(limited) != 150 || !limited[0].CreatedAt.After(limited[149].CreatedAt) {
		t.Fatalf("limit: %d %v", len(limited), err)
	}
	since, err := v.ListJobs(ctx, sdk.JobFilter{Since: time.Now().Add(200 * time.Second)})
	if err != nil || len(since) == 0 || len(since) >= 237 {
		t.Fatalf("since: %d %v", len(since), err)
	}
	robots, err := v.ListRobots(ctx)
	if err != nil || len(robots) != 4 {
		t.Fatalf("robots: %v %v", robots, err)
	}
	want := []sdk.RobotState{sdk.RobotAvailable, sdk.RobotBusy, sdk.RobotUnresponsive, sdk.RobotDisconnected}
	for i, r := range robots {
		if r.State != want[i] || r.Name == "" || r.Machine == "" {
			t.Errorf("robot %d: %+v, want %s", i, r, want[i])
		}
	}
}

func TestFailures(t *testing.T) {
	ctx := context.Background()
	f := newFake(t)

	t.Run("wrong secret", func(t *testing.T) {
		v := start(t, "bad-secret", cfg(f, "client_secret", "wrong"))
		_, err := v.ListRobots(ctx)
		if !errors.Is(err, uipath.ErrAuth) && !strings.Contains(err.Error(), "authentication failed") {
			t.Fatalf("err = %v", err)
		}
		if !strings.Contains(err.Error(), "invalid_client") || strings.Contains(err.Error(), "wrong") {
			t.Errorf("message %q", err)
		}
	})
	t.Run("no folder", func(t *testing.T) {
		v := start(t, "no-folder", cfg(f, "folder_id", ""))
		_, err := v.StartJob(ctx, sdk.StartJobRequest{Package: "TaxFiling.VAT"})
		if err == nil || !strings.Contains(err.Error(), "A folder is required for this action. (errorCode 1101)") {
			t.Fatalf("err = %v", err)
		}
	})
	v := start(t, "uipath-prod", cfg(f))
	t.Run("revoked token is renewed", func(t *testing.T) {
		if _, err := v.ListRobots(ctx); err != nil {
			t.Fatal(err)
		}
		before := f.TokenRequests()
		f.RevokeTokens()
		if _, err := v.ListRobots(ctx); err != nil {
			t.Fatal(err)
		}
		if f.TokenRequests() != before+1 {
			t.Errorf("token requests %d → %d", before, f.TokenRequests())
		}
	})
	t.Run("429 waited out", func(t *testing.T) {
		f.Throttle(2, "1")
		start := time.Now()
		if _, err := v.ListRobots(ctx); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d < 2*time.Second {
			t.Errorf("Retry-After not honoured: %v", d)
		}
	})
	t.Run("429 for too long", func(t *testing.T) {
		f.Throttle(10, "300") // longer than the plugin waits
		_, err := v.ListRobots(ctx)
		if err == nil || !strings.Contains(err.Error(), "rate limited") {
			t.Fatalf("err = %v", err)
		}
		f.Throttle(0, "")
	})
	t.Run("malformed reply, plugin keeps serving", func(t *testing.T) {
		f.Malform(1)
		_, err := v.ListRobots(ctx)
		if err == nil || !strings.Contains(err.Error(), "malformed reply") || !strings.Contains(err.Error(), "502 Bad Gateway") {
			t.Fatalf("err = %v", err)
		}
		if _, err := v.ListRobots(ctx); err != nil {
			t.Fatalf("after a malformed reply: %v", err)
		}
	})
	t.Run("config refused", func(t *testing.T) {
		_, err := sdktest.Launch(t, sdk.KindVendor, "uipath", map[string]string{"url": "ftp://x", "client_id": "a"})
		if !errors.Is(err, sdktest.ErrConfigRefused) || !strings.Contains(err.Error(), "url: must be an absolute http(s) URL") || !strings.Contains(err.Error(), "client_secret: required") {
			t.Fatalf("err = %v", err)
		}
	})
}
