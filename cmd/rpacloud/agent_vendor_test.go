package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/rpacloud/rpacloud/cmd/rpacloud/builtin"
	"github.com/rpacloud/rpacloud/core/credentials/secret"
	"github.com/rpacloud/rpacloud/core/pluginhost"
	"github.com/rpacloud/rpacloud/core/robotagent"
	"github.com/rpacloud/rpacloud/core/robotwire"
	"github.com/rpacloud/rpacloud/plugins/sdk"
	"github.com/rpacloud/rpacloud/plugins/sdk/sdktest"
	"github.com/rpacloud/rpacloud/plugins/vendors/uipath/fakeorch"
)

type oneSpec struct{ s *robotwire.ProcessSpec }

func (o oneSpec) Spec(context.Context, string) (*robotwire.ProcessSpec, error) { return o.s, nil }

// A robot runs a UiPath process as it does on a VM: the agent starts the
// job through the built-in uipath plugin (a process of the rpacloud
// binary) against a fake Orchestrator, and follows it to its end state.
func TestRobotRunsUiPathProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("builds rpacloud")
	}
	f := fakeorch.New("rpacloud-app", "app-s3cret", 42)
	t.Cleanup(f.Close)
	f.AddRelease(fakeorch.Release{Key: "5b8a3c2e-0d1f-4b5a-9c7e-1a2b3c4d5e6f", Name: "TaxFiling.VAT", ProcessKey: "TaxFiling.VAT",
		Output: `{"receipt":"VAT-1"}`})
	f.AddRelease(fakeorch.Release{Key: "6c9b4d3f-1e2a-4c6b-8d7f-2b3c4d5e6f70", Name: "Always.Faults", ProcessKey: "Always.Faults",
		Script: []string{"Pending", "Running", "Faulted"}, Info: "System.Exception: the portal timed out"})

	h := pluginhost.New(pluginhost.Options{SelfExe: sdktest.RpacloudBinary(t), Builtin: builtin.Has, BuiltinInfo: builtin.Info,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), StopTimeout: 5 * time.Second})
	defer h.Close()
	spec := &robotwire.ProcessSpec{Name: "vat", Kind: "vendor", Runner: "uipath-prod", Package: "TaxFiling.VAT", VendorType: "uipath",
		Vendor: map[string]string{"url": f.URL, "token_url": f.URL + "/identity_/connect/token", "client_id": "rpacloud-app", "folder_id": "42"}}
	p := &robotagent.Plugins{Host: h, Specs: oneSpec{spec}, VendorPoll: 20 * time.Millisecond,
		Schema: func(ctx context.Context, kind, name string) []sdk.ConfigAttribute {
			a, _ := h.Schema(ctx, kind, name)
			return a
		}}
	// The OAuth secret is a credential of the process, delivered with the
	// claim.
	ctx := secret.WithSecrets(context.Background(), secret.Secrets{"uipath/prod": {Extra: map[string]string{"client_secret": "app-s3cret"}}})
	claim := &robotwire.Claim{TaskID: 1, Attempt: 1, Process: "vat", Kind: "vendor", Input: json.RawMessage(`{"company":"C1"}`)}
	out, err := p.Run(ctx, claim)
	if err != nil {
		t.Fatal(err)
	}
	var res struct {
		State  string          `json:"state"`
		Output json.RawMessage `json:"output"`
	}
	if json.Unmarshal(out, &res) != nil || res.State != "Successful" || string(res.Output) != `{"receipt":"VAT-1"}` {
		t.Fatalf("output %s", out)
	}
	if j := f.Jobs(); len(j) != 1 || j[0].Input != `{"company":"C1"}` {
		t.Fatalf("jobs %+v", j)
	}

	spec.Package = "Always.Faults"
	_, err = p.Run(ctx, claim)
	if err == nil || errors.Is(err, robotagent.ErrData) || !strings.Contains(err.Error(), "ended Faulted: System.Exception: the portal timed out") {
		t.Fatalf("faulted job: %v", err)
	}
}
