package aa_test

import (
	"testing"

	"github.com/rpacloud/rpacloud/plugins/sdk/sdktest"
	"github.com/rpacloud/rpacloud/plugins/vendors/aa/internal/fakecr"
	"github.com/rpacloud/rpacloud/plugins/vendors/internal/devdaemon"
)

// TestDaemonMonitorsControlRoom: the Automation Anywhere counterpart of
// the UiPath daemon test. `rpacloud dev` with a `vendor` block whose
// password is in a real Vault polls a fake Control Room through the aa
// plugin; a bot run the Control Room's own schedule deployed and that
// failed becomes a vendorjob event linked to the process that runs that
// bot and a run_faulted anomaly, and the password appears nowhere.
func TestDaemonMonitorsControlRoom(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	v := sdktest.SharedVault(t)
	vpath, password := devdaemon.Secret(t, v, "cr", "password")

	f := fakecr.New("svc-rpacloud", password, "")
	t.Cleanup(f.Close)
	f.AddBot(fakecr.Bot{FileID: 86, Name: "VAT-Filing", Msg: "Bot error: the e-tax portal refused the login"})
	f.AddDevice(fakecr.Device{ID: 7, HostName: "runner-1", Status: "CONNECTED", User: "svc-runner"})
	// Deployed by the Control Room's own schedule, not by rpacloud, and failed.
	f.AddHistory(86, 1, "RUN_FAILED")

	d := devdaemon.Start(t, devdaemon.Config(`vendor "cr" {
  type          = "aa"
  url           = "`+f.URL+`"
  username      = "svc-rpacloud"
  credentials   = "vault:secret/`+vpath+`#password"
  poll_interval = "1s"
}
`, `process "vat-filing" {
  pool         = "vendor-robots"
  vendor       = "cr"
  package      = "VAT-Filing"
  owner        = "acme"
  max_duration = "5m"
}
`), "VAULT_ADDR="+v.Addr, "VAULT_TOKEN="+v.Token)
	fault := d.WaitFault(t, "aa", "vat-filing", "refused the login")
	if f.Count("POST /v1/authentication") == 0 {
		t.Error("the plugin never authenticated at the fake Control Room")
	}
	d.CheckNoSecret(t, password, fault)
}
