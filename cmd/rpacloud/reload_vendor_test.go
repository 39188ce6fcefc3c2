package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rpacloud/rpacloud/plugins/sdk/sdktest"
	"github.com/rpacloud/rpacloud/plugins/vendors/uipath/fakeorch"
)

func vendorHCL(vpath string, orch, keep *fakeorch.Server) string {
	block := func(name string, f *fakeorch.Server) string {
		return fmt.Sprintf(`vendor %q {
  type          = "uipath"
  url           = %q
  token_url     = "%s/identity_/connect/token"
  folder        = "Production"
  client_id     = "rpacloud-monitor"
  credentials   = "vault:secret/%s#client_secret"
  poll_interval = "1s"
}
`, name, f.URL, f.URL, vpath)
	}
	return `provider "local" {
  plugin = "local"
}
pool "p" {
  provider = "local"
  max      = 1
}
customer "acme" {}
process "e" {
  pool    = "p"
  builtin = "echo"
}
` + block("orch", orch) + block("keep", keep)
}

// TestReloadVendorPollers: a reload that changes one vendor block stops
// its poller and plugin and starts them on the new block, while the
// unchanged vendor's plugin keeps running as the same process (it does
// not even log in again).
func TestReloadVendorPollers(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	v := sdktest.SharedVault(t)
	const secret = "reload-vendor-s3cret"
	vpath := fmt.Sprintf("rpacloud/vendors/reload-%d", time.Now().UnixNano())
	v.PutSecret(t, vpath, map[string]any{"client_secret": secret})
	orchs := make([]*fakeorch.Server, 3)
	for i := range orchs {
		orchs[i] = fakeorch.New("rpacloud-monitor", secret, 42)
		orchs[i].FolderPath = "Production"
		t.Cleanup(orchs[i].Close)
	}
	old, keep, next := orchs[0], orchs[1], orchs[2]
	d := sdktest.StartDaemon(t, vendorHCL(vpath, old, keep), "VAULT_ADDR="+v.Addr, "VAULT_TOKEN="+v.Token)
	daemonPIDs := procs("dev", "--listen", strings.TrimPrefix(d.Base, "http://"))
	plugins := func() map[int]bool {
		out := map[int]bool{}
		for pid, ppid := range procs("plugin", "vendor", "uipath") {
			if _, ok := daemonPIDs[ppid]; ok {
				out[pid] = true
			}
		}
		return out
	}
	eventually(t, 60*time.Second, "both vendors polled", func() (bool, string) {
		return old.TokenRequests() > 0 && keep.TokenRequests() > 0 && len(plugins()) == 2, fmt.Sprint(old.TokenRequests(), keep.TokenRequests(), plugins())
	})
	before, keepLogins := plugins(), keep.TokenRequests()

	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "rpacloud.hcl"), []byte(vendorHCL(vpath, next, keep)), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, sdktest.RpacloudBinary(t), "config", "apply", "--config", dir, "--yes", "--server", d.Base, "--token", d.Token)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "~ vendor \"orch\"\n") || strings.Contains(string(out), "vendor \"keep\"") ||
		!strings.Contains(string(out), "Applied.") {
		t.Fatalf("config apply: %v\n%s", err, out)
	}
	eventually(t, 60*time.Second, "the changed vendor polled at its new URL", func() (bool, string) {
		return next.TokenRequests() > 0 && len(plugins()) == 2, fmt.Sprint(next.TokenRequests(), plugins())
	})
	after := plugins()
	kept := 0
	for pid := range before {
		if after[pid] {
			kept++
		}
	}
	if kept != 1 {
		t.Errorf("vendor plugin processes before %v, after %v: want the unchanged one kept and the changed one replaced", before, after)
	}
	if got := keep.TokenRequests(); got != keepLogins {
		t.Errorf("the unchanged vendor logged in again: %d token requests, was %d", got, keepLogins)
	}
	if strings.Contains(d.Log(), secret) || strings.Contains(string(out), secret) {
		t.Error("the vendor secret reached the log or the plan")
	}
}
