package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
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

// An operator's stop reaches a vendor job: the agent cancels the run's
// context with robotagent.ErrStopRequested, the uipath plugin (a process of
// the rpacloud binary) gets the vendor's own stop call (StopJobs, recorded
// by the fake Orchestrator with the job's id), and the error says the job
// was stopped at the operator's request.
func TestRobotStopsUiPathJobOnRequest(t *testing.T) {
	if testing.Short() {
		t.Skip("builds rpacloud")
	}
	f := fakeorch.New("rpacloud-app", "app-s3cret", 42)
	t.Cleanup(f.Close)
	f.AddRelease(fakeorch.Release{Key: "7d0c5e4a-2f3b-4d7c-9e8a-3c4d5e6f7081", Name: "Slow.Filing", ProcessKey: "Slow.Filing",
		Script: []string{"Pending", "Running"}}) // runs until stopped
	h := pluginhost.New(pluginhost.Options{SelfExe: sdktest.RpacloudBinary(t), Builtin: builtin.Has, BuiltinInfo: builtin.Info,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), StopTimeout: 5 * time.Second})
	defer h.Close()
	spec := &robotwire.ProcessSpec{Name: "slow", Kind: "vendor", Runner: "uipath-prod", Package: "Slow.Filing", VendorType: "uipath",
		Vendor: map[string]string{"url": f.URL, "token_url": f.URL + "/identity_/connect/token", "client_id": "rpacloud-app", "folder_id": "42"}}
	p := &robotagent.Plugins{Host: h, Specs: oneSpec{spec}, VendorPoll: 20 * time.Millisecond,
		Schema: func(ctx context.Context, kind, name string) []sdk.ConfigAttribute {
			a, _ := h.Schema(ctx, kind, name)
			return a
		}}
	base := secret.WithSecrets(context.Background(), secret.Secrets{"uipath/prod": {Extra: map[string]string{"client_secret": "app-s3cret"}}})
	ctx, stop := context.WithCancelCause(base)
	defer stop(nil)
	claim := &robotwire.Claim{TaskID: 7, Attempt: 1, Process: "slow", Kind: "vendor", Input: json.RawMessage(`{}`),
		Deadline: time.Now().Add(time.Minute)}
	done := make(chan error, 1)
	go func() {
		_, err := p.Run(ctx, claim)
		done <- err
	}()
	waitJobRunning(t, f)
	stop(robotagent.ErrStopRequested)
	var err error
	select {
	case err = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("the run did not end after the stop")
	}
	if !errors.Is(err, robotagent.ErrStopRequested) || !strings.Contains(err.Error(), "stopped at the operator's request") {
		t.Fatalf("run after the stop: %v", err)
	}
	j := f.Jobs()
	if len(j) != 1 || j[0].Stopped == "" {
		t.Fatalf("jobs %+v: want the one job stopped through StopJobs", j)
	}
	if !strings.Contains(err.Error(), fmt.Sprint(j[0].ID)) && !strings.Contains(err.Error(), j[0].Key) {
		t.Fatalf("the error %q does not name job %d", err, j[0].ID)
	}
}

// A vendor job that ignores the soft stop (a UiPath workflow that never
// checks ShouldStop stays Stopping and runs on) is killed once
// VendorStopWait has passed, and the error says so: a soft stop alone left
// it running while its task was cancelled, and a retry ran it twice.
func TestRobotKillsUiPathJobIgnoringSoftStop(t *testing.T) {
	if testing.Short() {
		t.Skip("builds rpacloud")
	}
	f := fakeorch.New("rpacloud-app", "app-s3cret", 42)
	t.Cleanup(f.Close)
	f.AddRelease(fakeorch.Release{Key: "8e1d6f5b-3a4c-4e8d-a09b-4d5e6f708192", Name: "Deaf.Filing", ProcessKey: "Deaf.Filing",
		Script: []string{"Pending", "Running"}, IgnoresSoftStop: true})
	h := pluginhost.New(pluginhost.Options{SelfExe: sdktest.RpacloudBinary(t), Builtin: builtin.Has, BuiltinInfo: builtin.Info,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), StopTimeout: 5 * time.Second})
	defer h.Close()
	spec := &robotwire.ProcessSpec{Name: "deaf", Kind: "vendor", Runner: "uipath-prod", Package: "Deaf.Filing", VendorType: "uipath",
		Vendor: map[string]string{"url": f.URL, "token_url": f.URL + "/identity_/connect/token", "client_id": "rpacloud-app", "folder_id": "42"}}
	p := &robotagent.Plugins{Host: h, Specs: oneSpec{spec}, VendorPoll: 20 * time.Millisecond, VendorStopWait: 300 * time.Millisecond,
		Schema: func(ctx context.Context, kind, name string) []sdk.ConfigAttribute {
			a, _ := h.Schema(ctx, kind, name)
			return a
		}}
	base := secret.WithSecrets(context.Background(), secret.Secrets{"uipath/prod": {Extra: map[string]string{"client_secret": "app-s3cret"}}})
	ctx, stop := context.WithCancelCause(base)
	defer stop(nil)
	claim := &robotwire.Claim{TaskID: 8, Attempt: 1, Process: "deaf", Kind: "vendor", Input: json.RawMessage(`{}`),
		Deadline: time.Now().Add(time.Minute)}
	done := make(chan error, 1)
	go func() {
		_, err := p.Run(ctx, claim)
		done <- err
	}()
	waitJobRunning(t, f)
	stop(robotagent.ErrStopRequested)
	var err error
	select {
	case err = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("the run did not end after the stop")
	}
	j := f.Jobs()
	if len(j) != 1 || !j[0].SoftStopped || j[0].Stopped != "Kill" {
		t.Fatalf("jobs %+v: want the job soft-stopped, then killed", j)
	}
	if !errors.Is(err, robotagent.ErrStopRequested) || !strings.Contains(err.Error(), "was killed (Stopped)") {
		t.Fatalf("run after the stop: %v", err)
	}
}

// waitJobRunning waits until the fake Orchestrator's one job is running:
// the agent has polled it, so its start call has returned. A stop while
// that call is in flight cancels the call itself (the run then fails to
// start), which is not what the stop tests are about.
func waitJobRunning(t *testing.T, f *fakeorch.Server) {
	t.Helper()
	sdktest.Eventually(t, 30*time.Second, "the job running", func() bool {
		j := f.Jobs()
		return len(j) == 1 && !j[0].StartTime.IsZero()
	})
}
