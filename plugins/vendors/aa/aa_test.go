package aa_test

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
	"github.com/rpacloud/rpacloud/plugins/vendors/aa"
	"github.com/rpacloud/rpacloud/plugins/vendors/aa/internal/fakecr"
)

func TestMain(m *testing.M) {
	if len(os.Args) == 4 && os.Args[1] == "plugin" {
		aa.Main()
		os.Exit(0)
	}
	goleak.VerifyTestMain(m)
}

func newFake(t *testing.T) *fakecr.Server {
	f := fakecr.New("svc-rpacloud", "cr-Passw0rd", "api-key-123")
	t.Cleanup(f.Close)
	f.AddBot(fakecr.Bot{FileID: 86, Name: "VAT-Filing", Output: `{"sReceipt":{"type":"STRING","string":"R-77"}}`})
	f.AddBot(fakecr.Bot{FileID: 87, Name: "Fails", Script: []string{"QUEUED", "RUNNING", "RUN_FAILED"}, Msg: "Bot error: window not found"})
	f.AddBot(fakecr.Bot{FileID: 88, Name: "Pauses", Script: []string{"BOTSTORE_PACKAGE_DOWNLOADING", "RUNNING", "RUN_PAUSED", "RUNNING", "COMPLETED"}})
	f.AddDevice(fakecr.Device{ID: 7, HostName: "runner-1", Status: "CONNECTED", User: "svc-runner"})
	f.AddDevice(fakecr.Device{ID: 8, HostName: "runner-2", Status: "DISCONNECTED", User: "svc-runner2"})
	return f
}

func cfg(f *fakecr.Server, extra ...string) map[string]string {
	c := map[string]string{"url": f.URL, "username": "svc-rpacloud", "password": "cr-Passw0rd", "run_as_user_ids": "3", "max_retries": "3"}
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
	return sdktest.StartVendor(t, "aa", c).Vendor()
}

func follow(t *testing.T, v *sdk.GRPCVendorClient, id string) string {
	t.Helper()
	var seen []string
	for i := 0; i < 20; i++ {
		j, err := v.GetJob(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		seen = append(seen, string(j.State)+"/"+j.VendorState)
		if j.State.Terminal() {
			return strings.Join(seen, " ")
		}
	}
	t.Fatalf("never ended: %v", seen)
	return ""
}

func TestDeployAndFollow(t *testing.T) {
	f := newFake(t)
	v := start(t, "aa-prod", cfg(f))
	ctx := context.Background()
	j, err := v.StartJob(ctx, sdk.StartJobRequest{Package: "86", Input: []byte(`{"company":"C1","amount":12.5,"final":true}`)})
	if err != nil || j.State != sdk.JobPending || j.ID == "" {
		t.Fatalf("deploy: %+v %v", j, err)
	}
	if got := follow(t, v, j.ID); got != "pending/DEPLOYED pending/QUEUED running/RUNNING succeeded/COMPLETED" {
		t.Errorf("states: %s", got)
	}
	done, _ := v.GetJob(ctx, j.ID)
	if !strings.Contains(string(done.Output), "R-77") || done.Machine != "runner-1" {
		t.Errorf("done: %+v", done)
	}
	d := f.Deployments()[0]
	if d.RunAs[0] != 3 || d.Input["amount"].(map[string]any)["number"] != "12.5" || d.Input["final"].(map[string]any)["type"] != "BOOLEAN" {
		t.Errorf("deploy body: %+v", d)
	}

	fj, _ := v.StartJob(ctx, sdk.StartJobRequest{Package: "87"})
	if got := follow(t, v, fj.ID); !strings.HasSuffix(got, "faulted/RUN_FAILED") {
		t.Errorf("failing bot: %s", got)
	}
	if last, _ := v.GetJob(ctx, fj.ID); last.Info != "Bot error: window not found" {
		t.Errorf("info %q", last.Info)
	}
	pj, _ := v.StartJob(ctx, sdk.StartJobRequest{Package: "88"})
	if got := follow(t, v, pj.ID); got != "pending/DEPLOYED pending/BOTSTORE_PACKAGE_DOWNLOADING running/RUNNING suspended/RUN_PAUSED running/RUNNING succeeded/COMPLETED" {
		t.Errorf("pause: %s", got)
	}

	sj, _ := v.StartJob(ctx, sdk.StartJobRequest{Package: "86"})
	if err := v.StopJob(ctx, sj.ID, false); err != nil {
		t.Fatal(err)
	}
	if got, _ := v.GetJob(ctx, sj.ID); got.State != sdk.JobStopped || got.VendorState != "RUN_ABORTED" {
		t.Errorf("stopped: %+v", got)
	}
	if _, err := v.StartJob(ctx, sdk.StartJobRequest{Package: "999"}); !errors.Is(err, sdk.ErrInvalidRequest) || !strings.Contains(err.Error(), "File with id 999 not found") {
		t.Errorf("unknown bot: %v", err)
	}
	if _, err := v.StartJob(ctx, sdk.StartJobRequest{Package: "Bots/VAT"}); !errors.Is(err, sdk.ErrInvalidRequest) {
		t.Errorf("non-numeric: %v", err)
	}
	if n := f.Count("POST /v1/authentication"); n != 1 {
		t.Errorf("%d authentications", n)
	}
}

func TestListsAndFailures(t *testing.T) {
	f := newFake(t)
	f.AddHistory(86, 230, "COMPLETED")
	f.AddHistory(87, 12, "RUN_FAILED")
	v := start(t, "aa-prod", cfg(f, "password", "", "api_key", "api-key-123"))
	ctx := context.Background()
	all, err := v.ListJobs(ctx, sdk.JobFilter{})
	if err != nil || len(all) != 242 {
		t.Fatalf("all: %d %v", len(all), err)
	}
	if n := f.Count("POST /v3/activity/list"); n != 3 {
		t.Errorf("%d pages, want 3", n)
	}
	failed, err := v.ListJobs(ctx, sdk.JobFilter{States: []sdk.JobState{sdk.JobFaulted}})
	if err != nil || len(failed) != 12 {
		t.Fatalf("faulted: %d %v", len(failed), err)
	}
	recent, err := v.ListJobs(ctx, sdk.JobFilter{Since: time.Now().Add(-10*time.Minute - 30*time.Second), Limit: 5})
	if err != nil || len(recent) != 5 {
		t.Fatalf("recent: %d %v", len(recent), err)
	}
	robots, err := v.ListRobots(ctx)
	if err != nil || len(robots) != 2 || robots[0].State != sdk.RobotAvailable || robots[1].State != sdk.RobotDisconnected || robots[0].Name != "svc-runner" {
		t.Fatalf("robots: %+v %v", robots, err)
	}

	f.ExpireTokens()
	if _, err := v.ListRobots(ctx); err != nil {
		t.Fatalf("after token expiry: %v", err)
	}
	f.Throttle(1, "1")
	if _, err := v.ListRobots(ctx); err != nil {
		t.Fatalf("429 once: %v", err)
	}
	f.Throttle(10, "600")
	if _, err := v.ListRobots(ctx); err == nil || !strings.Contains(err.Error(), "rate limited") {
		t.Fatalf("429 for long: %v", err)
	}
	f.Throttle(0, "")
	f.Malform(1)
	if _, err := v.ListRobots(ctx); err == nil || !strings.Contains(err.Error(), "malformed reply") {
		t.Fatalf("malformed: %v", err)
	}
	if _, err := v.ListRobots(ctx); err != nil {
		t.Fatalf("after malformed: %v", err)
	}

	bad := start(t, "aa-bad", cfg(f, "password", "wrong"))
	_, err = bad.ListRobots(ctx)
	if !strings.Contains(fmtErr(err), "authentication failed") || !strings.Contains(err.Error(), "Invalid credentials (UM1110)") || strings.Contains(err.Error(), "wrong") {
		t.Fatalf("bad password: %v", err)
	}
}

func fmtErr(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
