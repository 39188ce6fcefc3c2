package sdktest_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/rpacloud/rpacloud/plugins/sdk"
	"github.com/rpacloud/rpacloud/plugins/sdk/sdktest"
)

type echoCrawler struct{}

func (echoCrawler) Info(context.Context) (sdk.PluginInfo, error) {
	return sdk.PluginInfo{Kind: sdk.KindCrawler, Name: "echo"}, nil
}
func (echoCrawler) Configure(context.Context, map[string]string) ([]sdk.ConfigDiagnostic, error) {
	return nil, nil
}
func (echoCrawler) Run(_ context.Context, req sdk.RunRequest) (sdk.RunResult, error) {
	return sdk.RunResult{Outputs: map[string]string{"task": req.TaskID}}, nil
}

type oneJobVendor struct{}

func (oneJobVendor) Info(context.Context) (sdk.PluginInfo, error) {
	return sdk.PluginInfo{Kind: sdk.KindVendor, Name: "one"}, nil
}
func (oneJobVendor) Configure(context.Context, map[string]string) ([]sdk.ConfigDiagnostic, error) {
	return nil, nil
}
func (oneJobVendor) StartJob(_ context.Context, req sdk.StartJobRequest) (sdk.Job, error) {
	if req.Package == "" {
		return sdk.Job{}, sdk.ErrInvalidRequest
	}
	return sdk.Job{ID: "1", State: sdk.JobState("running")}, nil
}
func (oneJobVendor) GetJob(context.Context, string) (sdk.Job, error) { return sdk.Job{ID: "1"}, nil }
func (oneJobVendor) StopJob(context.Context, string, bool) error     { return nil }
func (oneJobVendor) ListJobs(context.Context, sdk.JobFilter) ([]sdk.Job, error) {
	return []sdk.Job{{ID: "1"}}, nil
}
func (oneJobVendor) ListRobots(context.Context) ([]sdk.VendorRobot, error) { return nil, nil }

// The in-memory harnesses carry crawler and vendor calls, errors included,
// over the plugin wire.
func TestConnectCrawlerAndVendor(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := sdktest.ConnectCrawler(t, echoCrawler{})
	res, err := c.Run(ctx, sdk.RunRequest{TaskID: "t1"})
	if err != nil || res.Outputs["task"] != "t1" {
		t.Fatalf("crawler run: %+v %v", res, err)
	}
	v := sdktest.ConnectVendor(t, oneJobVendor{})
	if j, err := v.StartJob(ctx, sdk.StartJobRequest{Package: "p"}); err != nil || j.ID != "1" {
		t.Fatalf("start job: %+v %v", j, err)
	}
	if _, err := v.StartJob(ctx, sdk.StartJobRequest{}); !errors.Is(err, sdk.ErrInvalidRequest) {
		t.Fatalf("refused job: %v", err)
	}
}
