package uipath_test

import (
	"testing"

	"github.com/rpacloud/rpacloud/plugins/sdk/sdktest"
	"github.com/rpacloud/rpacloud/plugins/vendors/internal/devdaemon"
	"github.com/rpacloud/rpacloud/plugins/vendors/uipath/fakeorch"
)

// TestDaemonMonitorsOrchestrator runs the whole path a vendor-started run
// takes to the wall screen: `rpacloud dev` with a `vendor` block, its OAuth
// secret in a real Vault, the uipath plugin in its own process polling a
// fake Orchestrator over HTTP. A job that Orchestrator's own schedule
// started and that faulted must become a vendorjob event linked to the
// process whose package it ran, and a run_faulted anomaly with the fault;
// the secret must appear nowhere in what the daemon says.
func TestDaemonMonitorsOrchestrator(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	v := sdktest.SharedVault(t)
	vpath, secret := devdaemon.Secret(t, v, "orch", "client_secret")

	f := fakeorch.New("rpacloud-monitor", secret, 42)
	t.Cleanup(f.Close)
	f.FolderPath = "Production"
	f.AddRelease(fakeorch.Release{Key: "5b8a3c2e-0d1f-4b5a-9c7e-1a2b3c4d5e6f", Name: "TaxFiling.VAT", ProcessKey: "TaxFiling.VAT",
		Script: []string{"Pending", "Running", "Faulted"}, Info: "System.Exception: the e-tax portal refused the login"})
	f.AddSession(fakeorch.Session{ID: 1, RobotID: 11, RobotName: "tax-robot-1", MachineName: "VM-1", State: "Busy"})
	// Started by Orchestrator's own trigger, not by rpacloud, and faulted.
	f.AddJobs("TaxFiling.VAT", 1, "Faulted")

	d := devdaemon.Start(t, devdaemon.Config(`vendor "orch" {
  type          = "uipath"
  url           = "`+f.URL+`"
  token_url     = "`+f.URL+`/identity_/connect/token"
  folder        = "Production"
  client_id     = "rpacloud-monitor"
  credentials   = "vault:secret/`+vpath+`#client_secret"
  poll_interval = "1s"
}
`, `process "vat-filing" {
  pool         = "vendor-robots"
  vendor       = "orch"
  package      = "TaxFiling.VAT"
  owner        = "acme"
  max_duration = "5m"
}
`), "VAULT_ADDR="+v.Addr, "VAULT_TOKEN="+v.Token)
	fault := d.WaitFault(t, "uipath", "vat-filing", "refused the login")
	// The poller authenticated with the secret from Vault.
	if f.TokenRequests() == 0 {
		t.Error("the plugin never asked the fake Orchestrator for a token")
	}
	d.CheckNoSecret(t, secret, fault)
}
