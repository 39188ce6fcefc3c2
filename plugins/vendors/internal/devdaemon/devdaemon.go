// Package devdaemon runs a real `rpacloud dev` for the vendor plugins'
// end-to-end tests, through the SDK's daemon harness (plugins/sdk/sdktest:
// the binary built from this tree, a configuration directory with the
// test's HCL, its own data directory and address, and the environment the
// test gives, VAULT_ADDR and VAULT_TOKEN of a real Vault), and adds the
// vendor tests' checks.
package devdaemon

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/rpacloud/rpacloud/plugins/sdk/sdktest"
)

// Daemon is a running `rpacloud dev` (sdktest's daemon harness) with the
// vendor tests' checks.
type Daemon struct{ *sdktest.Daemon }

// Start builds rpacloud, writes hcl as the configuration and starts the
// daemon; it returns once the daemon serves and its admin token exists.
// The daemon is stopped (SIGINT) when the test ends, and its log is
// printed if the test failed.
func Start(t *testing.T, hcl string, env ...string) *Daemon {
	t.Helper()
	return &Daemon{sdktest.StartDaemon(t, hcl, env...)}
}

// Fault is what a faulted vendor job became in the monitoring model.
type Fault struct {
	Event struct {
		Type, Message, Vendor, ExternalID, ProcessID string
	}
	Anomaly struct {
		Rule, Status, Title, Message, ProcessID string
	}
	// Said is every text the API answered with along the way, for secret
	// checks.
	Said []string
}

// WaitFault waits (up to 90 s) until a vendorjob.faulted event of vendor
// type vendor and an open run_faulted anomaly are there, then checks both
// are linked to process and name fault.
func (d *Daemon) WaitFault(t *testing.T, vendor, process, fault string) *Fault {
	t.Helper()
	ctx := context.Background()
	var procs struct {
		Processes struct {
			Edges []struct {
				Node struct{ ID string } `json:"node"`
			} `json:"edges"`
		} `json:"processes"`
	}
	if err := d.Do(ctx, `query($n:String!){processes(where:{name:$n}){edges{node{id}}}}`, map[string]any{"n": process}, &procs); err != nil || len(procs.Processes.Edges) != 1 {
		t.Fatalf("process %s: %+v %v", process, procs, err)
	}
	procID := procs.Processes.Edges[0].Node.ID
	f := &Fault{}
	gotEvent, gotAnomaly := false, false
	deadline := time.Now().Add(90 * time.Second)
	for !gotEvent || !gotAnomaly {
		var out struct {
			Events struct {
				Edges []struct {
					Node struct {
						Type, Message, Vendor, ExternalID, ProcessID string
					} `json:"node"`
				} `json:"edges"`
			} `json:"events"`
			Anomalies struct {
				Edges []struct {
					Node struct {
						Rule, Status, Title, Message, ProcessID string
					} `json:"node"`
				} `json:"edges"`
			} `json:"anomalies"`
		}
		err := d.Do(ctx, `query($v:String!){events(first:50,where:{vendor:$v}){edges{node{type message vendor externalID processID}}}
			anomalies(first:10,where:{rule:run_faulted}){edges{node{rule status title message processID}}}}`, map[string]any{"v": vendor}, &out)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range out.Events.Edges {
			f.Said = append(f.Said, e.Node.Message)
			if e.Node.Type == "vendorjob.faulted" {
				f.Event = e.Node
				gotEvent = true
			}
		}
		for _, a := range out.Anomalies.Edges {
			f.Said = append(f.Said, a.Node.Title, a.Node.Message)
			f.Anomaly = a.Node
			gotAnomaly = true
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 90 s: faulted job event %v %+v, run_faulted anomaly %v %+v", gotEvent, f.Event, gotAnomaly, f.Anomaly)
		}
		time.Sleep(500 * time.Millisecond)
	}
	if f.Event.ProcessID != procID || f.Event.ExternalID == "" || !strings.Contains(f.Event.Message, fault) {
		t.Errorf("faulted job event %+v: want it linked to process %s (%s), with the job's ID and %q", f.Event, process, procID, fault)
	}
	if f.Anomaly.ProcessID != procID || f.Anomaly.Status != "open" || !strings.Contains(f.Anomaly.Title+f.Anomaly.Message, fault) {
		t.Errorf("anomaly %+v: want an open run_faulted of process %s naming %q", f.Anomaly, process, fault)
	}
	return f
}

// Secret stores a fresh random value under field at a fresh path
// rpacloud/vendors/NAME-XXXX of the Vault's KV v2 "secret" mount, and
// returns the path (without the mount) and the value.
func Secret(t *testing.T, v *sdktest.Vault, name, field string) (path, value string) {
	t.Helper()
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	value = name + "-secret-" + hex.EncodeToString(b)
	path = "rpacloud/vendors/" + name + "-" + hex.EncodeToString(b[:4])
	v.PutSecret(t, path, map[string]any{field: value})
	return path, value
}

// CheckNoSecret stops the daemon and fails the test when secret appears
// in its log or in what the API answered.
func (d *Daemon) CheckNoSecret(t *testing.T, secret string, f *Fault) {
	t.Helper()
	d.Stop()
	for where, text := range map[string]string{"the daemon's log": d.Log(), "the API's answers": strings.Join(f.Said, "\n")} {
		if strings.Contains(text, secret) {
			t.Errorf("the vendor secret appears in %s", where)
		}
	}
}

// Config is a daemon configuration with one local pool "vendor-robots",
// one customer "acme", and the given vendor and process blocks (the
// process belongs in that pool and to that customer).
func Config(vendor, process string) string {
	return `provider "local" {
  plugin = "local"
}

pool "vendor-robots" {
  provider = "local"
  min      = 0
  max      = 2
  period   = "10s"
}

customer "acme" {
  display_name = "ACME"
}

` + vendor + "\n" + process
}
