package uipath_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/rpacloud/rpacloud/core/credentials/secret"
	"github.com/rpacloud/rpacloud/core/pluginhost"
	"github.com/rpacloud/rpacloud/core/robotagent"
	"github.com/rpacloud/rpacloud/core/robotwire"
	"github.com/rpacloud/rpacloud/plugins/builtin"
)

type oneSpec struct{ s *robotwire.ProcessSpec }

func (o oneSpec) Spec(context.Context, string) (*robotwire.ProcessSpec, error) { return o.s, nil }

// A robot runs a UiPath process: it starts the job through the plugin
// process and follows it to its end state.
func TestRobotRunsUiPathProcess(t *testing.T) {
	f := newFake(t)
	exe, _ := os.Executable()
	h := pluginhost.New(pluginhost.Options{SelfExe: exe, Builtin: builtin.Has, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), StopTimeout: 5 * time.Second})
	defer h.Close()
	spec := &robotwire.ProcessSpec{Name: "vat", Kind: "vendor", Runner: "uipath-prod", Package: "TaxFiling.VAT", VendorType: "uipath",
		Vendor: map[string]string{"url": f.URL, "token_url": f.URL + "/identity_/connect/token", "client_id": "rpacloud-app", "folder_id": "42"}}
	p := &robotagent.Plugins{Host: h, Specs: oneSpec{spec}, VendorPoll: 20 * time.Millisecond, Schema: builtin.Schema}
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
