package daemon

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/rpacloud/rpacloud/cmd/rpacloud/builtin"
	"github.com/rpacloud/rpacloud/core/config"
	"github.com/rpacloud/rpacloud/plugins/sdk"
)

// schemaOf is what built-in vendor plugin name declares.
func schemaOf(t *testing.T, name string) []sdk.ConfigAttribute {
	t.Helper()
	info, err := builtin.Info(context.Background(), sdk.KindVendor, name)
	if err != nil {
		t.Fatal(err)
	}
	return info.ConfigSchema
}

// TestVendorPluginConfig: the daemon's vendor poller configures the plugin
// with the block's plain attributes and the `credentials` secret read from
// Vault, leaving out its own poll_interval and other references.
func TestVendorPluginConfig(t *testing.T) {
	ctx := context.Background()
	resolve := func(_ context.Context, ref config.VaultRef) (string, error) {
		if ref.Path == "secret/rpacloud/vendors/ui" {
			return "value-of-" + ref.Field, nil
		}
		return "", errors.New("vault: resolve " + ref.String() + ": not found")
	}
	ui := config.Vendor{Name: "ui", Type: "uipath", URL: "https://orch.test", Tenant: "Tax", Folder: "Prod",
		Credentials: "vault:secret/rpacloud/vendors/ui#client_secret",
		Extra:       map[string]string{"client_id": "app", "poll_interval": "30s", "webhook_secret": "vault:secret/rpacloud/vendors/ui#webhook"}}
	got, err := vendorPluginConfig(ctx, ui, schemaOf(t, "uipath"), resolve)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"url": "https://orch.test", "tenant": "Tax", "folder": "Prod", "client_id": "app", "client_secret": "value-of-client_secret"}
	if len(got) != len(want) {
		t.Fatalf("config %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("config %v, want %v", got, want)
		}
	}

	aa := config.Vendor{Name: "cr", Type: "aa", URL: "https://cr.test", Credentials: "vault:secret/rpacloud/vendors/ui#password",
		Extra: map[string]string{"username": "bot-runner"}}
	got, err = vendorPluginConfig(ctx, aa, schemaOf(t, "aa"), resolve)
	if err != nil || got["password"] != "value-of-password" || got["api_key"] != "" || got["username"] != "bot-runner" {
		t.Fatalf("aa config %v %v", got, err)
	}

	if _, err := vendorPluginConfig(ctx, ui, schemaOf(t, "uipath"), nil); err == nil || !strings.Contains(err.Error(), `vendor "ui"`) {
		t.Fatalf("without Vault: %v", err)
	}
	missing := ui
	missing.Credentials = "vault:secret/other#client_secret"
	_, err = vendorPluginConfig(ctx, missing, schemaOf(t, "uipath"), resolve)
	if err == nil || !strings.Contains(err.Error(), "secret/other#client_secret") || strings.Contains(err.Error(), "value-of") {
		t.Fatalf("missing secret: %v", err)
	}
}
